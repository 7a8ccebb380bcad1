r"""Direct methods: the training OCP transcribed into an NLP and solved by IPOPT.

Single shooting keeps only w (the control coefficients, readout and lift) as decision variables and
eliminates the states by simulation: minimise J(w) subject to the optional bounds |θ| ≤ M and the
invertibility constraints h²·Lip_x f(·, θ_k)² ≤ c² (a smooth sufficient form of h·‖A_k‖₂·Lip σ ≤ c,
through ‖A‖₂ ≤ ‖A‖_F). The objective is the MX graph of :class:`~control_dl.problems.compiled.CasadiModel`
(per-sample Functions mapped over the samples, folded over the steps).
"""

from __future__ import annotations

from dataclasses import dataclass
from dataclasses import field as dataclass_field
from typing import Any

import casadi as ca
import numpy as np

from .._errors import spec_error
from ..backends import casadi_ops
from ..problems.training import TrainingProblem
from ..result import Result
from .base import Recorder, check_choice, check_positive_float, check_positive_int, make_result
from .checkpoint import check_checkpoint

#: IPOPT return_status -> Result.status
IPOPT_STATUS = {
    "Solve_Succeeded": "converged",
    "Solved_To_Acceptable_Level": "converged",
    "Feasible_Point_Found": "converged",
    "Maximum_Iterations_Exceeded": "max_iter",
    "Maximum_CpuTime_Exceeded": "max_iter",
    "Maximum_WallTime_Exceeded": "max_iter",
    "Diverging_Iterates": "diverged",
    "User_Requested_Stop": "max_iter",
}


class _IterationCallback(ca.Callback):
    """Calls ``on_iterate(x, f)`` at every IPOPT iteration (CasADi ``iteration_callback``)."""

    def __init__(self, n_x: int, n_g: int, on_iterate: Any) -> None:
        ca.Callback.__init__(self)
        self.n_x, self.n_g, self.on_iterate = n_x, n_g, on_iterate
        self.construct("iterations", {})

    def get_n_in(self) -> int:
        return ca.nlpsol_n_out()

    def get_n_out(self) -> int:
        return 1

    def get_name_in(self, i: int) -> str:
        return ca.nlpsol_out(i)

    def get_name_out(self, i: int) -> str:
        return "ret"

    def get_sparsity_in(self, i: int) -> ca.Sparsity:
        name = ca.nlpsol_out(i)
        if name == "f":
            return ca.Sparsity.scalar()
        if name in ("x", "lam_x"):
            return ca.Sparsity.dense(self.n_x)
        if name in ("g", "lam_g"):
            return ca.Sparsity.dense(self.n_g)
        return ca.Sparsity.dense(0)

    def eval(self, arg: list[ca.DM]) -> list[int]:
        self.on_iterate(np.asarray(arg[0], dtype=float).ravel(), float(arg[1]))
        return [0]


@dataclass(frozen=True)
class Direct:
    """CasADi direct method with IPOPT.

    Parameters
    ----------
    transcription : {"single_shooting"}
        How the dynamics enter the NLP.
    hessian : {"exact", "lbfgs"}
        Exact Hessian of the Lagrangian (CasADi AD) or IPOPT's limited-memory quasi-Newton.
    nlp : {"ipopt"}
        NLP solver plugin.
    max_iter : int
        Iteration limit (IPOPT ``max_iter``).
    tol : float
        Convergence tolerance (IPOPT ``tol``).
    verbose : bool
        Show IPOPT's console output.
    ipopt_options : dict
        Further IPOPT options, passed through unchanged (they override the defaults above).
    record_every : int
        Snapshot w every this many iterations (0: never).
    checkpoint : str, optional
        File to which w is saved every ``checkpoint_every`` iterations (resume with ``--resume``).
    checkpoint_every : int
        Checkpoint interval K (0: never).
    """

    transcription: str = "single_shooting"
    hessian: str = "exact"
    nlp: str = "ipopt"
    max_iter: int = 500
    tol: float = 1e-8
    verbose: bool = False
    ipopt_options: dict[str, Any] = dataclass_field(default_factory=dict)
    record_every: int = 0
    checkpoint: str | None = None
    checkpoint_every: int = 0

    kind = "direct"

    def __post_init__(self) -> None:
        check_choice("transcription", self.transcription, ("single_shooting",))
        check_choice("hessian", self.hessian, ("exact", "lbfgs"))
        check_choice("nlp", self.nlp, ("ipopt",))
        check_positive_int("max_iter", self.max_iter, 0)
        check_positive_float("tol", self.tol)
        check_positive_int("record_every", self.record_every, 0)
        check_checkpoint(self.checkpoint, self.checkpoint_every)
        if not isinstance(self.verbose, bool):
            raise spec_error("verbose", self.verbose, "must be true or false")
        if not isinstance(self.ipopt_options, dict):
            raise spec_error("ipopt_options", self.ipopt_options, "must be a table of IPOPT options")

    @property
    def name(self) -> str:
        """Label used in tables: e.g. ``direct-ss-lbfgs``."""
        short = {"single_shooting": "ss"}[self.transcription]
        return f"{self.nlp}-{short}-{self.hessian}"

    def solver_options(self) -> dict[str, Any]:
        """The IPOPT options this solver passes (defaults, then the user's ``ipopt_options``).

        Returns
        -------
        dict
            Options for the ``ipopt`` plugin.
        """
        options: dict[str, Any] = {
            "max_iter": self.max_iter,
            "tol": self.tol,
            "print_level": 5 if self.verbose else 0,
            "sb": "yes",
        }
        if self.hessian == "lbfgs":
            options["hessian_approximation"] = "limited-memory"
        options.update(self.ipopt_options)
        return options

    def build_nlp(self, problem: TrainingProblem) -> tuple[dict[str, ca.MX], dict[str, np.ndarray]]:
        """The NLP {x, f, g} and its bounds.

        Parameters
        ----------
        problem : TrainingProblem
            Problem to transcribe.

        Returns
        -------
        tuple
            ``(nlp, bounds)`` with bounds keys lbx, ubx, lbg, ubg.
        """
        model = problem.casadi
        w = ca.MX.sym("w", problem.n_params)
        j, _ = model.objective_expr(w, ca.DM(problem.data.x_train), ca.DM(problem.targets))
        lbx = np.full(problem.n_params, -np.inf)
        ubx = np.full(problem.n_params, np.inf)
        if problem.constraints.theta_max is not None:
            lbx[: problem.layout.n_theta] = -problem.constraints.theta_max
            ubx[: problem.layout.n_theta] = problem.constraints.theta_max
        g: list[ca.MX] = []
        if problem.constraints.lipschitz is not None:
            g = problem.step_lipschitz_sq(w, casadi_ops)
        n_g = len(g)
        bounds = {
            "lbx": lbx,
            "ubx": ubx,
            "lbg": np.full(n_g, -np.inf),
            "ubg": np.full(n_g, (problem.constraints.lipschitz or 0.0) ** 2),
        }
        return {"x": w, "f": j, "g": ca.vertcat(*g)}, bounds

    def run(self, problem: TrainingProblem, w0: np.ndarray, progress: bool) -> Result:
        """Solve with IPOPT from w0.

        Parameters
        ----------
        problem : TrainingProblem
            The problem.
        w0 : ndarray
            Initial decision vector.
        progress : bool
            Show a progress bar.

        Returns
        -------
        Result
            Status from IPOPT's return status.
        """
        nlp, bounds = self.build_nlp(problem)
        recorder = Recorder(
            problem,
            self.max_iter,
            progress,
            self.record_every,
            desc=self.name,
            checkpoint=self.checkpoint,
            checkpoint_every=self.checkpoint_every,
        )

        def on_iterate(x: np.ndarray, _f: float) -> None:
            # IPOPT's f may belong to a trial point; evaluate J at the accepted iterate x itself
            j, loss = problem.casadi.objective(x, problem.data.x_train, problem.targets)
            recorder.log(len(recorder.history), x, j, loss)

        callback = _IterationCallback(problem.n_params, nlp["g"].shape[0], on_iterate)
        options = {"ipopt": self.solver_options(), "print_time": self.verbose, "iteration_callback": callback}
        try:
            solver = ca.nlpsol("direct", "ipopt", nlp, options)
            solution = solver(x0=w0, **bounds)
            stats = solver.stats()
        except RuntimeError as exc:  # CasADi raises on evaluation errors and bad options
            return make_result(problem, self, w0, "failed", f"CasADi error: {exc}", recorder, len(recorder.history))
        w = np.asarray(solution["x"], dtype=float).ravel()
        ipopt_status = stats.get("return_status", "unknown")
        status = IPOPT_STATUS.get(ipopt_status, "failed")
        iterations = int(stats.get("iter_count", max(len(recorder.history) - 1, 0)))
        return make_result(problem, self, w, status, f"IPOPT: {ipopt_status}", recorder, iterations)
