"""Solver presets: ``solvers/*.toml`` ↔ solver objects.

A preset names the solver kind and its options at top level, with nested tables (such as
``[ipopt_options]``) passed through whole::

    description = "IPOPT with limited-memory BFGS"
    solver = "direct"
    hessian = "lbfgs"
    max_iter = 1000

Overrides address an option by name: ``load_solver("ipopt-lbfgs", max_iter=200)``; an unknown
option is a :class:`~control_dl.SpecError` listing the valid ones. A dict given for a nested table
updates the preset's table key by key (``ipopt_options={"mu_strategy": "adaptive"}`` keeps the
preset's ``limited_memory_initialization``); an options object (``cdl.IpoptOptions(...)``) replaces it.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from .._catalog import list_names, resolve
from .._errors import SpecError, spec_error
from .._toml import read_toml
from .direct import Direct
from .msa import MSA
from .torch_trainer import TorchTrainer

#: solver kind -> class
SOLVER_KINDS: dict[str, type] = {"direct": Direct, "msa": MSA, "torch": TorchTrainer}

#: an option of some solver kinds -> what the others call the same budget (named in the error)
COUNTERPARTS = {"max_iter": "epochs", "epochs": "max_iter"}


def solver_from_options(kind: str, options: dict[str, Any]) -> Any:
    """Build a solver of ``kind`` from an options dict.

    Parameters
    ----------
    kind : str
        Key of :data:`SOLVER_KINDS`.
    options : dict
        Option name → value.

    Returns
    -------
    Solver
        The solver object.

    Raises
    ------
    SpecError
        Unknown kind or option, or an invalid value.
    """
    if not isinstance(kind, str) or kind not in SOLVER_KINDS:  # a TOML list or table is no kind either
        raise spec_error("solver", kind, f"must be one of {sorted(SOLVER_KINDS)}")
    cls = SOLVER_KINDS[kind]
    valid = [f.name for f in dataclasses.fields(cls)]
    for key, value in options.items():
        if key == "engine" and kind == "torch":
            raise spec_error(
                key,
                value,
                "the torch trainers (adam, sgd, torch-lbfgs) run on torch tensors themselves (on the cpu, option "
                "'threads'); engines apply to the direct single-shooting solvers and MSA/E-MSA",
            )
        if key not in valid:
            other = COUNTERPARTS.get(key)
            hint = f" (they take {other}= instead)" if other in valid else ""
            raise spec_error(key, value, f"unknown option of {kind!r} solvers{hint}; valid: {valid}")
    return cls(**options)


def load_solver(name_or_path: str | Path, **overrides: Any) -> Any:
    """Load a solver preset (``solvers/*.toml``) or a TOML file, with overrides by option name.

    Parameters
    ----------
    name_or_path : str or Path
        Preset name (see :func:`list_solvers`) or TOML path.
    **overrides
        Options to replace, e.g. ``max_iter=200``; a dict for a nested table (``ipopt_options``)
        updates the preset's table key by key.

    Returns
    -------
    Solver
        The configured solver.

    Raises
    ------
    SpecError
        Unknown preset or option, or an invalid value.
    """
    doc = read_toml(resolve("solvers", name_or_path))
    doc.pop("description", None)
    kind = doc.pop("solver", None)
    if kind is None:
        raise SpecError(f"{name_or_path}: the preset has no 'solver' key")
    merged = {**doc, **overrides}
    for key, value in overrides.items():  # a table overrides the preset's table key by key
        if isinstance(value, dict) and isinstance(doc.get(key), dict):
            merged[key] = {**doc[key], **value}
    return solver_from_options(kind, merged)


def list_solvers() -> list[str]:
    """Names of the solver presets.

    Returns
    -------
    list of str
        Sorted names usable with :func:`load_solver`.
    """
    return list_names("solvers")
