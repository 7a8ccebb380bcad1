r"""The multiple-shooting NLP reordered stage by stage for fatrop (CasADi's ``fatrop`` nlpsol).

fatrop solves  min Σ_k ℓ_k(x_k, u_k)  s.t.  x_{k+1} = F_k(x_k, u_k),  g_k(x_k, u_k) ≤ 0  with a Riccati
recursion over the stages, so the decision vector must be ordered [x_0; u_0; x_1; u_1; …; x_N; u_N]
and the constraints [gap_0; path_0; gap_1; path_1; …; path_N], where gap_k = x_{k+1} − F_k(x_k, u_k).

For the training OCP the stage state is x_k = vec X_k (all S samples, d·S entries) and the stage
control u_k holds the network parameters that step k uses:

- u_0: the θ coefficients of Θ_0 and the lift parameters (X_0 = λ1(x) is not a variable: nx_0 = 0);
- u_k (1 ≤ k < N): the θ coefficients of Θ_k;
- u_N: the readout P, c (and θ coefficients no step uses), which only enter the terminal loss.

So no parameter is carried through the stages as extra state. This needs each θ coefficient to
belong to one step (piecewise-constant controls, feed-forward layers) and a regulariser and
constraints that do not couple stages; otherwise :func:`stage_layout` raises ``SpecError``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import casadi as ca
import numpy as np

from .._errors import spec_error
from ..backends import casadi_ops
from ..engines import CasadiModel
from ..problems.training import TrainingProblem
from ..result import Result
from ._console import casadi_console
from ._transcriptions import Transcription
from .base import Recorder, make_result

if TYPE_CHECKING:
    from .direct import Direct


@dataclass(frozen=True)
class StageLayout:
    """Where the multiple-shooting variables and constraints go in fatrop's stage order.

    Attributes
    ----------
    z_order : ndarray
        ``z_order[i]``: the index in ``tr.z`` of fatrop's i-th variable.
    g_order : ndarray
        ``g_order[i]``: the index in ``tr.g`` of fatrop's i-th constraint.
    nx, nu, ng : list of int
        States, controls and path constraints of stages 0..N (fatrop's manual structure).
    """

    z_order: np.ndarray
    g_order: np.ndarray
    nx: list[int]
    nu: list[int]
    ng: list[int]

    def options(self) -> dict:
        """nlpsol options of the manual structure: ``N``, ``nx``, ``nu``, ``ng``."""
        return {
            "structure_detection": "manual",
            "N": len(self.nx) - 1,
            "nx": self.nx,
            "nu": self.nu,
            "ng": self.ng,
        }


def _numeric(expr: ca.MX, w: ca.MX) -> np.ndarray:
    """expr at a random w: structural nonzeros that are numerically zero (a basis or factor matrix
    applied as a dense product) drop out."""
    point = np.random.default_rng(0).standard_normal(w.shape[0])
    return np.asarray(ca.Function("probe", [w], [expr])(point), dtype=float)


def _columns(expr: ca.MX, w: ca.MX) -> np.ndarray:
    """Indices of the entries of w that expr depends on."""
    return np.flatnonzero(np.any(_numeric(ca.jacobian(expr, w), w) != 0, axis=0))


def stage_layout(model: CasadiModel, tr: Transcription) -> StageLayout:
    """The stage order of a multiple-shooting NLP.

    Parameters
    ----------
    model : CasadiModel
        The problem's CasADi view (Θ_k of each step).
    tr : Transcription
        Its multiple-shooting NLP; ``tr.z = [w; vec X_1; …; vec X_N]``, ``tr.g = [lipschitz; gap_0; …]``.

    Returns
    -------
    StageLayout
        Permutations and stage sizes.

    Raises
    ------
    SpecError
        When a θ coefficient is shared by two steps, or the regulariser or a constraint couples stages.
    """
    problem = model.problem
    lay, n_steps, n_w = problem.layout, problem.n_steps, tr.n_w
    w = ca.MX.sym("w", n_w)
    owner = np.full(n_w, n_steps)  # readout and unused θ coefficients: the last stage
    owner[lay.n_theta + lay.n_readout :] = 0  # lift parameters: the first stage
    claimed = np.zeros(n_w, dtype=bool)
    for k in range(n_steps):
        cols = _columns(model.stage_vector(w, k), w)
        if claimed[cols].any():
            raise spec_error("nlp", "fatrop", "θ coefficients shared between steps: the control is not stage-wise")
        claimed[cols] = True
        owner[cols] = k
    rows, cols = np.nonzero(_numeric(ca.hessian(problem.regulariser(w, casadi_ops), w)[0], w))
    if np.any(owner[rows] != owner[cols]):
        raise spec_error("nlp", "fatrop", "the regulariser couples parameters of different steps")
    lipschitz = problem.step_lipschitz_sq(w, casadi_ops) if problem.constraints.lipschitz is not None else []
    n_lip = len(lipschitz)  # the first rows of tr.g, built the same way
    lip_stage = []
    if n_lip:
        jacobian = _numeric(ca.jacobian(ca.vertcat(*lipschitz), w), w)
        for row in jacobian:
            stages = np.unique(owner[np.flatnonzero(row)])
            if len(stages) > 1:
                raise spec_error("nlp", "fatrop", "a Lipschitz constraint couples parameters of different steps")
            lip_stage.append(int(stages[0]) if len(stages) else n_steps)
    n = tr.targets.shape[1]
    state_sizes = [problem.state_dims[k] * n for k in range(n_steps + 1)]
    state_start = n_w + np.r_[0, np.cumsum(state_sizes[1:])]  # X_k starts at state_start[k-1] in tr.z
    gap_start = n_lip + np.r_[0, np.cumsum(state_sizes[1:])]
    z_order, g_order, nu, ng = [], [], [], []
    for k in range(n_steps + 1):
        if k > 0:
            z_order.extend(range(state_start[k - 1], state_start[k - 1] + state_sizes[k]))
        controls = np.flatnonzero(owner == k)
        z_order.extend(controls)
        nu.append(len(controls))
        if k < n_steps:
            g_order.extend(range(gap_start[k], gap_start[k] + state_sizes[k + 1]))
        path = [i for i in range(n_lip) if lip_stage[i] == k]
        g_order.extend(path)
        ng.append(len(path))
    nx = [0] + state_sizes[1:]
    return StageLayout(np.asarray(z_order), np.asarray(g_order), nx, nu, ng)


#: fatrop's return flag -> Result.status (other flags: "failed")
FATROP_STATUS = {0: "converged", 1: "max_iter"}
#: fatrop's return flags in words (CasADi's unified status for them is SOLVER_RET_UNKNOWN)
FATROP_FLAGS = {0: "solved", 1: "iteration limit reached"}


class _IterationTap(ca.Callback):
    """A zero added to fatrop's objective gradient that calls ``on_iterate(z)``.

    CasADi's fatrop interface calls no ``iteration_callback``, but fatrop evaluates ∇f once per
    iteration, at the iterate (trial points of the line search only need f and g): a gradient
    Function ``nlp_grad_f`` = ∇f + tap(z) placed in the nlpsol ``cache`` lets the Recorder see every
    iterate (measured on a 2-variable test: 18 evaluations for 17 iterations, the start included).
    fatrop has no user stop: once ``on_iterate`` returns True the tap returns NaN, and fatrop ends
    within a few iterations (an exception raised here is caught by fatrop, which then runs on).
    """

    def __init__(self, n_z: int, on_iterate: Any) -> None:
        ca.Callback.__init__(self)
        self.n_z, self.on_iterate = n_z, on_iterate
        self.construct("fatrop_iteration_tap", {})

    def get_n_in(self) -> int:
        return 1

    def get_n_out(self) -> int:
        return 1

    def get_sparsity_in(self, i: int) -> ca.Sparsity:
        return ca.Sparsity.dense(self.n_z)

    def get_sparsity_out(self, i: int) -> ca.Sparsity:
        return ca.Sparsity.dense(1)

    def eval(self, arg: list[ca.DM]) -> list[float]:
        stop = self.on_iterate(np.asarray(arg[0], dtype=float).ravel())
        return [math.nan if stop else 0.0]


def run_fatrop(solver: Direct, problem: TrainingProblem, w0: np.ndarray, progress: bool) -> Result:
    """Solve the multiple-shooting NLP with fatrop from w0 (see the module docstring).

    Parameters
    ----------
    solver : Direct
        Options (``max_iter``, ``tol``, ``verbose``, ``fatrop_options``, ``subsample``,
        ``target_loss``, ``record_every``, ``jit`` for the history evaluation).
    problem : TrainingProblem
        The problem.
    w0 : ndarray
        Initial decision vector (the states start on its forward pass).
    progress : bool
        Show a progress bar.

    Returns
    -------
    Result
        Status from fatrop's return flag (0: "converged", 1: "max_iter", else "failed"), or
        "converged" when ``target_loss`` was reached (fatrop is then interrupted); ``history`` has
        one entry per iteration (:class:`_IterationTap`).

    Raises
    ------
    SpecError
        When the problem has no stage-wise structure (:func:`stage_layout`).
    """
    recorder = solver.recorder(problem, progress)
    engine = solver.bind_engine(problem, *solver.batch(problem))  # casadi: the NLP is built from its Functions
    log_iterate = solver.iterate_logger(problem, recorder, engine)
    if log_iterate(w0):
        return make_result(problem, solver, w0, "converged", "target loss reached at w0", recorder, 0, engine.info)
    if solver.max_iter == 0:
        return make_result(problem, solver, w0, "max_iter", "max_iter=0", recorder, 0, engine.info)
    model = solver.casadi_model(problem)
    tr = solver.transcribe(problem, w0)
    layout = stage_layout(model, tr)
    inverse = np.empty_like(layout.z_order)
    inverse[layout.z_order] = np.arange(len(inverse))
    z = ca.MX.sym("z", tr.z.shape[0])
    objective, constraints = ca.Function("nlp", [tr.z], [tr.objective, tr.g])(z[inverse.tolist()])
    nlp = {"x": z, "f": objective, "g": constraints[layout.g_order.tolist()]}
    first = [True]

    def on_iterate(z_value: np.ndarray) -> bool:
        if first.pop() if first else False:  # fatrop's first gradient is at w0, logged above
            return False
        return log_iterate.reached or log_iterate(z_value[inverse][: tr.n_w])

    tap = _IterationTap(z.shape[0], on_iterate)
    gradient = ca.Function("nlp_grad_f", [z, ca.MX.sym("p", 0)], [ca.gradient(objective, z) + tap(z)])
    options = {
        **layout.options(),
        "fatrop": solver.solver_options(),
        "print_time": solver.verbose,
        "cache": {"nlp_grad_f": gradient},
    }
    z_order, g_order = layout.z_order, layout.g_order
    try:
        with casadi_console(solver.verbose, expected=lambda: log_iterate.reached):
            nlpsol = ca.nlpsol("direct_fatrop", "fatrop", nlp, options)
            solution = nlpsol(
                x0=np.clip(tr.z0, tr.lbz, tr.ubz)[z_order],
                lbx=tr.lbz[z_order],
                ubx=tr.ubz[z_order],
                lbg=tr.lbg[g_order],
                ubg=tr.ubg[g_order],
            )
        stats = nlpsol.stats()
    except RuntimeError as exc:  # CasADi raises on evaluation errors and bad options
        if log_iterate.reached:
            return _target_result(solver, problem, recorder, log_iterate, engine.info)
        return make_result(problem, solver, w0, "failed", f"CasADi error: {exc}", recorder, 0, engine.info)
    if log_iterate.reached:
        return _target_result(solver, problem, recorder, log_iterate, engine.info)
    w = np.asarray(solution["x"], dtype=float).ravel()[inverse][: tr.n_w]
    flag = int(stats["fatrop"]["return_flag"])
    status = FATROP_STATUS.get(flag, "failed")
    message = f"fatrop: {FATROP_FLAGS.get(flag, stats.get('unified_return_status', 'unknown'))} (return flag {flag})"
    iterations = int(stats.get("iter_count", 0))
    return make_result(problem, solver, w, status, message, recorder, iterations, engine.info)


def _target_result(
    solver: Direct, problem: TrainingProblem, recorder: Recorder, log_iterate: Any, engine_info: dict[str, Any]
) -> Result:
    """The Result of a fatrop solve stopped at the first iterate whose loss met ``target_loss``."""
    message = f"target loss {solver.target_loss:g} reached (fatrop interrupted)"
    iterations = len(recorder.history) - 1
    return make_result(problem, solver, log_iterate.last_w, "converged", message, recorder, iterations, engine_info)
