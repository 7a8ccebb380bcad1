r"""Vector fields f(x, θ) of the neural ODE x' = f(x, θ(t)).

Each field is written once against an ``ops`` namespace (see :mod:`control_dl.backends`) and acts
on a ``d × S`` batch of states, one column per sample. Parameters arrive reshaped to the shapes
declared by :meth:`VectorField.param_shapes`, a 1-D shape ``(n,)`` as an ``n × 1`` column.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

import numpy as np

from .._errors import SpecError, is_integer, python_scalars, spec_error
from ..backends import Ops, numpy_ops
from .layout import unpack_blocks

#: Lipschitz constants of the activations (the field bounds live in :mod:`.lipschitz`).
ACTIVATION_LIPSCHITZ = {"tanh": 1.0, "sigmoid": 0.25, "softplus": 1.0, "relu": 1.0, "identity": 1.0}
ACTIVATIONS = tuple(ACTIVATION_LIPSCHITZ)


def activate(name: str, z: Any, ops: Ops) -> Any:
    """Apply the activation σ called ``name`` elementwise.

    Parameters
    ----------
    name : str
        One of :data:`ACTIVATIONS`.
    z : array
        Pre-activation, any shape.
    ops : Ops
        The backend namespace.

    Returns
    -------
    array
        σ(z), same shape as ``z``.
    """
    if name == "identity":
        return z
    return getattr(ops, name)(z)


def check_activation(name: str) -> str:
    """Return ``name`` if it is a known activation, else raise SpecError.

    Parameters
    ----------
    name : str
        Candidate activation name.

    Returns
    -------
    str
        ``name`` unchanged.

    Raises
    ------
    SpecError
        ``name`` is not one of :data:`ACTIVATIONS`.
    """
    if name not in ACTIVATION_LIPSCHITZ:
        raise spec_error("activation", name, f"must be one of {list(ACTIVATIONS)}")
    return name


@runtime_checkable
class VectorField(Protocol):
    """The extension point for user-defined dynamics.

    A vector field declares the shapes of its parameters θ for a state dimension ``d`` and
    evaluates f(x, θ) on a ``d × S`` batch through the given ``ops`` namespace. Anything that
    implements these two methods runs in every backend and every solver.
    """

    def param_shapes(self, dim: int) -> dict[str, tuple[int, ...]]:
        """Shapes of the parameters θ for state dimension ``dim``.

        Parameters
        ----------
        dim : int
            State dimension d.

        Returns
        -------
        dict
            Name → shape ``(n,)`` or ``(m, n)`` of positive integers; w stores them in this order.
        """
        ...

    def __call__(self, x: Any, params: dict[str, Any], ops: Ops) -> Any:
        """Evaluate f(x, θ) on the ``d × S`` batch ``x``, written only with ``ops`` and operators.

        Parameters
        ----------
        x : array
            States, ``d × S`` (one column per sample).
        params : dict
            θ by name in the shapes of :meth:`param_shapes` (a 1-D shape as a column).
        ops : Ops
            Backend namespace (:class:`~control_dl.backends.Ops`).

        Returns
        -------
        array
            f(x, θ), ``d × S`` (the shape of x; checked once by :func:`check_field`).
        """
        ...


def check_field(field: VectorField, dim: int, n_samples: int = 2) -> None:
    """Check a vector field's declared parameter shapes and its output shape, once.

    Like diffrax's ``ODETerm``, the field is evaluated once on the reference (numpy) backend, here
    on a ``d × S`` batch of distinct states with S = ``n_samples`` (so a field that mixes samples or
    drops the batch axis is caught) and parameters of the declared shapes filled with small
    distinct values. ``TrainingProblem`` calls this at construction.

    Parameters
    ----------
    field : VectorField
        The field to check.
    dim : int
        State dimension d.
    n_samples : int
        Batch size S of the probe (≥ 2).

    Raises
    ------
    SpecError
        Naming ``field``: if ``param_shapes(d)`` is not a dict of names to 1-D or 2-D shapes of
        positive integers, if evaluating the field raises (the original error is chained and
        quoted), or if f(x, θ) does not have the shape ``(d, S)`` of x.
    """
    name = type(field).__name__
    shapes = field.param_shapes(dim)
    if not isinstance(shapes, dict) or not all(
        isinstance(k, str) and isinstance(v, tuple) and len(v) in (1, 2) and all(is_integer(n) and n >= 1 for n in v)
        for k, v in shapes.items()
    ):
        raise spec_error(
            "field",
            name,
            f"param_shapes({dim}) returned {shapes!r}; expected a dict of names to shapes (n,) or (m, n)"
            " of positive integers",
        )
    size = sum(int(np.prod(v)) for v in shapes.values())
    params = unpack_blocks(np.linspace(-0.5, 0.5, size) if size > 1 else np.full(size, 0.1), shapes, numpy_ops)
    x = np.linspace(-1.0, 1.0, dim * n_samples).reshape(dim, n_samples)
    try:
        out = field(x, params, numpy_ops)
    except Exception as err:
        raise SpecError(
            f"field={name}: evaluating f(x, θ) on the numpy backend with x of shape {x.shape} and θ of shapes "
            f"{ {k: v.shape for k, v in params.items()} } raised {type(err).__name__}: {err}"
        ) from err
    got = np.shape(out)
    if got != (dim, n_samples):
        raise spec_error(
            "field",
            name,
            f"f(x, θ) returned shape {got} for x of shape {(dim, n_samples)} (d × S, one column per sample); "
            f"it must return the shape of x, {(dim, n_samples)}",
        )


@dataclass(frozen=True)
class _Activated:
    activation: str = "tanh"

    def __post_init__(self) -> None:
        python_scalars(self)
        check_activation(self.activation)

    @property
    def lipschitz(self) -> float:
        """Lipschitz constant of σ."""
        return ACTIVATION_LIPSCHITZ[self.activation]


@dataclass(frozen=True)
class Inside(_Activated):
    r"""f(x, θ) = σ(A x + b), θ = (A ∈ R^{d×d}, b ∈ R^d): the activation *inside*.

    Parameters
    ----------
    activation : str
        Elementwise σ, one of tanh, sigmoid, softplus, relu, identity.
    """

    def param_shapes(self, dim: int) -> dict[str, tuple[int, ...]]:
        """Parameter shapes of σ(A x + b).

        Parameters
        ----------
        dim : int
            State dimension d.

        Returns
        -------
        dict
            ``{"A": (d, d), "b": (d,)}``.
        """
        return {"A": (dim, dim), "b": (dim,)}

    def __call__(self, x: Any, params: dict[str, Any], ops: Ops) -> Any:
        """Evaluate f(x, θ) = σ(A x + b).

        Parameters
        ----------
        x : array
            States, ``d × S`` (one column per sample).
        params : dict
            θ by name in the shapes of :meth:`param_shapes` (a 1-D shape as a column).
        ops : Ops
            Backend namespace (:class:`~control_dl.backends.Ops`).

        Returns
        -------
        array
            ``d × S``.
        """
        return activate(self.activation, ops.affine(params["A"], x, params["b"]), ops)


@dataclass(frozen=True)
class Outside(_Activated):
    r"""f(x, θ) = W σ(x) + b, θ = (W ∈ R^{d×d}, b ∈ R^d): the activation *outside*.

    Parameters
    ----------
    activation : str
        Elementwise σ, one of tanh, sigmoid, softplus, relu, identity.
    """

    def param_shapes(self, dim: int) -> dict[str, tuple[int, ...]]:
        """Parameter shapes of W σ(x) + b.

        Parameters
        ----------
        dim : int
            State dimension d.

        Returns
        -------
        dict
            ``{"W": (d, d), "b": (d,)}``.
        """
        return {"W": (dim, dim), "b": (dim,)}

    def __call__(self, x: Any, params: dict[str, Any], ops: Ops) -> Any:
        """Evaluate f(x, θ) = W σ(x) + b.

        Parameters
        ----------
        x : array
            States, ``d × S`` (one column per sample).
        params : dict
            θ by name in the shapes of :meth:`param_shapes` (a 1-D shape as a column).
        ops : Ops
            Backend namespace (:class:`~control_dl.backends.Ops`).

        Returns
        -------
        array
            ``d × S``.
        """
        return ops.affine(params["W"], activate(self.activation, x, ops), params["b"])


@dataclass(frozen=True)
class Bottleneck(_Activated):
    r"""f(x, θ) = W σ(A x + b), A ∈ R^{m×d}, b ∈ R^m, W ∈ R^{d×m}: a width-m hidden layer.

    With ``m < d`` the field is degenerate in Kuntz's sense: f is constant along ker A.

    Parameters
    ----------
    activation : str
        Elementwise σ.
    width : int
        Hidden width m ≥ 1.

    Raises
    ------
    SpecError
        ``activation`` is unknown, or ``width`` is not an integer >= 1.
    """

    width: int = 4

    def __post_init__(self) -> None:
        super().__post_init__()
        if not is_integer(self.width) or self.width < 1:
            raise spec_error("width", self.width, "must be an integer >= 1")

    def param_shapes(self, dim: int) -> dict[str, tuple[int, ...]]:
        """Parameter shapes of W σ(A x + b) with hidden width m.

        Parameters
        ----------
        dim : int
            State dimension d.

        Returns
        -------
        dict
            ``{"A": (m, d), "b": (m,), "W": (d, m)}``.
        """
        m = self.width
        return {"A": (m, dim), "b": (m,), "W": (dim, m)}

    def __call__(self, x: Any, params: dict[str, Any], ops: Ops) -> Any:
        """Evaluate f(x, θ) = W σ(A x + b).

        Parameters
        ----------
        x : array
            States, ``d × S`` (one column per sample).
        params : dict
            θ by name in the shapes of :meth:`param_shapes` (a 1-D shape as a column).
        ops : Ops
            Backend namespace (:class:`~control_dl.backends.Ops`).

        Returns
        -------
        array
            ``d × S``.
        """
        hidden = activate(self.activation, ops.affine(params["A"], x, params["b"]), ops)
        return ops.matmul(params["W"], hidden)


FIELDS = {"inside": Inside, "outside": Outside, "bottleneck": Bottleneck}
