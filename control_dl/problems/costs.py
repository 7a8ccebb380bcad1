r"""Losses, the cost functional and the constraints of the training OCP.

    J = (1/S) Σ_i ℓ(λ2(x_i(T)), y_i) + α ∫‖θ‖² + β ∫‖θ'‖² + γ ∫|θ|₁
        + κ ∫ (1/S) Σ_i ℓ(λ2(x_i(t)), y_i) dt + η ∫ (1/S) Σ_i ‖x_i(t) − x̄‖² dt

Each loss maps a ``n_out × S`` prediction and the encoded targets to a ``1 × S`` row of per-sample
losses, written once against ``ops``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from .._errors import spec_error

LOSSES = ("mse", "logistic", "cross_entropy")


def loss_per_sample(name: str, yhat: Any, target: Any, ops: Any) -> Any:
    """Per-sample loss ℓ(ŷ_i, y_i) as a ``1 × S`` row.

    Parameters
    ----------
    name : {"mse", "logistic", "cross_entropy"}
        ``mse``: ‖ŷ − y‖². ``logistic`` (y ∈ {0, 1}, ŷ a logit): softplus(ŷ) − y ŷ, which equals
        −y log σ(ŷ) − (1 − y) log(1 − σ(ŷ)) without ever forming log σ. ``cross_entropy``
        (y one-hot, ŷ logits): logsumexp(ŷ) − ⟨y, ŷ⟩.
    yhat : array
        Predictions, ``n_out × S``.
    target : array
        Encoded targets, same shape.
    ops : namespace
        Backend.

    Returns
    -------
    array
        ``1 × S`` losses.
    """
    if name == "mse":
        return ops.sum_rows((yhat - target) * (yhat - target))
    if name == "logistic":
        return ops.softplus(yhat) - target * yhat
    return ops.logsumexp_rows(yhat) - ops.sum_rows(target * yhat)


def _check_weight(field: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
        raise spec_error(field, value, "must be a finite number >= 0")
    return float(value)


@dataclass(frozen=True)
class Cost:
    """Weights of the cost functional J (symbols as in DESIGN.md).

    Parameters
    ----------
    loss : {"mse", "logistic", "cross_entropy"}
        Training loss ℓ.
    l2 : float
        α, weight of ∫‖θ‖² dt.
    h1 : float
        β, weight of ∫‖θ'‖² dt.
    l1 : float
        γ, weight of ∫|θ|₁ dt, smoothed as Σ (√(θ² + ε²) − ε) so the NLP stays twice differentiable.
    l1_eps : float
        ε of the smoothing.
    turnpike : float
        κ, weight of the running training loss ∫ (1/S) Σ ℓ(λ2(x_i(t)), y_i) dt.
    tracking : float
        η, weight of ∫ (1/S) Σ ‖x_i(t) − x̄‖² dt.
    tracking_target : float
        x̄ (a constant, the same in every coordinate; 0 by default).
    """

    loss: str = "mse"
    l2: float = 0.0
    h1: float = 0.0
    l1: float = 0.0
    l1_eps: float = 1e-4
    turnpike: float = 0.0
    tracking: float = 0.0
    tracking_target: float = 0.0

    def __post_init__(self) -> None:
        if self.loss not in LOSSES:
            raise spec_error("loss", self.loss, f"must be one of {list(LOSSES)}")
        for field in ("l2", "h1", "l1", "turnpike", "tracking"):
            object.__setattr__(self, field, _check_weight(field, getattr(self, field)))
        eps = _check_weight("l1_eps", self.l1_eps)
        if eps == 0:
            raise spec_error("l1_eps", self.l1_eps, "must be > 0")
        target = self.tracking_target
        if isinstance(target, bool) or not isinstance(target, (int, float)) or not math.isfinite(target):
            raise spec_error("tracking_target", target, "must be a finite number")

    @property
    def has_running_cost(self) -> bool:
        """True if κ > 0 or η > 0 (a Lagrange term along t)."""
        return self.turnpike > 0 or self.tracking > 0


@dataclass(frozen=True)
class Constraints:
    """Optional constraints on θ.

    Parameters
    ----------
    theta_max : float or None
        M in the box |θ| ≤ M (every entry of every coefficient vector).
    lipschitz : float or None
        c ∈ (0, 1): bound the Lipschitz constant of every step's increment by c, e.g. Euler
        h·Lip(σ)·‖A_k‖ ≤ c (the invertibility constraint; :mod:`~control_dl.problems.lipschitz`).
    lipschitz_norm : {"frobenius", "spectral"}
        ‖A_k‖ in that bound: ‖A_k‖_F (smooth, every constrained solver) or the exact ‖A_k‖₂
        (``nlp="lbfgsb"`` only).
    """

    theta_max: float | None = None
    lipschitz: float | None = None
    lipschitz_norm: str = "frobenius"

    def __post_init__(self) -> None:
        m = self.theta_max
        if m is not None and (
            isinstance(m, bool) or not isinstance(m, (int, float)) or not m > 0 or not math.isfinite(m)
        ):
            raise spec_error("theta_max", m, "must be a finite number > 0 (omit it for no bound)")
        c = self.lipschitz
        if c is not None and (isinstance(c, bool) or not isinstance(c, (int, float)) or not 0 < c < 1):
            raise spec_error("lipschitz", c, "must be a number in (0, 1) (omit it for no constraint)")
        if self.lipschitz_norm not in ("frobenius", "spectral"):
            raise spec_error("lipschitz_norm", self.lipschitz_norm, "must be 'frobenius' or 'spectral'")


def encode_targets(task: str, loss: str, y: np.ndarray, n_classes: int) -> np.ndarray:
    """Encode dataset targets as the ``n_out × S`` matrix the loss compares with λ2(x(T)).

    Parameters
    ----------
    task : {"binary", "multiclass", "regression"}
        Kind of dataset.
    loss : str
        Loss name.
    y : ndarray
        Labels ``(S,)`` (classification) or targets ``(n_out, S)`` (regression).
    n_classes : int
        Number of classes (classification).

    Returns
    -------
    ndarray
        Targets, float64 ``n_out × S``.
    """
    if task == "regression":
        if loss != "mse":
            raise spec_error("loss", loss, "regression data needs loss='mse'")
        return np.asarray(y, dtype=float)
    labels = np.asarray(y, dtype=int)
    if task == "binary" and loss in ("mse", "logistic"):
        return labels[None, :].astype(float)
    if loss == "logistic":
        raise spec_error("loss", loss, "logistic loss needs binary labels; use 'cross_entropy'")
    return np.eye(n_classes)[:, labels]


def predict_labels(task: str, loss: str, yhat: np.ndarray) -> np.ndarray:
    """Turn readout values into class labels.

    Parameters
    ----------
    task : str
        Dataset kind.
    loss : str
        Loss name: logits are thresholded at 0, MSE outputs at 0.5.
    yhat : ndarray
        Readout, ``n_out × S``.

    Returns
    -------
    ndarray
        Integer labels ``(S,)``.
    """
    if yhat.shape[0] == 1:
        return (yhat[0] > (0.0 if loss == "logistic" else 0.5)).astype(int)
    return np.argmax(yhat, axis=0)
