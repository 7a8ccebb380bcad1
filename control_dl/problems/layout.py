r"""The flat layout of the decision vector w.

All decision variables flatten to one float64 vector, in this order:

1. the control coefficients C_0, …, C_{n-1} (n = ``control.n_coeffs``), each a vector of the p
   field parameters: every parameter of ``field.param_shapes(d)`` in declaration order, matrices
   flattened column-major;
2. the readout λ2(x) = P x + c: P ∈ R^{n_out×d} (column-major), then c ∈ R^{n_out};
3. if the lift is trainable, λ1(x) = L x + l: L ∈ R^{d×n_in} (column-major), then l ∈ R^d.
"""

from __future__ import annotations

from dataclasses import dataclass
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
        out, start = {}, 0
        for name, shape in shapes.items():
            n = _size(shape)
            out[name] = ops.reshape(vec[start : start + n], as_matrix_shape(shape))
            start += n
        return out

    def readout(self, w: Any, ops: Any) -> dict[str, Any]:
        """P and c from w."""
        start = self.n_theta
        n = self.n_out * (self.dim + 1)
        return self.unpack(w[start : start + n], self.readout_shapes, ops)

    def lift(self, w: Any, ops: Any) -> dict[str, Any]:
        """L and l from w (empty dict for the fixed padding)."""
        start = self.n_theta + self.n_out * (self.dim + 1)
        return self.unpack(w[start : self.n_params], self.lift_shapes, ops)
