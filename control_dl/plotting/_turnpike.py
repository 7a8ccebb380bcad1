"""Turnpike curves: ‖θ(t)‖, ‖x(t) − x̄‖ and the running training error against t, for several T."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from ..backends import numpy_ops
from ..problems.costs import loss_per_sample
from ._common import new_axes

#: quantity -> (y label, title)
QUANTITIES = {
    "theta": (r"$\|\theta(t)\|$", "size of the control θ(t)"),
    "state": (r"RMS $\|x_i(t) - \bar{x}\|$", "distance of the states to x̄"),
    "error": (r"mean loss $\ell(\lambda_2(x_i(t)), y_i)$", "training error read out at time t"),
}


def turnpike_series(problem: Any, result: Any, quantity: str, target: float | None = None) -> tuple[Any, Any]:
    """One turnpike curve of a solve, computed from the problem's own forward pass and readout.

    ``theta``: ‖θ(t)‖₂ at the step midpoints t_k + h/2. ``state``: (1/S Σ_i ‖x_i(t_k) − x̄‖²)^½
    at the grid times, x̄ = ``target`` (default the cost's tracking target). ``error``:
    (1/S) Σ_i ℓ(P x_i(t_k) + c, y_i), the loss if the network stopped at t_k.

    Parameters
    ----------
    problem : TrainingProblem
        The problem.
    result : Result
        Its solve.
    quantity : {"theta", "state", "error"}
        Which curve.
    target : float, optional
        x̄ for ``state`` (a constant in every coordinate).

    Returns
    -------
    tuple of ndarray
        ``(t, values)``.
    """
    if quantity not in QUANTITIES:
        raise ValueError(f"quantity={quantity!r} must be one of {list(QUANTITIES)}")
    if quantity == "theta":
        t = problem.times[:-1] + 0.5 * problem.step_size
        return t, np.linalg.norm(problem.theta(result.w, t), axis=1)
    states = problem.forward(result.w)
    if quantity == "state":
        xbar = problem.cost.tracking_target if target is None else float(target)
        return problem.times, np.sqrt(np.mean(np.sum((states - xbar) ** 2, axis=1), axis=1))
    readout = problem.layout.readout(result.w, numpy_ops)
    errors = [
        float(
            np.mean(
                loss_per_sample(problem.cost.loss, problem.readout(x, readout, numpy_ops), problem.targets, numpy_ops)
            )
        )
        for x in states
    ]
    return problem.times, np.array(errors)


def turnpike(
    pairs: Sequence[tuple[Any, Any]],
    quantity: str = "theta",
    ax: Any = None,
    target: float | None = None,
    log: bool = True,
) -> Any:
    """Turnpike curves of several solves with different horizons T, one line per solve.

    The turnpike property (Esteve, Geshkovski, Pighin, Zuazua) predicts that for growing T the
    optimal θ(t) and x(t) stay near a steady optimum for most of [0, T], and the running training
    error decays exponentially in t.

    Parameters
    ----------
    pairs : sequence of (TrainingProblem, Result)
        The solves (typically the same problem with growing ``horizon``).
    quantity : {"theta", "state", "error"}
        Which curve (see :func:`turnpike_series`).
    ax : matplotlib Axes, optional
        Where to draw.
    target : float, optional
        x̄ for ``quantity="state"``.
    log : bool
        Log-scale vertical axis.

    Returns
    -------
    matplotlib Axes
        The axes with a legend of the horizons.
    """
    if not pairs:
        raise ValueError("turnpike needs at least one (problem, result) pair")
    ylabel, title = QUANTITIES.get(quantity, (None, None))
    if ylabel is None:
        raise ValueError(f"quantity={quantity!r} must be one of {list(QUANTITIES)}")
    ax = new_axes(ax)
    import matplotlib.pyplot as plt

    cmap = plt.get_cmap("viridis")
    for j, (problem, result) in enumerate(pairs):
        t, values = turnpike_series(problem, result, quantity, target)
        color = cmap(0.85 * j / max(len(pairs) - 1, 1))
        ax.plot(t, values, marker=".", ms=3, lw=1.2, color=color, label=f"T = {problem.horizon:g}")
    if log:
        ax.set_yscale("log")
    ax.set_xlabel("time t (depth)")
    ax.set_ylabel(ylabel)
    ax.set_title(f"{pairs[0][0].data.name}: {title}", fontsize=10)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    return ax
