"""Turnpike curves: ‖θ(t)‖, ‖x(t) − x̄‖ and the running training error against t, for several T.

The curves are those of :func:`control_dl.diagnostics.turnpike` (the one definition), drawn as they
are: this module computes nothing of its own.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from .._errors import as_list, check_bool, check_choice, spec_error
from ..diagnostics.turnpike import TurnpikeReport, TurnpikeSweep
from ..diagnostics.turnpike import turnpike as turnpike_report
from ..problems.training import TrainingProblem
from ._common import new_axes

#: quantity -> (TurnpikeReport attribute, y label, title)
QUANTITIES = {
    "theta": ("theta_norm", r"$\|\theta(t)\|$", "size of the control θ(t)"),
    "state": ("state_gap", r"mean $\|x_i(t) - \bar{x}_i\|$", "distance of the states to x̄"),
    "error": ("error_t", r"mean loss $\ell(\lambda_2(x_i(t)), y_i)$", "training error read out at time t"),
}


def _check_quantity(quantity: str) -> str:
    check_choice("quantity", quantity, tuple(QUANTITIES))
    return QUANTITIES[quantity][0]


def turnpike_series(problem: Any, result: Any, quantity: str | None = None) -> tuple[np.ndarray, np.ndarray]:
    """One turnpike curve of a solve: the arrays of :func:`control_dl.diagnostics.turnpike`.

    ``theta``: ``report.theta_norm``; ``state``: ``report.state_gap`` (x̄ the tracking target when
    η > 0, else each sample's x_i(T)); ``error``: ``report.error_t``; all on ``report.t`` = t_k.
    Unlike the figures it draws nothing: it returns the arrays (draw them with :func:`turnpike`).

    Parameters
    ----------
    problem : TrainingProblem
        The problem.
    result : Result or array_like
        Its solve (or its w, shape ``(n_params,)``).
    quantity : {"theta", "state", "error"}
        Which curve (required).

    Returns
    -------
    tuple of ndarray
        ``(t, values)``, both of shape ``(N + 1,)``.

    Raises
    ------
    SpecError
        ``quantity`` is missing or not one of the three; ``problem`` is not a TrainingProblem flow, or
        ``result`` (its w) does not fit it or is not finite.
    """
    if quantity is None:
        raise spec_error(
            "quantity",
            None,
            f"turnpike_series(problem, result, quantity) needs the curve to return: one of {tuple(QUANTITIES)}",
        )
    attribute = _check_quantity(quantity)
    report = turnpike_report(problem, result)
    return report.t, getattr(report, attribute)


def turnpike(
    runs: Sequence[tuple[Any, Any]] | TurnpikeSweep,
    quantity: str = "theta",
    ax: Any = None,
    log: bool = True,
) -> Any:
    """Turnpike curves of several solves with different horizons T, one line per solve.

    The turnpike property (Esteve, Geshkovski, Pighin, Zuazua) predicts that for growing T the
    optimal θ(t) and x(t) stay near a steady optimum for most of [0, T], and the running training
    error decays exponentially in t. Each line is a :class:`~control_dl.diagnostics.TurnpikeReport`
    drawn point for point (``ax.lines[j].get_xydata()`` is ``(report.t, values)``).

    Parameters
    ----------
    runs : sequence of (TrainingProblem, Result), or TurnpikeSweep
        The solves (typically the same problem with growing ``horizon``), or the output of
        :func:`control_dl.diagnostics.turnpike_sweep` (its reports are drawn, with the fitted μ).
    quantity : {"theta", "state", "error"}
        Which curve (see :func:`turnpike_series`).
    ax : matplotlib Axes, optional
        Where to draw.
    log : bool
        Log-scale vertical axis (linear when every value is 0, e.g. θ ≡ 0, which a log axis cannot show).

    Returns
    -------
    matplotlib Axes
        The axes with a legend of the horizons.

    Raises
    ------
    SpecError
        There is nothing to draw, ``runs`` is a problem (``turnpike(problem, result)``:
        the message gives the argument order) or ``quantity`` is unknown.
    """
    if isinstance(runs, TrainingProblem):  # turnpike(problem, result): the argument order of turnpike_series
        raise spec_error(
            "runs",
            "TrainingProblem",
            "turnpike(runs, quantity='theta') takes the runs first: one solve is turnpike([(problem, result)]), "
            "several [(problem_1, result_1), …], or a TurnpikeSweep; turnpike_series(problem, result) gives one curve",
        )
    attribute = _check_quantity(quantity)
    check_bool("log", log)
    if isinstance(runs, TurnpikeSweep):
        reports: list[TurnpikeReport] = list(runs.reports)
        labels = [f"T = {T:g} (μ = {r.rate:.2f})" for T, r in zip(runs.horizons, reports, strict=True)]
        name = ""
    else:
        pairs = "must be a TurnpikeSweep or a list of (problem, result) pairs"
        if isinstance(runs, tuple) and len(runs) == 2 and not isinstance(runs[0], tuple):
            raise spec_error("runs", "(problem, result)", f"{pairs}: one run is [(problem, result)]")
        runs = as_list("runs", runs, "a TurnpikeSweep or a list of (problem, result) pairs")
        if not runs or any(not (isinstance(run, (tuple, list)) and len(run) == 2) for run in runs):
            raise spec_error("runs", runs if not runs else "…", pairs)
        reports = [turnpike_report(problem, result) for problem, result in runs]
        labels = [f"T = {problem.horizon:g}" for problem, _ in runs]
        name = f"{runs[0][0].data.name}: "
    _, ylabel, title = QUANTITIES[quantity]
    ax = new_axes(ax)
    import matplotlib.pyplot as plt

    cmap = plt.get_cmap("viridis")
    for j, (report, label) in enumerate(zip(reports, labels, strict=True)):
        color = cmap(0.85 * j / max(len(reports) - 1, 1))
        ax.plot(report.t, getattr(report, attribute), marker=".", ms=3, lw=1.2, color=color, label=label)
    if log and any(np.any(getattr(report, attribute) > 0) for report in reports):  # all zero: no log axis
        ax.set_yscale("log")
    ax.set_xlabel("time t (depth)")
    ax.set_ylabel(ylabel)
    ax.set_title(f"{name}{title}", fontsize=10)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    return ax
