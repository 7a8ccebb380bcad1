"""Helpers shared by the diagnostics: the decision vector of a result, problem variants."""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np

from .._errors import spec_error
from ..problems.spec import problem_from_spec
from ..problems.training import TrainingProblem, check_problem, check_same_network
from ..result import Result


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

    Raises
    ------
    SpecError
        ``problem`` is not a TrainingProblem, ``result`` is None or not numeric, its w does not fit
        ``problem`` (another problem's solve: a different length, or a Result whose spec has another
        ``[model]``, e.g. another activation, with the same length) or holds NaN/inf (a failed or
        diverged solve: the message gives its status).
    """
    check_problem(problem)
    if result is None or isinstance(result, (str, bytes, dict)):
        shown = result if result is None or isinstance(result, str) else type(result).__name__
        raise spec_error("result", shown, "must be a Result of solve(problem, ...) or its decision vector w")
    # a Result refuses the NaN/inf w of a failed solve by its status, as its own methods do
    w = problem.check_w(result._usable_w() if isinstance(result, Result) else getattr(result, "w", result))
    check_same_network(problem, getattr(result, "problem_spec", None), solved_problem=getattr(result, "problem", None))
    return w


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
        raise spec_error(
            unknown[0],
            changes[unknown[0]],
            "cannot be overridden on a problem without a spec; only horizon and n_steps",
        )
    fields = {"horizon": changes["horizon"]} if "horizon" in changes else {}
    if "n_steps" in changes:
        fields["control"] = dataclasses.replace(problem.control, n_steps=changes["n_steps"])
    return dataclasses.replace(problem, **fields)


def require_scalar_output(problem: TrainingProblem, what: str) -> None:
    """Raise SpecError unless λ2 maps to R (n_out = 1).

    Parameters
    ----------
    problem : TrainingProblem
        The problem.
    what : str
        Name of the diagnostic, for the message.

    Raises
    ------
    SpecError
        Naming the problem's data and its n_out.
    """
    if problem.layout.n_out != 1:
        raise spec_error(
            "problem", problem.data.name, f"{what} needs a scalar output (n_out=1), not n_out={problem.layout.n_out}"
        )


def require_flow(problem: TrainingProblem, what: str) -> None:
    """Raise SpecError unless the model is a flow x' = f(x, θ) (a ResNet), not a feed-forward stack.

    Parameters
    ----------
    problem : TrainingProblem
        The problem.
    what : str
        Name of the diagnostic, for the message.

    Raises
    ------
    SpecError
        The model is a layer stack (``model="mlp"`` / :class:`~control_dl.FeedForward`).
    """
    check_problem(problem)
    if problem.dynamics.vector_field is None:
        raise spec_error(
            "problem", problem.data.name, f"{what} needs a flow x' = f(x, θ) (a ResNet), not a feed-forward layer stack"
        )
