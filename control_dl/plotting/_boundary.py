"""Decision boundary of a trained classifier on 2-D inputs."""

from __future__ import annotations

from typing import Any

import numpy as np

from .._errors import check_positive_int, spec_error
from ..diagnostics._common import weights_of
from ..problems.costs import decision_threshold, predict_labels
from ._common import class_colors, new_axes


def decision_boundary(problem: Any, result: Any, ax: Any = None, resolution: int = 150) -> Any:
    """Predicted class over the input plane, with the training points on top.

    Parameters
    ----------
    problem : TrainingProblem
        A classification problem with 2-D inputs.
    result : Result
        A solve of that problem.
    ax : matplotlib Axes, optional
        Where to draw.
    resolution : int
        Grid points per axis.

    Returns
    -------
    matplotlib Axes
        The axes, with a colour bar of the readout.

    Raises
    ------
    SpecError
        ``problem`` is not a TrainingProblem, or ``result`` (its w) does not fit it or is not finite;
        the problem is not a classification with 2-D inputs, ``resolution`` < 2, or ``ax`` not an Axes.
    """
    w = weights_of(problem, result)
    if problem.data.n_in != 2 or problem.data.task == "regression":
        why = f"decision_boundary needs a classification problem with n_in=2 inputs, not a {problem.data.task} one with n_in={problem.data.n_in}"
        raise spec_error("problem", problem.data.name, why)
    check_positive_int("resolution", resolution, minimum=2)
    ax = new_axes(ax)
    x = problem.data.x_train
    pad = 0.15 * (x.max() - x.min())
    g0 = np.linspace(x[0].min() - pad, x[0].max() + pad, resolution)
    g1 = np.linspace(x[1].min() - pad, x[1].max() + pad, resolution)
    xx, yy = np.meshgrid(g0, g1)
    grid = np.vstack([xx.ravel(), yy.ravel()])
    yhat = problem.predict(w, grid)
    if yhat.shape[0] == 1:
        score = yhat[0]
        label = "readout λ2(x(T))" + (" (logit)" if decision_threshold(problem.cost.loss) == 0.0 else "")
    else:
        score = predict_labels(problem.data.task, problem.cost.loss, yhat).astype(float)
        label = "predicted class"
    mesh = ax.contourf(xx, yy, score.reshape(xx.shape), levels=30, cmap="RdBu_r", alpha=0.75)
    ax.figure.colorbar(mesh, ax=ax, label=label)
    if yhat.shape[0] == 1:
        threshold = decision_threshold(problem.cost.loss)
        ax.contour(xx, yy, score.reshape(xx.shape), levels=[threshold], colors="k", linewidths=1.5)
    ax.scatter(x[0], x[1], c=class_colors(problem.data.y_train), s=10, edgecolors="white", linewidths=0.3)
    ax.set_xlabel("$x_1$")
    ax.set_ylabel("$x_2$")
    accuracy = getattr(result, "accuracy", None)
    acc = "" if accuracy is None else f" (train acc {accuracy:.3f})"
    ax.set_title(f"{problem.data.name}, d = {problem.dim}: decision boundary{acc}", fontsize=10)
    ax.set_aspect("equal")
    return ax
