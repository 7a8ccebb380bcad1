r"""Kuntz's classification of an architecture and what it implies for Φ = λ2 ∘ flow ∘ λ1.

With full-rank λ1, λ2, a neural ODE is *non-augmented* when its phase space has the input's
dimension (d = n_in) and *augmented* when it is larger (d > n_in); if λ1 or λ2 is rank deficient
the architecture is *degenerate*. Kuntz's non-augmented statement (Φ has no critical point) is about
invertible steps: with trained weights a flow with d = n_in is *non-augmented* only when the
invertibility certificate (:func:`~control_dl.diagnostics.invertibility`) is < 1, else it is
*uncertified* (a step may fold the phase space and create critical points). A :class:`~control_dl.Bottleneck` field of width m < d is reported
as *bottleneck*: each step's vector field is constant along ker A (Kuntz's bottleneck describes
layer widths of feed-forward nets; a neural ODE's phase space never shrinks). A problem with a
:class:`~control_dl.FeedForward` model is labelled by its widths
(:func:`~control_dl.diagnostics.classify_feedforward`), degenerate when a trained A_k is singular.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from ..problems.fields import Bottleneck
from ..problems.training import TrainingProblem, check_problem
from ._common import weights_of
from .invertibility import invertibility, missing_lipschitz_bound
from .layers import classify_feedforward

CONSEQUENCES = {
    "non-augmented": (
        "Φ has no critical points (it is trivially Morse), so targets with a maximum or minimum, "
        "like x², cannot be represented exactly."
    ),
    "uncertified": (
        "d = n_in, but the steps are not certified invertible, so a step may fold the phase space and Φ may "
        "have critical points; the non-augmented guarantee needs every step invertible (e.g. lipschitz < 1)."
    ),
    "augmented": (
        "For almost every choice of weights all critical points of Φ are non-degenerate (Φ is generically "
        "Morse), and maps with critical points become representable."
    ),
    "bottleneck": (
        "Each step's vector field is constant along the kernel of its width-m matrix A, so a single "
        "step only moves points in an m-dimensional family of directions."
    ),
    "feed-forward bottleneck": (
        "Φ factors through the narrowest layer of width w_B, so it is constant along a (w_0 − w_B)-dimensional "
        "family of directions at every point; for w_B = 1 every critical point is degenerate."
    ),
    "degenerate": (
        "Φ is constant along the kernel of the rank-deficient λ1 (or flat across λ2's), so every critical "
        "point of Φ is degenerate."
    ),
}


@dataclass(frozen=True)
class Architecture:
    """Label and consequence of :func:`classify`.

    Attributes
    ----------
    label : {"non-augmented", "uncertified", "augmented", "bottleneck", "degenerate"}
        Kuntz's case.
    consequence : str
        What the case implies for the critical points of Φ, in one sentence.
    reason : str
        Which property of the problem (and weights) decided the label.
    """

    label: str
    consequence: str
    reason: str


def _rank(matrix: np.ndarray) -> int:
    return int(np.linalg.matrix_rank(matrix, tol=1e-10 * max(1.0, float(np.abs(matrix).max(initial=0.0)))))


def classify(problem: TrainingProblem, result: Any = None) -> Architecture:
    """Label the architecture non-augmented / uncertified / augmented / bottleneck / degenerate.

    The classes of Kuehn & Kuntz (arXiv:2405.09351, 2024) for Φ = λ2 ∘ flow ∘ λ1: non-augmented
    (d = n_in, invertible steps, full-rank readout: Φ has no critical point), augmented (d > n_in:
    Φ is generically Morse), degenerate (λ1 or λ2 rank deficient, decided by the rank of the
    trained L or P), and bottleneck (a :class:`~control_dl.Bottleneck` field of width m < d); see
    the module docstring. With trained weights, d = n_in is non-augmented only when the
    invertibility certificate is < 1; otherwise (certificate ≥ 1, or a user field without a
    Lipschitz bound) it is *uncertified*, and the reason gives the certificate. Without weights
    the label describes the widths alone (the reason says the steps were not checked).

    Parameters
    ----------
    problem : TrainingProblem
        The problem (its d, n_in, field and lift).
    result : Result or array_like, optional
        Trained weights (w, shape ``(n_params,)``); needed to see a rank-deficient trainable
        λ1 = L x + l or readout P, and to check that the steps are invertible (d = n_in).

    Returns
    -------
    Architecture
        The label, its consequence and the reason.

    Raises
    ------
    SpecError
        ``problem`` is not a TrainingProblem, or ``result`` (its w) does not fit it or is not finite.
    """
    check_problem(problem)
    if problem.dynamics.vector_field is None:  # stage maps between widths: Kuntz's classes by width
        return _classify_feedforward(problem, result)
    d, n_in = problem.dim, problem.data.n_in
    w = None if result is None else weights_of(problem, result)
    if w is not None:
        blocks = problem.unflatten(w)
        lift = blocks["lift"]
        if lift and _rank(lift["L"]) < n_in:
            return _make("degenerate", f"λ1 = L x + l has rank {_rank(lift['L'])} < n_in = {n_in}")
        readout = blocks["readout"]["P"]
        if _rank(readout) < min(readout.shape):
            return _make("degenerate", f"λ2 = P x + c has rank {_rank(readout)} < {min(readout.shape)}")
    if isinstance(problem.field, Bottleneck) and problem.field.width < d:
        return _make("bottleneck", f"Bottleneck field of width m = {problem.field.width} < d = {d}")
    if d > n_in:
        return _make("augmented", f"d = {d} > n_in = {n_in}")
    if w is None:
        return _make("non-augmented", f"d = n_in = {n_in} (steps not checked for invertibility: no weights given)")
    missing = missing_lipschitz_bound(problem, "the invertibility certificate")
    if missing is not None:
        return _make("uncertified", f"d = n_in = {n_in}, but the field {type(problem.field).__name__} {missing}")
    certificate = invertibility(problem, w).certificate
    if certificate >= 1.0:
        return _make("uncertified", f"d = n_in = {n_in}, but the invertibility certificate is {certificate:.3g} ≥ 1")
    return _make("non-augmented", f"d = n_in = {n_in}, invertibility certificate {certificate:.3g} < 1")


def _classify_feedforward(problem: TrainingProblem, result: Any) -> Architecture:
    if result is not None:
        for k, block in enumerate(problem.unflatten(weights_of(problem, result))["theta"]):
            rank = _rank(block["A"])
            if rank < min(block["A"].shape):
                return _make("degenerate", f"A_{k} has rank {rank} < {min(block['A'].shape)}")
    kind = classify_feedforward(problem)
    reason = f"widths {list(kind.widths)}"
    if kind.kind == "bottleneck":
        narrow = [kind.widths[b] for b in kind.bottlenecks]
        consequence = CONSEQUENCES["feed-forward bottleneck"]
        return Architecture("bottleneck", consequence, f"{reason}: narrow layers {list(kind.bottlenecks)} ({narrow})")
    return _make(kind.kind, reason)


def _make(label: str, reason: str) -> Architecture:
    return Architecture(label, CONSEQUENCES[label], reason)
