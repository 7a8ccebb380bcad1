"""Synthetic datasets of the seed experiments, deterministic given ``seed``.

Inputs are stored as ``n_in × S`` matrices (one column per sample, the convention of the whole
package). Every generator draws the training set and a separate test set from the same
distribution, with independent random streams derived from ``seed``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .._errors import SpecError, spec_error

__all__ = ["DATASETS", "TASKS", "Dataset", "circle", "ring", "sin", "spheres", "spiral", "square_1d", "xor"]

TASKS = ("binary", "multiclass", "regression")
#: class labels must be below this (one-hot targets have a row per class)
MAX_CLASSES = 10_000


def _real_array(field: str, value: object) -> np.ndarray:
    """``value`` as a float64 array, or a SpecError naming the field (strings, ragged lists, complex)."""
    try:
        array = np.asarray(value)
        if np.iscomplexobj(array):
            raise spec_error(field, "complex values", "data must be real numbers")
        return np.asarray(array, dtype=float)
    except (TypeError, ValueError) as exc:
        if isinstance(exc, SpecError):
            raise
        raise spec_error(field, type(value).__name__, f"must be an array of real numbers ({exc})") from None


@dataclass(frozen=True, eq=False)
class Dataset:
    """Training and test data.

    Parameters
    ----------
    x_train, x_test : ndarray
        Inputs, ``n_in × S`` and ``n_in × S_test``.
    y_train, y_test : ndarray
        Integer labels ``(S,)`` for classification, targets ``n_out × S`` for regression.
    task : {"binary", "multiclass", "regression"}
        What the labels are.
    name : str
        Short name (used in figures and tables).
    """

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    task: str
    name: str = "data"

    def __post_init__(self) -> None:
        if self.task not in TASKS:
            raise spec_error("task", self.task, f"must be one of {list(TASKS)}")
        for split in ("train", "test"):
            x = _real_array(f"x_{split}", getattr(self, f"x_{split}"))
            try:
                y = np.asarray(getattr(self, f"y_{split}"))
            except ValueError as exc:
                raise spec_error(f"y_{split}", "ragged", f"must be an array ({exc})") from None
            if x.ndim != 2 or x.shape[0] == 0 or x.shape[1] == 0:
                raise spec_error(f"x_{split}", x.shape, "must be a non-empty n_in × S matrix")
            if not np.all(np.isfinite(x)):
                raise spec_error(f"x_{split}", "NaN/inf", "data must be finite")
            y = self._check_targets(split, y, x.shape[1])
            object.__setattr__(self, f"x_{split}", x)
            object.__setattr__(self, f"y_{split}", y)
        if self.x_train.shape[0] != self.x_test.shape[0]:
            raise spec_error("x_test", self.x_test.shape, f"must have {self.n_in} rows like x_train")

    def _check_targets(self, split: str, y: np.ndarray, n: int) -> np.ndarray:
        field = f"y_{split}"
        if self.task == "regression":
            y = _real_array(field, y)
            y = y[None, :] if y.ndim == 1 else y
            if y.ndim != 2 or y.shape[1] != n:
                raise spec_error(field, y.shape, f"regression targets must be n_out × {n}")
            if not np.all(np.isfinite(y)):
                raise spec_error(field, "NaN/inf", "targets must be finite")
            return y
        if y.shape != (n,) or not np.issubdtype(y.dtype, np.number) or not np.all(np.isfinite(y)):
            raise spec_error(field, y.shape, f"labels must be a vector of {n} integers")
        if np.any(y != np.round(y)) or np.any(y < 0) or np.any(y >= MAX_CLASSES):
            raise spec_error(field, "labels", f"class labels must be integers in [0, {MAX_CLASSES})")
        y = y.astype(int)
        if self.task == "binary" and np.any(y > 1):
            raise spec_error(field, sorted(set(y.tolist())), "binary labels must be 0 or 1")
        return y

    @property
    def n_in(self) -> int:
        """Input dimension."""
        return self.x_train.shape[0]

    @property
    def n_classes(self) -> int:
        """Number of classes (0 for regression)."""
        if self.task == "regression":
            return 0
        return max(2, int(max(self.y_train.max(), self.y_test.max())) + 1)

    @property
    def n_out(self) -> int:
        """Dimension of regression targets (0 for classification)."""
        return self.y_train.shape[0] if self.task == "regression" else 0


def _streams(seed: int) -> tuple[np.random.Generator, np.random.Generator]:
    train, test = np.random.SeedSequence(seed).spawn(2)
    return np.random.default_rng(train), np.random.default_rng(test)


def _check(n_samples: int, noise: float, seed: int) -> None:
    if isinstance(n_samples, bool) or not isinstance(n_samples, (int, np.integer)) or n_samples < 2:
        raise spec_error("n_samples", n_samples, "must be an integer >= 2")
    if isinstance(noise, bool) or not isinstance(noise, (int, float)) or not np.isfinite(noise) or noise < 0:
        raise spec_error("noise", noise, "must be a finite number >= 0")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise spec_error("seed", seed, "must be an integer >= 0")


def _make(name, task, sampler, n_samples, noise, seed, n_test) -> Dataset:
    _check(n_samples, noise, seed)
    n_test = max(2, n_samples // 4) if n_test is None else n_test
    _check(n_test, noise, seed)
    rng_train, rng_test = _streams(seed)
    (xtr, ytr), (xte, yte) = sampler(n_samples, rng_train), sampler(n_test, rng_test)
    if noise > 0:
        xtr = xtr + noise * rng_train.standard_normal(xtr.shape)
        xte = xte + noise * rng_test.standard_normal(xte.shape)
    return Dataset(xtr, ytr, xte, yte, task=task, name=name)


def _ball(n: int, dim: int, r_min: float, r_max: float, rng: np.random.Generator) -> np.ndarray:
    """n points uniform (in volume) in the shell r_min ≤ ‖x‖ ≤ r_max of R^dim, as dim × n."""
    direction = rng.standard_normal((dim, n))
    direction /= np.linalg.norm(direction, axis=0, keepdims=True)
    u = rng.uniform(size=n)
    r = (r_min**dim + u * (r_max**dim - r_min**dim)) ** (1.0 / dim)
    return direction * r


def _shells(n: int, dim: int, rng: np.random.Generator, inner: float, gap: tuple[float, float]):
    n_in = n // 2
    x = np.hstack([_ball(n_in, dim, 0.0, inner, rng), _ball(n - n_in, dim, *gap, rng)])
    y = np.r_[np.ones(n_in, int), np.zeros(n - n_in, int)]
    return x, y


def ring(n_samples: int = 400, noise: float = 0.0, seed: int = 0, n_test: int | None = None) -> Dataset:
    """Inner disk (‖x‖ ≤ 0.5, label 1) against an annulus (0.7 ≤ ‖x‖ ≤ 1, label 0) in R².

    Parameters
    ----------
    n_samples : int
        Training points (half per class).
    noise : float
        Standard deviation of Gaussian noise added to the inputs.
    seed : int
        Random seed.
    n_test : int, optional
        Test points (default ``n_samples // 4``).

    Returns
    -------
    Dataset
        Binary classification data.
    """
    return _make("ring", "binary", lambda n, r: _shells(n, 2, r, 0.5, (0.7, 1.0)), n_samples, noise, seed, n_test)


def spheres(
    n_samples: int = 400, noise: float = 0.0, seed: int = 0, n_test: int | None = None, n_in: int = 2
) -> Dataset:
    """Dupont's concentric spheres in R^n: ‖x‖ ≤ 0.5 (label 1) against 1 ≤ ‖x‖ ≤ 1.5 (label 0).

    Parameters
    ----------
    n_samples, noise, seed, n_test
        As in :func:`ring`.
    n_in : int
        Input dimension (≥ 1).

    Returns
    -------
    Dataset
        Binary classification data.
    """
    if isinstance(n_in, bool) or not isinstance(n_in, (int, np.integer)) or n_in < 1:
        raise spec_error("n_in", n_in, "must be an integer >= 1")
    return _make("spheres", "binary", lambda n, r: _shells(n, n_in, r, 0.5, (1.0, 1.5)), n_samples, noise, seed, n_test)


def _spiral(n: int, rng: np.random.Generator):
    n0 = n // 2
    t = np.sqrt(rng.uniform(0.05, 1.0, size=n)) * 3.0 * np.pi
    arm = np.r_[np.zeros(n0, int), np.ones(n - n0, int)]
    angle = t + np.pi * arm
    r = t / (3.0 * np.pi)
    return np.vstack([r * np.cos(angle), r * np.sin(angle)]), arm


def spiral(n_samples: int = 400, noise: float = 0.0, seed: int = 0, n_test: int | None = None) -> Dataset:
    """Two interleaved Archimedean arms r = t/(3π), t ≤ 3π, the second turned by π (labels 0/1).

    Parameters
    ----------
    n_samples, noise, seed, n_test
        As in :func:`ring`.

    Returns
    -------
    Dataset
        Binary classification data.
    """
    return _make("spiral", "binary", _spiral, n_samples, noise, seed, n_test)


def _square(n: int, rng: np.random.Generator) -> np.ndarray:
    return rng.uniform(-1.0, 1.0, size=(2, n))


def circle(n_samples: int = 400, noise: float = 0.0, seed: int = 0, n_test: int | None = None) -> Dataset:
    """Uniform points in [−1, 1]², label 1 inside the circle ‖x‖ < 0.75 (no gap, unlike ``ring``).

    Parameters
    ----------
    n_samples, noise, seed, n_test
        As in :func:`ring`.

    Returns
    -------
    Dataset
        Binary classification data.
    """

    def sample(n, rng):
        x = _square(n, rng)
        return x, (np.linalg.norm(x, axis=0) < 0.75).astype(int)

    return _make("circle", "binary", sample, n_samples, noise, seed, n_test)


def xor(n_samples: int = 400, noise: float = 0.0, seed: int = 0, n_test: int | None = None) -> Dataset:
    """Uniform points in [−1, 1]², label 1 where x₁ x₂ > 0 (the XOR quadrants).

    Parameters
    ----------
    n_samples, noise, seed, n_test
        As in :func:`ring`.

    Returns
    -------
    Dataset
        Binary classification data.
    """

    def sample(n, rng):
        x = _square(n, rng)
        return x, (x[0] * x[1] > 0).astype(int)

    return _make("xor", "binary", sample, n_samples, noise, seed, n_test)


def _regression(f, low: float, high: float):
    def sample(n, rng):
        x = rng.uniform(low, high, size=(1, n))
        return x, f(x)

    return sample


def square_1d(n_samples: int = 100, noise: float = 0.0, seed: int = 0, n_test: int | None = None) -> Dataset:
    """y = x² for x uniform on [−1, 1] (Kuntz's example of a map with a critical point).

    Parameters
    ----------
    n_samples, noise, seed, n_test
        As in :func:`ring`; ``noise`` perturbs the inputs.

    Returns
    -------
    Dataset
        Regression data, ``n_out = 1``.
    """
    return _make("square_1d", "regression", _regression(np.square, -1.0, 1.0), n_samples, noise, seed, n_test)


def sin(n_samples: int = 100, noise: float = 0.0, seed: int = 0, n_test: int | None = None) -> Dataset:
    """y = sin x for x uniform on [−π, π] (the toy problem of Li et al.'s MSA paper).

    Parameters
    ----------
    n_samples, noise, seed, n_test
        As in :func:`ring`; ``noise`` perturbs the inputs.

    Returns
    -------
    Dataset
        Regression data, ``n_out = 1``.
    """
    return _make("sin", "regression", _regression(np.sin, -np.pi, np.pi), n_samples, noise, seed, n_test)


DATASETS = {
    "ring": ring,
    "spiral": spiral,
    "circle": circle,
    "xor": xor,
    "square_1d": square_1d,
    "spheres": spheres,
    "sin": sin,
}
