"""The numpy ``ops`` namespace (float64, the reference implementation)."""

from __future__ import annotations

import numpy as np


class NumpyOps:
    """Array operations over numpy arrays; see :mod:`control_dl.backends`."""

    name = "numpy"

    @staticmethod
    def asarray(x):
        return np.asarray(x, dtype=np.float64)

    @staticmethod
    def reshape(v, shape: tuple[int, int]):
        return np.reshape(v, shape, order="F")

    @staticmethod
    def matmul(a, b):
        return a @ b

    @staticmethod
    def tanh(z):
        return np.tanh(z)

    @staticmethod
    def sigmoid(z):
        return 0.5 * (1.0 + np.tanh(0.5 * z))

    @staticmethod
    def softplus(z):
        return np.logaddexp(0.0, z)

    @staticmethod
    def relu(z):
        return np.maximum(z, 0.0)

    @staticmethod
    def sqrt(z):
        return np.sqrt(z)

    @staticmethod
    def exp(z):
        return np.exp(z)

    @staticmethod
    def log(z):
        return np.log(z)

    @staticmethod
    def sum(z):
        return np.sum(z)

    @staticmethod
    def sum_rows(z):
        return np.sum(z, axis=0, keepdims=True)

    @staticmethod
    def logsumexp_rows(z):
        m = np.max(z, axis=0, keepdims=True)
        return m + np.log(np.sum(np.exp(z - m), axis=0, keepdims=True))

    @staticmethod
    def vstack(parts):
        return np.vstack(parts)

    @staticmethod
    def zeros(shape: tuple[int, int]):
        return np.zeros(shape)


numpy_ops = NumpyOps()
