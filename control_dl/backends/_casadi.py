"""The CasADi ``ops`` namespace: works on ``SX``, ``MX`` and ``DM`` alike."""

from __future__ import annotations

import casadi as ca


class CasadiOps:
    """Array operations over CasADi matrices; see :mod:`control_dl.backends`.

    CasADi matrices are 2-D and do not broadcast a column over columns, so the models are evaluated
    in CasADi one sample at a time (``S = 1``) and mapped over the samples with ``Function.map``.
    """

    name = "casadi"

    @staticmethod
    def asarray(x):
        return ca.DM(x)

    @staticmethod
    def reshape(v, shape: tuple[int, int]):
        return ca.reshape(v, shape[0], shape[1])

    @staticmethod
    def matmul(a, b):
        return ca.mtimes(a, b)

    @staticmethod
    def tanh(z):
        return ca.tanh(z)

    @staticmethod
    def sigmoid(z):
        return 0.5 * (1.0 + ca.tanh(0.5 * z))

    @staticmethod
    def softplus(z):
        return ca.fmax(z, 0) + ca.log1p(ca.exp(-ca.fabs(z)))

    @staticmethod
    def relu(z):
        return ca.fmax(z, 0)

    @staticmethod
    def sqrt(z):
        return ca.sqrt(z)

    @staticmethod
    def exp(z):
        return ca.exp(z)

    @staticmethod
    def log(z):
        return ca.log(z)

    @staticmethod
    def sum(z):
        return ca.sum1(ca.sum2(z))

    @staticmethod
    def sum_rows(z):
        return ca.sum1(z)

    @staticmethod
    def logsumexp_rows(z):
        m = ca.mmax(z) if z.shape[1] == 1 else None
        if m is None:
            raise ValueError("casadi_ops.logsumexp_rows works on one sample (a column) at a time")
        return m + ca.log(ca.sum1(ca.exp(z - m)))

    @staticmethod
    def vstack(parts):
        return ca.vertcat(*parts)

    @staticmethod
    def zeros(shape: tuple[int, int]):
        return ca.DM.zeros(shape[0], shape[1])


casadi_ops = CasadiOps()
