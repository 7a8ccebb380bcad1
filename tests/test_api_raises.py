"""A public function that raises documents it: numpydoc ``Raises`` section (the project's quality bar).

``test_docstrings`` checks Parameters and Returns; this adds the third section. A function or
method counts as raising when its own body (not a nested function) has a ``raise`` or calls a
validator (``check_*`` such as ``problem.check_w``, ``weights_of``, ``as_features``, ...); a class
when its ``__init__`` / ``__post_init__`` does (the class docstring documents the constructor, as
numpydoc puts it). Errors raised deeper, in other helpers, are the callee's to document.
"""

from __future__ import annotations

import ast
import importlib.util
import inspect
import textwrap
import warnings
from typing import Protocol

import pytest
from numpydoc.docscrape import NumpyDocString
from test_docstrings import MODULES, _public_callables

#: helpers whose only job besides returning their argument is to raise a SpecError on bad input
VALIDATORS = {
    "as_features",
    "get_integrator",
    "get_ops",
    "new_axes",
    "require_flow",
    "require_scalar_output",
    "resolve_layer",
    "weights_of",
}


def raises_directly(func) -> bool:
    """True if the body of ``func`` (nested definitions excluded) raises or calls a validator
    (``check_*``, e.g. ``problem.check_w``, or one of :data:`VALIDATORS`)."""
    try:
        source = textwrap.dedent(inspect.getsource(func))
    except (OSError, TypeError):
        return False
    stack = list(ast.parse(source).body[0].body)
    while stack:
        node = stack.pop()
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda, ast.ClassDef)):
            continue
        if isinstance(node, ast.Raise) and node.exc is not None:
            return True
        if isinstance(node, ast.Call):
            called = getattr(node.func, "id", None) or getattr(node.func, "attr", None) or ""
            if called.startswith("check_") or called in VALIDATORS:
                return True
        stack.extend(ast.iter_child_nodes(node))
    return False


def has_raises_section(obj) -> bool:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return bool(NumpyDocString(inspect.getdoc(obj) or "")["Raises"])


def public_classes():
    seen = set()
    for module in MODULES:
        for name in getattr(module, "__all__", None) or [n for n in dir(module) if not n.startswith("_")]:
            obj = getattr(module, name)
            if not (inspect.isclass(obj) and obj.__module__.startswith("control_dl")) or id(obj) in seen:
                continue
            seen.add(id(obj))
            if inspect.isabstract(obj) or Protocol in obj.__mro__ or obj.__name__ == "Control":
                continue  # an extension point: its concrete subclasses document their checks
            yield f"{obj.__module__}.{obj.__qualname__}", obj


def undocumented_raises() -> list[str]:
    found = [name for name, func in _public_callables() if raises_directly(func) and not has_raises_section(func)]
    for name, cls in public_classes():
        init = vars(cls).get("__post_init__") or vars(cls).get("__init__")
        if init is not None and raises_directly(init) and not has_raises_section(cls):
            found.append(name)
    return found


def test_every_public_function_that_raises_has_a_raises_section():
    missing = sorted(undocumented_raises())
    assert not missing, "add a numpydoc 'Raises' section (exception and when) to:\n" + "\n".join(missing)


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ("    if x < 0:\n        raise ValueError('x')\n    return x", True),
        ("    check_positive_int('x', x)\n    return x", True),
        ("    def inner():\n        raise ValueError('x')\n    return inner", False),
        ("    return weights_of(x, x)", True),
        ("    return x.check_w(x)", True),
        ("    return x", False),
    ],
)
def test_the_checker_sees_direct_raises_only(body, expected, tmp_path):
    path = tmp_path / "probe_module.py"
    path.write_text(f"def f(x):\n    '''Doc.'''\n{body}\n")
    spec = importlib.util.spec_from_file_location(f"probe_{tmp_path.name}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert raises_directly(module.f) is expected


def test_the_checker_reads_the_raises_section():
    def documented():
        """Do.

        Raises
        ------
        SpecError
            Always.
        """

    def undocumented():
        """Do."""

    assert has_raises_section(documented) and not has_raises_section(undocumented)
