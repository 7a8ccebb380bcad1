r"""``engine="auto"``: time one J + ∇J on each available engine at set-up and keep the faster.

The candidates are the CasADi engine and, when torch is importable, the torch engine. Each is
bound to the batch and evaluated at ``problem.initial_guess(0)``: one warm-up call, then the best of
:data:`REPEATS` timed calls of :meth:`~control_dl.engines.Engine.evaluate` (J and ∇J). The faster
engine is returned; the others are dropped.

A cheap pre-screen skips CasADi without timing it when the widest state has at least
:data:`CASADI_MAX_WIDTH` entries: its per-sample scalar code then loses to torch's GEMMs by an order
of magnitude and its JIT compilation alone takes tens of seconds (benchmarks/engines.py, width sweep
at S = 1000: CasADi faster at d = 3, torch from d = 8 on, CasADi 10× slower at d = 32 after 25 s
of compilation, 24× at d = 64 after 137 s). The choice, the timings, what was skipped and why are
stored in the chosen engine's ``info["auto"]``; solvers copy ``info`` into ``Result.engine``.

The choice is a timing: where the engines are close it may differ between machines or loads, and a
long optimisation amplifies their rounding differences. Pin ``engine="casadi"`` or ``"torch"`` for
bit-for-bit repeatable runs (docs/guide/engines.md, "Reproducibility").
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .._errors import SpecError
from ._base import Engine, EngineSpec
from ._casadi import Casadi
from ._torch import Torch, import_torch

#: State width from which the CasADi engine is not even timed (see the module docstring).
CASADI_MAX_WIDTH = 32
#: Timed J + ∇J calls per candidate (after one warm-up call); the best counts.
REPEATS = 2


def time_evaluation(engine: Engine, w: np.ndarray) -> float:
    """Seconds of one J + ∇J on ``engine`` at w: one warm-up call, then the best of :data:`REPEATS`.

    Parameters
    ----------
    engine : Engine
        A bound engine.
    w : ndarray
        Decision vector.

    Returns
    -------
    float
        Wall-clock seconds.
    """
    engine.evaluate(w)
    best = np.inf
    for _ in range(REPEATS):
        start = time.perf_counter()
        engine.evaluate(w)
        best = min(best, time.perf_counter() - start)
    return float(best)


@dataclass(frozen=True)
class Auto(EngineSpec):
    """Pick the faster of the CasADi and torch engines for this problem and batch, by timing.

    Parameters
    ----------
    casadi : Casadi
        Options of the CasADi candidate.
    torch : Torch
        Options of the torch candidate (used only where torch is installed).
    """

    casadi: Casadi = field(default_factory=Casadi)
    torch: Torch = field(default_factory=Torch)

    name = "auto"

    def bind(
        self, problem: Any, x: np.ndarray, y: np.ndarray, normaliser: float | None = None, regulariser: bool = True
    ) -> Engine:
        """The faster engine bound to (x, y), its ``info["auto"]`` saying why.

        Parameters
        ----------
        problem : TrainingProblem
            What to evaluate.
        x, y : ndarray
            Inputs ``n_in × S`` and encoded targets ``n_out × S``.
        normaliser : float, optional
            n in J's (1/n) Σ_i (default S).
        regulariser : bool
            Include R(θ).

        Returns
        -------
        Engine
            The chosen engine; ``info["auto"] = {"timings_s", "setup_s", "skipped", "reason"}``
            (``timings_s`` is empty when only one engine was a candidate: nothing is timed then).
        """
        skipped: dict[str, str] = {}
        candidates: list[EngineSpec] = []
        try:
            import_torch()
            candidates.append(self.torch)
        except SpecError:
            skipped["torch"] = "torch is not installed (the 'torch' extra)"
        width = max(problem.state_dims)
        if candidates and width >= CASADI_MAX_WIDTH:
            skipped["casadi"] = (
                f"pre-screen: state width {width} >= {CASADI_MAX_WIDTH}, where per-sample scalar code loses to "
                "batched GEMMs and JIT compilation takes seconds"
            )
        else:
            candidates.insert(0, self.casadi)
        w = problem.initial_guess(0)
        timings, setup, bound = {}, {}, {}
        for spec in candidates:
            start = time.perf_counter()
            bound[spec.name] = spec.bind(problem, x, y, normaliser, regulariser)
            setup[spec.name] = time.perf_counter() - start
            if len(candidates) > 1:  # a lone candidate is not timed: there is nothing to compare
                timings[spec.name] = time_evaluation(bound[spec.name], w)
        if len(candidates) == 1:
            chosen = candidates[0].name
            reason = f"only {chosen} was a candidate ({'; '.join(f'{k}: {v}' for k, v in skipped.items())})"
        else:
            chosen = min(timings, key=timings.__getitem__)
            other = max(timings, key=timings.__getitem__)
            reason = (
                f"{chosen} J+grad {timings[chosen] * 1e3:.3g} ms vs {other} {timings[other] * 1e3:.3g} ms "
                f"({timings[other] / max(timings[chosen], 1e-300):.2g}x)"
            )
        engine = bound[chosen]
        engine.info["auto"] = {"timings_s": timings, "setup_s": setup, "skipped": skipped, "reason": reason}
        return engine
