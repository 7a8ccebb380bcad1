"""The Solver protocol, the shared iteration recorder and :func:`solve`."""

from __future__ import annotations

import dataclasses
import math
import time
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np
from tqdm.auto import tqdm

from .._errors import spec_error
from ..problems.training import TrainingProblem
from ..result import Result, package_versions
from .checkpoint import Checkpointer


@runtime_checkable
class Solver(Protocol):
    """How to solve a :class:`TrainingProblem`.

    A solver is a frozen dataclass of options with a ``name`` and a ``run`` method; it never keeps
    its own copy of the model (it evaluates the problem through the ``ops`` backends).
    """

    name: str

    def run(self, problem: TrainingProblem, w0: np.ndarray, progress: bool) -> Result:
        """Solve from w0 and return a Result."""
        ...


def check_positive_int(field: str, value: Any, minimum: int = 1) -> None:
    """Raise SpecError unless ``value`` is an integer ≥ ``minimum``.

    Parameters
    ----------
    field : str
        Option name.
    value : object
        Value to check.
    minimum : int
        Smallest allowed value.
    """
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise spec_error(field, value, f"must be an integer >= {minimum}")


def check_positive_float(field: str, value: Any, allow_zero: bool = False) -> None:
    """Raise SpecError unless ``value`` is a finite number > 0 (≥ 0 with ``allow_zero``).

    Parameters
    ----------
    field : str
        Option name.
    value : object
        Value to check.
    allow_zero : bool
        Accept 0.
    """
    ok = not isinstance(value, bool) and isinstance(value, (int, float)) and math.isfinite(value)
    if not ok or value < 0 or (value == 0 and not allow_zero):
        raise spec_error(field, value, "must be a finite number " + (">= 0" if allow_zero else "> 0"))


def check_choice(field: str, value: Any, choices: tuple[str, ...]) -> None:
    """Raise SpecError unless ``value`` is one of ``choices``.

    Parameters
    ----------
    field : str
        Option name.
    value : object
        Value to check.
    choices : tuple of str
        Allowed values.
    """
    if not isinstance(value, str) or value not in choices:
        raise spec_error(field, value, f"must be one of {list(choices)}")


class Recorder:
    """Collects the per-iteration history, snapshots and the progress bar of one solve.

    Every solver reports through one Recorder so that all histories have the same fields.

    Parameters
    ----------
    problem : TrainingProblem
        The problem (for accuracies).
    total : int
        Expected iterations (progress bar length).
    progress : bool
        Show a tqdm bar.
    record_every : int
        Keep a snapshot of w every this many iterations (0: never).
    desc : str
        Progress bar label.
    checkpoint : str or Path, optional
        Write w to this file (atomically) every ``checkpoint_every`` iterations.
    checkpoint_every : int
        Checkpoint interval K (0: never).
    """

    def __init__(
        self,
        problem: TrainingProblem,
        total: int,
        progress: bool,
        record_every: int = 0,
        desc: str = "",
        checkpoint: str | Path | None = None,
        checkpoint_every: int = 0,
    ) -> None:
        self.problem = problem
        self.checkpointer = (
            Checkpointer(checkpoint, checkpoint_every, problem) if checkpoint and checkpoint_every else None
        )
        self.history: list[dict[str, Any]] = []
        self.snapshots: list[tuple[int, float, np.ndarray]] = []
        self.record_every = record_every
        self.start = time.perf_counter()
        self.bar = tqdm(total=total, disable=not progress, desc=desc, leave=False)

    def elapsed(self) -> float:
        """Seconds since the recorder was created."""
        return time.perf_counter() - self.start

    def log(self, iteration: int, w: np.ndarray, objective: float, loss: float, **extra: float) -> None:
        """Record one iteration.

        Parameters
        ----------
        iteration : int
            Iteration counter (0 = the initial guess).
        w : ndarray
            Current decision vector.
        objective, loss : float
            J(w) and the training loss.
        **extra
            Further fields (``grad_norm``, ``pmp_residual``, …); ``accuracy`` given here is used
            instead of being recomputed from w.
        """
        now = self.elapsed()
        entry = {"iter": int(iteration), "time": now, "objective": float(objective), "loss": float(loss)}
        if "accuracy" in extra:  # a solver that has the predictions at hand passes it in
            accuracy = extra.pop("accuracy")
        else:
            accuracy = self.problem.accuracy(w) if np.all(np.isfinite(w)) else None
        if accuracy is not None:
            entry["accuracy"] = accuracy
        entry.update({k: float(v) for k, v in extra.items()})
        self.history.append(entry)
        if self.record_every and iteration % self.record_every == 0:
            self.snapshots.append((int(iteration), now, np.array(w, dtype=float, copy=True)))
        if self.checkpointer is not None:
            self.checkpointer(int(iteration), w)
        if iteration > 0:
            self.bar.update(1)
        self.bar.set_postfix(objective=f"{objective:.3e}", refresh=False)

    def close(self) -> None:
        """Close the progress bar."""
        self.bar.close()


def make_result(
    problem: TrainingProblem,
    solver: Any,
    w: np.ndarray,
    status: str,
    message: str,
    recorder: Recorder,
    iterations: int,
    engine: dict[str, Any] | None = None,
) -> Result:
    """Assemble a :class:`Result`, evaluating objective, losses and accuracies at w in numpy.

    A non-finite w or objective turns the status into "diverged" (never a silent success).

    Parameters
    ----------
    problem : TrainingProblem
        The problem.
    solver : Solver
        The solver (its options are stored).
    w : ndarray
        Final decision vector.
    status, message : str
        Outcome reported by the solver.
    recorder : Recorder
        History of the run.
    iterations : int
        Iterations taken.
    engine : dict, optional
        ``info`` of the engine that evaluated J (stored as ``Result.engine``).

    Returns
    -------
    Result
        The result.
    """
    recorder.close()
    wall = recorder.elapsed()
    w = np.asarray(w, dtype=float).ravel()
    if np.all(np.isfinite(w)):
        objective, loss = problem.objective_and_loss(w)
        test_loss = _test_loss(problem, w)
    else:
        objective = loss = test_loss = math.nan
    if not (math.isfinite(objective) and math.isfinite(loss)) and status != "failed":
        status, message = "diverged", f"non-finite objective at the last iterate ({message})"
    finite = np.all(np.isfinite(w))
    if recorder.snapshots and recorder.snapshots[-1][0] != iterations and finite:
        recorder.snapshots.append((iterations, wall, w.copy()))
    return Result(
        status=status,
        message=message,
        w=w,
        objective=objective,
        loss=loss,
        accuracy=problem.accuracy(w) if finite else None,
        test_accuracy=problem.accuracy(w, "test") if finite else None,
        test_loss=test_loss,
        wall_time=wall,
        iterations=int(iterations),
        history=recorder.history,
        snapshots=recorder.snapshots,
        solver=solver.name,
        solver_spec=solver_spec(solver),
        problem_spec=problem.spec,
        versions=package_versions(),
        engine=dict(engine or {}),
        problem=problem,
    )


def _test_loss(problem: TrainingProblem, w: np.ndarray) -> float:
    from ..backends import numpy_ops
    from ..problems.costs import loss_per_sample

    yhat = problem.predict(w, problem.data.x_test)
    return float(np.mean(loss_per_sample(problem.cost.loss, yhat, problem.test_targets, numpy_ops)))


def solver_spec(solver: Any) -> dict[str, Any]:
    """The solver's options as a plain dict (``kind`` plus every dataclass field).

    Parameters
    ----------
    solver : Solver
        A solver dataclass.

    Returns
    -------
    dict
        JSON-serialisable options.
    """
    return {"solver": solver.kind, **dataclasses.asdict(solver)}


def solve(problem: TrainingProblem, solver: Solver, w0: Any = None, seed: int = 0, progress: bool = True) -> Result:
    """Solve ``problem`` with ``solver``: the one join between what and how.

    Parameters
    ----------
    problem : TrainingProblem
        What to solve.
    solver : Solver
        How to solve it (e.g. ``Direct()``, or ``load_solver("ipopt-lbfgs")``).
    w0 : array_like or Result, optional
        Starting point (a warm start from a previous Result is allowed); default
        ``problem.initial_guess(seed)``.
    seed : int
        Seed of the initial guess (and of any randomness in the solver).
    progress : bool
        Show a tqdm progress bar.

    Returns
    -------
    Result
        Its ``status`` says whether the solve converged; failures are never raised.
    """
    if not isinstance(problem, TrainingProblem):
        raise TypeError(f"problem must be a TrainingProblem, got {type(problem).__name__}")
    if not isinstance(solver, Solver):
        raise TypeError(f"solver must be a control_dl solver, got {type(solver).__name__}")
    if isinstance(w0, Result):
        w0 = w0.w
    w0 = problem.initial_guess(seed) if w0 is None else problem.check_w(w0)
    result = solver.run(problem, w0.copy(), progress)
    result.seed = seed
    return result
