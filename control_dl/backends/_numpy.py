"""The numpy ``ops`` namespace (float64, the reference implementation; values only, no derivatives)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from ._protocol import Ops


class NumpyOps(Ops):
    """:class:`~control_dl.backends.Ops` over float64 numpy arrays (docstrings: see ``Ops``)."""

    name = "numpy"

    def asarray(self, x: Any) -> np.ndarray:
        return np.asarray(x, dtype=np.float64)

    def zeros(self, shape: tuple[int, int]) -> np.ndarray:
        return np.zeros(shape)

    def ones(self, shape: tuple[int, int]) -> np.ndarray:
        return np.ones(shape)

    def reshape(self, v: Any, shape: tuple[int, int]) -> np.ndarray:
        return np.reshape(v, shape, order="F")

    def transpose(self, a: Any) -> np.ndarray:
        return np.asarray(a).T

    def vstack(self, parts: Sequence[Any]) -> np.ndarray:
        return np.vstack(parts)

    def hstack(self, parts: Sequence[Any]) -> np.ndarray:
        return np.hstack(parts)

    def matmul(self, a: Any, b: Any) -> np.ndarray:
        return np.asarray(a) @ np.asarray(b)

    def affine(self, a: Any, x: Any, b: Any) -> np.ndarray:
        return np.asarray(a) @ np.asarray(x) + b

    def add_scaled(self, x: Any, alpha: float, y: Any) -> Any:
        return x + alpha * y

    def sum(self, z: Any) -> Any:
        return np.sum(z)

    def sum_rows(self, z: Any) -> np.ndarray:
        return np.sum(z, axis=0, keepdims=True)

    def logsumexp_rows(self, z: Any) -> np.ndarray:
        m = np.max(z, axis=0, keepdims=True)
        return m + np.log(np.sum(np.exp(z - m), axis=0, keepdims=True))

    def sin(self, z: Any) -> Any:
        return np.sin(z)

    def cos(self, z: Any) -> Any:
        return np.cos(z)

    def tanh(self, z: Any) -> Any:
        return np.tanh(z)

    def exp(self, z: Any) -> Any:
        return np.exp(z)

    def log(self, z: Any) -> Any:
        return np.log(z)

    def sqrt(self, z: Any) -> Any:
        return np.sqrt(z)

    def square(self, z: Any) -> Any:
        return np.square(z)

    def abs(self, z: Any) -> Any:
        return np.abs(z)

    def sign(self, z: Any) -> Any:
        return np.sign(z)

    def maximum(self, a: Any, b: Any) -> Any:
        return np.maximum(a, b)

    def minimum(self, a: Any, b: Any) -> Any:
        return np.minimum(a, b)

    def relu(self, z: Any) -> Any:
        return np.maximum(z, 0.0)

    def sigmoid(self, z: Any) -> Any:
        return 0.5 * (1.0 + np.tanh(0.5 * np.asarray(z)))

    def softplus(self, z: Any) -> Any:
        return np.logaddexp(0.0, z)


numpy_ops = NumpyOps()
