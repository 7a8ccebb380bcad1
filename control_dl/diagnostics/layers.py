r"""Layer by layer: Kuntz's architecture classes of feed-forward nets and the ranks of every layer.

Kuntz classifies feed-forward networks with full-rank weight matrices by their widths w_0, …, w_L:

- non-augmented: w_0 ≥ w_1 ≥ … ≥ w_L (the input-output map Φ has no critical point);
- augmented: the widest layer is wider than w_0, widths rise to it and fall after it (Φ is Morse
  for almost all weights: every critical point is non-degenerate);
- bottleneck: some layer w_B is a valley, widths falling to it from a wider layer and rising
  after it to a wider one (critical points, if any, are degenerate when w_B = 1).

:func:`layer_ranks` measures "losing information" (Andreu): the singular values of every weight
matrix A_k and of every layer map's Jacobian ∂x_{k+1}/∂x_k at each training sample. A layer whose
Jacobian loses rank over the data folds the data onto a lower-dimensional set.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import casadi as ca
import numpy as np

from .._errors import as_list, check_choice, check_positive_float, spec_error
from ..backends import numpy_ops
from ..engines import casadi_model
from ..problems.datasets import LAYOUTS, as_features
from ..problems.feedforward import check_widths
from ..problems.training import TrainingProblem
from ._common import weights_of

KINDS = ("non-augmented", "augmented", "bottleneck")


@dataclass(frozen=True)
class FeedForwardClass:
    """Kuntz's class of a feed-forward architecture.

    Attributes
    ----------
    kind : {"non-augmented", "augmented", "bottleneck"}
        The class (valid for full-rank weight matrices).
    widths : tuple of int
        w_0, …, w_L.
    widest : int
        Index of the (first) widest layer.
    bottlenecks : tuple of int
        Indices B of the valleys: the nearest different width on either side is larger.
    """

    kind: str
    widths: tuple[int, ...]
    widest: int
    bottlenecks: tuple[int, ...]


def classify_feedforward(problem: TrainingProblem | Sequence[int]) -> FeedForwardClass:
    """Label a feed-forward net non-augmented, augmented or bottleneck by its widths (Kuntz).

    Widths w_0, …, w_L (Kuehn & Kuntz, arXiv:2405.09351, 2024): non-augmented when they never
    rise above w_0, augmented when the widest layer is wider than w_0 without a valley, bottleneck
    when some layer is a valley between wider layers (see the module docstring).

    Parameters
    ----------
    problem : TrainingProblem or sequence of int
        A problem with a :class:`~control_dl.FeedForward` model, or the widths themselves.

    Returns
    -------
    FeedForwardClass
        The class, the widest layer and the bottleneck layers.

    Raises
    ------
    SpecError
        ``problem`` is a flow (not a FeedForward model), neither a problem nor a list of widths,
        or the widths are not integers >= 1.
    """
    if isinstance(problem, TrainingProblem):
        if problem.dynamics.vector_field is not None:
            why = (
                "classify_feedforward needs a problem with a FeedForward model (model='mlp'), not a flow: use classify"
            )
            raise spec_error("problem", problem.data.name, why)
        widths = problem.state_dims
    else:
        widths = check_widths(
            as_list("problem", problem, "a TrainingProblem with a FeedForward model or a list of widths")
        )
    bottlenecks = tuple(b for b in range(1, len(widths) - 1) if _is_valley(widths, b))
    widest = int(np.argmax(widths))
    if bottlenecks:
        kind = "bottleneck"
    elif widths[widest] > widths[0]:
        kind = "augmented"
    else:
        kind = "non-augmented"
    return FeedForwardClass(kind=kind, widths=tuple(widths), widest=widest, bottlenecks=bottlenecks)


def _is_valley(widths: Sequence[int], b: int) -> bool:
    """Whether the nearest different width on each side of layer b is larger (a local minimum)."""
    left = [w for w in widths[:b][::-1] if w != widths[b]]
    right = [w for w in widths[b + 1 :] if w != widths[b]]
    return bool(left and right and left[0] > widths[b] and right[0] > widths[b])


@dataclass(frozen=True)
class LayerRanks:
    """Singular values layer by layer (see :func:`layer_ranks`).

    Attributes
    ----------
    state_dims : tuple of int
        Dimensions of x_0, …, x_N.
    weight_singular_values : list of dict
        Per layer k, every matrix parameter of θ_k (e.g. ``"A"``) → its singular values, descending.
    weight_ranks : list of dict
        Per layer, the numerical rank of each matrix (singular values > rtol · largest).
    jacobian_singular_values : list of ndarray
        Per layer, shape ``(S, min(w_{k+1}, w_k))``: singular values of ∂x_{k+1}/∂x_k at each sample.
    jacobian_ranks : list of ndarray
        Per layer, the numerical rank of the Jacobian at each sample, shape ``(S,)``.
    state_singular_values : list of ndarray
        Per state x_k, singular values of the centred data cloud (x_k − mean)/√S: its spread along
        its principal directions.
    collapsed : list of bool
        Per layer: its Jacobian has rank < min(w_{k+1}, w_k) at more than half the samples (the
        layer folds the data onto a lower-dimensional set).
    rtol : float
        Relative tolerance of the ranks.
    """

    state_dims: tuple[int, ...]
    weight_singular_values: list[dict[str, np.ndarray]]
    weight_ranks: list[dict[str, int]]
    jacobian_singular_values: list[np.ndarray]
    jacobian_ranks: list[np.ndarray]
    state_singular_values: list[np.ndarray]
    collapsed: list[bool]
    rtol: float

    @property
    def n_collapsed(self) -> int:
        """How many layers collapse."""
        return int(sum(self.collapsed))


def _rank(sv: np.ndarray, rtol: float) -> np.ndarray:
    top = sv[..., :1]
    return np.sum(sv > rtol * np.where(top > 0, top, np.inf), axis=-1)


def _layer_jacobians(problem: TrainingProblem, k: int, x: np.ndarray, stage: np.ndarray) -> np.ndarray:
    step = casadi_model(problem).step_at(k)
    xs = ca.SX.sym("x", step.size1_in(0))
    th = ca.SX.sym("Theta", step.size1_in(1))
    jac = ca.Function("layer_jacobian", [xs, th], [ca.jacobian(step(xs, th), xs)])
    m, n, s = step.size1_out(0), step.size1_in(0), x.shape[1]
    values = np.asarray(jac.map("layer_jacobian_map", "serial", s, [1], [])(x, stage), dtype=float)
    return values.reshape(m, s, n).transpose(1, 0, 2)


def layer_ranks(
    problem: TrainingProblem, result: Any, X: np.ndarray | None = None, rtol: float = 1e-6, layout: str = "features"
) -> LayerRanks:
    """Singular values of every weight matrix and of every layer map's Jacobian over the data.

    Works for feed-forward models (layer k: x ↦ σ(A_k x + b_k)) and for flows (step k of the
    integrator, matrices of θ at its first node). Singular values by LAPACK's SVD
    (``numpy.linalg.svd``); the numerical rank counts those > rtol · σ_max. The Jacobians
    ∂x_{k+1}/∂x_k are evaluated at each sample; a rank drop over the data is Andreu's "losing
    information" (see the module docstring).

    Parameters
    ----------
    problem : TrainingProblem
        The problem.
    result : Result or array_like
        A solve's result (its ``w``) or a decision vector, shape ``(n_params,)``.
    X : ndarray, optional
        Model inputs, ``n_in × S`` (standardised like ``problem.data.x_train``; default: the
        training inputs).
    rtol : float
        Singular values ≤ rtol · the largest count as zero.
    layout : {"features", "samples"}
        X is ``n_in × S`` ("features") or ``S × n_in`` ("samples").

    Returns
    -------
    LayerRanks
        Singular values, numerical ranks and which layers collapse.

    Raises
    ------
    SpecError
        ``problem`` is not a TrainingProblem, or ``result`` (its w) does not fit it or is not finite;
        ``rtol`` <= 0, or ``X`` does not have the layout given.
    """
    w = weights_of(problem, result)
    check_positive_float("rtol", rtol)
    check_choice("layout", layout, LAYOUTS)
    x = problem.data.x_train if X is None else as_features(X, problem.data.n_in, layout)
    states = list(problem.trajectory(w, x, numpy_ops))
    lay = problem.layout
    weight_sv, weight_rank, jac_sv, jac_rank, collapsed = [], [], [], [], []
    for k in range(problem.n_steps):
        thetas = problem.stage_thetas(w, k, numpy_ops)
        shapes = problem.dynamics.stage_shapes(k)
        params = lay.unpack(thetas[0], shapes, numpy_ops)
        sv = {name: np.linalg.svd(params[name], compute_uv=False) for name, s in shapes.items() if len(s) == 2}
        weight_sv.append(sv)
        weight_rank.append({name: int(_rank(v, rtol)) for name, v in sv.items()})
        jac = _layer_jacobians(problem, k, states[k], np.concatenate([np.ravel(t) for t in thetas]))
        values = np.linalg.svd(jac, compute_uv=False)
        ranks = _rank(values, rtol)
        jac_sv.append(values)
        jac_rank.append(ranks)
        collapsed.append(bool(np.mean(ranks < values.shape[1]) > 0.5))
    spread = [
        np.linalg.svd((s - s.mean(axis=1, keepdims=True)) / np.sqrt(s.shape[1]), compute_uv=False) for s in states
    ]
    return LayerRanks(
        state_dims=tuple(s.shape[0] for s in states),
        weight_singular_values=weight_sv,
        weight_ranks=weight_rank,
        jacobian_singular_values=jac_sv,
        jacobian_ranks=jac_rank,
        state_singular_values=spread,
        collapsed=collapsed,
        rtol=rtol,
    )
