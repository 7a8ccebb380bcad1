"""Every name a public package exports is rendered in the API reference, not only ``control_dl.__all__``.

``test_docs`` checks the top-level names; this walks the subpackages (``cdl.diagnostics.turnpike``,
``cdl.engines.dask.DaskEngine``, ...). A function that shares its name with the module defining it
(``control_dl.diagnostics.turnpike``) is the case to watch: griffe sees the submodule under that
name, so ``::: control_dl.diagnostics`` renders the module's classes but not the function.
"""

from __future__ import annotations

import functools
import importlib
import inspect

import pytest
from test_docs import ROOT, canonical_path, directives

#: public packages and modules whose exports users import (DESIGN.md "Public API")
EXPORTING = [
    "control_dl.backends",
    "control_dl.diagnostics",
    "control_dl.engines",
    "control_dl.engines.dask",
    "control_dl.experiments",
    "control_dl.export",
    "control_dl.plotting",
    "control_dl.problems",
    "control_dl.problems.datasets",
    "control_dl.solvers",
]


def exported(module_name: str) -> dict[str, object]:
    """The names a module exports: its ``__all__``, else what its ``__init__`` binds (non-private)."""
    module = importlib.import_module(module_name)
    names = getattr(module, "__all__", None)
    if names is None:
        names = [n for n in vars(module) if not n.startswith("_")]
    return {
        name: getattr(module, name)
        for name in names
        if (inspect.isfunction(getattr(module, name)) or inspect.isclass(getattr(module, name)))
        and getattr(module, name).__module__.startswith("control_dl")
    }


@functools.cache
def rendered_paths() -> frozenset[str]:
    """Canonical paths (``module.qualname``) of every object the ``::: target`` directives render."""
    griffe = pytest.importorskip("griffe")
    pytest.importorskip("griffe_public_redundant_aliases")
    extensions = griffe.load_extensions("griffe_public_redundant_aliases")
    package = griffe.load("control_dl", search_paths=[str(ROOT)], extensions=extensions, resolve_aliases=True)
    rendered: set[str] = set()
    for target, options in directives():
        obj = package if target == "control_dl" else package[target.removeprefix("control_dl.")]
        rendered.add(obj.path)
        if not obj.is_module:
            continue
        explicit = options.get("members")
        for name, member in obj.members.items():
            shown = name in explicit if explicit not in (None, True) else member.is_public and not member.is_module
            if shown:
                rendered.add(member.final_target.path if member.is_alias else member.path)
    return frozenset(rendered)


@pytest.mark.parametrize("module_name", EXPORTING)
def test_every_exported_name_is_rendered(module_name):
    rendered = rendered_paths()
    names = exported(module_name)
    assert names, f"{module_name} exports nothing: the walk is broken"
    missing = sorted(f"{n} ({canonical_path(obj)})" for n, obj in names.items() if canonical_path(obj) not in rendered)
    assert not missing, f"{module_name}: not in docs/api/*.md: {missing}"


def test_the_walk_sees_the_names_shadowed_by_their_module():
    # the three functions named like their module are exported, and rendered through their own directive
    names = exported("control_dl.diagnostics")
    for name in ("turnpike", "invertibility", "training_dynamics"):
        assert canonical_path(names[name]) == f"control_dl.diagnostics.{name}.{name}"
    assert {"control_dl.diagnostics.turnpike.turnpike", "control_dl.engines.dask.DaskEngine"} <= rendered_paths()
