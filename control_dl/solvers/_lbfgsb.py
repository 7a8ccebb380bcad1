r"""``Direct(nlp="lbfgsb")``: scipy's L-BFGS-B over the JIT-compiled CasADi objective and gradient.

Single shooting: minimise J(w) subject to the box |θ| ≤ M (``theta_max``) only. One compiled
Function ``(w, x, y) -> (J, loss, ∇_w J)`` (per-sample step Functions mapped over the S columns and
folded over the N steps, see :class:`~control_dl.problems.compiled.CasadiModel`) is evaluated per
line-search trial; it is compiled once and cached on disk (:mod:`._jit`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import casadi as ca
import numpy as np
from scipy.optimize import Bounds, minimize
from threadpoolctl import threadpool_limits

from .._errors import spec_error
from ..problems.costs import predict_labels
from ..problems.training import TrainingProblem
from ..result import Result
from ._jit import compile_function
from ._transcriptions import theta_bounds
from .base import make_result

if TYPE_CHECKING:
    from .direct import Direct


def _single_shooting(model: Any, n_samples: int) -> tuple[ca.MX, ca.MX, ca.MX, ca.MX, ca.MX, ca.MX]:
    """Symbols w, x, y and the MX parts (Ŷ, loss, rest) of J by simulation, for S = ``n_samples``."""
    lay = model.problem.layout
    w = ca.MX.sym("w", lay.n_params)
    x = ca.MX.sym("x", lay.n_in, n_samples)
    y = ca.MX.sym("y", lay.n_out, n_samples)
    predictions, loss, rest = model.objective_parts(w, model.trajectory_expr(w, x), y)
    return w, x, y, predictions, loss, rest


def objective_loss_gradient(model: Any, n_samples: int) -> ca.Function:
    """``(w, x, y) -> (J, loss, ∇_w J, Ŷ)`` for batches of ``n_samples`` columns (not compiled).

    Ŷ = λ2(x_N) are the predictions (``n_out × S``), so accuracies cost nothing extra.

    Parameters
    ----------
    model : CasadiModel
        The problem's CasADi view.
    n_samples : int
        Batch size S.

    Returns
    -------
    casadi.Function
        The Function, named ``objective_loss_gradient``.
    """
    w, x, y, predictions, loss, rest = _single_shooting(model, n_samples)
    j = loss + rest
    return ca.Function(
        "objective_loss_gradient",
        [w, x, y],
        [j, loss, ca.gradient(j, w), predictions],
        ["w", "x", "y"],
        ["J", "loss", "g", "yhat"],
    )


def objective_function(model: Any, n_samples: int) -> ca.Function:
    """``(w, x, y) -> J`` for batches of ``n_samples`` columns (not compiled).

    Parameters
    ----------
    model : CasadiModel
        The problem's CasADi view.
    n_samples : int
        Batch size S.

    Returns
    -------
    casadi.Function
        The Function, named ``objective_j``.
    """
    w, x, y, _, loss, rest = _single_shooting(model, n_samples)
    return ca.Function("objective_j", [w, x, y], [loss + rest], ["w", "x", "y"], ["J"])


def gauss_newton_hvp(model: Any, n_samples: int) -> ca.Function:
    r"""``(w, v, x, y) -> G(w) v``, the generalised Gauss-Newton Hessian times v, matrix-free.

    G = J_Ŷᵀ (∇²_Ŷ ℓ / S) J_Ŷ + ∇²(rest), with Ŷ = λ2(x_N(w)) the predictions: a forward
    directional derivative J_Ŷ v (``jtimes``), the per-sample loss Hessian in the outputs (2/S for
    MSE, σ(1−σ)/S for logistic), then a reverse product J_Ŷᵀ u; the regulariser and running terms
    ("rest") enter with their exact Hessian-vector product. No Jacobian is ever formed.

    Parameters
    ----------
    model : CasadiModel
        The problem's CasADi view.
    n_samples : int
        Batch size S.

    Returns
    -------
    casadi.Function
        The Function, named ``gauss_newton_hvp``.
    """
    lay = model.problem.layout
    w, x, y, predictions, _, rest = _single_shooting(model, n_samples)
    v = ca.MX.sym("v", lay.n_params)
    yhat_s, y_s, d_s = (ca.SX.sym(name, lay.n_out) for name in ("yhat", "y", "d"))
    hessian = ca.hessian(model.loss(yhat_s, y_s), yhat_s)[0]
    weigh = ca.Function("loss_hessian_times", [yhat_s, y_s, d_s], [ca.mtimes(hessian, d_s)])
    u = model.mapped(weigh, n_samples, [], [])(predictions, y, ca.jtimes(predictions, w, v)) / n_samples
    hv = ca.jtimes(predictions, w, u, True) + ca.jtimes(ca.gradient(rest, w), w, v)
    return ca.Function("gauss_newton_hvp", [w, v, x, y], [hv], ["w", "v", "x", "y"], ["Gv"])


class Evaluator:
    """J, loss, ∇J and the accuracy at w on a fixed batch, through the (JIT-compiled) CasADi Function.

    Parameters
    ----------
    solver : Direct
        Its ``jit`` option (compiled code evaluates serially) and, uncompiled, ``parallelization``.
    problem : TrainingProblem
        The problem.
    x, y : ndarray
        Batch: inputs ``n_in × S`` and encoded targets ``n_out × S``.

    Attributes
    ----------
    note : str
        What JIT compilation cost ("JIT compiled in … s", "JIT cache hit" or "not compiled").
    """

    def __init__(self, solver: Direct, problem: TrainingProblem, x: np.ndarray, y: np.ndarray) -> None:
        self.problem = problem
        model = problem.casadi if solver.jit else solver.casadi_model(problem)  # generated C is serial
        self.function = objective_loss_gradient(model, x.shape[1])
        self.model, self.jit = model, solver.jit
        self.note = "not compiled"
        if solver.jit:
            self.function, info = compile_function(self.function)
            if info["compiled"]:
                self.note = "JIT cache hit" if info["cache_hit"] else f"JIT compiled in {info['compile_time']:.2f} s"
        self.x, self.y = ca.DM(x), ca.DM(y)
        full = x.shape[1] == problem.data.x_train.shape[1]
        self.labels = problem.data.y_train if full and problem.data.task != "regression" else None

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
        j, loss, g, yhat = self.function(w, self.x, self.y)
        grad = np.asarray(g, dtype=float).ravel()
        extra = {"grad_norm": float(np.max(np.abs(grad), initial=0.0))}
        if self.labels is not None:
            task, name = self.problem.data.task, self.problem.cost.loss
            extra["accuracy"] = float(np.mean(predict_labels(task, name, np.asarray(yhat, dtype=float)) == self.labels))
        return float(j), float(loss), grad, extra

    def gauss_newton_product(self) -> Any:
        """``hessp(w, v) -> G(w) v`` on this batch (:func:`gauss_newton_hvp`, compiled when ``jit``).

        Returns
        -------
        callable
            The product, for scipy's ``hessp``.
        """
        product = gauss_newton_hvp(self.model, self.x.shape[1])
        if self.jit:
            product, _ = compile_function(product)

        def hessp(w: np.ndarray, v: np.ndarray) -> np.ndarray:
            return np.asarray(product(w, v, self.x, self.y), dtype=float).ravel()

        return hessp


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

    ``nlp="lbfgsb"`` is L-BFGS-B over the compiled J and ∇J (bounds from ``theta_max``);
    ``nlp="trust-ncg"`` is scipy's Newton-CG trust region with G(w)·v from :func:`gauss_newton_hvp`
    (compiled too; no bounds).

    Parameters
    ----------
    solver : Direct
        Options (``nlp``, ``max_iter``, ``tol`` as ``gtol`` (and ``ftol``), ``lbfgsb_options`` or
        ``trust_ncg_options``, ``gauss_newton_damping`` (trust-ncg), ``jit``, ``target_loss``,
        ``subsample``).
    problem : TrainingProblem
        The problem; its lipschitz constraint cannot be enforced here (SpecError).
    w0 : ndarray
        Initial decision vector.
    progress : bool
        Show a progress bar.

    Returns
    -------
    Result
        Status from scipy's result (or "converged" when ``target_loss`` was reached); ``history``
        has one entry per L-BFGS-B iteration with ``grad_norm`` (‖∇J‖_∞); ``message`` says what JIT
        compilation cost (``wall_time`` includes it).
    """
    if problem.constraints.lipschitz is not None:
        raise spec_error("nlp", solver.nlp, "cannot enforce the lipschitz constraint; use nlp='ipopt'")
    if solver.nlp == "trust-ncg" and problem.constraints.theta_max is not None:
        raise spec_error("nlp", solver.nlp, "has no bounds; use nlp='lbfgsb' with theta_max")
    recorder = solver.recorder(problem, progress)
    evaluate = Evaluator(solver, problem, *solver.batch(problem))
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
        recorder.log(len(recorder.history), w, j, loss, **extra)
        if solver.target_loss is not None and loss <= solver.target_loss:
            reached = True
            raise StopIteration

    def callback(intermediate_result: Any) -> None:
        log(np.asarray(intermediate_result.x, dtype=float))

    if solver.nlp == "trust-ncg":
        method, extra = "trust-ncg", {"hessp": _damped(evaluate.gauss_newton_product(), solver.gauss_newton_damping)}
    else:
        method, extra = "L-BFGS-B", {}
    options = solver.backend_options.scipy_options(solver.max_iter, solver.tol)
    lbx, ubx = theta_bounds(problem)
    w_start = np.clip(w0, lbx, ubx)
    try:
        log(w_start)
    except StopIteration:
        return make_result(problem, solver, w_start, "converged", "target loss reached at w0", recorder, 0)
    try:
        # scipy's L-BFGS-B calls BLAS on tiny vectors: threads only add overhead (4x on 2 cores)
        with threadpool_limits(limits=1, user_api="blas"):
            bounds = Bounds(lbx, ubx) if method == "L-BFGS-B" else None
            res = minimize(
                fun, w_start, jac=True, method=method, bounds=bounds, callback=callback, options=options, **extra
            )
    except (RuntimeError, ValueError, FloatingPointError) as exc:
        return make_result(problem, solver, w_start, "failed", f"{method} error: {exc}", recorder, 0)
    iterations = len(recorder.history) - 1
    if reached:
        status, message = "converged", f"target loss {solver.target_loss:g} reached"
    else:
        status = SCIPY_STATUS.get(int(res.status), "failed")
        message = f"{method}: {res.message}"
    w = np.asarray(res.x, dtype=float)
    return make_result(problem, solver, w, status, f"{message} ({jit_note})", recorder, iterations)
