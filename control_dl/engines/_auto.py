r"""``engine="auto"``: time one J + ∇J on each available engine at set-up and keep the faster.

The candidates are the CasADi engine and, when torch is importable, the torch engine. Each is
bound to the batch and evaluated at ``problem.initial_guess(0)``: one warm-up call, then the best of
:data:`REPEATS` timed calls of :meth:`~control_dl.engines.Engine.evaluate` (J and ∇J). The faster
engine is returned; the others are dropped. A lone candidate is evaluated once, untimed.

A candidate that raises while it is bound or evaluated is dropped, and the other one is used: a
user-defined field that calls ``np.tanh`` works on CasADi (numpy dispatches to CasADi's ``tanh``) but
not on torch tensors that require grad. The error is kept in ``info["auto"]["failed"]`` and logged as
a warning. When the pre-screen below had skipped CasADi and torch fails, CasADi is tried after all
(slow, not wrong). When no candidate works, one SpecError names ``engine='auto'`` and each failure.
A SpecError from a candidate (one of its options is wrong, e.g. ``Torch(device="cuda")`` without a
GPU) is raised as it is: the option must act or be refused, not be dropped with its candidate.

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

import logging
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .._errors import SpecError, spec_error
from ._base import Engine, EngineSpec, check_batch
from ._casadi import Casadi
from ._torch import Torch, import_torch

#: State width from which the CasADi engine is not even timed (see the module docstring).
CASADI_MAX_WIDTH = 32
#: Timed J + ∇J calls per candidate (after one warm-up call); the best counts.
REPEATS = 2

logger = logging.getLogger(__name__)


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
            The chosen engine; ``info["auto"] = {"timings_s", "setup_s", "skipped", "failed", "reason"}``
            (``timings_s`` has fewer than two entries when only one engine was a candidate or worked:
            nothing is compared then; ``failed`` maps a dropped candidate to its error).

        Raises
        ------
        SpecError
            A bad batch or option (naming it, before any candidate is bound), or no candidate
            evaluates J + ∇J at the initial guess (naming ``engine='auto'`` and each failure).
        """
        check_batch(problem, x, y, normaliser, regulariser)  # bad input: one SpecError, not "every candidate failed"
        skipped: dict[str, str] = {}
        candidates: list[EngineSpec] = []
        try:
            import_torch()
            candidates.append(self.torch)
        except SpecError:
            skipped["torch"] = "torch is not installed (the 'torch' extra)"
        width = max(problem.state_dims)
        fallback = None
        if candidates and width >= CASADI_MAX_WIDTH:
            skipped["casadi"] = (
                f"pre-screen: state width {width} >= {CASADI_MAX_WIDTH}, where per-sample scalar code loses to "
                "batched GEMMs and JIT compilation takes seconds"
            )
            fallback = self.casadi
        else:
            candidates.insert(0, self.casadi)
        w = problem.initial_guess(0)
        batch = (x, y, normaliser, regulariser)
        timings: dict[str, float] = {}
        setup: dict[str, float] = {}
        failed: dict[str, str] = {}
        bound: dict[str, Engine] = {}
        for spec in candidates:
            engine, setup[spec.name], timing, error = try_candidate(spec, problem, batch, w, len(candidates) > 1)
            if engine is None:
                failed[spec.name] = error
            else:
                bound[spec.name] = engine
                if timing is not None:
                    timings[spec.name] = timing
        if not bound and fallback is not None:  # the pre-screened CasADi engine is slow, not wrong
            skipped.pop(fallback.name)
            engine, setup[fallback.name], _, error = try_candidate(fallback, problem, batch, w, False)
            if engine is None:
                failed[fallback.name] = error
            else:
                bound[fallback.name] = engine
        if not bound:
            raise spec_error(
                "engine",
                "auto",
                "no candidate engine evaluates J and its gradient at problem.initial_guess(0): "
                + "; ".join(f"{name}: {why}" for name, why in failed.items())
                + ". A field that calls numpy functions (np.tanh ...) works on every engine with the ops "
                "it is given (ops.tanh ...)",
            )
        if len(timings) == 2:
            chosen = min(timings, key=timings.__getitem__)
            other = max(timings, key=timings.__getitem__)
            reason = (
                f"{chosen} J+grad {timings[chosen] * 1e3:.3g} ms vs {other} {timings[other] * 1e3:.3g} ms "
                f"({timings[other] / max(timings[chosen], 1e-300):.2g}x)"
            )
        else:
            chosen = next(iter(bound))
            why = [f"{k}: {v}" for k, v in skipped.items()] + [f"{k} failed: {v}" for k, v in failed.items()]
            reason = f"only {chosen} {'works' if failed else 'was a candidate'} ({'; '.join(why)})"
        for name, why in failed.items():
            logger.warning(
                "engine='auto' dropped the %s engine, which failed at the initial guess (%s); using %s",
                name,
                why,
                chosen,
            )
        engine = bound[chosen]
        engine.info["auto"] = {
            "timings_s": timings,
            "setup_s": setup,
            "skipped": skipped,
            "failed": failed,
            "reason": reason,
        }
        return engine


def try_candidate(
    spec: EngineSpec, problem: Any, batch: tuple[Any, ...], w: np.ndarray, timed: bool
) -> tuple[Engine | None, float, float | None, str]:
    """Bind one candidate of ``auto`` and evaluate J + ∇J on it at w (timed when ``timed``).

    Parameters
    ----------
    spec : EngineSpec
        The candidate's options.
    problem : TrainingProblem
        What to evaluate.
    batch : tuple
        ``(x, y, normaliser, regulariser)`` for ``spec.bind``.
    w : ndarray
        Where to evaluate.
    timed : bool
        Time the evaluation (:func:`time_evaluation`); otherwise evaluate once (a lone candidate:
        nothing to compare, but a field that fails on this engine is found here, not in the solver).

    Returns
    -------
    tuple
        ``(engine, setup_s, seconds, error)``: the bound engine, or None when binding or evaluating
        raised (any exception but a SpecError: the other candidate may work), with ``error`` its
        type and first line; ``seconds`` is None when not timed.

    Raises
    ------
    SpecError
        From the candidate: one of its options is wrong (e.g. ``Torch(device="cuda")`` where no GPU
        is available), which no other candidate can make right.
    """
    engine = None
    start = time.perf_counter()
    try:
        engine = spec.bind(problem, *batch)
        setup = time.perf_counter() - start
        if not timed:
            engine.evaluate(w)
            return engine, setup, None, ""
        return engine, setup, time_evaluation(engine, w), ""
    except SpecError:  # a bad option of the candidate (Torch(device="cuda") without a GPU): the user's to fix
        if engine is not None:
            engine.close()
        raise
    except Exception as exc:  # noqa: BLE001 (one candidate's failure: the other may work, or all fail as one SpecError)
        lines = str(exc).strip().splitlines()
        if engine is not None:
            engine.close()
        return None, time.perf_counter() - start, None, f"{type(exc).__name__}: {lines[0] if lines else ''}"[:300]
