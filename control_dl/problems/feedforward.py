r"""Feed-forward networks (MLPs): the discrete-time control system whose state dimension changes.

    x_{k+1} = σ_k(A_k x_k + b_k),                  A_k ∈ R^{w_{k+1}×w_k}, b_k ∈ R^{w_{k+1}}
    x_{k+1} = x_k + h σ_k(A_k x_k + b_k)           (``residual=True``, all widths equal, h = ``step``)

for k = 0, …, L−1 with widths w_0 = n_in, …, w_L = n_out. σ_k is ``activation`` on the hidden layers
and ``output_activation`` on the last one (affine by default, so the output is not confined to the
range of σ). The readout λ2 is the identity: Φ(x) = x_L. A :class:`TrainingProblem` takes a
:class:`FeedForward` as ``model=`` in place of (field, dim, control, integrator) and sees it through
the dynamics interface as a :class:`~control_dl.problems.dynamics.LayerStack`; the layer map is
written once against ``ops`` like the vector fields.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from .._errors import is_integer, is_number, python_scalars, spec_error
from .fields import activate, check_activation


def check_widths(widths: Any) -> tuple[int, ...]:
    """Return ``widths`` as a tuple of positive ints, or raise SpecError naming the bad value.

    Parameters
    ----------
    widths : sequence of int
        Layer widths w_0, …, w_L (at least two).

    Returns
    -------
    tuple of int
        The widths.

    Raises
    ------
    SpecError
        Fewer than two widths, or a width that is not an integer >= 1.
    """
    if not isinstance(widths, (list, tuple)) or len(widths) < 2:
        raise spec_error("widths", widths, "must be a list of at least two layer widths [n_in, ..., n_out]")
    for w in widths:
        if not is_integer(w) or w < 1:
            raise spec_error("widths", list(widths), f"every width must be an integer >= 1 (got {w!r})")
    return tuple(int(w) for w in widths)


@dataclass(frozen=True)
class FeedForward:
    """A multilayer perceptron x_{k+1} = σ(A_k x_k + b_k) (or its residual form).

    Parameters
    ----------
    widths : sequence of int
        w_0 = n_in, w_1, …, w_L = n_out (the output size of the loss).
    activation : str
        σ on the hidden layers (tanh, sigmoid, softplus, relu, identity).
    residual : bool
        x_{k+1} = x_k + h σ(A_k x_k + b_k); needs all widths equal.
    step : float
        h of the residual form, also the layer-time step: layer k lives on t ∈ [k h, (k+1) h].
    output_activation : str
        σ on the last layer (default ``"identity"``: an affine output layer). Pass
        ``output_activation=activation`` for σ on every layer (then a residual net is exactly the
        Euler ResNet with piecewise-constant θ).

    Raises
    ------
    SpecError
        ``widths`` not at least two integers >= 1, an unknown activation, ``residual`` not a bool, a
        residual net with unequal widths, or ``step`` not a finite number > 0.
    """

    widths: tuple[int, ...]
    activation: str = "tanh"
    residual: bool = False
    step: float = 1.0
    output_activation: str = "identity"

    def __post_init__(self) -> None:
        python_scalars(self)
        object.__setattr__(self, "widths", check_widths(self.widths))
        check_activation(self.activation)
        check_activation(self.output_activation)
        if not isinstance(self.residual, bool):
            raise spec_error("residual", self.residual, "must be true or false")
        if self.residual and len(set(self.widths)) != 1:
            raise spec_error("widths", list(self.widths), "a residual FeedForward needs all widths equal")
        step = self.step
        if not is_number(step) or not (0 < step < math.inf):
            raise spec_error("step", step, "must be a finite number > 0")
        object.__setattr__(self, "step", float(step))

    @property
    def n_layers(self) -> int:
        """Number L of layers (weight matrices)."""
        return len(self.widths) - 1

    def layer_shapes(self, k: int) -> dict[str, tuple[int, ...]]:
        """Shapes of θ_k = (A_k, b_k): ``A`` is ``w_{k+1} × w_k``, ``b`` has ``w_{k+1}`` entries.

        Parameters
        ----------
        k : int
            Layer index, 0 ≤ k < L.

        Returns
        -------
        dict
            ``{"A": (w_{k+1}, w_k), "b": (w_{k+1},)}``.
        """
        return {"A": (self.widths[k + 1], self.widths[k]), "b": (self.widths[k + 1],)}

    def layer_activation(self, k: int) -> str:
        """σ_k: ``output_activation`` on the last layer, ``activation`` elsewhere.

        Parameters
        ----------
        k : int
            Layer index in 0..L-1.

        Returns
        -------
        str
            The activation name.
        """
        return self.output_activation if k == self.n_layers - 1 else self.activation

    def __call__(self, k: int, x: Any, params: dict[str, Any], ops: Any) -> Any:
        """Layer map x_{k+1} = σ_k(A_k x_k + b_k) (+ x_k residual, times h) on a ``w_k × S`` batch.

        Parameters
        ----------
        k : int
            Layer index.
        x : array
            States x_k, ``w_k × S``.
        params : dict
            ``A`` (``w_{k+1} × w_k``) and ``b`` (``w_{k+1} × 1``).
        ops : namespace
            Backend.

        Returns
        -------
        array
            x_{k+1}, ``w_{k+1} × S``.
        """
        out = activate(self.layer_activation(k), ops.affine(params["A"], x, params["b"]), ops)
        return x + self.step * out if self.residual else out
