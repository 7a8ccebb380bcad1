r"""The turnpike property of trained networks (Esteve, Geshkovski, Pighin, Zuazua).

For a long horizon T, an optimal control spends most of [0, T] near a steady state: ‖θ(t)‖ and
the gap ‖x_i(t) − x̄‖ decay like e^{−μ t} after a short transient (plus, possibly, a boundary
layer near T). Here x̄ is the cost's tracking target when η > 0, otherwise the final state
x_i(T) of the same sample. :func:`turnpike` measures one solve; :func:`turnpike_sweep` solves for
several horizons and compares the profiles, which collapse onto one curve of t when the property
holds.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from .._errors import as_list, check_bool, check_positive_int, is_number, spec_error
from ..backends import numpy_ops
from ..problems.costs import loss_per_sample
from ..problems.training import TrainingProblem
from ..solvers.base import Solver, solve
from ._common import require_flow, weights_of, with_overrides


@dataclass(frozen=True)
class TurnpikeReport:
    """Turnpike profile of one solve, on the integrator grid t_k = k h, k = 0..N.

    This is the package's one definition of the turnpike curves; :func:`control_dl.plotting.turnpike`
    draws exactly these arrays.

    Attributes
    ----------
    t : ndarray
        Times t_k, shape ``(N + 1,)``.
    theta_norm : ndarray
        ‖θ(t_k)‖ (Euclidean norm of all field parameters), θ(t_k) the control of the step
        [t_k, t_{k+1}) (:func:`~control_dl.problems.step_index`; a ResNet's layer k) and θ(T) that of
        the last step.
    state_gap : ndarray
        (1/S) Σ_i ‖x_i(t_k) − x̄_i‖ (mean Euclidean distance, not RMS).
    error_t : ndarray
        Running training error (1/S) Σ_i ℓ(λ2(x_i(t_k)), y_i): the loss if the network stopped at t_k.
    rate : float
        μ of the least-squares fit log ‖θ(t_k)‖ ≈ log C − μ t_k over the steps from the peak of ‖θ‖
        to the last step, t_k ∈ [t_peak, T) (μ > 0: decay).
    fit_r2 : float
        Coefficient of determination of that fit (1: exactly exponential).
    state_rate : float
        μ of the same fit to the state gap over [0, T).
    target : str
        ``"tracking"`` (x̄ from the cost) or ``"final"`` (x̄ = x_i(T)).
    """

    t: np.ndarray
    theta_norm: np.ndarray
    state_gap: np.ndarray
    error_t: np.ndarray
    rate: float
    fit_r2: float
    state_rate: float
    target: str

    @property
    def half_ratio(self) -> float:
        """Mean ‖θ‖ over the second half of [0, T] divided by its mean over the first half."""
        first = self.theta_norm[self.t < 0.5 * self.t[-1]]
        second = self.theta_norm[self.t >= 0.5 * self.t[-1]]
        return float(np.mean(second) / max(np.mean(first), np.finfo(float).tiny))


def exponential_fit(t: np.ndarray, values: np.ndarray) -> tuple[float, float]:
    """Fit values ≈ C e^{−μ t} by least squares on log values.

    log values = log C − μ t fitted by ``numpy.polyfit`` (degree 1); R² = 1 − SS_res / SS_tot of
    that log-linear fit. μ is the turnpike decay rate (Esteve-Yagüe, Geshkovski, Pighin & Zuazua,
    arXiv:2008.02491, 2020).

    Parameters
    ----------
    t : ndarray
        Times, shape ``(M,)``.
    values : ndarray
        Positive samples at ``t``, shape ``(M,)`` (entries ≤ 1e-300 are dropped).

    Returns
    -------
    tuple of float
        (μ, R² of the log-linear fit); (nan, nan) with fewer than 3 usable points.
    """
    keep = values > 1e-300
    if keep.sum() < 3:
        return float("nan"), float("nan")
    tt, logv = t[keep], np.log(values[keep])
    slope, intercept = np.polyfit(tt, logv, 1)
    residual = logv - (slope * tt + intercept)
    spread = np.sum((logv - logv.mean()) ** 2)
    r2 = 1.0 - np.sum(residual**2) / spread if spread > 0 else 1.0
    return float(-slope), float(r2)


def turnpike(problem: TrainingProblem, result: Any) -> TurnpikeReport:
    """Measure ‖θ(t)‖, ‖x(t) − x̄‖ and the running error of a solve, and fit the decay rate μ.

    The turnpike property (Esteve-Yagüe, Geshkovski, Pighin & Zuazua, arXiv:2008.02491, 2020;
    Geshkovski & Zuazua, Acta Numerica 31, 2022): for a long horizon T the optimal θ(t) and x(t)
    stay exponentially close, ~ e^{−μ t}, to a steady state away from the ends of [0, T]. The
    profiles and fits returned are defined in :class:`TurnpikeReport`; μ comes from
    :func:`exponential_fit` (least squares on log values).

    Parameters
    ----------
    problem : TrainingProblem
        The problem that was solved.
    result : Result or array_like
        The solve (or its w, shape ``(n_params,)``).

    Returns
    -------
    TurnpikeReport
        Profiles on t_k and the fitted rates.

    Raises
    ------
    SpecError
        ``problem`` is not a TrainingProblem or not a flow (a feed-forward layer stack has states
        of different widths and no θ(t)), or ``result`` (its w) does not fit it or is not finite.
    """
    require_flow(problem, "turnpike")
    w = weights_of(problem, result)
    t = problem.times
    theta_norm = np.linalg.norm(problem.theta(w, t), axis=1)
    states = problem.forward(w)
    tracking = problem.cost.tracking > 0
    target = problem.cost.tracking_target if tracking else states[-1]
    state_gap = np.linalg.norm(states - target, axis=1).mean(axis=1)
    readout = problem.layout.readout(w, numpy_ops)
    error_t = np.array(
        [
            float(
                np.mean(
                    loss_per_sample(
                        problem.cost.loss, problem.readout(x, readout, numpy_ops), problem.targets, numpy_ops
                    )
                )
            )
            for x in states
        ]
    )
    peak = int(np.argmax(theta_norm[:-1]))
    rate, r2 = exponential_fit(t[peak:-1], theta_norm[peak:-1])
    state_rate, _ = exponential_fit(t[:-1], state_gap[:-1])
    return TurnpikeReport(t, theta_norm, state_gap, error_t, rate, r2, state_rate, "tracking" if tracking else "final")


@dataclass(frozen=True)
class TurnpikeSweep:
    """Turnpike profiles of the same problem solved for several horizons T.

    Attributes
    ----------
    horizons : tuple of float
        The horizons, increasing.
    reports : tuple of TurnpikeReport
        One per horizon.
    statuses : tuple of str
        Solver status per horizon.
    losses : tuple of float
        Final training loss per horizon.
    collapse : ndarray
        For consecutive horizons T_i < T_{i+1}: the relative L2 distance of their ‖θ(t)‖ profiles on
        [0, T_i / 2]. Small values mean the curves collapse onto one profile of t (the turnpike).
    """

    horizons: tuple[float, ...]
    reports: tuple[TurnpikeReport, ...]
    statuses: tuple[str, ...]
    losses: tuple[float, ...]
    collapse: np.ndarray

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serialisable summary (profiles included).

        Returns
        -------
        dict
            Horizons, statuses, losses, rates, half ratios, collapse distances with the (T_i, T_{i+1})
            pair each compares (``collapse_pairs``) and the profiles.
        """
        return {
            "horizons": list(self.horizons),
            "status": list(self.statuses),
            "loss": list(self.losses),
            "rate": [r.rate for r in self.reports],
            "fit_r2": [r.fit_r2 for r in self.reports],
            "half_ratio": [r.half_ratio for r in self.reports],
            "collapse": self.collapse.tolist(),
            "collapse_pairs": [[a, b] for a, b in zip(self.horizons[:-1], self.horizons[1:], strict=True)],
            "profiles": [
                {"t": r.t.tolist(), "theta_norm": r.theta_norm.tolist(), "state_gap": r.state_gap.tolist()}
                for r in self.reports
            ],
        }

    def table(self) -> str:
        """A plain-text table: T, status, loss, μ, R², second/first-half ratio, collapse distance.

        Returns
        -------
        str
            One row per horizon; the collapse column compares a horizon with the next longer one.
        """
        rows = [f"{'T':>8} {'status':>10} {'loss':>10} {'mu':>8} {'R2':>6} {'half_ratio':>10} {'collapse':>9}"]
        collapse = [f"{c:9.3f}" for c in self.collapse] + [f"{'-':>9}"]
        for horizon, report, status, loss, col in zip(
            self.horizons, self.reports, self.statuses, self.losses, collapse, strict=True
        ):
            rows.append(
                f"{horizon:8.3g} {status:>10} {loss:10.3e} {report.rate:8.3f} {report.fit_r2:6.2f} "
                f"{report.half_ratio:10.3f} {col}"
            )
        return "\n".join(rows)


def _profile_distance(short: TurnpikeReport, long: TurnpikeReport) -> float:
    """Relative L2 distance of two ‖θ(t)‖ profiles on [0, T_short / 2]."""
    t = np.linspace(0.0, 0.5 * short.t[-1], 200)
    a = np.interp(t, short.t, short.theta_norm)
    b = np.interp(t, long.t, long.theta_norm)
    return float(np.linalg.norm(a - b) / max(np.linalg.norm(a), np.finfo(float).tiny))


def turnpike_sweep(
    problem: TrainingProblem,
    solver: Any,
    horizons: Any,
    seed: int = 0,
    progress: bool = False,
    keep_step: bool = True,
) -> TurnpikeSweep:
    """Solve ``problem`` for each horizon T and compare the profiles.

    Parameters
    ----------
    problem : TrainingProblem
        The problem; its horizon (and step count) change, everything else stays (rebuilt from its
        spec when it has one).
    solver : Solver
        How to solve each.
    horizons : sequence of float
        Horizons T > 0.
    seed : int
        Seed of every initial guess.
    progress : bool
        Show the solvers' progress bars.
    keep_step : bool
        Keep the step size h of ``problem`` (N_T = max(1, round(T / h))), so profiles compare the
        same dynamics; False keeps N and lets h = T / N grow with T.

    Returns
    -------
    TurnpikeSweep
        Reports per horizon and the collapse distances.

    Raises
    ------
    SpecError
        The model is not a flow, ``solver`` is not a control_dl solver, ``horizons`` is not a
        non-empty list of finite T > 0, or ``seed`` / ``progress`` / ``keep_step`` are of the wrong type.
    """
    require_flow(problem, "turnpike_sweep")  # the horizon T of a layer stack is fixed by its widths
    check_positive_int("seed", seed, minimum=0)
    check_bool("progress", progress)
    check_bool("keep_step", keep_step)
    if not isinstance(solver, Solver):
        raise spec_error("solver", type(solver).__name__, "must be a control_dl solver, e.g. load_solver('lbfgsb')")
    example = "e.g. [1.0, 2.0, 4.0]"
    values = as_list("horizons", horizons, f"a list of horizons T > 0, {example}")
    if not values:
        raise spec_error("horizons", values, f"must hold at least one horizon T > 0, {example}")
    for horizon in values:  # all checked before the first solve
        if not is_number(horizon) or not 0 < horizon < float("inf"):
            raise spec_error("horizons", horizon, "every horizon must be a finite number T > 0")
    values = sorted(float(h) for h in values)  # any order given; compared in increasing T
    repeated = next((a for a, b in zip(values[:-1], values[1:], strict=True) if a == b), None)
    if repeated is not None:  # the same solve twice, and a collapse distance of 0 that says nothing
        raise spec_error("horizons", repeated, "is given twice; every horizon once")
    reports, statuses, losses = [], [], []
    for horizon in values:
        n_steps = max(1, round(horizon / problem.step_size)) if keep_step else problem.n_steps
        variant = with_overrides(problem, horizon=horizon, n_steps=n_steps)
        result = solve(variant, solver, seed=seed, progress=progress)
        reports.append(turnpike(variant, result))
        statuses.append(result.status)
        losses.append(float(result.loss))
    collapse = np.array([_profile_distance(a, b) for a, b in zip(reports[:-1], reports[1:], strict=True)])
    return TurnpikeSweep(tuple(values), tuple(reports), tuple(statuses), tuple(losses), collapse)
