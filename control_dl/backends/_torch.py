"""The torch ``ops`` namespace (float64 tensors; imported lazily)."""

from __future__ import annotations

import torch


class TorchOps:
    """Array operations over torch tensors; see :mod:`control_dl.backends`."""

    name = "torch"
    dtype = torch.float64

    def asarray(self, x):
        return torch.as_tensor(x, dtype=self.dtype)

    @staticmethod
    def reshape(v, shape: tuple[int, int]):
        # column-major, like numpy order="F" and CasADi
        return v.reshape(shape[1], shape[0]).T

    @staticmethod
    def matmul(a, b):
        return a @ b

    @staticmethod
    def tanh(z):
        return torch.tanh(z)

    @staticmethod
    def sigmoid(z):
        return torch.sigmoid(z)

    @staticmethod
    def softplus(z):
        return torch.logaddexp(z, torch.zeros_like(z))

    @staticmethod
    def relu(z):
        return torch.relu(z)

    @staticmethod
    def sqrt(z):
        return torch.sqrt(z)

    @staticmethod
    def exp(z):
        return torch.exp(z)

    @staticmethod
    def log(z):
        return torch.log(z)

    @staticmethod
    def sum(z):
        return torch.sum(z)

    @staticmethod
    def sum_rows(z):
        return torch.sum(z, dim=0, keepdim=True)

    @staticmethod
    def logsumexp_rows(z):
        return torch.logsumexp(z, dim=0, keepdim=True)

    @staticmethod
    def vstack(parts):
        return torch.vstack(list(parts))

    def zeros(self, shape: tuple[int, int]):
        return torch.zeros(shape, dtype=self.dtype)
