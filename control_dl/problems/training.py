r"""The training optimal control problem, written once against ``ops``.

    minimise_{θ(·), P, c, (L, l)}  J(θ) = (1/S) Σ_i ℓ(P x_i(T) + c, y_i) + R(θ) + running terms
    subject to  x_i(0) = λ1(x_i),   x_{k+1} = Φ_h(x_k, θ(t_k + c_s h))   (Euler: x_k + h f(x_k, θ_k))

The same code evaluates J in numpy, CasADi and torch: see :class:`TrainingProblem`. The stage maps
x_{k+1} = F_k(x_k, Θ_k), the θ blocks of w and R(θ) come from the problem's :attr:`~TrainingProblem.dynamics`
(:mod:`control_dl.problems.dynamics`): a :class:`~control_dl.problems.dynamics.Flow` built from
(field, dim, control, horizon, integrator), or a
:class:`~control_dl.problems.dynamics.LayerStack` for ``model=FeedForward(widths)`` (layer maps
x_{k+1} = σ(A_k x_k + b_k)); this module adds data, lift, readout and costs and never asks which.
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from dataclasses import field as dataclass_field
from functools import cached_property
from typing import Any

import numpy as np

from .._errors import (
    SpecError,
    check_positive_float,
    check_positive_int,
    is_integer,
    is_number,
    python_scalars,
    spec_error,
)
from ..backends import get_ops, numpy_ops
from . import lipschitz
from .controls import Control, PiecewiseConstant
from .costs import Constraints, Cost, check_loss, encode_targets, loss_per_sample, predict_labels
from .datasets import Dataset, as_features
from .dynamics import Dynamics, Flow, LayerStack
from .feedforward import FeedForward
from .fields import Inside, VectorField, check_field
from .integrators import Integrator, get_integrator
from .layout import Layout


@dataclass(frozen=True, eq=False)
class TrainingProblem:
    """A neural-ODE training problem: data, model, control, cost and constraints.

    Parameters
    ----------
    data : Dataset
        Training and test data.
    field : VectorField
        The dynamics f(x, θ) (default :class:`Inside` with tanh).
    dim : int, optional
        State dimension d ≥ n_in (default n_in). d > n_in is the augmented case: λ1 pads with zeros.
    control : Control
        θ(t) parametrisation and integration grid (default ``PiecewiseConstant(20)``).
    horizon : float
        Final time T > 0.
    integrator : {"euler", "rk4"}
        Time stepping (Euler is the ResNet).
    cost : Cost
        Loss and weights.
    constraints : Constraints
        Bounds and the invertibility constraint (enforced by the solvers).
    lift : {"pad", "affine"}
        λ1: fixed zero padding, or trainable affine map L x + l.
    spec : dict, optional
        The specification this problem was built from (set by :func:`load_problem`, stored in
        results so they can be reloaded with their problem).
    model : FeedForward or Dynamics, optional
        A feed-forward network (or any :class:`~control_dl.problems.dynamics.Dynamics`) in place of
        (field, dim, control, integrator, lift), which must then keep their defaults. Without a
        readout its state widths must start at n_in and end at the loss's output size (λ2 is the
        identity: no P, c in w); ``dim`` becomes the largest width, ``n_steps`` the number of
        layers L and ``horizon`` L·h. Without a vector field only the l2 and l1 regularisers apply
        (α h Σ_k ‖θ_k‖², γ h Σ_k Σ(√(θ_k² + ε²) − ε)); h1, turnpike, tracking and lipschitz are
        SpecErrors.

    Attributes
    ----------
    dynamics : Dynamics
        The stage maps, θ blocks and R(θ) every engine and solver uses.

    Raises
    ------
    SpecError
        A component of the wrong type (``data``, ``field``, ``control``, ``cost``, ``constraints``),
        ``dim`` < n_in, ``horizon`` not a finite number > 0, an unknown ``integrator`` or ``lift``, a
        loss that does not fit the data, or options that do not fit the model (the message names the field).
    """

    data: Dataset
    field: VectorField = dataclass_field(default_factory=Inside)
    dim: int | None = None
    control: Control = dataclass_field(default_factory=PiecewiseConstant)
    horizon: float = 1.0
    integrator: str = "euler"
    cost: Cost = dataclass_field(default_factory=Cost)
    constraints: Constraints = dataclass_field(default_factory=Constraints)
    lift: str = "pad"
    spec: dict | None = None
    model: FeedForward | Dynamics | None = None

    def __repr__(self) -> str:
        """The fields that define the problem: a ``model`` replaces (field, dim, control, horizon,
        integrator, lift), which it leaves at their unused defaults; the spec is left out."""
        if self.model is not None:
            shown = ("data", "model", "cost", "constraints")
        else:
            shown = ("data", "field", "dim", "control", "horizon", "integrator", "lift", "cost", "constraints")
        return f"TrainingProblem({', '.join(f'{name}={getattr(self, name)!r}' for name in shown)})"

    def __post_init__(self) -> None:
        python_scalars(self)
        if not isinstance(self.data, Dataset):
            raise spec_error("data", type(self.data).__name__, "must be a control_dl Dataset")
        if not isinstance(self.field, VectorField):
            raise spec_error("field", type(self.field).__name__, "must implement param_shapes() and __call__()")
        if not isinstance(self.control, Control):
            raise spec_error("control", type(self.control).__name__, "must be a control_dl Control")
        if not isinstance(self.cost, Cost):
            raise spec_error(
                "cost", type(self.cost).__name__, "must be a control_dl Cost, e.g. Cost(loss='mse', l2=1e-3)"
            )
        if not isinstance(self.constraints, Constraints):
            raise spec_error(
                "constraints",
                type(self.constraints).__name__,
                "must be a control_dl Constraints, e.g. Constraints(lipschitz=0.9)",
            )
        dim = self.data.n_in if self.dim is None else self.dim
        if not is_integer(dim) or dim < self.data.n_in:
            raise spec_error("dim", dim, f"must be an integer >= the input dimension {self.data.n_in}")
        object.__setattr__(self, "dim", int(dim))
        check_field(self.field, self.dim)
        horizon = self.horizon
        if not is_number(horizon) or not (0 < horizon < np.inf):
            raise spec_error("horizon", horizon, "must be a finite number > 0")
        object.__setattr__(self, "horizon", float(horizon))
        get_integrator(self.integrator)
        if self.lift not in ("pad", "affine"):
            raise spec_error("lift", self.lift, "must be 'pad' or 'affine'")
        check_loss(
            self.cost.loss, encode_targets(self.data.task, self.cost.loss, self.data.y_train, self.data.n_classes)
        )
        if self.model is not None:
            self._check_model()
        if self.dynamics.vector_field is None:
            self._check_discrete()

    def _check_model(self) -> None:
        """Checks of ``model=``: the flow's own options keep their defaults, the widths fit the data."""
        model = self.model
        if not isinstance(model, (FeedForward, Dynamics)):
            raise spec_error("model", type(model).__name__, "must be a control_dl FeedForward or Dynamics")
        dynamics, name = self.dynamics, type(model).__name__
        widths = list(dynamics.state_dims)
        if not dynamics.has_readout and widths[0] != self.data.n_in:
            raise spec_error("widths", widths, f"must start with the input size n_in={self.data.n_in}")
        n_out = self.targets.shape[0]
        if not dynamics.has_readout and widths[-1] != n_out:
            raise spec_error("widths", widths, f"must end with the output size {n_out} of loss {self.cost.loss!r}")
        if dynamics.has_readout and len(set(widths)) != 1:
            raise spec_error("model", name, f"has a readout λ2 = P x + c, which needs one state width d (got {widths})")
        horizon = dynamics.n_steps * dynamics.step_size
        flow_only = {
            "field": self.field != Inside(),
            "control": self.control != PiecewiseConstant(),
            "integrator": self.integrator != "euler",
            "lift": self.lift != "pad",
            "horizon": self.horizon not in (1.0, horizon),
        }
        for option, changed in flow_only.items():
            if changed:
                raise spec_error(option, getattr(self, option), f"does not apply to a {name} model")
        if self.dim != self.data.n_in and self.dim != max(widths):
            raise spec_error("dim", self.dim, f"does not apply to a {name} model (its widths set it)")
        object.__setattr__(self, "dim", max(widths))
        object.__setattr__(self, "horizon", horizon)

    def _check_discrete(self) -> None:
        """Terms that need x(t) and θ(t) between the stages exist only for a vector field."""
        name = type(self.model).__name__
        for term in ("h1", "turnpike", "tracking"):
            if getattr(self.cost, term) > 0:
                raise spec_error(term, getattr(self.cost, term), f"is not defined for a {name} model")
        if self.constraints.lipschitz is not None:
            raise spec_error("lipschitz", self.constraints.lipschitz, f"is not defined for a {name} model")

    # ----------------------------------------------------------------------------- structure
    @cached_property
    def dynamics(self) -> Dynamics:
        """The model as :class:`~control_dl.problems.dynamics.Dynamics` (what engines and solvers see).

        ``model`` itself when it is a Dynamics, a LayerStack for a FeedForward, else the Flow of
        (field, dim, control, horizon, integrator).
        """
        if isinstance(self.model, Dynamics):
            return self.model
        if isinstance(self.model, FeedForward):
            return LayerStack(self.model)
        return Flow(self.field, self.dim, self.control, self.horizon, self.integrator)

    @cached_property
    def layout(self) -> Layout:
        """Offsets of the blocks of w (see :mod:`control_dl.problems.layout`)."""
        return Layout(
            block_shapes=self.dynamics.block_shapes,
            dim=self.dim,
            n_in=self.data.n_in,
            n_out=self.targets.shape[0],
            has_readout=self.dynamics.has_readout,
            affine_lift=self.lift == "affine",
        )

    @cached_property
    def targets(self) -> np.ndarray:
        """Training targets encoded for the loss, ``n_out × S``."""
        return encode_targets(self.data.task, self.cost.loss, self.data.y_train, self.data.n_classes)

    @cached_property
    def test_targets(self) -> np.ndarray:
        """Test targets encoded for the loss."""
        return encode_targets(self.data.task, self.cost.loss, self.data.y_test, self.data.n_classes)

    @property
    def scheme(self) -> Integrator:
        """The integrator object."""
        return get_integrator(self.integrator)

    @property
    def n_steps(self) -> int:
        """Number N of stages (integration steps; L layers for a feed-forward model)."""
        return self.dynamics.n_steps

    @property
    def step_size(self) -> float:
        """h = T / N (the FeedForward ``step`` for a feed-forward model)."""
        return self.dynamics.step_size

    @property
    def state_dims(self) -> tuple[int, ...]:
        """Dimensions of x_0, …, x_N: d every step, or the widths of a feed-forward model."""
        return self.dynamics.state_dims

    @property
    def times(self) -> np.ndarray:
        """Grid t_k = k h, k = 0..N."""
        return np.linspace(0.0, self.horizon, self.n_steps + 1)

    @property
    def n_params(self) -> int:
        """Length of the decision vector w."""
        return self.layout.n_params

    @property
    def stage_weights(self) -> np.ndarray | None:
        """Basis weights at every integrator node, shape ``(N, n_nodes, n_coeffs)`` (None: layers)."""
        return self.dynamics.stage_weights

    # ----------------------------------------------------------------------- model, written once
    def theta_vector(self, w: Any, weights: Sequence[float], ops: Any) -> Any:
        """θ = Σ_j weights_j C_j for basis weights at one time (only non-zero terms are formed).

        Parameters
        ----------
        w : array
            Decision vector (any backend).
        weights : ndarray
            Basis weights, shape ``(n_coeffs,)``.
        ops : namespace
            Backend.

        Returns
        -------
        array
            θ, a flat vector of p entries.
        """
        return self.dynamics.theta_vector(w, weights, ops)

    def rhs(self, x: Any, theta: Any, ops: Any) -> Any:
        """f(x, θ) for a flat θ: unpack by the field's shapes and evaluate the field.

        Parameters
        ----------
        x : array
            States, ``d × S`` (one column per sample).
        theta : array
            θ at one time, flat (length p, the layout's order).
        ops : Ops
            Backend namespace.

        Returns
        -------
        array
            f(x, θ), ``d × S``.
        """
        return self.dynamics.rhs(x, theta, ops)

    def step(self, x: Any, thetas: list[Any], ops: Any, k: int | None = None) -> Any:
        """One stage x_{k+1} = F_k(x_k, Θ_k): Φ_h of a flow, layer k's map of a feed-forward model.

        Parameters
        ----------
        x : array
            States x_k, one column per sample.
        thetas : list
            θ at the integrator nodes of step k (:meth:`stage_thetas`).
        ops : namespace
            Backend.
        k : int, optional
            Stage index: required when the stages differ (a feed-forward model's layers), optional
            for a flow (one map Φ_h for every step).

        Returns
        -------
        array
            x_{k+1}, ``d_{k+1} × S``.

        Raises
        ------
        SpecError
            k is missing and the model's stages differ, or k is not a stage index in 0..N-1.
        """
        if k is None:
            if not self.dynamics.shared_step:
                raise spec_error(
                    "k", None, f"a {type(self.model).__name__} problem needs the stage index: step(x, thetas, ops, k)"
                )
            k = 0
        return self.dynamics.step(self._stage(k), x, thetas, ops)

    def _stage(self, k: Any) -> int:
        """``k`` as a stage index in 0..N-1, or a SpecError naming it (a float, a layer past the last)."""
        if not is_integer(k) or not 0 <= k < self.n_steps:
            raise spec_error(
                "k", k, f"must be a stage index, an integer in [0, {self.n_steps - 1}] (N = {self.n_steps})"
            )
        return int(k)

    def lift_states(self, x: Any, lift: dict[str, Any], ops: Any) -> Any:
        """λ1: zero-pad ``n_in × S`` inputs to ``d × S``, or apply L x + l (identity for an MLP).

        Parameters
        ----------
        x : array
            Inputs, ``n_in × S``.
        lift : dict
            L and l (``layout.lift(w, ops)``); empty for the fixed padding.
        ops : Ops
            Backend namespace.

        Returns
        -------
        array
            x(0), ``d × S``.
        """
        if lift:
            return ops.affine(lift["L"], x, lift["l"])
        d0 = self.state_dims[0]
        if d0 == self.data.n_in:
            return x
        return ops.vstack([x, ops.zeros((d0 - self.data.n_in, x.shape[1]))])

    def readout(self, x: Any, readout: dict[str, Any], ops: Any) -> Any:
        """λ2(x) = P x + c (the identity when the readout is empty, as for a feed-forward model).

        Parameters
        ----------
        x : array
            States, ``d × S`` (one column per sample).
        readout : dict
            P and c (``layout.readout(w, ops)``); empty for a feed-forward model.
        ops : Ops
            Backend namespace.

        Returns
        -------
        array
            ŷ, ``n_out × S``.
        """
        if not readout:
            return x
        return ops.affine(readout["P"], x, readout["c"])

    def terminal_loss(self, x: Any, target: Any, readout: dict[str, Any], ops: Any) -> Any:
        """Σ_i ℓ(λ2(x_i), y_i) over the columns (sum, not mean).

        Parameters
        ----------
        x : array
            States, ``d × S`` (one column per sample).
        target : array
            Encoded targets y, ``n_out × S``.
        readout : dict
            P and c (``layout.readout(w, ops)``); empty for a feed-forward model.
        ops : Ops
            Backend namespace.

        Returns
        -------
        array
            A scalar.
        """
        return ops.sum(loss_per_sample(self.cost.loss, self.readout(x, readout, ops), target, ops))

    def running_cost(self, x: Any, target: Any, readout: dict[str, Any], ops: Any) -> Any:
        """Σ_i [κ ℓ(λ2(x_i), y_i) + η ‖x_i − x̄‖²] over the columns (sum, not mean).

        Parameters
        ----------
        x : array
            States, ``d × S`` (one column per sample).
        target : array
            Encoded targets y, ``n_out × S``.
        readout : dict
            P and c (``layout.readout(w, ops)``); empty for a feed-forward model.
        ops : Ops
            Backend namespace.

        Returns
        -------
        array
            A scalar (0.0 when κ = η = 0).
        """
        total = 0.0
        if self.cost.turnpike > 0:
            total = total + self.cost.turnpike * self.terminal_loss(x, target, readout, ops)
        if self.cost.tracking > 0:
            gap = x - self.cost.tracking_target
            total = total + self.cost.tracking * ops.sum(gap * gap)
        return total

    def regulariser(self, w: Any, ops: Any) -> Any:
        r"""R(θ): α ∫‖θ‖² + β ∫‖θ'‖² + γ ∫|θ|₁ as the dynamics discretises it (``dynamics.regulariser``).

        Parameters
        ----------
        w : array
            Decision vector.
        ops : namespace
            Backend.

        Returns
        -------
        scalar
            The regularisation value.
        """
        return self.dynamics.regulariser(w, self.cost, ops)

    def step_lipschitz_sq(self, w: Any, ops: Any) -> list[Any]:
        """(h·Lip_x f(·, θ))² at every distinct integrator node: the invertibility constraint's rows.

        Each row is bounded by ``lipschitz.constraint_limit(self)²``; see
        :func:`control_dl.problems.lipschitz.node_bounds_sq` (the one definition).

        Parameters
        ----------
        w : array
            Decision vector.
        ops : namespace
            Backend.

        Returns
        -------
        list
            One scalar per distinct (step, node).
        """
        return lipschitz.node_bounds_sq(self, w, ops)

    def stage_thetas(self, w: Any, k: int, ops: Any) -> list[Any]:
        """θ at each integrator node of stage k (θ_k alone for a feed-forward model).

        Parameters
        ----------
        w : array
            Decision vector (a backend array).
        k : int
            Step index in 0..N-1.
        ops : Ops
            Backend namespace.

        Returns
        -------
        list of array
            One flat θ per node of the integrator (p entries each; θ_k alone for a feed-forward model).

        Raises
        ------
        SpecError
            ``k`` is not an integer in 0..N-1.
        """
        return self.dynamics.stage_thetas(w, self._stage(k), ops)

    def trajectory(self, w: Any, x: Any, ops: Any) -> Iterator[Any]:
        """Yield x_0 = λ1(x), x_1, …, x_N for a batch of inputs (the forward pass).

        Parameters
        ----------
        w : array
            Decision vector (a backend array).
        x : array
            Inputs, ``n_in × S``.
        ops : Ops
            Backend namespace.

        Yields
        ------
        array
            x_k, ``d_k × S``, for k = 0..N.
        """
        state = self.lift_states(x, self.layout.lift(w, ops), ops)
        yield state
        for k in range(self.n_steps):
            state = self.step(state, self.stage_thetas(w, k, ops), ops, k)
            yield state

    def objective_terms(self, w: Any, x: Any, target: Any, ops: Any) -> tuple[Any, Any]:
        """(J, training loss) on the batch (x, target), in any backend with batch broadcasting.

        The running terms use the right-endpoint rule h Σ_{k=1}^{N}.

        Parameters
        ----------
        w : array
            Decision vector (numpy array, torch tensor; CasADi goes through
            :func:`control_dl.engines.casadi_model`).
        x : array
            Inputs, ``n_in × S``.
        target : array
            Encoded targets, ``n_out × S``.
        ops : namespace
            Backend of ``w`` and ``x``.

        Returns
        -------
        tuple
            ``(J, loss)`` as backend scalars (differentiable in torch).
        """
        j, loss, _ = self.batch_objective(w, x, target, ops)
        return j, loss

    def batch_objective(
        self, w: Any, x: Any, target: Any, ops: Any, normaliser: float | None = None, regulariser: bool = True
    ) -> tuple[Any, Any, Any]:
        """(J_batch, loss, predictions) on a batch with a given normaliser n (engines' convention).

        J_batch = (1/n) Σ_i [ℓ(λ2(x_{N,i}), y_i) + h Σ_{k=1}^{N} r(x_{k,i})] + [R(θ)], so that shards
        of a batch with n = the total S and R on one shard add up to J.

        Parameters
        ----------
        w : array
            Decision vector (numpy array or torch tensor).
        x, target : array
            Inputs ``n_in × S`` and encoded targets ``n_out × S``.
        ops : namespace
            Backend of ``w`` and ``x``.
        normaliser : float, optional
            n (default the batch size S).
        regulariser : bool
            Include R(θ).

        Returns
        -------
        tuple
            ``(J_batch, loss, λ2(x_N))`` as backend values (differentiable in torch).
        """
        readout = self.layout.readout(w, ops)
        n = x.shape[1] if normaliser is None else normaliser
        running = 0.0
        for k, state in enumerate(self.trajectory(w, x, ops)):
            if k > 0 and self.cost.has_running_cost:
                running = running + self.step_size * self.running_cost(state, target, readout, ops)
        predictions = self.readout(state, readout, ops)
        loss = ops.sum(loss_per_sample(self.cost.loss, predictions, target, ops)) / n
        j = loss + running / n
        return (j + self.regulariser(w, ops) if regulariser else j), loss, predictions

    # ----------------------------------------------------------------------------- public API
    def initial_guess(self, seed: int = 0, scale: float = 1.0) -> np.ndarray:
        """A random starting point w (float64, reproducible).

        θ coefficients ~ N(0, (scale/√d)²), P ~ N(0, 1/d), c = 0; a trainable lift starts at the
        zero-padding embedding. A feed-forward model draws θ_k ~ N(0, (scale/√w_k)²).

        Parameters
        ----------
        seed : int
            Seed of a local generator (global numpy state is untouched).
        scale : float
            Multiplies the standard deviation of θ.

        Returns
        -------
        ndarray
            w of length :attr:`n_params`.

        Raises
        ------
        SpecError
            ``seed`` is not an integer >= 0.
        """
        check_positive_int("seed", seed, minimum=0)
        check_positive_float("scale", scale, allow_zero=True)
        rng = np.random.default_rng(seed)
        lay = self.layout
        theta = self.dynamics.initial_theta(rng, scale)
        readout = []
        if lay.has_readout:
            readout = np.r_[rng.normal(0.0, 1.0 / np.sqrt(self.dim), lay.n_out * self.dim), np.zeros(lay.n_out)]
        lift = np.r_[np.eye(self.dim, self.data.n_in).ravel(order="F"), np.zeros(self.dim)] if lay.affine_lift else []
        return np.r_[theta, readout, lift].astype(np.float64)

    def check_w(self, w: Any, field: str = "w") -> np.ndarray:
        """Return w as a float64 vector, or raise a SpecError naming its bad length/values.

        Parameters
        ----------
        w : array_like
            Candidate decision vector.
        field : str
            Its name in the error (``w0`` for a starting point).

        Returns
        -------
        ndarray
            The vector.

        Raises
        ------
        SpecError
            ``w`` is not numeric, has another length than :attr:`n_params`, or holds NaN or inf.
        """
        if np.iscomplexobj(w):  # numpy would drop the imaginary parts with only a warning
            raise SpecError(f"{field} must be an array of {self.n_params} real numbers, got complex values")
        try:
            arr = np.asarray(w, dtype=np.float64).ravel()
        except (TypeError, ValueError):
            raise SpecError(f"{field} must be an array of {self.n_params} numbers, got {type(w).__name__}") from None
        if arr.shape != (self.n_params,):
            raise SpecError(f"{field} has {arr.size} entries, this problem has n_params={self.n_params}")
        if not np.all(np.isfinite(arr)):
            raise SpecError(f"{field} contains NaN or inf")
        return arr

    def objective(self, w: Any, backend: str = "numpy") -> float:
        """J(w) on the training data.

        Parameters
        ----------
        w : array_like
            Decision vector, shape ``(n_params,)``.
        backend : {"numpy", "casadi", "torch"}
            Which implementation evaluates it (they agree to rounding).

        Returns
        -------
        float
            The objective.

        Raises
        ------
        SpecError
            ``w`` does not fit the problem (length, NaN/inf), or ``backend`` is unknown or not installed.
        """
        return self.objective_and_loss(w, backend)[0]

    def objective_and_loss(self, w: Any, backend: str = "numpy") -> tuple[float, float]:
        """(J(w), training loss) in the chosen backend.

        Parameters
        ----------
        w : array_like
            Decision vector, shape ``(n_params,)``.
        backend : {"numpy", "casadi", "torch"}
            Implementation.

        Returns
        -------
        tuple of float
            Objective and the mean terminal loss.

        Raises
        ------
        SpecError
            ``w`` does not fit the problem (length, NaN/inf), or ``backend`` is unknown or not installed.
        """
        w = self.check_w(w)
        if backend == "casadi":
            # problems imports no engine at module level (arrows: engines -> problems); the CasADi
            # view is traced on first use and cached per problem by the engine layer
            from ..engines import casadi_model

            j, loss = casadi_model(self).objective(w, self.data.x_train, self.targets)
            return float(j), float(loss)
        ops = get_ops(backend)
        j, loss = self.objective_terms(ops.asarray(w), ops.asarray(self.data.x_train), ops.asarray(self.targets), ops)
        return float(j), float(loss)

    def gradient(self, w: Any, backend: str = "casadi") -> np.ndarray:
        """∇_w J(w) by automatic differentiation.

        Parameters
        ----------
        w : array_like
            Decision vector, shape ``(n_params,)``.
        backend : {"casadi", "torch"}
            Which AD engine.

        Returns
        -------
        ndarray
            The gradient, same length as w.

        Raises
        ------
        SpecError
            ``w`` does not fit the problem, or ``backend`` is not 'casadi' or 'torch'.
        """
        w = self.check_w(w)
        if backend == "casadi":
            from ..engines import casadi_model  # lazily, as in objective_and_loss

            return casadi_model(self).objective_gradient(w, self.data.x_train, self.targets)[1]
        if backend == "torch":
            ops = get_ops("torch")
            wt = ops.asarray(w).requires_grad_(True)
            j, _ = self.objective_terms(wt, ops.asarray(self.data.x_train), ops.asarray(self.targets), ops)
            j.backward()
            return wt.grad.detach().numpy().copy()
        raise spec_error("backend", backend, "gradients come from 'casadi' or 'torch'")

    def forward(self, w: Any, X: np.ndarray | None = None) -> np.ndarray:
        """States x_0, …, x_N of the inputs X (default: the training inputs).

        Parameters
        ----------
        w : array_like
            Decision vector, shape ``(n_params,)``.
        X : ndarray, optional
            Inputs, ``n_in × S``.

        Returns
        -------
        ndarray
            States, shape ``(N + 1, d, S)`` (a feed-forward model's x_k zero-padded to d = max width).

        Raises
        ------
        SpecError
            ``w`` does not fit the problem, or ``X`` is not an ``n_in × S`` matrix.
        """
        w = self.check_w(w)
        x = self._inputs(X)
        states = [
            np.vstack([s, np.zeros((self.dim - s.shape[0], s.shape[1]))]) for s in self.trajectory(w, x, numpy_ops)
        ]
        return np.stack(states)

    def predict(self, w: Any, X: np.ndarray | None = None) -> np.ndarray:
        """Readout λ2(x(T)) for inputs X, ``n_out × S``.

        Parameters
        ----------
        w : array_like
            Decision vector, shape ``(n_params,)``.
        X : ndarray, optional
            Inputs, ``n_in × S`` (default: training inputs).

        Returns
        -------
        ndarray
            Predictions ``n_out × S`` (logits for classification losses).

        Raises
        ------
        SpecError
            ``w`` does not fit the problem, or ``X`` is not an ``n_in × S`` matrix.
        """
        w = self.check_w(w)
        *_, x_final = self.trajectory(w, self._inputs(X), numpy_ops)
        return self.readout(x_final, self.layout.readout(w, numpy_ops), numpy_ops)

    def accuracy(self, w: Any, split: str = "train") -> float | None:
        """Classification accuracy on ``split`` ("train" or "test"); None for regression.

        Parameters
        ----------
        w : array_like
            Decision vector, shape ``(n_params,)``.
        split : {"train", "test"}
            Which data.

        Returns
        -------
        float or None
            Fraction of correctly classified points.

        Raises
        ------
        SpecError
            ``split`` is not 'train' or 'test'.
        """
        if self.data.task == "regression":
            return None
        if split not in ("train", "test"):
            raise spec_error("split", split, "must be 'train' or 'test'")
        x, y = getattr(self.data, f"x_{split}"), getattr(self.data, f"y_{split}")
        labels = predict_labels(self.data.task, self.cost.loss, self.predict(w, x))
        return float(np.mean(labels == y))

    def unflatten(self, w: Any) -> dict[str, Any]:
        """Name every block of w.

        Parameters
        ----------
        w : array_like
            Decision vector, shape ``(n_params,)``.

        Returns
        -------
        dict
            ``{"theta": [dict per coefficient C_j], "readout": {"P", "c"}, "lift": {"L", "l"} or {}}``
            with arrays in their declared shapes.

        Raises
        ------
        SpecError
            ``w`` does not fit the problem (length, NaN/inf).
        """
        w = self.check_w(w)
        lay = self.layout

        def named(block: dict[str, np.ndarray], shapes: dict[str, tuple[int, ...]]) -> dict[str, np.ndarray]:
            return {k: v.reshape(shapes[k]) for k, v in block.items()}

        shapes = lay.block_shapes
        theta = [named(lay.unpack(lay.coefficient(w, j), shapes[j], numpy_ops), shapes[j]) for j in range(lay.n_coeffs)]
        return {
            "theta": theta,
            "readout": named(lay.readout(w, numpy_ops), lay.readout_shapes),
            "lift": named(lay.lift(w, numpy_ops), lay.lift_shapes),
        }

    def theta(self, w: Any, t: Any) -> np.ndarray:
        """θ(t) as flat vectors, shape ``(len(t), p)``.

        Parameters
        ----------
        w : array_like
            Decision vector, shape ``(n_params,)``.
        t : array_like
            Times in [0, T], a number or shape ``(M,)``.

        Returns
        -------
        ndarray
            One θ per time. For a feed-forward model θ(t) = θ_k on layer k's interval [k h, (k+1) h),
            zero-padded to the largest layer's length p (so ‖θ(t)‖ is exact).

        Raises
        ------
        SpecError
            ``w`` does not fit the problem, or a time is not a finite number in [0, T].
        """
        w = self.check_w(w)
        end = float(self.times[-1])
        why = f"must be finite times in [0, T] = [0, {end:g}]"
        try:
            times = np.asarray(t, dtype=float)
        except (TypeError, ValueError):
            raise spec_error("t", t, why) from None
        if times.ndim > 1:
            raise spec_error("t", times.shape, f"must be a scalar or a 1-D array of times; {why[5:]}")
        if times.size and (not np.all(np.isfinite(times)) or times.min() < 0.0 or times.max() > end * (1 + 1e-12)):
            bad = times[~(np.isfinite(times) & (times >= 0.0) & (times <= end * (1 + 1e-12)))]
            raise spec_error("t", float(bad.ravel()[0]), why)
        return self.dynamics.theta(w, times)

    def _inputs(self, X: np.ndarray | None) -> np.ndarray:
        if X is None:
            return self.data.x_train
        return as_features(X, self.data.n_in)


def check_problem(value: Any, field: str = "problem") -> TrainingProblem:
    """Return ``value`` if it is a :class:`TrainingProblem`, else raise a SpecError naming what it is.

    Parameters
    ----------
    value : object
        Candidate problem (a common slip: the arguments swapped, ``f(result, problem)``, or a name).
    field : str
        Its name in the error.

    Returns
    -------
    TrainingProblem
        ``value``.

    Raises
    ------
    SpecError
        ``value`` is something else (a name: load it first with ``control_dl.load_problem``).
    """
    if not isinstance(value, TrainingProblem):
        hint = " (load it first: control_dl.load_problem(name))" if isinstance(value, str) else ""
        raise spec_error(
            field, value if isinstance(value, str) else type(value).__name__, f"must be a TrainingProblem{hint}"
        )
    return value


def problem_fingerprint(problem: TrainingProblem) -> dict[str, Any]:
    """What defines ``problem``, as a JSON-able document: its network, its cost and its data.

    The one description both a solve checkpoint (:mod:`control_dl.solvers.checkpoint`) and a saved
    :class:`~control_dl.Result` record, so a w is never attached to a problem it was not computed
    for, whether the problem came from a spec or was built in Python (where ``spec`` is None).

    - ``network``: what maps raw inputs to predictions given w. ``model``: the vector field and d
      with the lift (or the feed-forward / user dynamics); ``grid``: the control, T and the
      integrator of a flow (N is the control's ``n_steps``); ``inputs``: n_in and the
      standardisation (mean, scale) that turns raw inputs into the model's; ``outputs``: n_out and
      whether w holds a readout P, c; and ``n_params``.
    - ``cost``: the :class:`Cost` and :class:`Constraints`.
    - ``data``: SHA-256 digests of the training and test inputs and labels, task and classes.

    Objects are described by their class name and fields (a dataclass) or public attributes, arrays
    by shape and digest, functions by name.

    Parameters
    ----------
    problem : TrainingProblem
        The problem.

    Returns
    -------
    dict
        ``{"network": {...}, "cost": {...}, "data": {...}}`` of JSON types only;
        :func:`fingerprint_difference` compares two.
    """
    data = problem.data
    cost = {"cost": _described(problem.cost), "constraints": _described(problem.constraints)}
    split = {name: _digest(getattr(data, name)) for name in ("x_train", "y_train", "x_test", "y_test")}
    classes = list(data.class_names) if data.class_names is not None else None
    return {
        "network": network_fingerprint(problem),
        "cost": cost,
        "data": {"task": data.task, "class_names": classes, **split},
    }


def network_fingerprint(problem: TrainingProblem) -> dict[str, Any]:
    """The ``network`` part of :func:`problem_fingerprint` alone (no digest of the data arrays).

    Parameters
    ----------
    problem : TrainingProblem
        The problem.

    Returns
    -------
    dict
        ``{"model", "grid", "inputs", "outputs", "n_params"}`` of JSON types only.
    """
    dynamics, data = problem.dynamics, problem.data
    if type(dynamics) is Flow:
        model = {"field": _described(dynamics.field), "dim": problem.dim, "lift": problem.lift}
        grid = {"control": _described(dynamics.control), "horizon": dynamics.horizon, "integrator": dynamics.integrator}
    else:
        model, grid = {"dynamics": _described(dynamics), "lift": problem.lift}, {}
    return {
        "model": model,
        "grid": grid,
        "inputs": {
            "n_in": data.n_in,
            "mean": _described(data.mean, exact=True),
            "scale": _described(data.scale, exact=True),
        },
        "outputs": {"n_out": problem.layout.n_out, "readout": problem.dynamics.has_readout},
        "n_params": problem.n_params,
    }


def fingerprint_difference(saved: Any, current: Any, path: str = "") -> tuple[str, Any, Any] | None:
    """The first entry where two :func:`problem_fingerprint` documents (or parts of them) differ.

    Parameters
    ----------
    saved, current : object
        The recorded document (read back from JSON) and the one of the problem at hand.
    path : str
        Dotted prefix of the entries' names (used in recursion).

    Returns
    -------
    tuple or None
        ``(name, saved value, current value)``, e.g. ``("network.model.field.activation", "tanh",
        "relu")``; None when they agree (numbers compare by value: 1 == 1.0).
    """
    if isinstance(saved, dict) and isinstance(current, dict):
        for key in [*saved, *(k for k in current if k not in saved)]:
            found = fingerprint_difference(saved.get(key), current.get(key), f"{path}.{key}" if path else key)
            if found is not None:
                return found
        return None
    if isinstance(saved, (list, tuple)) and isinstance(current, (list, tuple)) and len(saved) == len(current):
        for k, (a, b) in enumerate(zip(saved, current, strict=True)):
            found = fingerprint_difference(a, b, f"{path}[{k}]")
            if found is not None:
                return found
        return None
    if isinstance(saved, bool) != isinstance(current, bool) or saved != current:
        return path, saved, current
    return None


def describe_difference(difference: tuple[str, Any, Any], there: str, here: str) -> str:
    """``name is A <there>, B <here>``, values shortened, for a refusal's message.

    Parameters
    ----------
    difference : tuple
        A :func:`fingerprint_difference`.
    there, here : str
        Where each value is from, e.g. ``"in the result"`` and ``"in this problem"``.

    Returns
    -------
    str
        One phrase.
    """

    def short(value: Any) -> str:
        text = repr(value)
        return text if len(text) <= 80 else text[:77] + "..."

    name, saved, current = difference
    return f"{name} is {short(saved)} {there}, {short(current)} {here}"


def _digest(array: Any) -> str:
    """``sha256:<16 hex> <dtype> <shape>`` of an array: its values, element type and shape."""
    array = np.ascontiguousarray(array)
    digest = hashlib.sha256(array.tobytes()).hexdigest()[:16]
    return f"sha256:{digest} {array.dtype.str} {list(array.shape)}"


def _described(value: Any, exact: bool = False, depth: int = 0) -> Any:
    """``value`` as JSON types: objects by class name and fields, arrays by digest (or values if ``exact``)."""
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, (float, np.floating)):
        return float(value) if np.isfinite(value) else repr(float(value))
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return [_described(v) for v in value.ravel().tolist()] if exact else _digest(value)
    if depth > 8:  # a cycle or a deep user object: its class is all that is told
        return type(value).__qualname__
    if isinstance(value, (list, tuple)):
        return [_described(v, exact, depth + 1) for v in value]
    if isinstance(value, dict):
        return {str(k): _described(v, exact, depth + 1) for k, v in value.items()}
    if isinstance(value, type) or (callable(value) and hasattr(value, "__qualname__")):
        return value.__qualname__  # a class or function (a callable loss) by name: its module may be __main__
    if dataclasses.is_dataclass(value):
        items = {f.name: getattr(value, f.name) for f in dataclasses.fields(value)}
    else:  # public attributes, less cached values computed on use (present or not depending on the past)
        owner = type(value)
        items = {
            k: v
            for k, v in getattr(value, "__dict__", {}).items()
            if not k.startswith("_") and not isinstance(getattr(owner, k, None), cached_property)
        }
    return {"type": type(value).__qualname__, **{k: _described(v, exact, depth + 1) for k, v in items.items()}}


def check_same_network(
    problem: TrainingProblem, solved_on: dict | None, field: str = "result", solved_problem: Any = None
) -> None:
    """Raise SpecError when a result was solved on another network model or control than ``problem``'s.

    Two networks can have the same number of parameters (tanh vs relu, ``inside`` vs ``outside``, a
    piecewise-linear control of 4 nodes vs a spectral one of 4 modes), so the length of w alone
    does not tell a result of another problem apart. Compared: the ``network.model`` part of the two
    :func:`problem_fingerprint` documents (field and its activation, d, lift, or the feed-forward
    widths) and the control (its kind and parameters, less ``n_steps``). The same network on other
    data, another cost, another integrator or a finer grid of a grid-independent control is a
    legitimate evaluation. (:meth:`~control_dl.Result.load` compares the whole network part of the
    fingerprint a result file records.)

    Parameters
    ----------
    problem : TrainingProblem
        The problem the result is used with.
    solved_on : dict or None
        The result's ``problem_spec``, rebuilt on ``problem``'s data (None: compare
        ``solved_problem`` instead, or nothing).
    field : str
        Name of the result's argument, for the message.
    solved_problem : TrainingProblem, optional
        The problem the result was solved on, when it is attached (a problem built in Python has no
        spec): compared directly.

    Raises
    ------
    SpecError
        The network model or the control differs from ``problem``'s (the message names the entry).
    """
    from .spec import build_problem, describe

    theirs = solved_on.get("model") if isinstance(solved_on, dict) else None
    if isinstance(theirs, dict):
        try:
            solved_problem = build_problem(solved_on, data=problem.data)
        except (SpecError, TypeError, KeyError, ValueError):  # the saved network does not even fit these data
            mine = (
                problem.spec.get("model") if isinstance(problem.spec, dict) else (describe(problem) or {}).get("model")
            )
            if mine != theirs:
                raise spec_error(
                    field, theirs, f"was solved on another network than this problem's model {mine}"
                ) from None
            return
    if not isinstance(solved_problem, TrainingProblem) or solved_problem is problem:
        return
    saved, current = (_network_identity(p) for p in (solved_problem, problem))
    difference = fingerprint_difference(saved, current, "network")
    if difference is not None:
        where = describe_difference(difference, "there", "here")
        raise spec_error(field, type(solved_problem).__name__, f"was solved on another network ({where})")


def _network_identity(problem: TrainingProblem) -> dict[str, Any]:
    """What :func:`check_same_network` compares: the fingerprint's model, and the control less its grid."""
    network = network_fingerprint(problem)
    control = dict(network["grid"].get("control") or {})
    control.pop("n_steps", None)
    return {"model": network["model"], "control": control}
