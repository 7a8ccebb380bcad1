r"""Losses, the cost functional and the constraints of the training OCP.

    J = (1/S) Σ_i ℓ(λ2(x_i(T)), y_i) + α ∫‖θ‖² + β ∫‖θ'‖² + γ ∫|θ|₁
        + κ ∫ (1/S) Σ_i ℓ(λ2(x_i(t)), y_i) dt + η ∫ (1/S) Σ_i ‖x_i(t) − x̄‖² dt

Each loss maps a ``n_out × S`` prediction and the encoded targets to a ``1 × S`` row of per-sample
losses, written once against ``ops``. A user's loss is any callable with the same signature,
``loss(yhat, target, ops) -> 1 × S`` (see :data:`LossFunction`), passed as ``Cost(loss=callable)``.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from .._errors import SpecError, is_number, python_scalars, spec_error
from ..backends import Ops, numpy_ops

LOSSES = ("mse", "logistic", "cross_entropy")

#: A user-defined loss: ``loss(yhat, target, ops) -> 1 × S`` per-sample losses, where ``yhat`` and
#: ``target`` are ``n_out × S`` (targets encoded as for ``"mse"``: a 0/1 row for binary labels, one-hot
#: columns for several classes, the values for regression) and ``ops`` is the backend
#: (:class:`~control_dl.backends.Ops`). Written only with ``ops`` and arithmetic operators it runs
#: in every backend and solver; Gauss-Newton Hessians use its Hessian in ŷ, computed by CasADi.
LossFunction = Callable[[Any, Any, Ops], Any]


def loss_per_sample(loss: str | LossFunction, yhat: Any, target: Any, ops: Ops) -> Any:
    """Per-sample loss ℓ(ŷ_i, y_i) as a ``1 × S`` row.

    Parameters
    ----------
    loss : {"mse", "logistic", "cross_entropy"} or callable
        ``mse``: ‖ŷ − y‖². ``logistic`` (y ∈ {0, 1}, ŷ a logit): softplus(ŷ) − y ŷ, which equals
        −y log σ(ŷ) − (1 − y) log(1 − σ(ŷ)) without ever forming log σ. ``cross_entropy``
        (y one-hot, ŷ logits): logsumexp(ŷ) − ⟨y, ŷ⟩. A callable (:data:`LossFunction`) is
        called as ``loss(yhat, target, ops)``.
    yhat : array
        Predictions, ``n_out × S``.
    target : array
        Encoded targets, same shape.
    ops : Ops
        Backend.

    Returns
    -------
    array
        ``1 × S`` losses.
    """
    if callable(loss):
        return loss(yhat, target, ops)
    if loss == "mse":
        return ops.sum_rows((yhat - target) * (yhat - target))
    if loss == "logistic":
        return ops.softplus(yhat) - target * yhat
    return ops.logsumexp_rows(yhat) - ops.sum_rows(target * yhat)


def _check_weight(field: str, value: object) -> float:
    if not is_number(value) or not math.isfinite(value) or value < 0:
        raise spec_error(field, value, "must be a finite number >= 0")
    return float(value)


@dataclass(frozen=True)
class Cost:
    """Weights of the cost functional J (symbols as in docs/math/ocp.md).

    Parameters
    ----------
    loss : {"mse", "logistic", "cross_entropy"} or callable
        Training loss ℓ, by name or a :data:`LossFunction` ``loss(yhat, target, ops) -> 1 × S``
        (checked once on the data when the ``TrainingProblem`` is built, see :func:`check_loss`).
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

    Notes
    -----
    α, β, γ weigh θ only; the readout (P, c) and a trainable lift are unregularised, so with the
    logistic or cross-entropy loss on data the flow separates J has no minimiser (the logits grow
    while J → 0): stop such runs with ``target_loss`` or ``max_iter`` (docs/guide/problems.md).

    Raises
    ------
    SpecError
        An unknown ``loss`` name, a weight that is not a finite number >= 0, ``l1_eps`` <= 0, or a
        non-finite ``tracking_target``.
    """

    loss: str | LossFunction = "mse"
    l2: float = 0.0
    h1: float = 0.0
    l1: float = 0.0
    l1_eps: float = 1e-4
    turnpike: float = 0.0
    tracking: float = 0.0
    tracking_target: float = 0.0

    def __post_init__(self) -> None:
        python_scalars(self)
        if not callable(self.loss) and self.loss not in LOSSES:
            raise spec_error("loss", self.loss, f"must be one of {list(LOSSES)} or a callable (yhat, target, ops)")
        for field in ("l2", "h1", "l1", "turnpike", "tracking"):
            object.__setattr__(self, field, _check_weight(field, getattr(self, field)))
        eps = _check_weight("l1_eps", self.l1_eps)
        if eps == 0:
            raise spec_error("l1_eps", self.l1_eps, "must be > 0")
        target = self.tracking_target
        if not is_number(target) or not math.isfinite(target):
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

    Raises
    ------
    SpecError
        ``theta_max`` is not a finite number > 0, ``lipschitz`` not in (0, 1), or ``lipschitz_norm``
        not 'frobenius' or 'spectral'.
    """

    theta_max: float | None = None
    lipschitz: float | None = None
    lipschitz_norm: str = "frobenius"

    def __post_init__(self) -> None:
        python_scalars(self)
        m = self.theta_max
        if m is not None and (not is_number(m) or not m > 0 or not math.isfinite(m)):
            raise spec_error("theta_max", m, "must be a finite number > 0 (omit it for no bound)")
        c = self.lipschitz
        if c is not None and (not is_number(c) or not 0 < c < 1):
            raise spec_error("lipschitz", c, "must be a number in (0, 1) (omit it for no constraint)")
        if self.lipschitz_norm not in ("frobenius", "spectral"):
            raise spec_error("lipschitz_norm", self.lipschitz_norm, "must be 'frobenius' or 'spectral'")


def encode_targets(task: str, loss: str, y: np.ndarray, n_classes: int) -> np.ndarray:
    """Encode dataset targets as the ``n_out × S`` matrix the loss compares with λ2(x(T)).

    Parameters
    ----------
    task : {"binary", "multiclass", "regression"}
        Kind of dataset.
    loss : str or callable
        Loss name; a callable loss gets the targets of ``"mse"``.
    y : ndarray
        Labels ``(S,)`` (classification) or targets ``(n_out, S)`` (regression).
    n_classes : int
        Number of classes (classification).

    Returns
    -------
    ndarray
        Targets, float64 ``n_out × S``.

    Raises
    ------
    SpecError
        Regression targets with a loss other than ``mse``, or ``logistic`` with more than two classes.
    """
    if callable(loss):
        loss = "mse"
    if task == "regression":
        if loss != "mse":
            raise spec_error(
                "loss",
                loss,
                "regression data needs loss='mse' (float labels are read as regression targets: for "
                "classes pass task='binary' or 'multiclass', or integer labels)",
            )
        return np.asarray(y, dtype=float)
    labels = np.asarray(y, dtype=int)
    if task == "binary" and loss in ("mse", "logistic"):
        return labels[None, :].astype(float)
    if loss == "logistic":
        raise spec_error("loss", loss, "logistic loss needs binary labels; use 'cross_entropy'")
    return np.eye(n_classes)[:, labels]


def decision_threshold(loss: str | LossFunction) -> float:
    """The value of a single readout at which the predicted class changes from 0 to 1.

    Parameters
    ----------
    loss : str or callable
        ``Cost.loss``.

    Returns
    -------
    float
        0 for ``"logistic"`` (the readout is a logit), 0.5 otherwise (the readout regresses 0/1 targets,
        as for ``"mse"`` and callable losses).
    """
    return 0.0 if isinstance(loss, str) and loss == "logistic" else 0.5


def predict_labels(task: str, loss: str, yhat: np.ndarray) -> np.ndarray:
    """Turn readout values into class labels.

    Parameters
    ----------
    task : str
        Dataset kind.
    loss : str or callable
        Loss name: logits (``logistic``) are thresholded at 0, MSE and callable-loss outputs at 0.5;
        several outputs give the arg max.
    yhat : ndarray
        Readout, ``n_out × S``.

    Returns
    -------
    ndarray
        Integer labels ``(S,)``.
    """
    if yhat.shape[0] == 1:
        return (yhat[0] > decision_threshold(loss)).astype(int)
    return np.argmax(yhat, axis=0)


def check_loss(loss: str | LossFunction, targets: np.ndarray) -> None:
    """Check a callable loss once on the encoded targets (a named loss passes unchecked).

    The loss is evaluated on the numpy backend at ŷ = y + 0.1 and must return one finite value
    per sample, a ``1 × S`` row.

    Parameters
    ----------
    loss : str or callable
        ``Cost.loss``.
    targets : ndarray
        Encoded targets ``n_out × S``.

    Raises
    ------
    SpecError
        Naming ``loss``: if calling it raises (the error is chained and quoted) or it returns
        another shape or non-finite values.
    """
    if not callable(loss):
        return
    name = getattr(loss, "__name__", type(loss).__name__)
    try:
        value = np.asarray(loss(targets + 0.1, targets, numpy_ops), dtype=float)
    except Exception as err:
        raise SpecError(
            f"loss={name}: loss(yhat, target, ops) on the numpy backend with yhat and target of shape "
            f"{targets.shape} raised {type(err).__name__}: {err}"
        ) from err
    expected = (1, targets.shape[1])
    if value.shape != expected:
        raise spec_error(
            "loss",
            name,
            f"returned shape {value.shape} for yhat and target of shape {targets.shape}; it must return one "
            f"loss per sample, a row of shape {expected} (e.g. ops.sum_rows(...))",
        )
    if not np.all(np.isfinite(value)):
        raise spec_error("loss", name, "returned non-finite values at yhat = target + 0.1")
