"""The Solver protocol, the shared iteration recorder, the outcome policy and :func:`solve`.

Outcome policy (every solver that finishes through :func:`make_result`): the :class:`Recorder`
keeps the best iterate it saw (lowest J; feasible, for a constrained problem) and
:func:`judge_outcome` turns the solver's own report into one of four statuses:

- ``diverged``: J is not finite, or exploding, J > ``DIVERGENCE_FACTOR`` · max(L₀, 1) with L₀ the
  loss of the best constant predictor (a network whose states blew up); the best finite iterate
  is returned;
- ``failed``: the run ended infeasible, or with J above J at its (feasible) start; the best
  (feasible) iterate is returned and the message says what happened and what to try. A
  "converged" point whose flow barely moves the data (no training sample by more than
  ``SADDLE_FLOW`` of the largest lifted input's norm: θ ≈ 0, the flow ≈ the identity) and whose
  loss is that of the best constant predictor L₀ (to ``SADDLE_RTOL``) is, on a symmetric data set,
  at or next to the saddle θ = 0 with zero costates (∂H/∂θ = 0, PMP residual 0): it is reported
  "failed" as such;
- otherwise the solver's own ``converged`` / ``max_iter`` (with the best iterate returned when a
  ``max_iter`` run ended above it).
"""

from __future__ import annotations

import dataclasses
import math
import time
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np
from tqdm.auto import tqdm

from .._errors import check_bool, check_positive_int, spec_error
from .._toml import plain_document
from ..engines import EngineSpec, closing_engines
from ..problems.training import TrainingProblem, check_problem, check_same_network
from ..result import Result, package_versions
from .checkpoint import Checkpointer

#: J > DIVERGENCE_FACTOR · max(L₀, 1) (L₀: the constant predictor's loss) is "exploding": diverged
DIVERGENCE_FACTOR = 1e6
#: a "converged" w whose flow moves no training sample by more than SADDLE_FLOW times the largest
#: lifted input's norm, max_i |x_N^i − x_0^i| ≤ SADDLE_FLOW · max_i |x_0^i| (the flow ≈ the identity),
#: with a loss within SADDLE_RTOL of L₀ (sampling noise of a symmetric set: 2% at S = 100), is at or
#: next to the saddle θ = 0 of the constant predictor. Measured on ring (d = 3, N = 10, S = 200):
#: L-BFGS-B and torch L-BFGS stopped "converged" there at 8.2·10⁻³ and 1.5·10⁻⁴ (max|θ| 7.9·10⁻³ and
#: 2.8·10⁻⁴, accuracy 0.50); the trained networks of the same starts move the data by 0.38–1.1.
SADDLE_FLOW = 5e-2
SADDLE_RTOL = 5e-2
#: largest constraint violation of a feasible iterate (|θ| − M and h·Lip − c)
FEASIBILITY_TOL = 1e-6
#: a run "ended above its start" when J_end > J_start + START_RTOL·|J_start|: a solve started at an
#: optimum ends within rounding of it (IPOPT from a multiple-shooting optimum, Solve_Succeeded:
#: 1.6·10⁻¹⁰ relative above; a user's report), which is no failure
START_RTOL = 1e-8


@runtime_checkable
class Solver(Protocol):
    """How to solve a :class:`TrainingProblem`: the extension point of :func:`solve`.

    Anything with a ``name`` and a ``run`` method is a solver; the built-in ones are frozen
    dataclasses of options that also carry a ``kind`` (their preset key) and never keep their own
    copy of the model (they evaluate the problem through the ``ops`` backends). A user-defined
    solver may build its :class:`Result` with :func:`make_result` (history through a
    :class:`Recorder`) to get the same outcome policy as the built-in ones.
    """

    name: str

    def run(self, problem: TrainingProblem, w0: np.ndarray, progress: bool) -> Result:
        """Solve from w0 and return a Result.

        Parameters
        ----------
        problem : TrainingProblem
            What to solve.
        w0 : ndarray
            Initial decision vector, shape ``(n_params,)`` (a copy the solver may modify).
        progress : bool
            Show a progress bar.

        Returns
        -------
        Result
            The outcome; failures are statuses, never exceptions.
        """
        ...


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
        self.constrained = problem.constraints.theta_max is not None or problem.constraints.lipschitz is not None
        #: the first logged iterate (the start of the run) and whether it is feasible
        self.w_start: np.ndarray | None = None
        self.start_feasible = True
        #: (iteration, logged J, w) of the lowest finite J among feasible logged iterates
        self.best: tuple[int, float, np.ndarray] | None = None
        #: the last logged iterate (what a solver stopped by an evaluation error returns)
        self.w_last: np.ndarray | None = None

    def elapsed(self) -> float:
        """Wall-clock time of the run so far.

        Returns
        -------
        float
            Seconds since the recorder was created.
        """
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
        finite = math.isfinite(objective) and bool(np.all(np.isfinite(w)))
        feasible = True
        if self.constrained and finite:
            entry["constraint_violation"] = violation = constraint_violation(self.problem, w)
            feasible = violation <= FEASIBILITY_TOL
        if self.w_start is None:
            self.w_start, self.start_feasible = np.array(w, dtype=float, copy=True), feasible and finite
        if finite and feasible and (self.best is None or objective < self.best[1]):
            self.best = (int(iteration), float(objective), np.array(w, dtype=float, copy=True))
        self.history.append(entry)
        self.w_last = np.array(w, dtype=float, copy=True)
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
    """Assemble a :class:`Result` under the outcome policy (module docstring), evaluating objective,
    losses and accuracies at the returned w in numpy.

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
        History of the run (its start and best iterate).
    iterations : int
        Iterations taken.
    engine : dict, optional
        ``info`` of the engine that evaluated J (stored as ``Result.engine``).

    Returns
    -------
    Result
        The result; ``w`` is the final iterate or, when the policy says so, the best one.
    """
    recorder.close()
    wall = recorder.elapsed()
    w, status, message = judge_outcome(
        problem, recorder, np.asarray(w, dtype=float).ravel(), status, message, getattr(solver, "kind", "direct")
    )
    finite = bool(np.all(np.isfinite(w)))
    # a diverged w may overflow on the way: the result then says inf/nan, and its status says why
    with np.errstate(over="ignore", invalid="ignore"):
        if finite:
            objective, loss = problem.objective_and_loss(w)
            test_loss = _test_loss(problem, w)
            accuracy, test_accuracy = problem.accuracy(w), problem.accuracy(w, "test")
        else:
            objective = loss = test_loss = math.nan
            accuracy = test_accuracy = None
    if recorder.snapshots and recorder.snapshots[-1][0] != iterations and finite:
        recorder.snapshots.append((iterations, wall, w.copy()))
    if status == "failed" and recorder.checkpointer is not None:  # --resume continues from this very w
        recorder.checkpointer.save(int(iterations), w)
    return Result(
        status=status,
        message=message,
        w=w,
        objective=objective,
        loss=loss,
        accuracy=accuracy,
        test_accuracy=test_accuracy,
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


#: What to try after a run that ended above its start, per solver family (its own option names).
_RETRY = {
    "direct": "more iterations (max_iter), another NLP or Hessian (nlp=..., hessian=...) or another solver",
    "msa": "more iterations (max_iter), a larger rho (E-MSA's proximal weight) or another solver",
    "torch": "a smaller learning rate (lr), more epochs or another solver",
}
#: What to try after a run that ended infeasible: the torch optimisers never enforce constraints.
_ENFORCE = "try more iterations or a solver that enforces the constraints (the preset 'certified')"
_ENFORCE_TORCH = "the torch optimisers do not enforce constraints: use a solver that does (the preset 'certified')"


def judge_outcome(
    problem: TrainingProblem, recorder: Recorder, w: np.ndarray, status: str, message: str, kind: str = "direct"
) -> tuple[np.ndarray, str, str]:
    """The outcome policy: which w to return, with which status and message.

    Parameters
    ----------
    problem : TrainingProblem
        The problem.
    recorder : Recorder
        History of the run: its start ``w_start`` and ``best`` iterate.
    w : ndarray
        The solver's final iterate, shape ``(n_params,)``.
    status, message : str
        The solver's own report.
    kind : {"direct", "msa", "torch"}
        The solver family (``Solver.kind``): the advice in a failure message names its own options.

    Returns
    -------
    tuple
        ``(w, status, message)`` after the policy of the module docstring.
    """
    retry = _RETRY.get(kind, _RETRY["direct"])
    enforce = _ENFORCE_TORCH if kind == "torch" else _ENFORCE
    j_final = _objective(problem, w)
    j_start = _objective(problem, recorder.w_start) if recorder.w_start is not None else math.nan
    if not recorder.start_feasible:
        j_start = math.inf  # an infeasible start is no yardstick: any feasible end is progress
    best = recorder.best
    j_best = math.inf
    if best is not None and not np.array_equal(best[2], w):
        j_best = _objective(problem, best[2])
    reference = constant_predictor_loss(problem)
    limit = DIVERGENCE_FACTOR * max(reference if reference is not None else 1.0, 1.0)
    violation = constraint_violation(problem, w) if recorder.constrained and math.isfinite(j_final) else 0.0
    use_best = best is not None and j_best < j_final
    where = f"the best iterate (iteration {best[0]}, J = {j_best:.4g})" if use_best else ""
    if status == "diverged":  # the solver saw non-finite values: keep its word, return the best iterate
        return (best[2], status, f"{message}; returned {where}") if use_best else (w, status, message)
    if not math.isfinite(j_final) or j_final > limit:
        what = "is not finite" if not math.isfinite(j_final) else f"= {j_final:.3g} is exploding (> {limit:.0e})"
        w_out = best[2] if use_best else w
        j_out = j_best if use_best else j_final
        if math.isfinite(j_out) and j_out <= limit:  # an earlier iterate is sound: return it, say so
            return w_out, "failed", f"J at the last iterate {what}; returned {where} ({message})"
        return (
            w_out,
            "diverged",
            (
                f"J {what}: the forward pass blows up; try a smaller initial guess (initial_guess scale), "
                f"a shorter horizon, a smaller step or learning rate, or the lipschitz constraint ({message})"
            ),
        )
    if violation > FEASIBILITY_TOL:
        if best is not None and not np.array_equal(best[2], w):
            return (
                best[2],
                "failed",
                (
                    f"ended infeasible (constraint violation {violation:.2e} > {FEASIBILITY_TOL:g}); returned the best "
                    f"feasible iterate (iteration {best[0]}, J = {j_best:.4g}); {enforce} "
                    f"({message})"
                ),
            )
        return (
            w,
            "failed",
            (
                f"ended infeasible (constraint violation {violation:.2e} > {FEASIBILITY_TOL:g}) and no feasible iterate "
                f"was seen; {enforce} ({message})"
            ),
        )
    if j_final > j_start + START_RTOL * abs(j_start):
        w_out = best[2] if use_best else w
        return (
            w_out,
            "failed",
            (
                f"ended with J = {j_final:.10g}, {(j_final - j_start) / abs(j_start or 1.0):.1e} relative above its "
                f"start J = {j_start:.10g}; returned "
                f"{where or 'the last iterate'}; try {retry} ({message})"
            ),
        )
    if status == "converged" and _is_saddle(problem, w, reference):
        loss = problem.objective_and_loss(w)[1]
        return (
            w,
            "failed",
            (
                f"converged next to θ = 0 (max|θ| = {np.max(np.abs(w[: problem.layout.n_theta])):.2g}; the flow moves "
                f"no sample by more than {_flow_displacement(problem, w):.2g} of the inputs' scale) with a loss of "
                f"{loss:.4g}, no better than the best constant predictor's {reference:.4g}: a saddle (at θ = 0 the flow is the "
                f"identity, zero costates, PMP residual 0 on symmetric data), not a trained network; start away from "
                f"it (another seed or a larger initial_guess scale) or use another solver ({message})"
            ),
        )
    if status in ("max_iter", "failed") and use_best:
        return best[2], status, f"{message}; returned {where}, below the last iterate's J = {j_final:.4g}"
    return w, status, message


def _is_saddle(problem: TrainingProblem, w: np.ndarray, reference: float | None) -> bool:
    """The flow ≈ the identity (displacement ≤ SADDLE_FLOW) and loss ≥ (1 − SADDLE_RTOL)·L₀: at or
    next to the constant-predictor saddle θ = 0."""
    n_theta = problem.layout.n_theta
    if reference is None or reference <= 1e-12 or n_theta == 0 or problem.dynamics.vector_field is None:
        return False
    if problem.objective_and_loss(w)[1] < (1 - SADDLE_RTOL) * reference:
        return False
    return _flow_displacement(problem, w) <= SADDLE_FLOW


def _flow_displacement(problem: TrainingProblem, w: np.ndarray) -> float:
    """max_i |x_N^i − x_0^i| / max_i |x_0^i| over the training samples (0 for the identity flow)."""
    from ..backends import numpy_ops

    first = last = None
    with np.errstate(all="ignore"):
        for state in problem.trajectory(w, problem.data.x_train, numpy_ops):  # x_0, …, x_N
            first, last = state if first is None else first, state
        scale = float(np.max(np.linalg.norm(first, axis=0)))
        moved = float(np.max(np.linalg.norm(last - first, axis=0)))
    return moved / scale if scale > 0 and math.isfinite(moved) else math.inf


def _objective(problem: TrainingProblem, w: np.ndarray) -> float:
    """J(w) in numpy, NaN when w or J is not finite (overflow is divergence, not an error)."""
    if not np.all(np.isfinite(w)):
        return math.nan
    with np.errstate(all="ignore"):
        value = problem.objective_and_loss(w)[0]
    return value if math.isfinite(value) else math.nan


def constraint_violation(problem: TrainingProblem, w: np.ndarray) -> float:
    """Largest violation of the problem's constraints at w (0 when all hold).

    max(|θ_i| − M, h·Lip_x f(·, θ_node) − r) over the θ coefficients and the distinct integrator
    nodes, with r = :func:`control_dl.problems.lipschitz.constraint_limit` (c for Euler, the RK4
    node limit for RK4) and (h·Lip)² from :meth:`TrainingProblem.step_lipschitz_sq`.

    Parameters
    ----------
    problem : TrainingProblem
        The problem (``constraints.theta_max = M``, ``constraints.lipschitz = c``).
    w : ndarray
        Decision vector.

    Returns
    -------
    float
        The violation, ≥ 0.
    """
    from ..backends import numpy_ops
    from ..problems.lipschitz import constraint_limit

    violation = 0.0
    m, c = problem.constraints.theta_max, problem.constraints.lipschitz
    if m is not None:
        violation = max(violation, float(np.max(np.abs(w[: problem.layout.n_theta]), initial=0.0)) - m)
    if c is not None:
        bounds = np.sqrt(np.maximum(np.array(problem.step_lipschitz_sq(w, numpy_ops), dtype=float), 0.0))
        violation = max(violation, float(np.max(bounds, initial=0.0)) - constraint_limit(problem))
    return max(violation, 0.0)


def constant_predictor_loss(problem: TrainingProblem) -> float | None:
    """L₀ = min_c (1/S) Σ_i ℓ(c, y_i): the training loss of the best constant prediction c ∈ R^{n_out}.

    The yardstick of the outcome policy: a trained network's loss is below it, a network stuck at
    the saddle θ = 0 on a symmetric data set has exactly it (its readout is then constant).

    Parameters
    ----------
    problem : TrainingProblem
        The problem (training targets and loss).

    Returns
    -------
    float or None
        L₀, or None when the loss cannot be evaluated on constant predictions.
    """
    from scipy.optimize import minimize

    from ..backends import numpy_ops
    from ..problems.costs import loss_per_sample

    targets = np.asarray(problem.targets, dtype=float)

    def mean_loss(c: np.ndarray) -> float:
        yhat = np.repeat(c[:, None], targets.shape[1], axis=1)
        return float(np.mean(loss_per_sample(problem.cost.loss, yhat, targets, numpy_ops)))

    try:
        with np.errstate(all="ignore"):
            result = minimize(mean_loss, targets.mean(axis=1), method="L-BFGS-B", options={"gtol": 1e-12})
    except (TypeError, ValueError):  # a user loss that cannot take constant predictions
        return None
    return float(result.fun) if math.isfinite(result.fun) else None


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
        A solver: its ``kind`` (else its class name) and, for a dataclass, every field.

    Returns
    -------
    dict
        JSON-serialisable options (an engine spec by its name: its options and what ran are in
        ``Result.engine``; a live object such as a dask client is never copied).
    """

    def plain(value: Any) -> Any:  # numpy scalars pass the option checks: stored as Python numbers
        if isinstance(value, EngineSpec):
            return value.name
        if dataclasses.is_dataclass(value) and not isinstance(value, type):
            value = dataclasses.asdict(value)
        return plain_document(value)

    options = (
        {f.name: plain(getattr(solver, f.name)) for f in dataclasses.fields(solver)}
        if dataclasses.is_dataclass(solver)
        else {}
    )
    return {"solver": getattr(solver, "kind", type(solver).__name__), **options}


def solve(problem: TrainingProblem, solver: Solver, w0: Any = None, seed: int = 0, progress: bool = True) -> Result:
    """Solve ``problem`` with ``solver``: the one join between what and how.

    Parameters
    ----------
    problem : TrainingProblem
        What to solve.
    solver : Solver
        How to solve it (e.g. ``Direct()``, or ``load_solver("ipopt-lbfgs")``).
    w0 : array_like or Result, optional
        Starting point, shape ``(n_params,)`` (a warm start from a previous Result is allowed); default
        ``problem.initial_guess(seed)``.
    seed : int
        Seed of the initial guess, and of the solver's own randomness (the torch trainers' and
        MSA's mini-batch order) unless the solver sets its ``seed`` option; ``Result.seed`` and the
        result's solver options record both.
    progress : bool
        Show a tqdm progress bar.

    Returns
    -------
    Result
        Its ``status`` says whether the solve converged; failures are never raised.

    Raises
    ------
    SpecError
        ``problem`` or ``solver`` is not one of control_dl's (e.g. a name not yet loaded), ``seed``
        is not an integer >= 0, or ``w0`` does not fit the problem (length, NaN).
    """
    check_problem(problem)
    check_bool("progress", progress)
    if not isinstance(solver, Solver):
        hint = f" (load it first: load_solver({solver!r}))" if isinstance(solver, str) else ""
        raise spec_error(
            "solver", solver if isinstance(solver, str) else type(solver).__name__, f"must be a control_dl solver{hint}"
        )
    if isinstance(w0, Result):  # a warm start: the same network (the length of w alone does not tell)
        check_same_network(problem, w0.problem_spec, "w0", solved_problem=w0.problem)
        w0 = w0.w
    check_positive_int("seed", seed, minimum=0)
    w0 = problem.initial_guess(seed) if w0 is None else problem.check_w(w0, "w0")
    if dataclasses.is_dataclass(solver) and getattr(solver, "seed", 0) is None:  # the solver's randomness too
        solver = dataclasses.replace(solver, seed=int(seed))
    with closing_engines():  # a Dask engine's workers and cluster are released also when the solve fails
        result = solver.run(problem, w0.copy(), progress)
    result.seed = int(seed)
    return result
