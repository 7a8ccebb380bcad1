"""Engines: how J, ∇J, Gauss-Newton products, states and costates are evaluated (see :mod:`._base`)."""

from __future__ import annotations

import dataclasses
import weakref
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

import numpy as np

from .._errors import spec_error
from ._auto import Auto as Auto
from ._base import Engine as Engine
from ._base import EngineSpec as EngineSpec
from ._base import Evaluation as Evaluation
from ._base import StageValues as StageValues
from ._base import Sweep as Sweep
from ._casadi import Casadi as Casadi
from ._casadi import CasadiEngine as CasadiEngine
from ._casadi_model import CasadiModel as CasadiModel
from ._casadi_model import casadi_model as casadi_model
from ._torch import Torch as Torch
from ._torch import TorchEngine as TorchEngine
from .dask import Dask as Dask

#: engine name -> spec class with default options (filled by the implementations)
ENGINES: dict[str, type[EngineSpec]] = {"auto": Auto, "casadi": Casadi, "torch": Torch, "dask": Dask}


def check_engine(spec: Any) -> None:
    """Raise a SpecError naming ``engine`` unless ``spec`` is a registered engine name or an EngineSpec.

    Parameters
    ----------
    spec : object
        The ``engine`` option of a solver, or :func:`make_engine`'s ``spec``.

    Raises
    ------
    SpecError
        A name not in :data:`ENGINES`, or neither a string nor an :class:`EngineSpec` (the value
        and its type are named).
    """
    if isinstance(spec, str):
        if spec not in ENGINES:
            raise spec_error("engine", spec, f"must be one of {sorted(ENGINES)} or an EngineSpec")
    elif not isinstance(spec, EngineSpec):
        raise spec_error("engine", spec, f"must be an engine name or an EngineSpec, not {type(spec).__name__}")


def make_engine(
    spec: str | EngineSpec,
    problem: Any,
    x: np.ndarray,
    y: np.ndarray,
    normaliser: float | None = None,
    regulariser: bool = True,
    casadi: Casadi | None = None,
) -> Engine:
    """Bind an engine to a problem and a batch.

    Parameters
    ----------
    spec : str or EngineSpec
        A registered name (``"auto"``, ``"casadi"``, ``"torch"``) or a spec object with options.
    problem : TrainingProblem
        What to evaluate.
    x, y : ndarray
        Inputs ``n_in × S`` and encoded targets ``n_out × S``.
    normaliser : float, optional
        n in J's (1/n) Σ_i (default S).
    regulariser : bool
        Include R(θ).
    casadi : Casadi, optional
        The CasADi options the names ``"casadi"`` and ``"auto"`` stand for (a solver's ``jit`` and
        ``parallelization``), also as the ``local`` engine of ``"dask"`` or a :class:`Dask` spec;
        default ``Casadi()``. Ignored for other spec objects.

    Returns
    -------
    Engine
        The bound engine.

    Raises
    ------
    SpecError
        ``spec`` names no registered engine; x is not a finite ``n_in × S`` array, y not a finite
        ``n_out × S`` array with the same S, ``normaliser`` not a finite number > 0 or
        ``regulariser`` not a bool (:func:`~control_dl.engines._base.check_batch`, run by every
        engine); ``"auto"`` found no candidate that evaluates J + ∇J.
    """
    check_engine(spec)
    if casadi is not None:
        spec = _with_casadi(spec, casadi)
    if isinstance(spec, str):
        spec = ENGINES[spec]()
    engine = spec.bind(problem, x, y, normaliser, regulariser)
    made = _MADE.get()
    if made is not None:
        made.add(engine)
    return engine


def _with_casadi(spec: str | EngineSpec, casadi: Casadi) -> str | EngineSpec:
    """``spec`` with the names ``"casadi"`` and ``"auto"`` (a Dask spec's ``local`` too) standing for ``casadi``."""
    if spec == "casadi":
        return casadi
    if spec == "auto":
        return Auto(casadi=casadi)
    if spec == "dask":
        spec = Dask()
    if isinstance(spec, Dask) and spec.local in ("casadi", "auto"):
        return dataclasses.replace(spec, local=_with_casadi(spec.local, casadi))
    return spec


#: The engines :func:`make_engine` made inside the innermost :func:`closing_engines` (weakly held:
#: an engine dropped before the end, e.g. one of mini-batch MSA's, is released as usual).
_MADE: ContextVar[weakref.WeakSet[Engine] | None] = ContextVar("control_dl_engines_made", default=None)


@contextmanager
def closing_engines() -> Iterator[None]:
    """Close, on leaving, every engine that :func:`make_engine` made inside and that is still alive.

    :func:`~control_dl.solve` runs each solver inside one, so the workers, connections and local
    cluster of a Dask engine are released when the solve ends, also when it fails (a failed
    solve's traceback used to keep its engine, and a cluster it had started, alive until the
    garbage collector or the interpreter's exit found it).

    Yields
    ------
    None
    """
    token = _MADE.set(weakref.WeakSet())
    try:
        yield
    finally:
        made = _MADE.get()
        _MADE.reset(token)
        for engine in list(made or ()):
            engine.close()


__all__ = [
    "ENGINES",
    "Auto",
    "Casadi",
    "CasadiEngine",
    "CasadiModel",
    "Dask",
    "Engine",
    "EngineSpec",
    "Evaluation",
    "StageValues",
    "Sweep",
    "Torch",
    "TorchEngine",
    "casadi_model",
    "check_engine",
    "closing_engines",
    "make_engine",
]
