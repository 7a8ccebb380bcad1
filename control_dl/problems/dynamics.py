r"""The dynamics interface: the one view of a model that engines, solvers and diagnostics use.

Every model of this package is a discrete-time control system on N stages,

    x_{k+1} = F_k(x_k, Θ_k),      x_k ∈ R^{d_k},  k = 0, …, N−1,

where Θ_k = (θ at the integrator nodes of stage k) is read off the θ block of the flat decision
vector w (blocks B_0, …, B_{n−1}, see :mod:`control_dl.problems.layout`). :class:`Dynamics` names
what a solver may ask of it; two implementations:

- :class:`Flow`, the neural ODE x' = f(x, θ(t)) on [0, T] stepped by a one-step scheme Φ_h with
  h = T/N (Euler: x_{k+1} = x_k + h f(x_k, θ_k), exactly the ResNet; RK4), θ(t) = Σ_j C_j φ_j(t)
  from a :class:`~control_dl.problems.controls.Control`. d_k = d; the blocks are the n coefficient
  vectors C_j, all of length p.
- :class:`LayerStack`, a feed-forward net :class:`~control_dl.problems.feedforward.FeedForward`,
  F_k(x, θ_k) = σ_k(A_k x + b_k) (or x + h σ_k(A_k x + b_k)); d_k = w_k, the width of layer k; the
  blocks are θ_0, …, θ_{L−1} of lengths p_k.

Capability queries (what only some models have): :attr:`Dynamics.vector_field` (f: needed
by collocation, the invertibility constraint, the running costs and the H1 term, and it makes the
stage Hamiltonian the flow's p·f − r), :attr:`Dynamics.has_readout` (w holds λ2 = P x + c and may
hold a trainable λ1), :attr:`Dynamics.stage_weights` (θ at the nodes as a basis expansion of
equal-size blocks), :attr:`Dynamics.shared_step` (one map F for every stage, traced once) and
:attr:`Dynamics.separable` (stage k's θ is block k alone, so ∂J/∂θ_k = −h ∂H_k/∂θ_k).

A user-written subclass of :class:`Dynamics` can be passed as ``TrainingProblem(model=...)``.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from functools import cached_property
from typing import Any

import numpy as np

from ..backends import smooth_abs
from .controls import Control, PiecewiseConstant, step_index
from .costs import Cost
from .feedforward import FeedForward
from .fields import VectorField
from .integrators import Integrator, get_integrator
from .layout import Shapes, block_offsets, block_size, unpack_blocks


class Dynamics(ABC):
    """A discrete-time control system x_{k+1} = F_k(x_k, Θ_k) on N stages (the extension point).

    A subclass declares the stages (:attr:`n_steps`, :attr:`step_size`, :attr:`state_dims`), the θ
    blocks of w (:attr:`block_shapes`), how θ at the nodes of a stage comes from w
    (:meth:`stage_thetas`), the stage map (:meth:`step`), the regulariser R(θ), θ(t) and a random
    initial θ block; everything is written once against ``ops`` so it runs in numpy, CasADi and
    torch. The block layout helpers (:attr:`sizes`, :attr:`offsets`, :meth:`block`) are shared.
    """

    # ------------------------------------------------------------------ structure (abstract)
    @property
    @abstractmethod
    def n_steps(self) -> int:
        """Number N of stages (integration steps of a flow, layers L of a stack)."""

    @property
    @abstractmethod
    def step_size(self) -> float:
        """h: the time step (T/N for a flow, the FeedForward ``step`` for a stack)."""

    @property
    @abstractmethod
    def state_dims(self) -> tuple[int, ...]:
        """Dimensions d_0, …, d_N of the states x_0, …, x_N."""

    @property
    @abstractmethod
    def block_shapes(self) -> tuple[Shapes, ...]:
        """Shapes of the θ blocks B_0, …, B_{n−1} of w, in order (the Layout's θ part)."""

    @property
    @abstractmethod
    def n_nodes(self) -> int:
        """Number of integrator nodes per stage: Θ_k stacks this many θ vectors."""

    @abstractmethod
    def stage_shapes(self, k: int) -> Shapes:
        """Shapes of θ at one node of stage k (the parameters that :meth:`step` unpacks).

        Parameters
        ----------
        k : int
            Stage index in 0..N−1.

        Returns
        -------
        dict
            Name → shape.
        """

    # ------------------------------------------------------------------ the model (abstract)
    @abstractmethod
    def stage_thetas(self, w: Any, k: int, ops: Any) -> list[Any]:
        """θ at each integrator node of stage k, from w.

        Parameters
        ----------
        w : array
            Decision vector (or its θ block), any backend.
        k : int
            Stage index in 0..N−1.
        ops : Ops
            Backend namespace.

        Returns
        -------
        list of array
            :attr:`n_nodes` flat vectors, each of ``block_size(stage_shapes(k))`` entries.
        """

    @abstractmethod
    def step(self, k: int, x: Any, thetas: list[Any], ops: Any) -> Any:
        """x_{k+1} = F_k(x_k, Θ_k) on a batch, one column per sample.

        Parameters
        ----------
        k : int
            Stage index in 0..N−1.
        x : array
            States x_k, ``d_k × S``.
        thetas : list of array
            θ at the nodes of stage k (:meth:`stage_thetas`), flat vectors.
        ops : Ops
            Backend namespace.

        Returns
        -------
        array
            x_{k+1}, ``d_{k+1} × S``.
        """

    @abstractmethod
    def regulariser(self, w: Any, cost: Cost, ops: Any) -> Any:
        """R(θ): the cost's α (L2), β (H1) and γ (L1) terms on the θ block of w.

        Parameters
        ----------
        w : array
            Decision vector (or its θ block).
        cost : Cost
            The weights α = ``l2``, β = ``h1``, γ = ``l1`` and the L1 smoothing ε.
        ops : Ops
            Backend namespace.

        Returns
        -------
        scalar
            R(θ) (0.0 when every weight is zero).
        """

    @abstractmethod
    def theta(self, w: np.ndarray, t: np.ndarray) -> np.ndarray:
        """θ(t) as flat vectors, for plots and diagnostics.

        Parameters
        ----------
        w : ndarray
            Decision vector.
        t : ndarray
            Times in [0, N h], shape ``(n,)``.

        Returns
        -------
        ndarray
            Shape ``(n, p)``, p the largest block length (shorter θ zero-padded, so ‖θ(t)‖ is exact).
        """

    @abstractmethod
    def initial_theta(self, rng: np.random.Generator, scale: float) -> np.ndarray:
        """A random θ block (the start of ``TrainingProblem.initial_guess``).

        Parameters
        ----------
        rng : numpy.random.Generator
            The caller's generator (draws are taken from it in w's order).
        scale : float
            Multiplies the standard deviation.

        Returns
        -------
        ndarray
            The θ block, length :attr:`n_theta`.
        """

    # ------------------------------------------------------------------ capabilities
    @property
    def vector_field(self) -> VectorField | None:
        """The vector field f(x, θ) of a flow; None for a model that is not a discretised ODE."""
        return None

    @property
    def has_readout(self) -> bool:
        """Whether w holds a readout λ2 = P x + c (and may hold a trainable lift λ1)."""
        return False

    @property
    def stage_weights(self) -> np.ndarray | None:
        """a_{k,m,j} with θ(t_k + c_m h) = Σ_j a_{k,m,j} B_j, shape ``(N, n_nodes, n)``.

        None when θ at a stage is not a linear combination of equal-size blocks (a layer stack:
        stage k's θ_k is block k itself).
        """
        return None

    @property
    def shared_step(self) -> bool:
        """Whether F_k is one map F for every k (time enters only through Θ_k): traced once."""
        return False

    @property
    @abstractmethod
    def separable(self) -> bool:
        """Whether stage k's θ is block k alone and R = h Σ_k L(θ_k): then ∂J/∂θ_k = −h ∂H_k/∂θ_k."""

    def rhs(self, x: Any, theta: Any, ops: Any) -> Any:
        """f(x, θ) for a flat θ (the field's parameters unpacked by :meth:`stage_shapes`).

        Parameters
        ----------
        x : array
            States, ``d × S``.
        theta : array
            θ at one time, flat (p entries, the layout order).
        ops : Ops
            Backend namespace.

        Returns
        -------
        array
            f(x, θ), ``d × S``.

        Raises
        ------
        TypeError
            The dynamics has no vector field (:attr:`vector_field` is None).
        """
        field = self.vector_field
        if field is None:
            raise TypeError(f"{type(self).__name__} has no vector field f(x, θ)")
        return field(x, unpack_blocks(theta, self.stage_shapes(0), ops), ops)

    # ------------------------------------------------------------------ θ blocks (shared)
    @cached_property
    def sizes(self) -> tuple[int, ...]:
        """p_j, the length of block j."""
        return tuple(block_size(s) for s in self.block_shapes)

    @cached_property
    def offsets(self) -> tuple[int, ...]:
        """Start of block j in w, j = 0..n (the last entry is :attr:`n_theta`)."""
        return block_offsets(self.block_shapes)

    @property
    def n_theta(self) -> int:
        """Length of the θ block of w."""
        return self.offsets[-1]

    def block(self, w: Any, j: int) -> Any:
        """Block B_j of w (any backend).

        Parameters
        ----------
        w : array
            Decision vector (or its θ block).
        j : int
            Block index.

        Returns
        -------
        array
            The flat block, length p_j.
        """
        return w[self.offsets[j] : self.offsets[j + 1]]

    def theta_vector(self, w: Any, weights: np.ndarray, ops: Any) -> Any:
        """θ = Σ_j a_j B_j for weights a (only the non-zero terms are formed; they must be equal-size).

        Parameters
        ----------
        w : array
            Decision vector (any backend).
        weights : ndarray
            a, shape ``(n,)`` (a row of :attr:`stage_weights`).
        ops : Ops
            Backend namespace.

        Returns
        -------
        array
            θ, a flat vector.
        """
        terms = [(float(a), j) for j, a in enumerate(weights) if a != 0.0]
        if len(terms) == 1 and terms[0][0] == 1.0:
            return self.block(w, terms[0][1])
        total = 0.0 * self.block(w, 0)
        for a, j in terms:
            total = total + a * self.block(w, j)
        return total


@dataclass(frozen=True)
class Flow(Dynamics):
    r"""x' = f(x, θ(t)) on [0, T], θ(t) = Σ_j C_j φ_j(t), stepped by Euler or RK4 on N steps.

    x_{k+1} = Φ_h(x_k, θ(t_k + c_m h)) with h = T/N and the scheme's nodes c_m; the blocks of w
    are the coefficient vectors C_0, …, C_{n−1} (n = ``control.n_coeffs``), each holding the p
    parameters of ``field.param_shapes(dim)``.

    Parameters
    ----------
    field : VectorField
        f(x, θ).
    dim : int
        State dimension d.
    control : Control
        θ(t) parametrisation; its ``n_steps`` is N.
    horizon : float
        T > 0.
    integrator : {"euler", "rk4"}
        The scheme Φ_h.
    """

    field: VectorField
    dim: int
    control: Control
    horizon: float
    integrator: str = "euler"

    @property
    def scheme(self) -> Integrator:
        """The integrator object."""
        return get_integrator(self.integrator)

    @property
    def n_steps(self) -> int:
        """N = ``control.n_steps``."""
        return self.control.n_steps

    @property
    def step_size(self) -> float:
        """h = T / N."""
        return self.horizon / self.n_steps

    @property
    def state_dims(self) -> tuple[int, ...]:
        """(d, …, d), N + 1 entries."""
        return (self.dim,) * (self.n_steps + 1)

    @cached_property
    def block_shapes(self) -> tuple[Shapes, ...]:
        """The field's parameter shapes, once per coefficient vector C_j."""
        return (dict(self.field.param_shapes(self.dim)),) * self.control.n_coeffs

    @property
    def n_nodes(self) -> int:
        """Distinct nodes of the scheme (1 for Euler, 3 for RK4)."""
        return len(self.scheme.nodes)

    def stage_shapes(self, k: int) -> Shapes:
        """The field's parameter shapes (the same at every stage).

        Parameters
        ----------
        k : int
            Stage index (unused: every stage has the same shapes).

        Returns
        -------
        dict
            ``field.param_shapes(d)``.
        """
        return self.block_shapes[0]

    @property
    def vector_field(self) -> VectorField:
        """f, the ``field``."""
        return self.field

    @property
    def has_readout(self) -> bool:
        """True: λ2 = P x + c maps x(T) ∈ R^d to the outputs."""
        return True

    @property
    def shared_step(self) -> bool:
        """True: Φ_h is one map; θ(t) carries the time dependence."""
        return True

    @property
    def separable(self) -> bool:
        """True for a piecewise-constant control (θ_k = C_k, R = h Σ_k L(θ_k))."""
        return isinstance(self.control, PiecewiseConstant)

    @cached_property
    def stage_weights(self) -> np.ndarray:
        """Basis weights φ_j(t_k + c_m h) at every node, shape ``(N, n_nodes, n_coeffs)``."""
        nodes = self.scheme.nodes
        return np.array([[self.control.stage_basis(k, c, self.horizon) for c in nodes] for k in range(self.n_steps)])

    def stage_thetas(self, w: Any, k: int, ops: Any) -> list[Any]:
        """θ(t_k + c_m h) = Σ_j φ_j(t_k + c_m h) C_j at each node c_m of step k.

        Parameters
        ----------
        w : array
            Decision vector, any backend.
        k : int
            Step index in 0..N−1.
        ops : Ops
            Backend namespace.

        Returns
        -------
        list of array
            One flat θ (p entries) per node.
        """
        return [self.theta_vector(w, weights, ops) for weights in self.stage_weights[k]]

    def step(self, k: int, x: Any, thetas: list[Any], ops: Any) -> Any:
        """x_{k+1} = Φ_h(x_k, θ at the nodes): the scheme applied to f (k does not enter).

        Parameters
        ----------
        k : int
            Step index (unused: Φ_h is the same map at every step).
        x : array
            States x_k, ``d × S``.
        thetas : list of array
            θ at the nodes of step k, flat vectors of p entries.
        ops : Ops
            Backend namespace.

        Returns
        -------
        array
            x_{k+1}, ``d × S``.
        """
        return self.scheme.step(lambda z, th: self.rhs(z, th, ops), x, thetas, self.step_size, ops)

    @cached_property
    def _l2_factor(self) -> np.ndarray:
        return self.control.l2_factor(self.horizon)

    @cached_property
    def _h1_factor(self) -> np.ndarray:
        return self.control.h1_factor(self.horizon)

    @cached_property
    def _midpoint_basis(self) -> np.ndarray:
        return np.array([self.control.stage_basis(k, 0.5, self.horizon) for k in range(self.n_steps)])

    def regulariser(self, w: Any, cost: Cost, ops: Any) -> Any:
        r"""R(θ) = α ‖C R_0ᵀ‖² + β ‖C R_1ᵀ‖² + γ h Σ_k Σ (√(θ(t_{k+½})² + ε²) − ε).

        C = [C_0 … C_{n−1}] (p × n); R_0ᵀR_0 and R_1ᵀR_1 are the Gram matrices of the basis and
        of its derivative (``control.l2_factor``, ``h1_factor``), so the first two terms are
        α ∫‖θ‖² dt and β ∫‖θ'‖² dt exactly; the L1 term is the midpoint rule on the smoothed |θ|.

        Parameters
        ----------
        w : array
            Decision vector (or its θ block).
        cost : Cost
            Weights α, β, γ and ε.
        ops : Ops
            Backend namespace.

        Returns
        -------
        scalar
            R(θ).
        """
        p = self.sizes[0]
        coeffs = ops.reshape(w[: self.n_theta], (p, len(self.sizes)))
        total = 0.0
        for weight, factor in ((cost.l2, self._l2_factor), (cost.h1, self._h1_factor)):
            if weight > 0 and factor.shape[0] > 0:
                m = ops.matmul(coeffs, ops.asarray(factor.T))
                total = total + weight * ops.sum(m * m)
        if cost.l1 > 0:
            theta_mid = ops.matmul(coeffs, ops.asarray(self._midpoint_basis.T))
            total = total + cost.l1 * self.step_size * ops.sum(smooth_abs(theta_mid, cost.l1_eps, ops))
        return total

    def theta(self, w: np.ndarray, t: np.ndarray) -> np.ndarray:
        """θ(t) = Σ_j C_j φ_j(t).

        Parameters
        ----------
        w : ndarray
            Decision vector, ``(n_params,)`` (or its θ block).
        t : ndarray
            Times in [0, T], a number or shape ``(M,)``.

        Returns
        -------
        ndarray
            Shape ``(M, p)``.
        """
        coeffs = w[: self.n_theta].reshape((self.sizes[0], len(self.sizes)), order="F")
        return (coeffs @ self.control.basis_at(np.atleast_1d(np.asarray(t, dtype=float)), self.horizon).T).T

    def initial_theta(self, rng: np.random.Generator, scale: float) -> np.ndarray:
        """Coefficients C_j ~ N(0, (scale/√d)²), entry by entry.

        Parameters
        ----------
        rng : numpy.random.Generator
            The caller's generator.
        scale : float
            Multiplies the standard deviation.

        Returns
        -------
        ndarray
            The θ block, shape ``(n_theta,)``.
        """
        return rng.normal(0.0, scale / np.sqrt(self.dim), self.n_theta)


@dataclass(frozen=True)
class LayerStack(Dynamics):
    r"""A feed-forward net as dynamics: x_{k+1} = F_k(x_k, θ_k), layer k of ``network``.

    F_k(x, θ_k) = σ_k(A_k x + b_k) (or x + h σ_k(A_k x + b_k) for a residual net), x_k ∈ R^{w_k};
    the blocks of w are θ_k = (A_k column-major, b_k), k = 0..L−1. No readout (λ2 is the identity),
    no vector field; stage k lives on the layer-time interval [k h, (k+1) h).

    Parameters
    ----------
    network : FeedForward
        Widths, activations, residual form and h.
    """

    network: FeedForward

    @property
    def n_steps(self) -> int:
        """L, the number of layers."""
        return self.network.n_layers

    @property
    def step_size(self) -> float:
        """h = ``network.step``."""
        return self.network.step

    @property
    def state_dims(self) -> tuple[int, ...]:
        """The widths w_0, …, w_L."""
        return self.network.widths

    @cached_property
    def block_shapes(self) -> tuple[Shapes, ...]:
        """``network.layer_shapes(k)`` for k = 0..L−1."""
        return tuple(self.network.layer_shapes(k) for k in range(self.n_steps))

    @property
    def n_nodes(self) -> int:
        """1: a layer takes θ_k once."""
        return 1

    def stage_shapes(self, k: int) -> Shapes:
        """Shapes of θ_k = (A_k, b_k).

        Parameters
        ----------
        k : int
            Layer index.

        Returns
        -------
        dict
            ``{"A": (w_{k+1}, w_k), "b": (w_{k+1},)}``.
        """
        return self.block_shapes[k]

    @property
    def separable(self) -> bool:
        """True: θ_k is block k and R = h Σ_k L(θ_k)."""
        return True

    def stage_thetas(self, w: Any, k: int, ops: Any) -> list[Any]:
        """[θ_k], block k of w.

        Parameters
        ----------
        w : array
            Decision vector, any backend.
        k : int
            Layer index.
        ops : Ops
            Backend namespace (unused: a slice).

        Returns
        -------
        list of array
            One flat θ_k (p_k entries).
        """
        return [self.block(w, k)]

    def step(self, k: int, x: Any, thetas: list[Any], ops: Any) -> Any:
        """Layer k's map on a ``w_k × S`` batch.

        Parameters
        ----------
        k : int
            Layer index.
        x : array
            States x_k, ``w_k × S``.
        thetas : list of array
            [θ_k], flat (p_k entries).
        ops : Ops
            Backend namespace.

        Returns
        -------
        array
            x_{k+1}, ``w_{k+1} × S``.
        """
        return self.network(k, x, unpack_blocks(thetas[0], self.block_shapes[k], ops), ops)

    def regulariser(self, w: Any, cost: Cost, ops: Any) -> Any:
        r"""R = α h Σ_k ‖θ_k‖² + γ h Σ_k Σ (√(θ_k² + ε²) − ε): the flow's terms for piecewise-constant θ.

        β (H1) is not defined for layers of different sizes (``TrainingProblem`` rejects it).

        Parameters
        ----------
        w : array
            Decision vector (or its θ block).
        cost : Cost
            Weights α, γ and ε.
        ops : Ops
            Backend namespace.

        Returns
        -------
        scalar
            R(θ).
        """
        theta = w[: self.n_theta]
        h, total = self.step_size, 0.0
        if cost.l2 > 0:
            total = total + cost.l2 * h * ops.sum(theta * theta)
        if cost.l1 > 0:
            total = total + cost.l1 * h * ops.sum(smooth_abs(theta, cost.l1_eps, ops))
        return total

    def theta(self, w: np.ndarray, t: np.ndarray) -> np.ndarray:
        """θ(t) = θ_k on layer k's interval [k h, (k+1) h), zero-padded to the largest p_k.

        Parameters
        ----------
        w : ndarray
            Decision vector, ``(n_params,)`` (or its θ block).
        t : ndarray
            Times in [0, L h], a number or shape ``(M,)``.

        Returns
        -------
        ndarray
            Shape ``(M, max_k p_k)``.
        """
        t = np.atleast_1d(np.asarray(t, dtype=float))
        out = np.zeros((t.size, max(self.sizes)))
        for i, k in enumerate(step_index(t, self.n_steps * self.step_size, self.n_steps)):
            theta_k = self.block(w, k)
            out[i, : theta_k.size] = theta_k
        return out

    def initial_theta(self, rng: np.random.Generator, scale: float) -> np.ndarray:
        """θ_k ~ N(0, (scale/√w_k)²) entry by entry (fan-in scaling).

        Parameters
        ----------
        rng : numpy.random.Generator
            The caller's generator.
        scale : float
            Multiplies the standard deviation.

        Returns
        -------
        ndarray
            The θ block, shape ``(n_theta,)``.
        """
        fan_in = np.repeat(self.state_dims[:-1], self.sizes)
        return rng.normal(0.0, 1.0, self.n_theta) * scale / np.sqrt(fan_in)
