r"""The flat layout of the decision vector w.

All decision variables flatten to one float64 vector, in this order:

1. the control coefficients C_0, …, C_{n-1} (n = ``control.n_coeffs``), each a vector of the p
   field parameters: every parameter of ``field.param_shapes(d)`` in declaration order, matrices
   flattened column-major;
2. the readout λ2(x) = P x + c: P ∈ R^{n_out×d} (column-major), then c ∈ R^{n_out};
3. if the lift is trainable, λ1(x) = L x + l: L ∈ R^{d×n_in} (column-major), then l ∈ R^d.

A feed-forward model (:class:`~control_dl.problems.feedforward.FeedForward`) has the
:class:`LayerLayout` instead: θ_0, …, θ_{L-1} one after another, θ_k = (A_k column-major, b_k), its
length p_k depending on k; no readout (λ2 is the identity) and no lift.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np


def _size(shape: tuple[int, ...]) -> int:
    return int(np.prod(shape)) if shape else 1


def as_matrix_shape(shape: tuple[int, ...]) -> tuple[int, int]:
    """A parameter shape as a matrix shape: ``(n,)`` becomes the column ``(n, 1)``.

    Parameters
    ----------
    shape : tuple of int
        Declared shape (1-D or 2-D).

    Returns
    -------
    tuple of int
        ``(rows, cols)``.
    """
    return (shape[0], 1) if len(shape) == 1 else (shape[0], shape[1])


@dataclass(frozen=True)
class Layout:
    """Offsets of every block of w.

    Parameters
    ----------
    theta_shapes : dict
        Field parameter shapes (one coefficient vector).
    n_coeffs : int
        Number of coefficient vectors n.
    dim, n_in, n_out : int
        State, input and output dimensions.
    affine_lift : bool
        Whether λ1 is trainable.
    """

    theta_shapes: dict[str, tuple[int, ...]]
    n_coeffs: int
    dim: int
    n_in: int
    n_out: int
    affine_lift: bool

    @property
    def p(self) -> int:
        """Number of field parameters in one coefficient vector."""
        return sum(_size(s) for s in self.theta_shapes.values())

    @property
    def n_theta(self) -> int:
        """Entries of w that belong to θ (all coefficients)."""
        return self.p * self.n_coeffs

    @property
    def readout_shapes(self) -> dict[str, tuple[int, ...]]:
        """Shapes of P and c."""
        return {"P": (self.n_out, self.dim), "c": (self.n_out,)}

    @property
    def lift_shapes(self) -> dict[str, tuple[int, ...]]:
        """Shapes of L and l (empty when the lift is the fixed zero-padding)."""
        return {"L": (self.dim, self.n_in), "l": (self.dim,)} if self.affine_lift else {}

    @property
    def n_readout(self) -> int:
        """Entries of w that belong to the readout (P, c)."""
        return self.n_out * (self.dim + 1)

    @property
    def n_params(self) -> int:
        """Length of w."""
        extra = self.readout_shapes | self.lift_shapes
        return self.n_theta + sum(_size(s) for s in extra.values())

    def coefficient(self, w: Any, j: int) -> Any:
        """Slice C_j out of w (any backend)."""
        return w[j * self.p : (j + 1) * self.p]

    def unpack(self, vec: Any, shapes: dict[str, tuple[int, ...]], ops: Any) -> dict[str, Any]:
        """Reshape a flat vector into named matrices (1-D shapes as columns).

        Parameters
        ----------
        vec : array
            Flat block of w.
        shapes : dict
            Names and declared shapes, in layout order.
        ops : namespace
            Backend.

        Returns
        -------
        dict
            Name → ``rows × cols`` matrix.
        """
        return unpack_blocks(vec, shapes, ops)

    def readout(self, w: Any, ops: Any) -> dict[str, Any]:
        """P and c from w."""
        start = self.n_theta
        n = self.n_out * (self.dim + 1)
        return self.unpack(w[start : start + n], self.readout_shapes, ops)

    def lift(self, w: Any, ops: Any) -> dict[str, Any]:
        """L and l from w (empty dict for the fixed padding)."""
        start = self.n_theta + self.n_out * (self.dim + 1)
        return self.unpack(w[start : self.n_params], self.lift_shapes, ops)


def unpack_blocks(vec: Any, shapes: dict[str, tuple[int, ...]], ops: Any) -> dict[str, Any]:
    """Reshape a flat vector into named matrices (1-D shapes as columns, matrices column-major).

    Parameters
    ----------
    vec : array
        Flat block of w.
    shapes : dict
        Names and declared shapes, in layout order.
    ops : namespace
        Backend.

    Returns
    -------
    dict
        Name → ``rows × cols`` matrix.
    """
    out, start = {}, 0
    for name, shape in shapes.items():
        n = _size(shape)
        out[name] = ops.reshape(vec[start : start + n], as_matrix_shape(shape))
        start += n
    return out


@dataclass(frozen=True)
class LayerLayout:
    """Offsets of the per-layer blocks θ_k = (A_k, b_k) of a feed-forward model's w.

    Mirrors :class:`Layout` where the notions carry over: ``coefficient(w, k)`` is θ_k, ``n_coeffs``
    the number of layers L, ``p`` the largest p_k; the readout and lift blocks are empty.

    Parameters
    ----------
    layer_shapes : tuple of dict
        Parameter shapes of every layer.
    dim : int
        Largest width (the dimension the padded states of ``forward`` use).
    n_in, n_out : int
        Input and output widths w_0 and w_L.
    """

    layer_shapes: tuple[dict[str, tuple[int, ...]], ...]
    dim: int
    n_in: int
    n_out: int
    affine_lift: bool = False
    readout_shapes: dict[str, tuple[int, ...]] = field(default_factory=dict)
    lift_shapes: dict[str, tuple[int, ...]] = field(default_factory=dict)
    n_readout: int = 0

    @property
    def sizes(self) -> tuple[int, ...]:
        """p_k, the number of entries of θ_k."""
        return tuple(sum(_size(s) for s in shapes.values()) for shapes in self.layer_shapes)

    @property
    def offsets(self) -> tuple[int, ...]:
        """Start of θ_k in w, k = 0..L (the last entry is n_theta)."""
        return tuple(int(v) for v in np.concatenate([[0], np.cumsum(self.sizes)]))

    @property
    def n_coeffs(self) -> int:
        """Number of layers L."""
        return len(self.layer_shapes)

    @property
    def p(self) -> int:
        """Largest p_k (θ(t) is zero-padded to this length)."""
        return max(self.sizes)

    @property
    def n_theta(self) -> int:
        """Entries of w that belong to θ (all layers)."""
        return self.offsets[-1]

    @property
    def n_params(self) -> int:
        """Length of w (= n_theta: no readout, no lift)."""
        return self.n_theta

    def coefficient(self, w: Any, k: int) -> Any:
        """Slice θ_k out of w (any backend)."""
        return w[self.offsets[k] : self.offsets[k + 1]]

    def unpack(self, vec: Any, shapes: dict[str, tuple[int, ...]], ops: Any) -> dict[str, Any]:
        """Reshape a flat vector into named matrices (see :func:`unpack_blocks`).

        Parameters
        ----------
        vec : array
            Flat block of w.
        shapes : dict
            Names and declared shapes.
        ops : namespace
            Backend.

        Returns
        -------
        dict
            Name → ``rows × cols`` matrix.
        """
        return unpack_blocks(vec, shapes, ops)

    def readout(self, w: Any, ops: Any) -> dict[str, Any]:
        """Empty: λ2 is the identity."""
        return {}

    def lift(self, w: Any, ops: Any) -> dict[str, Any]:
        """Empty: λ1 is the identity."""
        return {}
