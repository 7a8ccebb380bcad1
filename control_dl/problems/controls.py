r"""Parametrisations of the control θ(t) on [0, T].

A control writes θ(t) = Σ_j φ_j(t) C_j with coefficient vectors C_j ∈ R^p (p = number of field
parameters) and fixed basis functions φ_j. Every control also owns the integration grid: ``n_steps``
steps of size h = T / n_steps. Regularisers are exact quadratic forms in the coefficients,

    ∫_0^T ‖θ(t)‖² dt = ‖C R_0ᵀ‖_F²,      ∫_0^T ‖θ'(t)‖² dt = ‖C R_1ᵀ‖_F²,

with C = [C_0, …, C_{n-1}] ∈ R^{p×n} and the factors R_0, R_1 returned by :meth:`Control.l2_factor`
and :meth:`Control.h1_factor`. For :class:`PiecewiseConstant` (a ResNet) the H1 term is the
discrete Σ_k ‖θ_{k+1} − θ_k‖² / h.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.polynomial import legendre

from .._errors import check_positive_float, check_positive_int, python_scalars, spec_error

#: Relative tolerance (in units of one step) within which a time counts as the grid point t_k.
GRID_RTOL = 1e-9


def step_index(t: Any, horizon: float, n_steps: int) -> np.ndarray:
    """Index k of the integration step [t_k, t_{k+1}) that contains each time t.

    The grid is the integrator's, t_k = k h with h = T / N (``TrainingProblem.times``). In floating
    point t_k · N / T can land just below k (e.g. 29 · 0.16 · 50 / 8 = 28.999…), so a plain
    ``floor`` would return the previous step. Here s = t N / T is first rounded to the nearest
    integer when it lies within ``GRID_RTOL · max(1, |s|)`` of it, then floored: a grid time t_k
    always maps to step k, the final time T to the last step N − 1, and times outside [0, T] to
    the first or last step. Every time → step lookup in the package goes through this function.

    Parameters
    ----------
    t : float or array_like
        Times, any shape.
    horizon : float
        T > 0.
    n_steps : int
        N ≥ 1.

    Returns
    -------
    ndarray
        Integer step indices in 0..N-1, the shape of ``t`` (0-d for a scalar).

    Raises
    ------
    SpecError
        ``t`` holds NaN (it has no step), ``horizon`` is not > 0 or ``n_steps`` not an integer ≥ 1.
    """
    check_positive_float("horizon", horizon)
    check_positive_int("n_steps", n_steps)
    times = np.asarray(t, dtype=float)
    if np.isnan(times).any():
        raise spec_error("t", "NaN", "a time must be a number (NaN has no step)")
    s = times * (n_steps / horizon)
    nearest = np.rint(s)
    snapped = np.where(np.abs(s - nearest) <= GRID_RTOL * np.maximum(1.0, np.abs(s)), nearest, s)
    return np.clip(np.floor(snapped), 0, n_steps - 1).astype(int)


def _gram_factor(gram: np.ndarray) -> np.ndarray:
    """Return R with RᵀR = G for a symmetric positive semi-definite Gram matrix G."""
    eigval, eigvec = np.linalg.eigh(0.5 * (gram + gram.T))
    keep = eigval > 1e-14 * max(1.0, float(eigval.max(initial=0.0)))
    return np.sqrt(eigval[keep])[:, None] * eigvec[:, keep].T


class Control(ABC):
    """Base class of θ(t) parametrisations; every subclass has ``n_steps``, the integration grid."""

    n_steps: int

    def __post_init__(self) -> None:
        python_scalars(self)
        check_positive_int("n_steps", self.n_steps, 1)

    @property
    @abstractmethod
    def n_coeffs(self) -> int:
        """Number n of coefficient vectors C_j."""

    @abstractmethod
    def basis_at(self, t: np.ndarray, horizon: float) -> np.ndarray:
        """Basis values φ_j(t).

        Parameters
        ----------
        t : array_like
            Times in [0, T], shape ``(n,)``.
        horizon : float
            T.

        Returns
        -------
        ndarray
            φ_j(t_i), shape ``(n, n_coeffs)``.
        """

    def stage_basis(self, step: int, c: float, horizon: float) -> np.ndarray:
        """Basis weights at t = (k + c) h inside integration step k.

        Parameters
        ----------
        step : int
            Step index k in 0..n_steps-1.
        c : float
            Fraction of the step in [0, 1] (a Runge-Kutta node).
        horizon : float
            T.

        Returns
        -------
        ndarray
            Weights of shape ``(n_coeffs,)``.
        """
        h = horizon / self.n_steps
        return self.basis_at(np.array([(step + c) * h]), horizon)[0]

    def l2_factor(self, horizon: float) -> np.ndarray:
        """Factor R_0 with ∫‖θ‖² dt = ‖C R_0ᵀ‖_F² (Gauss-Legendre quadrature of the Gram matrix).

        Parameters
        ----------
        horizon : float
            T.

        Returns
        -------
        ndarray
            R_0, shape ``(m, n_coeffs)``.
        """
        t, wq = self._quadrature(horizon)
        phi = self.basis_at(t, horizon)
        return _gram_factor(phi.T @ (wq[:, None] * phi))

    @abstractmethod
    def h1_factor(self, horizon: float) -> np.ndarray:
        """Factor R_1 with ∫‖θ'‖² dt = ‖C R_1ᵀ‖_F².

        Parameters
        ----------
        horizon : float
            T.

        Returns
        -------
        ndarray
            R_1, shape ``(m, n_coeffs)``.
        """

    @property
    def _pieces(self) -> int:
        """Number of sub-intervals of the quadrature (basis kinks must fall on their edges)."""
        return self.n_coeffs

    def _quadrature(self, horizon: float, per_piece: int = 8) -> tuple[np.ndarray, np.ndarray]:
        pieces = self._pieces
        nodes, weights = legendre.leggauss(per_piece)
        edges = np.linspace(0.0, horizon, pieces + 1)
        half = 0.5 * np.diff(edges)
        t = (edges[:-1, None] + half[:, None] * (nodes[None, :] + 1.0)).ravel()
        w = (half[:, None] * weights[None, :]).ravel()
        return t, w


@dataclass(frozen=True)
class PiecewiseConstant(Control):
    """θ(t) = θ_k on step k: exactly a ResNet with ``n_steps`` residual blocks.

    Parameters
    ----------
    n_steps : int
        Number of steps (layers) N.

    Raises
    ------
    SpecError
        ``n_steps`` is not an integer >= 1.
    """

    n_steps: int = 20

    @property
    def n_coeffs(self) -> int:
        """N coefficient vectors, one per layer."""
        return self.n_steps

    def basis_at(self, t: np.ndarray, horizon: float) -> np.ndarray:
        """Indicator e_k of the step k = :func:`step_index` (t) containing t (the last step includes T).

        Parameters
        ----------
        t : array_like
            Times, shape ``(n,)``.
        horizon : float
            T.

        Returns
        -------
        ndarray
            One-hot rows, shape ``(n, n_steps)``.
        """
        return np.eye(self.n_steps)[step_index(np.atleast_1d(t), horizon, self.n_steps)]

    def stage_basis(self, step: int, c: float, horizon: float) -> np.ndarray:
        """e_k for every stage of step k (θ is constant across a step).

        Parameters
        ----------
        step : int
            Step index k in 0..n_steps-1.
        c : float
            Fraction of the step in [0, 1] (unused: θ is constant on the step).
        horizon : float
            T.

        Returns
        -------
        ndarray
            e_k, shape ``(n_steps,)``.
        """
        return np.eye(self.n_steps)[step]

    def l2_factor(self, horizon: float) -> np.ndarray:
        """√h I: ∫‖θ‖² = h Σ_k ‖θ_k‖².

        Parameters
        ----------
        horizon : float
            T.

        Returns
        -------
        ndarray
            R_0 = √h I, shape ``(n_steps, n_steps)``.
        """
        return np.sqrt(horizon / self.n_steps) * np.eye(self.n_steps)

    def h1_factor(self, horizon: float) -> np.ndarray:
        """Rows (e_{k+1} − e_k)/√h: the discrete Σ_k ‖θ_{k+1} − θ_k‖² / h.

        Parameters
        ----------
        horizon : float
            T.

        Returns
        -------
        ndarray
            R_1, shape ``(n_steps - 1, n_steps)``.
        """
        h = horizon / self.n_steps
        return np.diff(np.eye(self.n_steps), axis=0) / np.sqrt(h)


@dataclass(frozen=True)
class PiecewiseLinear(Control):
    """θ(t) linear between ``n_nodes`` equally spaced nodes on [0, T].

    Parameters
    ----------
    n_nodes : int
        Number of nodes (≥ 2).
    n_steps : int
        Integration steps.

    Raises
    ------
    SpecError
        ``n_nodes`` is not an integer >= 2, or ``n_steps`` not an integer >= 1.
    """

    n_nodes: int = 5
    n_steps: int = 20

    def __post_init__(self) -> None:
        super().__post_init__()
        check_positive_int("n_nodes", self.n_nodes, 2)

    @property
    def n_coeffs(self) -> int:
        """One coefficient vector per node."""
        return self.n_nodes

    @property
    def _pieces(self) -> int:
        return self.n_nodes - 1

    def basis_at(self, t: np.ndarray, horizon: float) -> np.ndarray:
        """Hat functions centred at the nodes (linear interpolation weights).

        Parameters
        ----------
        t : array_like
            Times in [0, T], shape ``(n,)``.
        horizon : float
            T.

        Returns
        -------
        ndarray
            φ_j(t_i), shape ``(n, n_coeffs)``.
        """
        nodes = np.linspace(0.0, horizon, self.n_nodes)
        return np.stack([np.interp(t, nodes, e) for e in np.eye(self.n_nodes)], axis=1)

    def h1_factor(self, horizon: float) -> np.ndarray:
        """Rows (e_{j+1} − e_j)/√Δ with Δ = T / (n_nodes − 1): θ' is constant between nodes.

        Parameters
        ----------
        horizon : float
            T.

        Returns
        -------
        ndarray
            R_1, shape ``(n_nodes - 1, n_nodes)``.
        """
        delta = horizon / (self.n_nodes - 1)
        return np.diff(np.eye(self.n_nodes), axis=0) / np.sqrt(delta)


@dataclass(frozen=True)
class TimeInvariant(Control):
    """One θ for all t: a weight-tied ResNet / autonomous neural ODE.

    Parameters
    ----------
    n_steps : int
        Integration steps.

    Raises
    ------
    SpecError
        ``n_steps`` is not an integer >= 1.
    """

    n_steps: int = 20

    @property
    def n_coeffs(self) -> int:
        """A single coefficient vector."""
        return 1

    def basis_at(self, t: np.ndarray, horizon: float) -> np.ndarray:
        """φ_0(t) = 1.

        Parameters
        ----------
        t : array_like
            Times in [0, T], shape ``(n,)``.
        horizon : float
            T.

        Returns
        -------
        ndarray
            Ones, shape ``(n, 1)``.
        """
        return np.ones((len(np.atleast_1d(t)), 1))

    def h1_factor(self, horizon: float) -> np.ndarray:
        """No rows: θ' = 0.

        Parameters
        ----------
        horizon : float
            T.

        Returns
        -------
        ndarray
            Shape ``(0, 1)``.
        """
        return np.zeros((0, 1))


@dataclass(frozen=True)
class Spectral(Control):
    """θ(t) = Σ_j c_j φ_j(t) on a Legendre or Fourier basis (torchdyn's Galerkin layers).

    Parameters
    ----------
    basis : {"legendre", "fourier"}
        Legendre: φ_j(t) = P_j(2t/T − 1). Fourier: 1, cos(2πt/T), sin(2πt/T), cos(4πt/T), …
    n_modes : int
        Number of basis functions (≥ 1).
    n_steps : int
        Integration steps.

    Raises
    ------
    SpecError
        ``basis`` is not "legendre" or "fourier", ``n_modes`` or ``n_steps`` not an integer >= 1.
    """

    basis: str = "legendre"
    n_modes: int = 4
    n_steps: int = 20

    def __post_init__(self) -> None:
        super().__post_init__()
        check_positive_int("n_modes", self.n_modes, 1)
        if self.basis not in ("legendre", "fourier"):
            raise spec_error("basis", self.basis, "must be 'legendre' or 'fourier'")

    @property
    def n_coeffs(self) -> int:
        """One coefficient vector per mode."""
        return self.n_modes

    def basis_at(self, t: np.ndarray, horizon: float) -> np.ndarray:
        """φ_j(t) for j = 0..n_modes-1 (Legendre P_j(2t/T − 1) or the Fourier basis).

        Parameters
        ----------
        t : array_like
            Times in [0, T], shape ``(n,)``.
        horizon : float
            T.

        Returns
        -------
        ndarray
            φ_j(t_i), shape ``(n, n_coeffs)``.
        """
        return self._eval(np.asarray(t, dtype=float), horizon, derivative=False)

    def h1_factor(self, horizon: float) -> np.ndarray:
        """Factor of the Gram matrix ∫ φ_i' φ_j' dt (Gauss-Legendre quadrature).

        Parameters
        ----------
        horizon : float
            T.

        Returns
        -------
        ndarray
            R_1, shape ``(m, n_modes)``.
        """
        t, wq = self._quadrature(horizon)
        dphi = self._eval(t, horizon, derivative=True)
        return _gram_factor(dphi.T @ (wq[:, None] * dphi))

    def _eval(self, t: np.ndarray, horizon: float, derivative: bool) -> np.ndarray:
        cols = []
        if self.basis == "legendre":
            s = 2.0 * t / horizon - 1.0
            for j in range(self.n_modes):
                coef = np.eye(self.n_modes)[j]
                if derivative:
                    cols.append(legendre.legval(s, legendre.legder(coef)) * 2.0 / horizon)
                else:
                    cols.append(legendre.legval(s, coef))
        else:
            for j in range(self.n_modes):
                m = (j + 1) // 2
                omega = 2.0 * np.pi * m / horizon
                if j == 0:
                    cols.append(np.zeros_like(t) if derivative else np.ones_like(t))
                elif j % 2 == 1:
                    cols.append(-omega * np.sin(omega * t) if derivative else np.cos(omega * t))
                else:
                    cols.append(omega * np.cos(omega * t) if derivative else np.sin(omega * t))
        return np.stack(cols, axis=1)


CONTROLS = {
    "piecewise_constant": PiecewiseConstant,
    "piecewise_linear": PiecewiseLinear,
    "time_invariant": TimeInvariant,
    "spectral": Spectral,
}
