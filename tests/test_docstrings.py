"""Every public function and method documents every argument and its return value (numpydoc).

Docstrings are parsed with numpydoc (the parser Sphinx and SciPy use), as python-control's
``docstrings_test.py`` does: a parameter counts as documented only if it is listed in the
``Parameters`` section under its own name, and a documented name that is not an argument is stale.
"""

from __future__ import annotations

import ast
import inspect
import textwrap
import warnings

import pytest
from numpydoc.docscrape import NumpyDocString

import control_dl as cdl

MODULES = [
    cdl,
    cdl.problems,
    cdl.plotting,
    cdl.datasets,
    cdl.backends,
    cdl.diagnostics,
    cdl.experiments,
    cdl.engines,
    cdl.solvers,
]
#: dunder methods that are part of a public protocol (a user implements or calls them)
PUBLIC_DUNDERS = {"__call__"}

#: Docstrings in files other helpers own and were changing while this test landed (issue 16 item 9).
KNOWN_FAILURES: set[str] = set()


def _public_callables():
    seen = set()
    for module in MODULES:
        for name in getattr(module, "__all__", None) or [n for n in dir(module) if not n.startswith("_")]:
            obj = getattr(module, name)
            if id(obj) in seen:
                continue
            seen.add(id(obj))
            if inspect.isfunction(obj) and obj.__module__.startswith("control_dl"):
                yield f"{obj.__module__}.{name}", obj
            elif inspect.isclass(obj) and obj.__module__.startswith("control_dl"):
                for meth_name, meth in vars(obj).items():
                    if isinstance(meth, (staticmethod, classmethod)):
                        meth = meth.__func__
                    public = not meth_name.startswith("_") or meth_name in PUBLIC_DUNDERS
                    if inspect.isfunction(meth) and public and id(meth) not in seen:
                        seen.add(id(meth))
                        yield f"{obj.__module__}.{obj.__name__}.{meth_name}", meth


def _returns_value(func) -> bool:
    """True if the function is annotated to return something, or (unannotated) returns a value."""
    annotation = inspect.signature(func).return_annotation
    if annotation is not inspect.Signature.empty:
        return annotation not in (None, "None", "NoReturn")
    tree = ast.parse(textwrap.dedent(inspect.getsource(func)))
    body = tree.body[0]
    for node in ast.walk(body):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)) and node is not body:
            continue
        if isinstance(node, ast.Return) and node.value is not None:
            return True
    return False


def _problems(func) -> list[str]:
    doc = inspect.getdoc(func)
    if not doc:
        return ["no docstring"]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        try:
            parsed = NumpyDocString(doc)
        except Exception as err:  # numpydoc warns or raises on malformed sections
            return [f"unparsable docstring ({err})"]
    found = []
    if not parsed["Summary"]:
        found.append("no summary line")
    documented = set()
    for param in parsed["Parameters"]:
        documented.update(n.strip().lstrip("*") for n in param.name.split(","))
    arguments = [
        p.name
        for p in inspect.signature(func).parameters.values()
        if p.name not in ("self", "cls") and not p.name.startswith("_")
    ]
    for name in arguments:
        if name not in documented:
            found.append(f"argument {name!r} not in Parameters")
    for name in sorted(documented - set(arguments)):
        found.append(f"Parameters lists {name!r}, which is not an argument")
    if _returns_value(func) and not (parsed["Returns"] or parsed["Yields"]):
        found.append("no Returns section")
    return found


def test_public_api_is_walked():
    names = [name for name, _ in _public_callables()]
    assert len(names) > 150
    assert "control_dl.backends._protocol.Ops.matmul" in names
    assert "control_dl.problems.fields.VectorField.__call__" in names


def test_every_argument_and_return_is_documented():
    failures = []
    for name, func in _public_callables():
        problems = _problems(func)
        if problems and name not in KNOWN_FAILURES:
            failures.extend(f"{name}: {p}" for p in problems)
    assert not failures, "\n".join(failures)


def test_known_failures_are_still_failing():
    # an allow-list entry that passes must be removed, so the list only ever shrinks
    fixed = [name for name, func in _public_callables() if name in KNOWN_FAILURES and not _problems(func)]
    assert not fixed


@pytest.mark.parametrize(
    ("doc", "expected"),
    [
        (
            '"""Add.\n\n    Parameters\n    ----------\n    a : int\n        A.\n    """',
            ["'b' not in Parameters", "no Returns"],
        ),
        ('"""Add."""', ["'a' not in Parameters", "'b' not in Parameters", "no Returns"]),
        (
            '"""Add.\n\n    Parameters\n    ----------\n    a, b : int\n        Terms.\n    c : int\n        Gone.\n\n'
            '    Returns\n    -------\n    int\n        Sum.\n    """',
            ["'c', which is not an argument"],
        ),
    ],
)
def test_the_checker_catches_missing_and_stale_arguments(doc, expected):
    namespace = {}
    exec(f"def add(a, b) -> int:\n    {doc}\n    return a + b\n", namespace)
    problems = _problems(namespace["add"])
    assert len(problems) == len(expected)
    for problem, want in zip(problems, expected, strict=True):
        assert want in problem


def test_public_classes_have_docstrings():
    undocumented = [
        name for name in dir(cdl) if inspect.isclass(getattr(cdl, name)) and not inspect.getdoc(getattr(cdl, name))
    ]
    assert not undocumented
