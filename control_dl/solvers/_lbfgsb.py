r"""``Direct(nlp="lbfgsb" | "trust-ncg")``: scipy's L-BFGS-B or trust-ncg over an engine's J and ∇J.

Single shooting: minimise J(w) subject to the box |θ| ≤ M (``theta_max``) only. Every line-search
trial is one :meth:`~control_dl.engines.Engine.evaluate` (J, loss, ∇_w J and the predictions in one
call) on the solver's engine (``engine="auto" | "casadi" | "torch"``, see :mod:`control_dl.engines`);
trust-ncg takes the engine's Gauss-Newton products G(w)·v.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np
from scipy.optimize import Bounds, minimize
from threadpoolctl import threadpool_limits

from .._errors import spec_error
from ..engines import Engine
from ..problems.training import TrainingProblem
from ..result import Result
from ._transcriptions import theta_bounds
from .base import Recorder, make_result

if TYPE_CHECKING:
    from .direct import Direct


class Evaluator:
    """J, loss, ∇J and the accuracy at w on the engine's batch (a thin layer over an Engine).

    Parameters
    ----------
    engine : Engine
        The bound engine (:meth:`Direct.bind_engine`).

    Attributes
    ----------
    note : str
        What setting up the engine cost, for the result message (e.g. "casadi engine, JIT cache hit").
    """

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        problem = engine.problem
        self.problem = problem
        info = engine.info
        self.note = f"{info['name']} engine" + (f", JIT {info['compile']}" if "compile" in info else "")
        self.full = engine.n_samples == problem.data.x_train.shape[1]
        self.labels = problem.data.y_train if self.full and problem.data.task != "regression" else None

    def __call__(self, w: np.ndarray) -> tuple[float, float, np.ndarray, dict[str, float]]:
        """Evaluate at w.

        Parameters
        ----------
        w : ndarray
            Decision vector.

        Returns
        -------
        tuple
            ``(J, loss, ∇J, extra)`` with extra = {grad_norm (‖∇J‖_∞), accuracy (classification)}.
        """
        ev = self.engine.evaluate(w)
        grad = ev.gradient
        extra = {"grad_norm": float(np.max(np.abs(grad), initial=0.0))}
        if self.labels is not None:
            extra["accuracy"] = ev.accuracy(self.problem.data.task, self.problem.cost.loss, self.labels)
        return ev.objective, ev.loss, grad, extra


def training_data_recorder(
    solver: Direct, problem: TrainingProblem, recorder: Recorder, evaluate: Evaluator
) -> Callable[..., bool]:
    """How the scipy back-ends record an iterate: with J and the loss on all training samples.

    Without ``subsample`` the engine holds them all, and the values of the evaluation the solver
    already made are recorded; with ``subsample`` (the NLP fitted on a part), w is simulated on all
    of them by :meth:`Direct.iterate_logger`, as for IPOPT, so that the history, ``target_loss``
    and the Result speak of the same loss.

    Parameters
    ----------
    solver : Direct
        Options (``target_loss``, ``jit``, ``engine``).
    problem : TrainingProblem
        The problem.
    recorder : Recorder
        Where the iterations go.
    evaluate : Evaluator
        The solver's evaluator (on all samples or on the subsample).

    Returns
    -------
    callable
        ``record(w, j, loss, **extra) -> bool``, with ``j``, ``loss``, ``extra`` from ``evaluate(w)``;
        True when the target loss is reached.
    """
    if not evaluate.full:
        logger = solver.iterate_logger(problem, recorder)
        return lambda w, j, loss, **extra: logger(w, **{k: v for k, v in extra.items() if k != "grad_norm"})

    def record(w: np.ndarray, j: float, loss: float, **extra: float) -> bool:
        recorder.log(len(recorder.history), w, j, loss, **extra)
        return solver.target_loss is not None and loss <= solver.target_loss

    return record


def _damped(product: Any, damping: float) -> Any:
    """G·v + μ·v (Levenberg-Marquardt damping of the Gauss-Newton product; μ = 0: G·v itself)."""
    if damping == 0:
        return product
    return lambda w, v: product(w, v) + damping * v


#: scipy ``status`` -> Result.status (L-BFGS-B: 2 = the line search could not make progress;
#: trust-ncg: 2+ = the trust region collapsed, a non-positive Hessian direction, or NaN)
SCIPY_STATUS = {0: "converged", 1: "max_iter"}


def run_lbfgsb(solver: Direct, problem: TrainingProblem, w0: np.ndarray, progress: bool) -> Result:
    """Minimise J from w0 with scipy: L-BFGS-B, or trust-ncg with Gauss-Newton products (``nlp``).

    ``nlp="lbfgsb"`` is L-BFGS-B over the engine's J and ∇J (bounds from ``theta_max``);
    ``nlp="trust-ncg"`` is scipy's Newton-CG trust region with the engine's G(w)·v (no bounds).

    Parameters
    ----------
    solver : Direct
        Options (``nlp``, ``max_iter``, ``tol`` as ``gtol`` (and ``ftol``), ``lbfgsb_options`` or
        ``trust_ncg_options``, ``gauss_newton_damping`` (trust-ncg), ``engine``, ``jit``,
        ``target_loss``, ``subsample``).
    problem : TrainingProblem
        The problem; its lipschitz constraint is enforced by :func:`._constrained.run_constrained`
        (``nlp="lbfgsb"``, dispatched by Direct) and rejected by trust-ncg (SpecError).
    w0 : ndarray
        Initial decision vector.
    progress : bool
        Show a progress bar.

    Returns
    -------
    Result
        Status from scipy's result (or "converged" when ``target_loss`` was reached); ``history``
        has one entry per L-BFGS-B iteration with ``grad_norm`` (‖∇J‖_∞); ``message`` names the
        engine and what JIT compilation cost (``wall_time`` includes it).
    """
    if problem.constraints.lipschitz is not None:
        raise spec_error("nlp", solver.nlp, "cannot enforce the lipschitz constraint; use nlp='lbfgsb' or 'ipopt'")
    if solver.nlp == "trust-ncg" and problem.constraints.theta_max is not None:
        raise spec_error("nlp", solver.nlp, "has no bounds; use nlp='lbfgsb' with theta_max")
    recorder = solver.recorder(problem, progress)
    evaluate = Evaluator(solver.bind_engine(problem, *solver.batch(problem)))
    record = training_data_recorder(solver, problem, recorder, evaluate)
    jit_note = evaluate.note
    evaluated: dict[bytes, tuple[float, float, dict[str, float]]] = {}
    reached = False

    def fun(w: np.ndarray) -> tuple[float, np.ndarray]:
        j, loss, grad, extra = evaluate(w)
        if len(evaluated) > 32:
            evaluated.clear()
        evaluated[w.tobytes()] = (j, loss, extra)
        return j, grad

    def log(w: np.ndarray) -> None:
        nonlocal reached
        key = w.tobytes()
        if key not in evaluated:
            fun(w)
        j, loss, extra = evaluated[key]
        if record(w, j, loss, **extra):
            reached = True
            raise StopIteration

    def callback(intermediate_result: Any) -> None:
        log(np.asarray(intermediate_result.x, dtype=float))

    if solver.nlp == "trust-ncg":
        hessp = _damped(evaluate.engine.gauss_newton_product, solver.gauss_newton_damping)
        method, extra = "trust-ncg", {"hessp": hessp}
    else:
        method, extra = "L-BFGS-B", {}
    options = solver.solver_options()
    lbx, ubx = theta_bounds(problem)
    w_start = np.clip(w0, lbx, ubx)
    try:
        log(w_start)
    except StopIteration:
        return make_result(
            problem, solver, w_start, "converged", "target loss reached at w0", recorder, 0, evaluate.engine.info
        )
    if solver.max_iter == 0:  # scipy takes maxiter=0 as "one iteration"; the other solvers take none
        return make_result(problem, solver, w_start, "max_iter", "max_iter=0", recorder, 0, evaluate.engine.info)
    try:
        # scipy's L-BFGS-B calls BLAS on tiny vectors: threads only add overhead (4x on 2 cores)
        with threadpool_limits(limits=1, user_api="blas"):
            bounds = Bounds(lbx, ubx) if method == "L-BFGS-B" else None
            res = minimize(
                fun, w_start, jac=True, method=method, bounds=bounds, callback=callback, options=options, **extra
            )
    except (RuntimeError, ValueError, FloatingPointError) as exc:  # e.g. a Dask engine that lost every worker
        message = f"{method} error: {exc}; returned the last logged iterate"
        iterations = len(recorder.history) - 1
        return make_result(
            problem, solver, recorder.w_last, "failed", message, recorder, iterations, evaluate.engine.info
        )
    iterations = len(recorder.history) - 1
    if reached:
        status, message = "converged", f"target loss {solver.target_loss:g} reached"
    else:
        status = SCIPY_STATUS.get(int(res.status), "failed")
        message = f"{method}: {res.message}"
    w = np.asarray(res.x, dtype=float)
    return make_result(
        problem, solver, w, status, f"{message} ({jit_note})", recorder, iterations, evaluate.engine.info
    )
