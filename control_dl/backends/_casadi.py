"""The CasADi ``ops`` namespace: works on ``SX``, ``MX`` and ``DM`` alike."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import casadi as ca
import numpy as np

from ._protocol import Ops


def _ca(x: Any) -> Any:
    """A numpy array or number as a ``DM`` constant; CasADi matrices unchanged."""
    if isinstance(x, (ca.SX, ca.MX, ca.DM)):
        return x
    return ca.DM(np.asarray(x, dtype=np.float64))


class CasadiOps(Ops):
    """:class:`~control_dl.backends.Ops` over CasADi matrices (docstrings: see ``Ops``).

    CasADi matrices are 2-D and broadcast only scalars, so the models are evaluated in CasADi one
    sample at a time (``S = 1``) and mapped over the samples with ``Function.map``. Kinks follow
    the package convention (relu'(0) = 0 through ``if_else``; max/min at a tie split the derivative
    through ½(a + b ± |a − b|) and |·|'(0) = sign(0) = 0).
    """

    name = "casadi"

    def asarray(self, x: Any) -> Any:
        return _ca(x)

    def zeros(self, shape: tuple[int, int]) -> Any:
        return ca.DM.zeros(shape[0], shape[1])

    def ones(self, shape: tuple[int, int]) -> Any:
        return ca.DM.ones(shape[0], shape[1])

    def reshape(self, v: Any, shape: tuple[int, int]) -> Any:
        return ca.reshape(_ca(v), shape[0], shape[1])

    def transpose(self, a: Any) -> Any:
        return _ca(a).T

    def vstack(self, parts: Sequence[Any]) -> Any:
        return ca.vertcat(*[_ca(p) for p in parts])

    def hstack(self, parts: Sequence[Any]) -> Any:
        return ca.horzcat(*[_ca(p) for p in parts])

    def matmul(self, a: Any, b: Any) -> Any:
        return ca.mtimes(_ca(a), _ca(b))

    def affine(self, a: Any, x: Any, b: Any) -> Any:
        return ca.mtimes(_ca(a), _ca(x)) + _ca(b)

    def add_scaled(self, x: Any, alpha: float, y: Any) -> Any:
        return _ca(x) + alpha * _ca(y)

    def sum(self, z: Any) -> Any:
        return ca.sum1(ca.sum2(_ca(z)))

    def sum_rows(self, z: Any) -> Any:
        return ca.sum1(_ca(z))

    def logsumexp_rows(self, z: Any) -> Any:
        z = _ca(z)
        columns = []
        for j in range(z.shape[1]):
            col = z[:, j]
            m = ca.mmax(col)
            columns.append(m + ca.log(ca.sum1(ca.exp(col - m))))
        return ca.horzcat(*columns)

    def sin(self, z: Any) -> Any:
        return ca.sin(_ca(z))

    def cos(self, z: Any) -> Any:
        return ca.cos(_ca(z))

    def tanh(self, z: Any) -> Any:
        return ca.tanh(_ca(z))

    def exp(self, z: Any) -> Any:
        return ca.exp(_ca(z))

    def log(self, z: Any) -> Any:
        return ca.log(_ca(z))

    def sqrt(self, z: Any) -> Any:
        return ca.sqrt(_ca(z))

    def square(self, z: Any) -> Any:
        z = _ca(z)
        return z * z

    def abs(self, z: Any) -> Any:
        return ca.fabs(_ca(z))

    def sign(self, z: Any) -> Any:
        return ca.sign(_ca(z))

    def maximum(self, a: Any, b: Any) -> Any:
        a, b = _ca(a), _ca(b)
        return 0.5 * (a + b + ca.fabs(a - b))

    def minimum(self, a: Any, b: Any) -> Any:
        a, b = _ca(a), _ca(b)
        return 0.5 * (a + b - ca.fabs(a - b))

    def relu(self, z: Any) -> Any:
        z = _ca(z)
        return ca.if_else(z > 0, z, 0)

    def sigmoid(self, z: Any) -> Any:
        return 0.5 * (1.0 + ca.tanh(0.5 * _ca(z)))

    def softplus(self, z: Any) -> Any:
        z = _ca(z)
        return self.maximum(z, 0) + ca.log1p(ca.exp(-ca.fabs(z)))


casadi_ops = CasadiOps()
