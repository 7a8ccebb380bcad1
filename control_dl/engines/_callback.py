r"""Any engine's J as a CasADi Function with a reverse derivative, for CasADi's NLP solvers.

IPOPT with a quasi-Newton Hessian needs f(w) and ∇f(w) only. :func:`engine_objective` wraps
:meth:`Engine.evaluate` in a ``casadi.Callback`` ``w -> J`` whose Jacobian (the row ∇Jᵀ) is a
second Callback, so ``nlpsol`` runs single shooting on every engine (torch included) with the
objective and gradient computed where the engine computes them. Each evaluation computes J and ∇J
together and remembers the last few points: IPOPT asks for ∇f at points whose f it has just
evaluated, so those gradients cost nothing.
"""

from __future__ import annotations

from typing import Any

import casadi as ca
import numpy as np

from ._base import Engine

#: Points whose (J, ∇J) are remembered.
CACHE_SIZE = 4


class _Cache:
    """(J, ∇J) of the last :data:`CACHE_SIZE` points evaluated on an engine."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.points: dict[bytes, tuple[float, np.ndarray]] = {}
        self.errors: list[RuntimeError] = []

    def __call__(self, w: np.ndarray) -> tuple[float, np.ndarray]:
        key = w.tobytes()
        if key not in self.points:
            if len(self.points) >= CACHE_SIZE:
                self.points.pop(next(iter(self.points)))
            try:
                ev = self.engine.evaluate(w)
            except RuntimeError as exc:  # a Dask shard silent past its timeout: kept for the solver to stop on
                self.errors.append(exc)
                raise
            self.points[key] = (ev.objective, ev.gradient)
        return self.points[key]


class _Gradient(ca.Callback):
    """``(w, J) -> ∇J(w)ᵀ`` (1 × n): the Jacobian of :class:`_Objective`."""

    def __init__(self, name: str, cache: _Cache, n: int, opts: dict) -> None:
        ca.Callback.__init__(self)
        self.cache, self.n = cache, n
        self.construct(name, opts)

    def get_n_in(self) -> int:
        return 2

    def get_n_out(self) -> int:
        return 1

    def get_sparsity_in(self, i: int) -> ca.Sparsity:
        return ca.Sparsity.dense(self.n, 1) if i == 0 else ca.Sparsity.dense(1, 1)

    def get_sparsity_out(self, i: int) -> ca.Sparsity:
        return ca.Sparsity.dense(1, self.n)

    def eval(self, arg: list[ca.DM]) -> list[ca.DM]:
        _, grad = self.cache(np.asarray(arg[0], dtype=np.float64).ravel())
        return [ca.DM(grad).T]


class _Objective(ca.Callback):
    """``w -> J(w)`` on an engine, with :class:`_Gradient` as its Jacobian."""

    def __init__(self, engine: Engine) -> None:
        ca.Callback.__init__(self)
        self.cache = _Cache(engine)
        self.n = engine.problem.n_params
        self._jacobian: _Gradient | None = None  # CasADi keeps a raw pointer: hold the object
        self.construct("engine_objective", {"enable_fd": False})

    def get_n_in(self) -> int:
        return 1

    def get_n_out(self) -> int:
        return 1

    def get_sparsity_in(self, i: int) -> ca.Sparsity:
        return ca.Sparsity.dense(self.n, 1)

    def get_sparsity_out(self, i: int) -> ca.Sparsity:
        return ca.Sparsity.dense(1, 1)

    def eval(self, arg: list[ca.DM]) -> list[ca.DM]:
        j, _ = self.cache(np.asarray(arg[0], dtype=np.float64).ravel())
        return [ca.DM(j)]

    @property
    def errors(self) -> list[RuntimeError]:
        """The engine's errors during the solve (IPOPT takes a failed f as a step to shorten, and goes on)."""
        return self.cache.errors

    def has_jacobian(self) -> bool:
        return True

    def get_jacobian(self, name: str, inames: list[str], onames: list[str], opts: dict) -> ca.Function:
        self._jacobian = _Gradient(name, self.cache, self.n, opts)
        return self._jacobian


def engine_objective(engine: Engine) -> Any:
    """J of a bound engine as a CasADi Function ``w -> J`` with its exact first derivative.

    Parameters
    ----------
    engine : Engine
        The engine (any kind) bound to the NLP's batch.

    Returns
    -------
    casadi.Callback
        Call it on an MX (``f = engine_objective(engine)(w)``) to build an NLP; keep the returned
        object alive as long as the NLP solver (CasADi does not own Python callbacks).
    """
    return _Objective(engine)
