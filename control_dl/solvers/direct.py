r"""Direct methods: the training OCP transcribed into an NLP (CasADi) and solved by IPOPT or L-BFGS-B.

Transcriptions (:mod:`._transcriptions`): single shooting (z = w, states eliminated by simulation),
multiple shooting (states per step as variables, continuity constraints) and direct collocation
(Legendre/Radau, degree 1–4). Hessians for IPOPT: exact (CasADi AD), Gauss-Newton (sum-of-squares
structure of the loss, generalised for logistic/cross-entropy) or IPOPT's limited-memory BFGS.
``nlp="lbfgsb"`` runs scipy's L-BFGS-B over the JIT-compiled objective and gradient (single
shooting, bounds only; :mod:`._lbfgsb`), the fastest route for unconstrained fits, and with
``lipschitz`` an augmented Lagrangian around it (:mod:`._constrained`, preset ``certified``). ``nlp="fatrop"``
solves the multiple-shooting NLP with fatrop, an interior-point method whose Riccati recursion
exploits the stage structure (:mod:`._fatrop`).

Constraints: |θ| ≤ M on the θ coefficients (``theta_max``), and the invertibility constraints
h²·Lip_x f(·, θ_k)² ≤ c² at every step (a smooth sufficient form of h·‖A_k‖₂·Lip σ ≤ c < 1, through
‖A‖₂ ≤ ‖A‖_F: the Frobenius bound), so a solution is a certified homeomorphism.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import casadi as ca
import numpy as np

from .._errors import check_choice, check_positive_float, check_positive_int, python_scalars, spec_error
from ..engines import Casadi, CasadiModel, Engine, EngineSpec, Torch, casadi_model, check_engine, make_engine
from ..engines._callback import engine_objective
from ..engines._casadi_model import objective_function
from ..engines._jit import compile_function
from ..problems.training import TrainingProblem
from ..result import Result
from . import _transcriptions as transcriptions
from ._console import casadi_console
from ._constrained import run_constrained
from ._fatrop import run_fatrop
from ._lbfgsb import Evaluator, run_lbfgsb
from ._nlp_options import (
    BACKEND_OPTIONS,
    FatropOptions,
    IpoptOptions,
    LbfgsbOptions,
    SqpmethodOptions,
    TrustNcgOptions,
)
from .base import Recorder, make_result
from .checkpoint import check_checkpoint

#: nlp -> the Direct field holding its options object
DEFAULT_LIMITED_MEMORY_INITIALIZATION = "scalar2"
"""IPOPT's initial L-BFGS matrix σI, σ = yᵀy/sᵀy, for every ``hessian="lbfgs"`` run: IPOPT's own default
"scalar1" (σ = sᵀy/sᵀs) takes first steps that leave the feasible set of the Lipschitz rows (ring d = 3:
violation 0.41, J ends at 1.84 from 0.68) and needs 2.4x more iterations unconstrained (docs/guide/solvers.md)."""
_OPTIONS_FIELD = {cls.nlp: name for name, cls in BACKEND_OPTIONS.items()}

#: IPOPT (and sqpmethod, same names) return_status -> Result.status
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
    """Calls ``on_iterate(x, f)`` at every IPOPT iteration (CasADi ``iteration_callback``).

    A true return value of ``on_iterate`` asks IPOPT to stop.
    """

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
        stop = self.on_iterate(np.asarray(arg[0], dtype=float).ravel(), float(arg[1]))
        return [1 if stop else 0]


@dataclass(frozen=True)
class Direct:
    """CasADi direct method: a transcription of the OCP and an NLP solver.

    Parameters
    ----------
    transcription : {"single_shooting", "multiple_shooting", "collocation"}
        How the dynamics enter the NLP.
    hessian : {"exact", "gauss-newton", "lbfgs"}, optional
        IPOPT's Hessian of the Lagrangian: exact (CasADi AD), Gauss-Newton on the loss (exact on
        the regulariser and constraints) or limited-memory BFGS (started from σI with
        ``limited_memory_initialization="scalar2"`` unless ``ipopt_options`` says otherwise). Default: "exact" for IPOPT,
        "lbfgs" (the only choice) for ``nlp="lbfgsb"``, "gauss-newton" (the only choice) for
        ``nlp="sqpmethod"``.
    nlp : {"ipopt", "lbfgsb", "trust-ncg", "fatrop", "sqpmethod"}
        NLP solver: IPOPT through CasADi's nlpsol, scipy's L-BFGS-B over the JIT-compiled
        objective and gradient (single shooting; ``theta_max`` as bounds, ``lipschitz`` by an
        augmented Lagrangian with exact restoration, :mod:`._constrained`),
        scipy's trust-ncg with matrix-free Gauss-Newton products G·v built with ``jtimes``
        (single shooting, no constraints), or
        fatrop through CasADi's nlpsol (multiple shooting, exact Hessian, stage-wise controls), or
        CasADi's ``sqpmethod`` with the QP solver qrqp (single shooting, Gauss-Newton Hessian; for
        small problems: each QP is dense).
    max_iter : int
        Iteration limit.
    tol : float
        Convergence tolerance (IPOPT ``tol``; L-BFGS-B ``gtol`` and ``ftol``).
    verbose : bool
        Show the console output of IPOPT, sqpmethod or fatrop (the scipy back-ends print nothing:
        SpecError). Without it their output (and CasADi's warnings) goes to the ``logging`` logger
        ``control_dl.solvers``, each distinct line once.
    ipopt_options : IpoptOptions or dict, optional
        IPOPT's options object (``nlp="ipopt"`` only); a dict (TOML table ``[ipopt_options]``)
        fills its fields, other keys go to its ``extra`` (IPOPT names, passed through whole).
    record_every : int
        Snapshot w every this many iterations (0: never).
    collocation_degree : int, optional
        K = 1..4 collocation points per step (``transcription="collocation"`` only; default 3).
    collocation_scheme : {"legendre", "radau"}, optional
        Collocation points (``transcription="collocation"`` only; default "legendre").
    jit : bool
        Compile to C (cached on disk): the objective and gradient for ``nlp="lbfgsb"`` and
        ``"trust-ncg"`` (and the Gauss-Newton products); for IPOPT, sqpmethod and fatrop the
        per-iteration history evaluation and, for IPOPT with ``hessian="lbfgs"`` in serial single
        shooting, J and its Jacobian (exact and Gauss-Newton Hessians use the MX graph).
    sqpmethod_options : SqpmethodOptions or dict, optional
        sqpmethod's options object (``nlp="sqpmethod"`` only).
    fatrop_options : FatropOptions or dict, optional
        fatrop's options object (``nlp="fatrop"`` only).
    lbfgsb_options : LbfgsbOptions or dict, optional
        scipy L-BFGS-B's options object (``nlp="lbfgsb"`` only).
    trust_ncg_options : TrustNcgOptions or dict, optional
        scipy trust-ncg's options object (``nlp="trust-ncg"`` only).
    target_loss : float, optional
        Stop (status "converged") as soon as the training loss is ≤ this value (every back-end;
        fatrop, which has no user stop, is interrupted from its per-iteration tap).
    subsample : int, optional
        Fit on this many training samples (evenly spaced indices) instead of all S (all of them
        when it is S or more); the history, ``target_loss`` and the Result use all of them.
    parallelization : {"serial", "thread"}
        How CasADi's ``map`` evaluates the samples (uncompiled Functions; generated C code is
        serial: its OpenMP variant measured 40x slower than serial on the 2-core machine, and the
        CasADi wheel has no OpenMP). With ``nlp="lbfgsb"`` or ``"trust-ncg"``, ``jit`` and
        ``parallelization`` reach only the engine: changed beside ``engine="torch"`` (or a Torch
        spec), or beside a Casadi spec (whose own options count), they are a SpecError.
    checkpoint : str, optional
        File to which w is saved every ``checkpoint_every`` iterations (resume with ``--resume``).
    checkpoint_every : int
        Checkpoint interval K (0: never).
    gauss_newton_damping : float
        μ ≥ 0 added as μ·I to the Gauss-Newton Hessian (Levenberg-Marquardt; ``hessian=
        "gauss-newton"`` only). GN is PSD but often near-singular (e.g. an unregularised readout);
        IPOPT, which has no trust region, then takes huge steps, which μ damps (the ``ipopt-gn``
        preset: μ = 1e-2, monotone on the constrained ring). The default 0 keeps Gauss-Newton's
        fast local convergence: a fixed μ makes the tail linear (the tiny-ring test at tol 1e-10
        ends ``max_iter`` with μ = 1e-2).
    engine : {"auto", "casadi", "torch"} or EngineSpec
        How J, ∇J and G·v are evaluated (:mod:`control_dl.engines`; "casadi" and "auto" take
        ``jit`` and ``parallelization``; "auto" times one J + ∇J on each engine and keeps the
        faster): by ``nlp="lbfgsb"``/``"trust-ncg"``, by IPOPT in single shooting with
        ``hessian="lbfgs"`` (J and ∇J through :func:`~control_dl.engines._callback.engine_objective`
        on a non-CasADi engine), and for the iteration history. Multiple shooting, collocation,
        fatrop, sqpmethod and IPOPT with exact or Gauss-Newton Hessians build sparse CasADi NLPs
        from the casadi engine's per-sample Functions: they accept only "auto" (= casadi there) or
        "casadi" (SpecError otherwise).

    Raises
    ------
    SpecError
        An invalid value, or an option that would not reach the back-end in use (e.g.
        ``ipopt_options`` with ``nlp="lbfgsb"``, ``collocation_degree`` with single shooting,
        ``gauss_newton_damping`` with the exact Hessian).
    """

    transcription: str = "single_shooting"
    hessian: str | None = None
    nlp: str = "ipopt"
    max_iter: int = 500
    tol: float = 1e-8
    verbose: bool = False
    ipopt_options: IpoptOptions | dict[str, Any] | None = None
    record_every: int = 0
    checkpoint: str | None = None
    checkpoint_every: int = 0
    collocation_degree: int | None = None
    collocation_scheme: str | None = None
    jit: bool = True
    lbfgsb_options: LbfgsbOptions | dict[str, Any] | None = None
    fatrop_options: FatropOptions | dict[str, Any] | None = None
    sqpmethod_options: SqpmethodOptions | dict[str, Any] | None = None
    trust_ncg_options: TrustNcgOptions | dict[str, Any] | None = None
    target_loss: float | None = None
    subsample: int | None = None
    parallelization: str = "serial"
    gauss_newton_damping: float = 0.0
    engine: str | EngineSpec = "auto"

    kind = "direct"

    def __post_init__(self) -> None:
        python_scalars(self)
        check_choice("transcription", self.transcription, tuple(transcriptions.SHORT))
        check_choice("nlp", self.nlp, ("ipopt", "lbfgsb", "trust-ncg", "fatrop", "sqpmethod"))
        if self.hessian is None:
            default = {"lbfgsb": "lbfgs", "sqpmethod": "gauss-newton", "trust-ncg": "gauss-newton"}.get(
                self.nlp, "exact"
            )
            object.__setattr__(self, "hessian", default)
        check_choice("hessian", self.hessian, ("exact", "gauss-newton", "lbfgs"))
        if self.nlp == "lbfgsb" and self.hessian != "lbfgs":
            raise spec_error("hessian", self.hessian, "nlp='lbfgsb' is a quasi-Newton method: use 'lbfgs'")
        if self.nlp == "trust-ncg" and self.hessian != "gauss-newton":
            raise spec_error("hessian", self.hessian, "nlp='trust-ncg' uses Gauss-Newton products: use 'gauss-newton'")
        if self.nlp in ("lbfgsb", "trust-ncg") and self.transcription != "single_shooting":
            raise spec_error("transcription", self.transcription, f"nlp={self.nlp!r} needs 'single_shooting'")
        if self.nlp == "fatrop" and self.transcription != "multiple_shooting":
            raise spec_error("transcription", self.transcription, "nlp='fatrop' needs 'multiple_shooting'")
        if self.nlp == "fatrop" and self.hessian != "exact":
            raise spec_error("hessian", self.hessian, "nlp='fatrop' uses the exact Hessian")
        if self.nlp == "sqpmethod" and self.hessian != "gauss-newton":
            raise spec_error("hessian", self.hessian, "nlp='sqpmethod' needs 'gauss-newton' (a convex QP for qrqp)")
        if self.nlp == "sqpmethod" and self.transcription != "single_shooting":
            raise spec_error("transcription", self.transcription, "nlp='sqpmethod' needs 'single_shooting'")
        check_positive_int("max_iter", self.max_iter, 0)
        check_positive_float("tol", self.tol)
        check_positive_int("record_every", self.record_every, 0)
        object.__setattr__(self, "checkpoint", check_checkpoint(self.checkpoint, self.checkpoint_every))
        self._check_collocation()
        check_choice("parallelization", self.parallelization, ("serial", "thread"))
        if self._thread_map_unused(self.jit, self.parallelization):
            raise spec_error(
                "parallelization",
                self.parallelization,
                f"applies to uncompiled maps: set jit=false with nlp={self.nlp!r}",
            )
        check_positive_float("gauss_newton_damping", self.gauss_newton_damping, allow_zero=True)
        if self.gauss_newton_damping > 0 and self.hessian != "gauss-newton":
            raise spec_error(
                "gauss_newton_damping",
                self.gauss_newton_damping,
                f"damps the Gauss-Newton Hessian; hessian={self.hessian!r}",
            )
        if self.target_loss is not None:
            check_positive_float("target_loss", self.target_loss, allow_zero=True)
        if self.subsample is not None:
            check_positive_int("subsample", self.subsample, 1)
        self._check_engine()
        for flag in ("verbose", "jit"):
            if not isinstance(getattr(self, flag), bool):
                raise spec_error(flag, getattr(self, flag), "must be true or false")
        if self.verbose and self.nlp in ("lbfgsb", "trust-ncg"):
            raise spec_error(
                "verbose", self.verbose, f"nlp={self.nlp!r} prints nothing: use progress or Result.history"
            )
        self._bind_backend_options()

    def _check_collocation(self) -> None:
        """collocation_degree / collocation_scheme: only with collocation (then defaults 3, "legendre")."""
        if self.transcription != "collocation":
            for name in ("collocation_degree", "collocation_scheme"):
                if getattr(self, name) is not None:
                    raise spec_error(
                        name,
                        getattr(self, name),
                        f"applies to transcription='collocation' only, not {self.transcription!r}",
                    )
            return
        if self.collocation_degree is None:
            object.__setattr__(self, "collocation_degree", 3)
        if self.collocation_scheme is None:
            object.__setattr__(self, "collocation_scheme", "legendre")
        check_positive_int("collocation_degree", self.collocation_degree, 1)
        if self.collocation_degree > 4:
            raise spec_error("collocation_degree", self.collocation_degree, "must be 1, 2, 3 or 4")
        check_choice("collocation_scheme", self.collocation_scheme, ("legendre", "radau"))

    def _bind_backend_options(self) -> None:
        """Each ``*_options`` field becomes its options object; only the back-end in use keeps one
        (its defaults when unset). Options given for any other back-end are a SpecError, an empty
        table or a default object too (they would be dropped without a word)."""
        for name, cls in BACKEND_OPTIONS.items():
            value = getattr(self, name)
            options = cls.from_table(value)
            if cls.nlp == self.nlp:
                object.__setattr__(self, name, options)
            elif value is not None:
                raise spec_error(
                    name, value, f"reach nlp={cls.nlp!r} only; nlp={self.nlp!r} takes {_OPTIONS_FIELD[self.nlp]}"
                )

    @property
    def backend_options(self) -> Any:
        """The options object of the back-end in use (e.g. :class:`IpoptOptions` for ``nlp="ipopt"``).

        Returns
        -------
        IpoptOptions, LbfgsbOptions, TrustNcgOptions, FatropOptions or SqpmethodOptions
            The object passed to the back-end.
        """
        return getattr(self, _OPTIONS_FIELD[self.nlp])

    def _check_engine(self) -> None:
        """SpecError unless ``engine`` is a registered name or a spec this NLP can use."""
        check_engine(self.engine)
        own = {"jit": (self.jit, True), "parallelization": (self.parallelization, "serial")}
        changed = [name for name, (value, default) in own.items() if value != default]
        if changed and self.nlp in ("lbfgsb", "trust-ncg"):  # these NLPs use the options only through the engine
            if self.engine == "torch" or isinstance(self.engine, Torch):
                raise spec_error(
                    changed[0],
                    own[changed[0]][0],
                    "configures the CasADi engine; engine='torch' evaluates J and ∇J in torch (leave it unset)",
                )
            if isinstance(self.engine, Casadi):
                raise spec_error(
                    changed[0],
                    own[changed[0]][0],
                    "does not reach an engine given as a Casadi spec: set it on the spec (Casadi(jit=..., "
                    "parallelization=...))",
                )
        spec = self.engine
        if isinstance(spec, Casadi) and self._thread_map_unused(spec.jit, spec.parallelization):
            raise spec_error(
                "engine",
                spec,
                f"parallelization={spec.parallelization!r} applies to uncompiled maps: nlp={self.nlp!r} evaluates only the "
                "compiled J, ∇J (and G·v), which are serial; use Casadi(jit=False, parallelization=...)",
            )
        if not self.takes_any_engine and self.engine not in ("auto", "casadi") and not isinstance(self.engine, Casadi):
            raise spec_error(
                "engine", self.engine, f"nlp={self.nlp!r} builds its NLP from CasADi Functions: use 'auto' or 'casadi'"
            )

    def _thread_map_unused(self, jit: bool, parallelization: str) -> bool:
        """Whether a threaded CasADi map would never run: the scipy NLPs evaluate only the compiled
        J, ∇J (and G·v), and compiled code is serial."""
        return self.nlp in ("lbfgsb", "trust-ncg") and jit and parallelization != "serial"

    @property
    def takes_any_engine(self) -> bool:
        """Whether this NLP needs only J and ∇J (or G·v), so any engine can evaluate it."""
        single_lbfgs = self.nlp == "ipopt" and self.transcription == "single_shooting" and self.hessian == "lbfgs"
        return self.nlp in ("lbfgsb", "trust-ncg") or single_lbfgs

    def bind_engine(self, problem: TrainingProblem, x: np.ndarray, y: np.ndarray) -> Engine:
        """This solver's engine bound to the batch (x, y).

        Parameters
        ----------
        problem : TrainingProblem
            The problem.
        x, y : ndarray
            Inputs ``n_in × S`` and encoded targets ``n_out × S``.

        Returns
        -------
        Engine
            "casadi" is ``Casadi(jit, parallelization)`` with this solver's options, "auto" the
            faster of it and the torch engine (casadi where the NLP needs CasADi Functions); so
            do the local "casadi" and "auto" of a Dask engine's shards; another spec is bound as
            given.
        """
        casadi = Casadi(jit=self.jit, parallelization=self.parallelization)
        spec = casadi if self.engine == "auto" and not self.takes_any_engine else self.engine
        return make_engine(spec, problem, x, y, casadi=casadi)

    @property
    def name(self) -> str:
        """Label used in tables: e.g. ``ipopt-ss-exact``, ``lbfgsb-ss-lbfgs``."""
        return f"{self.nlp}-{transcriptions.SHORT[self.transcription]}-{self.hessian}"

    def casadi_model(self, problem: TrainingProblem) -> CasadiModel:
        """The problem's CasADi view with this solver's ``parallelization``.

        Parameters
        ----------
        problem : TrainingProblem
            The problem.

        Returns
        -------
        CasadiModel
            The problem's cached model with this parallelization.
        """
        return casadi_model(problem, self.parallelization)

    def batch(self, problem: TrainingProblem) -> tuple[np.ndarray, np.ndarray]:
        """The training batch (x, y) the NLP is built on: all S columns or ``subsample`` of them.

        Parameters
        ----------
        problem : TrainingProblem
            The problem.

        Returns
        -------
        tuple of ndarray
            Inputs ``n_in × S'`` and encoded targets ``n_out × S'``.
        """
        x, y = problem.data.x_train, problem.targets
        if self.subsample is None or self.subsample >= x.shape[1]:
            return x, y
        index = np.unique(np.linspace(0, x.shape[1] - 1, self.subsample).round().astype(int))
        return x[:, index], y[:, index]

    def solver_options(self) -> dict[str, Any]:
        """The options this solver passes to its back-end ``nlp`` (defaults, then the user's options object).

        Returns
        -------
        dict
            ``nlp="ipopt"``: the ``ipopt`` plugin's options; ``"sqpmethod"``: the nlpsol options of
            :meth:`sqpmethod_solver_options`; ``"fatrop"``: the ``fatrop`` plugin's options;
            ``"lbfgsb"`` / ``"trust-ncg"``: the ``options`` of ``scipy.optimize.minimize``.
        """
        if self.nlp == "sqpmethod":
            return self.sqpmethod_solver_options()
        if self.nlp == "fatrop":
            return {
                # fatrop runs m + 1 iterations for its max_iter = m ≥ 1 (none for 0; measured): m − 1 gives
                # m for m ≥ 2; max_iter = 1 cannot be had and runs 2, which Result.iterations reports
                "max_iter": self.max_iter - 1 if self.max_iter >= 2 else self.max_iter,
                "tol": self.tol,
                "print_level": 5 if self.verbose else 0,
                **self.fatrop_options.plugin_options(),
            }
        if self.nlp in ("lbfgsb", "trust-ncg"):
            return self.backend_options.scipy_options(self.max_iter, self.tol)
        return self._ipopt_options()

    def _ipopt_options(self) -> dict[str, Any]:
        """The ``ipopt`` plugin's options: defaults, then the user's ``ipopt_options``."""
        options: dict[str, Any] = {
            "max_iter": self.max_iter,
            "tol": self.tol,
            "print_level": 5 if self.verbose else 0,
            "sb": "yes",
        }
        if self.hessian == "lbfgs":
            options["hessian_approximation"] = "limited-memory"
            options["limited_memory_initialization"] = DEFAULT_LIMITED_MEMORY_INITIALIZATION
        options.update(self.ipopt_options.plugin_options())
        return options

    def sqpmethod_solver_options(self) -> dict[str, Any]:
        """The sqpmethod options this solver passes (defaults, then the user's ``sqpmethod_options``).

        Returns
        -------
        dict
            nlpsol options of the ``sqpmethod`` plugin with the active-set QP solver ``qrqp``.
        """
        options: dict[str, Any] = {
            "max_iter": self.max_iter,
            "tol_pr": self.tol,
            "tol_du": self.tol,
            "print_header": self.verbose,
            "print_iteration": self.verbose,
            "print_status": self.verbose,
        }
        options.update(self.sqpmethod_options.plugin_options())
        if options["qpsol"] == "qrqp":
            quiet = {"print_iter": False, "print_header": False, "error_on_fail": False}
            options["qpsol_options"] = {**quiet, **options.get("qpsol_options", {})}
        return options

    def recorder(self, problem: TrainingProblem, progress: bool) -> Recorder:
        """The Recorder of one solve (history, snapshots, checkpoints, progress bar).

        Parameters
        ----------
        problem : TrainingProblem
            The problem.
        progress : bool
            Show a progress bar.

        Returns
        -------
        Recorder
            Configured with this solver's ``record_every`` and checkpoint options.
        """
        return Recorder(
            problem,
            self.max_iter,
            progress,
            self.record_every,
            desc=self.name,
            checkpoint=self.checkpoint,
            checkpoint_every=self.checkpoint_every,
        )

    def transcribe(self, problem: TrainingProblem, w0: np.ndarray) -> transcriptions.Transcription:
        """The NLP of this solver's transcription.

        Parameters
        ----------
        problem : TrainingProblem
            Problem to transcribe.
        w0 : ndarray
            Initial guess, ``(n_params,)`` (the states' initial guess is its forward pass).

        Returns
        -------
        Transcription
            Decision vector, objective terms, constraints and bounds.
        """
        model, (x, y) = self.casadi_model(problem), self.batch(problem)
        if self.transcription == "single_shooting":
            return transcriptions.single_shooting(model, x, y, w0)
        if self.transcription == "multiple_shooting":
            return transcriptions.multiple_shooting(model, x, y, w0)
        return transcriptions.collocation(model, x, y, w0, self.collocation_degree, self.collocation_scheme)

    def objective_for_ipopt(self, problem: TrainingProblem, tr: transcriptions.Transcription, engine: Engine) -> Any:
        """J as IPOPT sees it: the MX graph; or, in single shooting with a quasi-Newton Hessian, the
        engine's J and ∇J: a call of the compiled CasADi J whose compiled Jacobian gives ∇J (3x
        faster than the MX graph on ring) on the casadi engine, a Callback into any other engine.

        Parameters
        ----------
        problem : TrainingProblem
            The problem.
        tr : Transcription
            The NLP.
        engine : Engine
            The solver's engine on the NLP's batch.

        Returns
        -------
        casadi.MX
            The objective expression in ``tr.z`` (1 × 1), and the Callback to keep alive (or None).
        """
        if not (self.transcription == "single_shooting" and self.hessian == "lbfgs"):
            return tr.objective, None
        if engine.name != "casadi":
            callback = engine_objective(engine)
            return callback(tr.z), callback
        if not (self.jit and self.parallelization == "serial"):
            return tr.objective, None
        x, y = self.batch(problem)
        compiled, _ = compile_function(objective_function(self.casadi_model(problem), x.shape[1]), with_jacobian=True)
        return compiled(tr.z, ca.DM(x), ca.DM(y)), None

    def run(self, problem: TrainingProblem, w0: np.ndarray, progress: bool) -> Result:
        """Solve from w0.

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
            Status from IPOPT's or sqpmethod's return status (scipy's for L-BFGS-B, fatrop's
            return flag for fatrop); failures are never raised.
        """
        if self.nlp == "lbfgsb" and problem.constraints.lipschitz is not None:
            return run_constrained(self, problem, w0, progress)
        if self.nlp in ("lbfgsb", "trust-ncg"):
            return run_lbfgsb(self, problem, w0, progress)
        if self.nlp == "fatrop":
            return run_fatrop(self, problem, w0, progress)
        recorder = self.recorder(problem, progress)
        tr = self.transcribe(problem, w0)
        x, y = self.batch(problem)
        engine = self.bind_engine(problem, x, y)
        log_iterate = self.iterate_logger(problem, recorder, engine)
        collocation = self.transcription == "collocation"

        engine_errors: list[RuntimeError] = []

        def on_iterate(z: np.ndarray, f: float) -> bool:
            # log J at w by simulation (IPOPT's f belongs to the NLP's own states); for collocation
            # IPOPT's f (the collocation objective) is kept beside it as nlp_objective
            if callback is not None and callback.errors:  # the engine failed on a trial point: stop, as guided
                engine_errors.extend(callback.errors)
                return True
            try:
                return log_iterate(z[: tr.n_w], **({"nlp_objective": f} if collocation else {}))
            except RuntimeError as exc:  # the engine failed (a Dask engine without workers): stop IPOPT
                engine_errors.append(exc)
                return True

        options: dict[str, Any] = {
            "print_time": self.verbose,
            "iteration_callback": _IterationCallback(tr.z.shape[0], tr.g.shape[0], on_iterate),
        }
        if self.nlp == "sqpmethod":
            options.update(self.sqpmethod_solver_options())
        else:
            options["ipopt"] = self._ipopt_options()
        if self.hessian == "gauss-newton":
            hessian = transcriptions.gauss_newton_hessian(tr, self.casadi_model(problem), self.gauss_newton_damping)
            options["hess_lag"] = hessian if self.nlp == "ipopt" else transcriptions.symmetric_hessian(hessian)
        bounds = {"lbx": tr.lbz, "ubx": tr.ubz, "lbg": tr.lbg, "ubg": tr.ubg}
        objective, callback = self.objective_for_ipopt(problem, tr, engine)
        nlp = {"x": tr.z, "f": objective, "g": tr.g}
        label = "IPOPT" if self.nlp == "ipopt" else "sqpmethod"
        try:
            with casadi_console(self.verbose) as console:
                solver = ca.nlpsol("direct", self.nlp, nlp, options)
                solution = solver(x0=np.clip(tr.z0, tr.lbz, tr.ubz), **bounds)
            stats = solver.stats()
        except RuntimeError as exc:  # CasADi raises on evaluation errors and bad options
            return make_result(
                problem, self, w0, "failed", f"CasADi error: {exc}", recorder, len(recorder.history), engine.info
            )
        if engine_errors:  # IPOPT treats a failed f as a step to shorten: the stop came from on_iterate
            message = f"{label} stopped: engine error: {engine_errors[0]}; returned the last logged iterate"
            iterations = len(recorder.history) - 1
            return make_result(problem, self, recorder.w_last, "failed", message, recorder, iterations, engine.info)
        w = np.asarray(solution["x"], dtype=float).ravel()[: tr.n_w]
        nlp_status = stats.get("return_status", "unknown")
        reached = log_iterate.reached
        status = "converged" if reached else IPOPT_STATUS.get(nlp_status, "failed")
        message = f"target loss {self.target_loss:g} reached" if reached else f"{label}: {nlp_status}"
        if console.summary():
            message += f"; CasADi printed {console.summary()}"
        if collocation:
            message += (
                f"; {label}'s status refers to the collocation NLP (objective {float(solution['f']):.6g}, history "
                f"'nlp_objective'); Result.objective, history 'objective' and target_loss use J of the "
                f"{problem.integrator} re-simulation of w"
            )
        iterations = int(stats.get("iter_count", max(len(recorder.history) - 1, 0)))
        return make_result(problem, self, w, status, message, recorder, iterations, engine.info)

    def iterate_logger(
        self, problem: TrainingProblem, recorder: Recorder, engine: Engine | None = None
    ) -> _IterateLogger:
        """The per-iteration logger of the CasADi back-ends: J, the loss (and ‖∇J‖, accuracy with
        ``jit``) at w by simulation on all training samples, and the ``target_loss`` test.

        Parameters
        ----------
        problem : TrainingProblem
            The problem.
        recorder : Recorder
            Where the iterations go.
        engine : Engine, optional
            The solver's engine, reused when it is bound to all training samples.

        Returns
        -------
        callable
            ``log(w, **extra) -> bool`` (True: the target loss is reached); its ``reached``
            attribute tells afterwards.
        """
        x, y = problem.data.x_train, problem.targets
        if engine is None or engine.n_samples != x.shape[1]:
            engine = self.bind_engine(problem, x, y) if self.jit else None
        evaluate = Evaluator(engine) if engine is not None else None
        return _IterateLogger(problem, recorder, evaluate, self.target_loss)


class _IterateLogger:
    """Logs w (J and loss by simulation) and tests the target loss; see :meth:`Direct.iterate_logger`."""

    def __init__(self, problem: TrainingProblem, recorder: Recorder, evaluate: Any, target: float | None) -> None:
        self.problem, self.recorder, self.evaluate, self.target = problem, recorder, evaluate, target
        self.reached = False
        self.last_w: np.ndarray | None = None

    def __call__(self, w: np.ndarray, **extra: float) -> bool:
        problem = self.problem
        if self.evaluate is None:
            j, loss = casadi_model(problem).objective(w, problem.data.x_train, problem.targets)
        else:
            j, loss, _, more = self.evaluate(w)
            extra = {**more, **extra}
        self.recorder.log(len(self.recorder.history), w, j, loss, **extra)
        self.last_w = np.array(w, dtype=float, copy=True)
        self.reached = self.reached or (self.target is not None and loss <= self.target)
        return self.reached
