r"""The training optimal control problem, written once against ``ops``.

    minimise_{θ(·), P, c, (L, l)}  J(θ) = (1/S) Σ_i ℓ(P x_i(T) + c, y_i) + R(θ) + running terms
    subject to  x_i(0) = λ1(x_i),   x_{k+1} = Φ_h(x_k, θ(t_k + c_s h))   (Euler: x_k + h f(x_k, θ_k))

The same code evaluates J in numpy, CasADi and torch: see :class:`TrainingProblem`. A feed-forward
model (``model=FeedForward(widths)``) replaces the flow by the layer maps x_{k+1} = σ(A_k x_k + b_k)
of :mod:`control_dl.problems.feedforward`; everything below then runs layer by layer.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from dataclasses import field as dataclass_field
from functools import cached_property
from typing import Any

import numpy as np

from .._errors import spec_error
from ..backends import get_ops, numpy_ops, smooth_abs
from . import lipschitz
from .controls import Control, PiecewiseConstant, step_index
from .costs import Constraints, Cost, check_loss, encode_targets, loss_per_sample, predict_labels
from .datasets import Dataset
from .feedforward import FeedForward
from .fields import Inside, VectorField, check_field
from .integrators import Integrator, get_integrator
from .layout import LayerLayout, Layout


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
    model : FeedForward, optional
        A feed-forward network in place of (field, dim, control, integrator, lift), which must then
        keep their defaults. Its widths must start at n_in and end at the loss's output size; λ2 is
        the identity (no P, c in w); ``dim`` becomes the largest width, ``n_steps`` the number of
        layers L and ``horizon`` L·h. Only the l2 and l1 regularisers apply (α h Σ_k ‖θ_k‖²,
        γ h Σ_k Σ(√(θ_k² + ε²) − ε)); h1, turnpike, tracking and lipschitz are SpecErrors.
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
    model: FeedForward | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.data, Dataset):
            raise spec_error("data", type(self.data).__name__, "must be a control_dl Dataset")
        if not isinstance(self.field, VectorField):
            raise spec_error("field", type(self.field).__name__, "must implement param_shapes() and __call__()")
        if not isinstance(self.control, Control):
            raise spec_error("control", type(self.control).__name__, "must be a control_dl Control")
        dim = self.data.n_in if self.dim is None else self.dim
        if isinstance(dim, bool) or not isinstance(dim, (int, np.integer)) or dim < self.data.n_in:
            raise spec_error("dim", dim, f"must be an integer >= the input dimension {self.data.n_in}")
        object.__setattr__(self, "dim", int(dim))
        check_field(self.field, self.dim)
        horizon = self.horizon
        if isinstance(horizon, bool) or not isinstance(horizon, (int, float)) or not (0 < horizon < np.inf):
            raise spec_error("horizon", horizon, "must be a finite number > 0")
        object.__setattr__(self, "horizon", float(horizon))
        get_integrator(self.integrator)
        if self.lift not in ("pad", "affine"):
            raise spec_error("lift", self.lift, "must be 'pad' or 'affine'")
        check_loss(
            self.cost.loss, encode_targets(self.data.task, self.cost.loss, self.data.y_train, self.data.n_classes)
        )
        if self.model is not None:
            self._check_feedforward()

    def _check_feedforward(self) -> None:
        model = self.model
        if not isinstance(model, FeedForward):
            raise spec_error("model", type(model).__name__, "must be a control_dl FeedForward")
        widths = list(model.widths)
        if widths[0] != self.data.n_in:
            raise spec_error("widths", widths, f"must start with the input size n_in={self.data.n_in}")
        n_out = self.targets.shape[0]
        if widths[-1] != n_out:
            raise spec_error("widths", widths, f"must end with the output size {n_out} of loss {self.cost.loss!r}")
        resnet_only = {
            "field": self.field != Inside(),
            "control": self.control != PiecewiseConstant(),
            "integrator": self.integrator != "euler",
            "lift": self.lift != "pad",
            "horizon": self.horizon not in (1.0, model.n_layers * model.step),
        }
        for name, changed in resnet_only.items():
            if changed:
                raise spec_error(name, getattr(self, name), "does not apply to a FeedForward model")
        if self.dim != self.data.n_in and self.dim != max(widths):
            raise spec_error("dim", self.dim, "does not apply to a FeedForward model (its widths set it)")
        for name in ("h1", "turnpike", "tracking"):
            if getattr(self.cost, name) > 0:
                raise spec_error(name, getattr(self.cost, name), "is not defined for a FeedForward model")
        if self.constraints.lipschitz is not None:
            raise spec_error("lipschitz", self.constraints.lipschitz, "is not defined for a FeedForward model")
        object.__setattr__(self, "dim", max(widths))
        object.__setattr__(self, "horizon", model.n_layers * model.step)

    # ----------------------------------------------------------------------------- structure
    @cached_property
    def layout(self) -> Layout | LayerLayout:
        """Offsets of the blocks of w (see :mod:`control_dl.problems.layout`)."""
        if self.model is not None:
            return LayerLayout(
                layer_shapes=tuple(self.model.layer_shapes(k) for k in range(self.model.n_layers)),
                dim=self.dim,
                n_in=self.data.n_in,
                n_out=self.targets.shape[0],
            )
        return Layout(
            theta_shapes=dict(self.field.param_shapes(self.dim)),
            n_coeffs=self.control.n_coeffs,
            dim=self.dim,
            n_in=self.data.n_in,
            n_out=self.targets.shape[0],
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
        """Number N of integration steps (layers; L for a feed-forward model)."""
        return self.control.n_steps if self.model is None else self.model.n_layers

    @property
    def step_size(self) -> float:
        """h = T / N (the FeedForward ``step`` for a feed-forward model)."""
        return self.horizon / self.n_steps

    @property
    def state_dims(self) -> tuple[int, ...]:
        """Dimensions of x_0, …, x_N: d every step, or the widths of a feed-forward model."""
        return (self.dim,) * (self.n_steps + 1) if self.model is None else self.model.widths

    @property
    def times(self) -> np.ndarray:
        """Grid t_k = k h, k = 0..N."""
        return np.linspace(0.0, self.horizon, self.n_steps + 1)

    @property
    def n_params(self) -> int:
        """Length of the decision vector w."""
        return self.layout.n_params

    @cached_property
    def stage_weights(self) -> np.ndarray:
        """Basis weights at every integrator node, shape ``(N, n_nodes, n_coeffs)``."""
        nodes = self.scheme.nodes
        return np.array([[self.control.stage_basis(k, c, self.horizon) for c in nodes] for k in range(self.n_steps)])

    # ----------------------------------------------------------------------- model, written once
    def theta_vector(self, w: Any, weights: np.ndarray, ops: Any) -> Any:
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
        terms = [(float(a), j) for j, a in enumerate(weights) if a != 0.0]
        if len(terms) == 1 and terms[0][0] == 1.0:
            return self.layout.coefficient(w, terms[0][1])
        total = 0.0 * self.layout.coefficient(w, 0)
        for a, j in terms:
            total = total + a * self.layout.coefficient(w, j)
        return total

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
        return self.field(x, self.layout.unpack(theta, self.layout.theta_shapes, ops), ops)

    def step(self, x: Any, thetas: list[Any], ops: Any, k: int | None = None) -> Any:
        """One step x_{k+1} = Φ_h(x_k, θ at the nodes); layer k's map for a feed-forward model.

        Parameters
        ----------
        x : array
            States x_k, one column per sample.
        thetas : list
            θ at the integrator nodes of step k (:meth:`stage_thetas`).
        ops : namespace
            Backend.
        k : int, optional
            Step index: required by a feed-forward model (its layers differ), ignored by a flow.

        Returns
        -------
        array
            x_{k+1}.
        """
        if self.model is not None:
            if k is None:
                raise ValueError("a FeedForward problem needs the layer index: step(x, thetas, ops, k)")
            return self.model(k, x, self.layout.unpack(thetas[0], self.layout.layer_shapes[k], ops), ops)
        return self.scheme.step(lambda z, th: self.rhs(z, th, ops), x, thetas, self.step_size)

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
            return ops.matmul(lift["L"], x) + lift["l"]
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
        return ops.matmul(readout["P"], x) + readout["c"]

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
        r"""R(θ) = α ‖C R_0ᵀ‖² + β ‖C R_1ᵀ‖² + γ h Σ_k Σ (√(θ(t_{k+½})² + ε²) − ε).

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
        cost, lay = self.cost, self.layout
        if self.model is not None:
            return self._layer_regulariser(w, ops)
        coeffs = ops.reshape(w[: lay.n_theta], (lay.p, lay.n_coeffs))
        total = 0.0
        for weight, factor in ((cost.l2, self._l2_factor), (cost.h1, self._h1_factor)):
            if weight > 0 and factor.shape[0] > 0:
                m = ops.matmul(coeffs, ops.asarray(factor.T))
                total = total + weight * ops.sum(m * m)
        if cost.l1 > 0:
            theta_mid = ops.matmul(coeffs, ops.asarray(self._midpoint_basis.T))
            eps = cost.l1_eps
            total = total + cost.l1 * self.step_size * ops.sum(smooth_abs(theta_mid, eps, ops))
        return total

    def _layer_regulariser(self, w: Any, ops: Any) -> Any:
        """α h Σ_k ‖θ_k‖² + γ h Σ_k Σ (√(θ_k² + ε²) − ε) for a feed-forward model."""
        theta = w[: self.layout.n_theta]
        h, total = self.step_size, 0.0
        if self.cost.l2 > 0:
            total = total + self.cost.l2 * h * ops.sum(theta * theta)
        if self.cost.l1 > 0:
            eps = self.cost.l1_eps
            total = total + self.cost.l1 * h * ops.sum(smooth_abs(theta, eps, ops))
        return total

    @cached_property
    def _l2_factor(self) -> np.ndarray:
        return self.control.l2_factor(self.horizon)

    @cached_property
    def _h1_factor(self) -> np.ndarray:
        return self.control.h1_factor(self.horizon)

    @cached_property
    def _midpoint_basis(self) -> np.ndarray:
        return np.array([self.control.stage_basis(k, 0.5, self.horizon) for k in range(self.n_steps)])

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
        """θ at each integrator node of step k (θ_k alone for a feed-forward model).

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
            One flat θ per node of the integrator.
        """
        if self.model is not None:
            return [self.layout.coefficient(w, k)]
        return [self.theta_vector(w, wts, ops) for wts in self.stage_weights[k]]

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
        """
        rng = np.random.default_rng(seed)
        lay = self.layout
        if self.model is not None:
            fan_in = np.repeat(self.model.widths[:-1], lay.sizes)
            return rng.normal(0.0, 1.0, lay.n_theta) * scale / np.sqrt(fan_in)
        theta = rng.normal(0.0, scale / np.sqrt(self.dim), lay.n_theta)
        readout = np.r_[rng.normal(0.0, 1.0 / np.sqrt(self.dim), lay.n_out * self.dim), np.zeros(lay.n_out)]
        lift = np.r_[np.eye(self.dim, self.data.n_in).ravel(order="F"), np.zeros(self.dim)] if lay.affine_lift else []
        return np.r_[theta, readout, lift].astype(np.float64)

    def check_w(self, w: Any) -> np.ndarray:
        """Return w as a float64 vector, or raise ValueError naming its bad length/values.

        Parameters
        ----------
        w : array_like
            Candidate decision vector.

        Returns
        -------
        ndarray
            The vector.
        """
        arr = np.asarray(w, dtype=np.float64).ravel()
        if arr.shape != (self.n_params,):
            raise ValueError(f"w has {arr.size} entries, this problem has n_params={self.n_params}")
        if not np.all(np.isfinite(arr)):
            raise ValueError("w contains NaN or inf")
        return arr

    def objective(self, w: Any, backend: str = "numpy") -> float:
        """J(w) on the training data.

        Parameters
        ----------
        w : array_like
            Decision vector.
        backend : {"numpy", "casadi", "torch"}
            Which implementation evaluates it (they agree to rounding).

        Returns
        -------
        float
            The objective.
        """
        return self.objective_and_loss(w, backend)[0]

    def objective_and_loss(self, w: Any, backend: str = "numpy") -> tuple[float, float]:
        """(J(w), training loss) in the chosen backend.

        Parameters
        ----------
        w : array_like
            Decision vector.
        backend : {"numpy", "casadi", "torch"}
            Implementation.

        Returns
        -------
        tuple of float
            Objective and the mean terminal loss.
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
            Decision vector.
        backend : {"casadi", "torch"}
            Which AD engine.

        Returns
        -------
        ndarray
            The gradient, same length as w.
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
        raise ValueError(f"backend={backend!r}: gradients come from 'casadi' or 'torch'")

    def forward(self, w: Any, X: np.ndarray | None = None) -> np.ndarray:
        """States x_0, …, x_N of the inputs X (default: the training inputs).

        Parameters
        ----------
        w : array_like
            Decision vector.
        X : ndarray, optional
            Inputs, ``n_in × S``.

        Returns
        -------
        ndarray
            States, shape ``(N + 1, d, S)`` (a feed-forward model's x_k zero-padded to d = max width).
        """
        w = self.check_w(w)
        x = self._inputs(X)
        states = list(self.trajectory(w, x, numpy_ops))
        if self.model is not None:
            states = [np.vstack([s, np.zeros((self.dim - s.shape[0], s.shape[1]))]) for s in states]
        return np.stack(states)

    def predict(self, w: Any, X: np.ndarray | None = None) -> np.ndarray:
        """Readout λ2(x(T)) for inputs X, ``n_out × S``.

        Parameters
        ----------
        w : array_like
            Decision vector.
        X : ndarray, optional
            Inputs, ``n_in × S`` (default: training inputs).

        Returns
        -------
        ndarray
            Predictions (logits for classification losses).
        """
        w = self.check_w(w)
        *_, x_final = self.trajectory(w, self._inputs(X), numpy_ops)
        return self.readout(x_final, self.layout.readout(w, numpy_ops), numpy_ops)

    def accuracy(self, w: Any, split: str = "train") -> float | None:
        """Classification accuracy on ``split`` ("train" or "test"); None for regression.

        Parameters
        ----------
        w : array_like
            Decision vector.
        split : {"train", "test"}
            Which data.

        Returns
        -------
        float or None
            Fraction of correctly classified points.
        """
        if self.data.task == "regression":
            return None
        if split not in ("train", "test"):
            raise ValueError(f"split={split!r} must be 'train' or 'test'")
        x, y = getattr(self.data, f"x_{split}"), getattr(self.data, f"y_{split}")
        labels = predict_labels(self.data.task, self.cost.loss, self.predict(w, x))
        return float(np.mean(labels == y))

    def unflatten(self, w: Any) -> dict[str, Any]:
        """Name every block of w.

        Parameters
        ----------
        w : array_like
            Decision vector.

        Returns
        -------
        dict
            ``{"theta": [dict per coefficient C_j], "readout": {"P", "c"}, "lift": {"L", "l"} or {}}``
            with arrays in their declared shapes.
        """
        w = self.check_w(w)
        lay = self.layout

        def named(block: dict[str, np.ndarray], shapes: dict[str, tuple[int, ...]]) -> dict[str, np.ndarray]:
            return {k: v.reshape(shapes[k]) for k, v in block.items()}

        shapes = lay.layer_shapes if self.model is not None else [lay.theta_shapes] * lay.n_coeffs
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
            Decision vector.
        t : array_like
            Times in [0, T].

        Returns
        -------
        ndarray
            One θ per time. For a feed-forward model θ(t) = θ_k on layer k's interval [k h, (k+1) h),
            zero-padded to the largest layer's length p (so ‖θ(t)‖ is exact).
        """
        w = self.check_w(w)
        lay = self.layout
        if self.model is not None:
            t = np.atleast_1d(np.asarray(t, dtype=float))
            layers = step_index(t, self.horizon, self.n_steps)
            out = np.zeros((t.size, lay.p))
            for i, k in enumerate(layers):
                theta_k = lay.coefficient(w, k)
                out[i, : theta_k.size] = theta_k
            return out
        coeffs = w[: lay.n_theta].reshape((lay.p, lay.n_coeffs), order="F")
        return (coeffs @ self.control.basis_at(np.atleast_1d(np.asarray(t, dtype=float)), self.horizon).T).T

    def _inputs(self, X: np.ndarray | None) -> np.ndarray:
        if X is None:
            return self.data.x_train
        x = np.asarray(X, dtype=float)
        if x.ndim != 2 or x.shape[0] != self.data.n_in:
            raise ValueError(f"X has shape {x.shape}; expected n_in × S with n_in={self.data.n_in}")
        return x
