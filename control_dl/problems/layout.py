r"""The flat layout of the decision vector w.

All decision variables flatten to one float64 vector, in this order:

1. the θ block: blocks B_0, …, B_{n-1} one after another, block j holding the parameters of
   ``block_shapes[j]`` in declaration order, matrices flattened column-major. The blocks come from
   the model's dynamics (:attr:`~control_dl.problems.dynamics.Dynamics.block_shapes`):

   - a flow: the n = ``control.n_coeffs`` control coefficients C_0, …, C_{n-1}, each a vector of
     the p field parameters ``field.param_shapes(d)`` (all blocks alike, offsets j·p);
   - a layer stack (:class:`~control_dl.problems.feedforward.FeedForward`): θ_0, …, θ_{L-1},
     θ_k = (A_k, b_k) of length p_k depending on k;

2. the readout λ2(x) = P x + c when the dynamics has one: P ∈ R^{n_out×d} (column-major), then
   c ∈ R^{n_out} (a layer stack has none: λ2 is the identity);
3. if the lift is trainable, λ1(x) = L x + l: L ∈ R^{d×n_in} (column-major), then l ∈ R^d.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import Any

import numpy as np

#: Parameter shapes of one θ block: name → ``(n,)`` or ``(m, n)``, in layout order.
Shapes = dict[str, tuple[int, ...]]


def _size(shape: tuple[int, ...]) -> int:
    return int(math.prod(shape))  # 1 for a scalar's (); math.prod: np.prod costs 3 µs a call, per step


def block_size(shapes: Shapes) -> int:
    """Number of entries of one θ block.

    Parameters
    ----------
    shapes : dict
        Parameter names and declared shapes.

    Returns
    -------
    int
        Σ over the parameters of their sizes.
    """
    return sum(_size(s) for s in shapes.values())


def block_offsets(block_shapes: Sequence[Shapes]) -> tuple[int, ...]:
    """Start of every θ block in w, and the end of the last one.

    Parameters
    ----------
    block_shapes : sequence of dict
        Shapes of blocks B_0, …, B_{n-1}.

    Returns
    -------
    tuple of int
        ``(0, p_0, p_0 + p_1, …, n_theta)``, n + 1 entries.
    """
    return tuple(int(v) for v in np.concatenate([[0], np.cumsum([block_size(s) for s in block_shapes])]))


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


def unpack_blocks(vec: Any, shapes: Shapes, ops: Any) -> dict[str, Any]:
    """Reshape a flat vector into named matrices (1-D shapes as columns, matrices column-major).

    Parameters
    ----------
    vec : array
        Flat block of w, a vector of ``block_size(shapes)`` entries.
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
class Layout:
    """Offsets of every block of w.

    Parameters
    ----------
    block_shapes : tuple of dict
        Shapes of the θ blocks B_0, …, B_{n-1} (``Dynamics.block_shapes``).
    dim : int
        State dimension d of the readout's input and the lift's output (the largest width of a
        layer stack, whose readout and lift are empty).
    n_in, n_out : int
        Input and output dimensions.
    has_readout : bool
        Whether w holds the readout (P, c) (``Dynamics.has_readout``).
    affine_lift : bool
        Whether λ1 is trainable (w holds L, l).
    """

    block_shapes: tuple[Shapes, ...]
    dim: int
    n_in: int
    n_out: int
    has_readout: bool = True
    affine_lift: bool = False

    @cached_property
    def sizes(self) -> tuple[int, ...]:
        """p_j, the number of entries of block j."""
        return tuple(block_size(s) for s in self.block_shapes)

    @cached_property
    def offsets(self) -> tuple[int, ...]:
        """Start of block j in w, j = 0..n (the last entry is n_theta)."""
        return block_offsets(self.block_shapes)

    @property
    def n_coeffs(self) -> int:
        """Number n of θ blocks (coefficient vectors of a flow, layers of a stack)."""
        return len(self.block_shapes)

    @property
    def uniform(self) -> bool:
        """Whether every θ block has the same shapes (always for a flow)."""
        return all(s == self.block_shapes[0] for s in self.block_shapes[1:])

    @property
    def theta_shapes(self) -> Shapes:
        """The shapes every θ block shares (a flow's field parameters).

        Raises
        ------
        ValueError
            The blocks differ (a layer stack of varying widths: use ``block_shapes[j]``).
        """
        if not self.uniform:
            raise ValueError("the θ blocks have different shapes; use layout.block_shapes[j]")
        return self.block_shapes[0]

    @property
    def p(self) -> int:
        """The largest block length (every block's for a flow; θ(t) is zero-padded to it)."""
        return max(self.sizes)

    @property
    def n_theta(self) -> int:
        """Entries of w that belong to θ (all blocks)."""
        return self.offsets[-1]

    @property
    def readout_shapes(self) -> Shapes:
        """Shapes of P and c (empty when λ2 is the identity)."""
        return {"P": (self.n_out, self.dim), "c": (self.n_out,)} if self.has_readout else {}

    @property
    def lift_shapes(self) -> Shapes:
        """Shapes of L and l (empty when the lift is the fixed zero-padding)."""
        return {"L": (self.dim, self.n_in), "l": (self.dim,)} if self.affine_lift else {}

    @property
    def n_readout(self) -> int:
        """Entries of w that belong to the readout (P, c)."""
        return block_size(self.readout_shapes)

    @property
    def n_params(self) -> int:
        """Length of w."""
        return self.n_theta + self.n_readout + block_size(self.lift_shapes)

    def coefficient(self, w: Any, j: int) -> Any:
        """Slice block j (C_j of a flow, θ_j of a layer stack) out of w (any backend).

        Parameters
        ----------
        w : array
            Decision vector.
        j : int
            Block index in 0..n-1.

        Returns
        -------
        array
            The flat block, length p_j.
        """
        return w[self.offsets[j] : self.offsets[j + 1]]

    def unpack(self, vec: Any, shapes: Shapes, ops: Any) -> dict[str, Any]:
        """Reshape a flat vector into named matrices (see :func:`unpack_blocks`).

        Parameters
        ----------
        vec : array
            Flat block of w, a vector of ``block_size(shapes)`` entries.
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
        """P and c from w (empty dict when λ2 is the identity).

        Parameters
        ----------
        w : array
            Decision vector.
        ops : namespace
            Backend.

        Returns
        -------
        dict
            ``{"P": n_out × d, "c": n_out × 1}`` or ``{}``.
        """
        start = self.n_theta
        return self.unpack(w[start : start + self.n_readout], self.readout_shapes, ops)

    def lift(self, w: Any, ops: Any) -> dict[str, Any]:
        """L and l from w (empty dict for the fixed padding).

        Parameters
        ----------
        w : array
            Decision vector.
        ops : namespace
            Backend.

        Returns
        -------
        dict
            ``{"L": d × n_in, "l": d × 1}`` or ``{}``.
        """
        start = self.n_theta + self.n_readout
        return self.unpack(w[start : self.n_params], self.lift_shapes, ops)
