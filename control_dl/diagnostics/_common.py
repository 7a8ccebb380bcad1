"""Helpers shared by the diagnostics: the decision vector of a result, problem variants."""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np

from ..problems.spec import problem_from_spec
from ..problems.training import TrainingProblem


def weights_of(problem: TrainingProblem, result: Any) -> np.ndarray:
    """The decision vector w of ``result`` (a :class:`~control_dl.Result` or a plain vector).

    Parameters
    ----------
    problem : TrainingProblem
        The problem w belongs to (its length is checked).
    result : Result or array_like
        A solve, or w itself.

    Returns
    -------
    ndarray
        w as a float64 vector.
    """
    return problem.check_w(getattr(result, "w", result))


def with_overrides(problem: TrainingProblem, **changes: Any) -> TrainingProblem:
    """The same problem with spec leaves changed (e.g. ``horizon=4.0, n_steps=80``).

    A problem loaded from a spec is rebuilt through :func:`problem_from_spec` so its stored spec stays
    true; a problem built in Python is copied with :func:`dataclasses.replace` (``horizon`` and
    ``n_steps`` only).

    Parameters
    ----------
    problem : TrainingProblem
        The original problem.
    **changes
        Leaf keys as accepted by :func:`control_dl.load_problem`.

    Returns
    -------
    TrainingProblem
        The changed problem.
    """
    if problem.spec is not None:
        return problem_from_spec(problem.spec, **changes)
    unknown = sorted(set(changes) - {"horizon", "n_steps"})
    if unknown:
        raise ValueError(f"cannot override {unknown} on a problem without a spec; only 'horizon' and 'n_steps'")
    fields = {"horizon": changes["horizon"]} if "horizon" in changes else {}
    if "n_steps" in changes:
        fields["control"] = dataclasses.replace(problem.control, n_steps=changes["n_steps"])
    return dataclasses.replace(problem, **fields)


def require_scalar_output(problem: TrainingProblem, what: str) -> None:
    """Raise ValueError unless λ2 maps to R (n_out = 1).

    Parameters
    ----------
    problem : TrainingProblem
        The problem.
    what : str
        Name of the diagnostic, for the message.
    """
    if problem.layout.n_out != 1:
        raise ValueError(f"{what} needs a scalar output (n_out=1); this problem has n_out={problem.layout.n_out}")
