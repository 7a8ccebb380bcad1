r"""The ``ops`` protocol: the array operations the model is written in, identical in every backend.

Shapes. A batch of states is a ``d × S`` matrix (one column per sample), a bias a ``d × 1`` column,
a per-sample quantity a ``1 × S`` row. Arithmetic operators (``+ - * /``, ``**`` with a number
exponent) act elementwise and broadcast a scalar, a ``d × 1`` column over the columns and a ``1 × S``
row over the rows. CasADi matrices are 2-D and broadcast only scalars, so the model is evaluated in
CasADi one sample at a time (S = 1), where a column and the batch have the same shape.

Constants. Every function below accepts numpy arrays and Python numbers wherever it takes an array
and converts them to the backend (float64; on torch to the device of the other operand). Operators
cannot be intercepted that way: ``numpy_array * torch_tensor`` raises ``TypeError`` inside torch, so
lift a numpy constant used with an operator first, ``c = ops.asarray(c)``.

Kinks (one convention in every backend, the one torch uses). At a point where an op is not
differentiable its derivative is taken as: relu'(0) = 0; abs'(0) = 0; sign' = 0 everywhere;
maximum(a, b) and minimum(a, b) at a = b pass half of the derivative to each argument. The L1
regulariser never meets a kink: |θ| is smoothed to √(θ² + ε²) − ε (:func:`smooth_abs`), whose
derivative θ / √(θ² + ε²) is 0 at θ = 0.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol, runtime_checkable

#: A backend array: ``numpy.ndarray``, ``casadi.SX``/``MX``/``DM`` or ``torch.Tensor`` (always 2-D
#: in the model; float64).
Array = Any


@runtime_checkable
class Ops(Protocol):
    """Array operations over one backend's matrices (numpy, CasADi or torch).

    Implementations: :data:`~control_dl.backends.numpy_ops`, :data:`~control_dl.backends.casadi_ops`,
    :func:`~control_dl.backends.torch_ops`. A vector field, a loss or a regulariser written only with
    these functions and the arithmetic operators runs in every backend and every solver. The
    module docstring of :mod:`control_dl.backends._protocol` gives the shape, constant and kink
    conventions.
    """

    name: str

    # ------------------------------------------------------------------ construction and shape
    def asarray(self, x: Any) -> Array:
        """Convert a numpy array or number to a float64 backend constant.

        Parameters
        ----------
        x : array_like
            Constant (a 1-D array becomes a column in CasADi; numpy and torch keep its shape).

        Returns
        -------
        array
            The same values as a backend array.
        """
        ...

    def zeros(self, shape: tuple[int, int]) -> Array:
        """A matrix of zeros.

        Parameters
        ----------
        shape : tuple of int
            ``(rows, cols)``.

        Returns
        -------
        array
            Zeros of that shape.
        """
        ...

    def ones(self, shape: tuple[int, int]) -> Array:
        """A matrix of ones.

        Parameters
        ----------
        shape : tuple of int
            ``(rows, cols)``.

        Returns
        -------
        array
            Ones of that shape.
        """
        ...

    def reshape(self, v: Array, shape: tuple[int, int]) -> Array:
        """Reshape in column-major (Fortran) order, the order of the flat decision vector w.

        Parameters
        ----------
        v : array
            Any array with ``rows · cols`` entries.
        shape : tuple of int
            ``(rows, cols)``.

        Returns
        -------
        array
            ``rows × cols``; entry (i, j) is v's entry i + j·rows in column-major order.
        """
        ...

    def transpose(self, a: Array) -> Array:
        """Matrix transpose aᵀ.

        Parameters
        ----------
        a : array
            ``m × n``.

        Returns
        -------
        array
            ``n × m``.
        """
        ...

    def vstack(self, parts: Sequence[Array]) -> Array:
        """Stack matrices with equal column counts on top of each other.

        Parameters
        ----------
        parts : sequence of array
            ``m_i × n`` each.

        Returns
        -------
        array
            ``(Σ m_i) × n``.
        """
        ...

    def hstack(self, parts: Sequence[Array]) -> Array:
        """Place matrices with equal row counts side by side.

        Parameters
        ----------
        parts : sequence of array
            ``m × n_i`` each.

        Returns
        -------
        array
            ``m × (Σ n_i)``.
        """
        ...

    # -------------------------------------------------------------------------- linear algebra
    def matmul(self, a: Array, b: Array) -> Array:
        """Matrix product a b.

        Parameters
        ----------
        a : array
            ``m × n`` (a numpy constant is accepted).
        b : array
            ``n × S``.

        Returns
        -------
        array
            ``m × S``.
        """
        ...

    def affine(self, a: Array, x: Array, b: Array) -> Array:
        """The affine map a x + b, in one matrix product where the backend fuses the bias in.

        torch: ``torch.addmm`` (the GEMM starts from b; one ``m × S`` tensor instead of two, which
        is 5 % of the torch engine's f+grad on ring); numpy and CasADi: a @ x + b.

        Parameters
        ----------
        a : array
            ``m × n`` (a numpy constant is accepted).
        x : array
            ``n × S``.
        b : array
            ``m × 1`` column (broadcast over the columns) or ``m × S``.

        Returns
        -------
        array
            ``m × S``.
        """
        ...

    def add_scaled(self, x: Array, alpha: float, y: Array) -> Array:
        """x + alpha y, the update of an explicit integrator step, in one pass where the backend has it.

        torch: ``torch.add(x, y, alpha=alpha)`` (no temporary alpha y: 5 % of the torch engine's
        f+grad on ring); numpy and CasADi: x + alpha y.

        Parameters
        ----------
        x, y : array
            Same shape (or broadcastable as for ``+``).
        alpha : float
            A number (e.g. the step size h).

        Returns
        -------
        array
            x + alpha y, the shape of ``x`` (broadcast with ``y``).
        """
        ...

    def sum(self, z: Array) -> Array:
        """Sum of all entries.

        Parameters
        ----------
        z : array
            Any shape.

        Returns
        -------
        array
            A scalar (0-d in numpy and torch, ``1 × 1`` in CasADi).
        """
        ...

    def sum_rows(self, z: Array) -> Array:
        """Sum down each column (over the rows): one value per sample.

        Parameters
        ----------
        z : array
            ``m × S``.

        Returns
        -------
        array
            ``1 × S`` with entries Σ_i z_ij.
        """
        ...

    def logsumexp_rows(self, z: Array) -> Array:
        """log Σ_i exp(z_ij) down each column, computed stably (max subtracted first).

        Parameters
        ----------
        z : array
            ``m × S`` (e.g. logits, one column per sample).

        Returns
        -------
        array
            ``1 × S``.
        """
        ...

    # ------------------------------------------------------------------ elementwise functions
    def sin(self, z: Array) -> Array:
        """Elementwise sine.

        Parameters
        ----------
        z : array
            Any shape.

        Returns
        -------
        array
            sin(z), the shape of ``z``.
        """
        ...

    def cos(self, z: Array) -> Array:
        """Elementwise cosine.

        Parameters
        ----------
        z : array
            Any shape.

        Returns
        -------
        array
            cos(z), the shape of ``z``.
        """
        ...

    def tanh(self, z: Array) -> Array:
        """Elementwise hyperbolic tangent.

        Parameters
        ----------
        z : array
            Any shape.

        Returns
        -------
        array
            tanh(z), the shape of ``z``.
        """
        ...

    def exp(self, z: Array) -> Array:
        """Elementwise exponential.

        Parameters
        ----------
        z : array
            Any shape.

        Returns
        -------
        array
            e^z, the shape of ``z``.
        """
        ...

    def log(self, z: Array) -> Array:
        """Elementwise natural logarithm (−inf at 0, NaN below).

        Parameters
        ----------
        z : array
            Any shape, z ≥ 0.

        Returns
        -------
        array
            log z, the shape of ``z``.
        """
        ...

    def sqrt(self, z: Array) -> Array:
        """Elementwise square root (its derivative is +inf at 0).

        Parameters
        ----------
        z : array
            Any shape, z ≥ 0.

        Returns
        -------
        array
            √z, the shape of ``z``.
        """
        ...

    def square(self, z: Array) -> Array:
        """Elementwise square.

        Parameters
        ----------
        z : array
            Any shape.

        Returns
        -------
        array
            z², the shape of ``z``.
        """
        ...

    def abs(self, z: Array) -> Array:
        """Elementwise absolute value; derivative sign(z), so 0 at z = 0.

        Parameters
        ----------
        z : array
            Any shape.

        Returns
        -------
        array
            |z|, the shape of ``z``.
        """
        ...

    def sign(self, z: Array) -> Array:
        """Elementwise sign: −1, 0 or 1 (sign(0) = 0); derivative 0.

        Parameters
        ----------
        z : array
            Any shape.

        Returns
        -------
        array
            sign(z), the shape of ``z``.
        """
        ...

    def maximum(self, a: Array, b: Array) -> Array:
        """Elementwise max(a, b); at a tie each argument receives half of the derivative.

        Parameters
        ----------
        a : array
            Any shape.
        b : array or float
            The shape of ``a``, or a scalar.

        Returns
        -------
        array
            max(a, b), the shape of ``a``.
        """
        ...

    def minimum(self, a: Array, b: Array) -> Array:
        """Elementwise min(a, b); at a tie each argument receives half of the derivative.

        Parameters
        ----------
        a : array
            Any shape.
        b : array or float
            The shape of ``a``, or a scalar.

        Returns
        -------
        array
            min(a, b), the shape of ``a``.
        """
        ...

    def relu(self, z: Array) -> Array:
        """Elementwise rectifier max(z, 0) with relu'(0) = 0 (torch's convention).

        Parameters
        ----------
        z : array
            Any shape.

        Returns
        -------
        array
            max(z, 0), the shape of ``z``.
        """
        ...

    def sigmoid(self, z: Array) -> Array:
        """Elementwise logistic function 1 / (1 + e^{−z}) = (1 + tanh(z/2)) / 2.

        numpy and CasADi evaluate the tanh form (smooth, no overflow); its absolute error is below
        1.2e-16 but the relative error grows in the lower tail (1.7e-4 at z = −30, and σ(z) = 0 for
        z ≤ −38); torch uses ``torch.sigmoid`` (accurate in relative terms).

        Parameters
        ----------
        z : array
            Any shape.

        Returns
        -------
        array
            σ(z) ∈ [0, 1], the shape of ``z``.
        """
        ...

    def softplus(self, z: Array) -> Array:
        """Elementwise log(1 + e^z), computed as max(z, 0) + log1p(e^{−|z|}) (no overflow).

        Parameters
        ----------
        z : array
            Any shape.

        Returns
        -------
        array
            softplus(z) > 0, the shape of ``z``; its derivative is the sigmoid (½ at 0).
        """
        ...


def smooth_abs(z: Array, eps: float, ops: Ops) -> Array:
    r"""The smoothed absolute value √(z² + ε²) − ε used for the L1 regulariser γ ∫|θ|₁ dt.

    It is 0 at z = 0, within ε of |z| everywhere, twice differentiable (so IPOPT's exact Hessian
    and Gauss-Newton products exist) and its derivative z / √(z² + ε²) is 0 at z = 0, matching
    the kink convention abs'(0) = 0. This is the pseudo-Huber (Charbonnier) smoothing of |z|
    (Charbonnier, Blanc-Féraud, Aubert & Barlaud, ICIP 1994), scaled so it is ≈ z²/(2ε) near 0.

    Parameters
    ----------
    z : array
        Any shape.
    eps : float
        ε > 0 (``Cost.l1_eps``).
    ops : Ops
        Backend namespace.

    Returns
    -------
    array
        The shape of ``z``.
    """
    return ops.sqrt(z * z + eps**2) - eps
