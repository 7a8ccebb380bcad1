"""The docstring rules of ``test_docstrings`` and ``test_api_raises`` also hold in every public module.

Those tests walk what the packages export; a module whose name has no underscore
(``control_dl.problems.lipschitz``, ``control_dl.solvers.checkpoint``, ``control_dl.engines.dask``,
…) is importable by that name too, so every function and method defined in it is held to the same
numpydoc bar: each argument under Parameters, a Returns section when it returns, a Raises section
when its own body raises, and (for these and the exports) the shape of every array argument and
return.
"""

from __future__ import annotations

import importlib
import inspect
import re
import warnings

from numpydoc.docscrape import NumpyDocString
from test_api_raises import has_raises_section, raises_directly
from test_docs import NOT_API, ROOT
from test_docstrings import PUBLIC_DUNDERS, _problems, _public_callables


def public_module_names() -> list[str]:
    """``control_dl.<pkg>.<module>`` and ``control_dl.<module>`` for every file without a leading underscore."""
    package = ROOT / "control_dl"
    names = [f"control_dl.{p.parent.name}.{p.stem}" for p in package.glob("*/*.py") if not p.stem.startswith("_")]
    names += [f"control_dl.{p.stem}" for p in package.glob("*.py") if not p.stem.startswith("_")]
    return sorted(n for n in names if n.rsplit(".", 1)[1] not in NOT_API)


def defined_callables(module_name: str):
    """``(qualified name, function)`` of the public functions and methods defined in the module."""
    module = importlib.import_module(module_name)
    for name, obj in vars(module).items():
        if name.startswith("_") or getattr(obj, "__module__", None) != module_name:
            continue
        if inspect.isfunction(obj):
            yield f"{module_name}.{name}", obj
        elif inspect.isclass(obj):
            for meth_name, meth in vars(obj).items():
                if isinstance(meth, (staticmethod, classmethod)):
                    meth = meth.__func__
                if inspect.isfunction(meth) and (not meth_name.startswith("_") or meth_name in PUBLIC_DUNDERS):
                    yield f"{module_name}.{name}.{meth_name}", meth


def test_the_walk_covers_the_module_only_names():
    modules = public_module_names()
    assert {"control_dl.problems.lipschitz", "control_dl.solvers.checkpoint", "control_dl.engines.dask"} <= set(modules)
    assert "control_dl.cli" not in modules
    names = {name for module in modules for name, _ in defined_callables(module)}
    assert "control_dl.problems.lipschitz.field_lipschitz_sq" in names
    assert "control_dl.solvers.checkpoint.Checkpointer.__call__" in names


def test_every_function_of_a_public_module_documents_arguments_returns_and_raises():
    failures = []
    for module in public_module_names():
        for name, func in defined_callables(module):
            failures.extend(f"{name}: {problem}" for problem in _problems(func))
            if raises_directly(func) and not has_raises_section(func):
                failures.append(f"{name}: raises, but has no Raises section")
    assert not failures, "\n".join(failures)


#: an array-typed argument or return names its shape one of these ways (``d × S``, ``(n_params,)``, ...)
ARRAY_TYPE = re.compile(r"\b(nd)?array(_like)?\b|\btensor\b|casadi\.(MX|SX|DM)", re.IGNORECASE)
SHAPE_WORDS = re.compile(
    r"×|shape|``\(|\((n_|N|S|M|d|L)\b|\bvectors?\b|\bscalars?\b|\bmatrix\b|\bmatrices\b|\bsame\b|\blength\b"
    r"|\bentries\b|\bcolumns?\b|\brows?\b|\bany shape\b|\bone per\b|\bper (sample|step|layer|node)\b",
    re.IGNORECASE,
)


def test_every_array_argument_and_return_gives_its_shape():
    callables = dict(_public_callables())
    for module in public_module_names():
        callables.update(defined_callables(module))
    missing = []
    for name, func in callables.items():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            doc = NumpyDocString(inspect.getdoc(func) or "")
        for section in ("Parameters", "Returns"):
            for entry in doc[section]:
                kind = entry.type if section == "Parameters" else entry.type or entry.name
                if ARRAY_TYPE.search(kind or "") and not SHAPE_WORDS.search(f"{kind} {' '.join(entry.desc)}"):
                    missing.append(f"{name} ({section} {entry.name or kind})")
    assert not missing, "say the shape (e.g. ``d × S``, ``(n_params,)``, 'any shape') of:\n" + "\n".join(missing)
