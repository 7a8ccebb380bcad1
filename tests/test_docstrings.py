"""Every public function documents its parameters and return value (numpy style)."""

from __future__ import annotations

import inspect

import control_dl as cdl


def _public_callables():
    seen = set()
    modules = [cdl, cdl.plotting, cdl.datasets, cdl.backends, cdl.diagnostics, cdl.experiments]
    for module in modules:
        for name in getattr(module, "__all__", None) or [n for n in dir(module) if not n.startswith("_")]:
            obj = getattr(module, name)
            if id(obj) in seen:
                continue
            seen.add(id(obj))
            if inspect.isfunction(obj):
                yield f"{module.__name__}.{name}", obj
            elif inspect.isclass(obj) and obj.__module__.startswith("control_dl"):
                for meth_name, meth in vars(obj).items():
                    if inspect.isfunction(meth) and not meth_name.startswith("_"):
                        yield f"{obj.__name__}.{meth_name}", meth


def test_public_functions_have_numpy_sections():
    missing = []
    for name, func in _public_callables():
        doc = inspect.getdoc(func) or ""
        params = [p for p in inspect.signature(func).parameters if p not in ("self", "cls")]
        if not doc:
            missing.append(f"{name}: no docstring")
            continue
        short = len(doc.splitlines()) == 1  # one-line docs are allowed for protocol/trivial methods
        if params and "Parameters" not in doc and not short:
            missing.append(f"{name}: no Parameters section")
        if "Returns" not in doc and not short and "return" in inspect.getsource(func):
            missing.append(f"{name}: no Returns section")
    assert not missing, "\n".join(missing)


def test_public_classes_have_docstrings():
    undocumented = [
        name for name in dir(cdl) if inspect.isclass(getattr(cdl, name)) and not inspect.getdoc(getattr(cdl, name))
    ]
    assert not undocumented
