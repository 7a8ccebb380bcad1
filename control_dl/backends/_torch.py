"""The torch ``ops`` namespace (float64 tensors; imported lazily)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from ._protocol import Ops

#: Fewest values for which :class:`_NumpyTanh` beats ``torch.tanh`` (forward + backward, float64,
#: one thread; measured here: 31 vs 16 µs at 300 values, even at 6 000, 91 vs 223 µs at 48 000): the
#: custom Function's fixed cost of ~30 µs outweighs the saving on small batches.
_NUMPY_TANH_MIN = 8192


def _capturing() -> bool:
    """Whether torch is tracing, exporting or compiling the code that runs (no numpy calls there)."""
    compiling = getattr(torch.compiler, "is_compiling", lambda: False)  # torch >= 2.3
    return torch.jit.is_tracing() or torch.onnx.is_in_onnx_export() or compiling()


class _NumpyTanh(torch.autograd.Function):
    """tanh of a cpu tensor by numpy's vectorised tanh; the derivative by torch's ``tanh_backward``.

    torch's own cpu tanh computes one value at a time (measured here: 3.7 ns a value in float64
    against 0.73 ns for ``np.tanh``, and 46 % of the torch engine's f+grad on ring). The values
    agree to an ulp (tested); the derivative is torch's ``tanh_backward`` in reverse and forward
    mode, so first and second derivatives, batched gradients (``is_grads_batched``) and the
    ``torch.func`` transforms give what ``torch.tanh`` gives. Not used on tensor subclasses (fake
    tensors of ``torch.export``) or while torch traces, exports or compiles.
    """

    @staticmethod
    def forward(z: torch.Tensor) -> torch.Tensor:
        return torch.from_numpy(np.asarray(np.tanh(z.detach().numpy())))  # asarray: a 0-d z gives a numpy scalar

    @staticmethod
    def setup_context(ctx: Any, inputs: tuple[Any, ...], output: torch.Tensor) -> None:
        ctx.save_for_backward(output)
        ctx.save_for_forward(output)

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> torch.Tensor:
        (y,) = ctx.saved_tensors
        return torch.ops.aten.tanh_backward(grad, y)  # grad · (1 − y²)

    @staticmethod
    def jvp(ctx: Any, tangent: torch.Tensor) -> torch.Tensor:
        (y,) = ctx.saved_tensors
        return torch.ops.aten.tanh_backward(tangent, y)  # forward mode: tangent · (1 − y²)

    @staticmethod
    def vmap(info: Any, in_dims: tuple[Any, ...], z: torch.Tensor) -> tuple[torch.Tensor, Any]:
        return _NumpyTanh.apply(z), in_dims[0]  # elementwise: the batch dimension stays where it is


class TorchOps(Ops):
    """:class:`~control_dl.backends.Ops` over torch tensors (docstrings: see ``Ops``).

    Numpy arrays and numbers passed to any op become tensors of ``dtype`` on the device of the
    other operand (``device`` for a unary op). Kinks follow torch's own derivatives, which are the
    package convention.

    Parameters
    ----------
    dtype : torch.dtype
        Floating type of constants (float64).
    device : str or torch.device, optional
        Device of constants that meet no tensor and of everything ``asarray`` returns (default:
        torch's default device; tensors passed to ``asarray`` then stay where they are).
    """

    name = "torch"

    def __init__(self, dtype: torch.dtype = torch.float64, device: Any = None) -> None:
        self.dtype = dtype
        self.device = device

    def _t(self, x: Any, like: Any = None) -> torch.Tensor:
        if isinstance(x, torch.Tensor):
            return x
        device = like.device if isinstance(like, torch.Tensor) else self.device
        return torch.as_tensor(np.asarray(x, dtype=np.float64), dtype=self.dtype, device=device)

    def asarray(self, x: Any) -> torch.Tensor:
        if isinstance(x, torch.Tensor):
            return x.to(dtype=self.dtype, device=self.device if self.device is not None else x.device)
        return self._t(x)

    def zeros(self, shape: tuple[int, int]) -> torch.Tensor:
        return torch.zeros(shape, dtype=self.dtype, device=self.device)

    def ones(self, shape: tuple[int, int]) -> torch.Tensor:
        return torch.ones(shape, dtype=self.dtype, device=self.device)

    def reshape(self, v: Any, shape: tuple[int, int]) -> torch.Tensor:
        # column-major, like numpy order="F" and CasADi
        return self._t(v).reshape(shape[1], shape[0]).T

    def transpose(self, a: Any) -> torch.Tensor:
        return self._t(a).T

    def vstack(self, parts: Sequence[Any]) -> torch.Tensor:
        like = next((p for p in parts if isinstance(p, torch.Tensor)), None)
        return torch.vstack([self._t(p, like) for p in parts])

    def hstack(self, parts: Sequence[Any]) -> torch.Tensor:
        like = next((p for p in parts if isinstance(p, torch.Tensor)), None)
        return torch.hstack([self._t(p, like) for p in parts])

    def matmul(self, a: Any, b: Any) -> torch.Tensor:
        return self._t(a, b) @ self._t(b, a)

    def affine(self, a: Any, x: Any, b: Any) -> torch.Tensor:
        x = self._t(x, a)
        return torch.addmm(self._t(b, x), self._t(a, x), x)

    def add_scaled(self, x: Any, alpha: float, y: Any) -> torch.Tensor:
        y = self._t(y, x)
        return torch.add(self._t(x, y), y, alpha=alpha)

    def sum(self, z: Any) -> torch.Tensor:
        return torch.sum(self._t(z))

    def sum_rows(self, z: Any) -> torch.Tensor:
        return torch.sum(self._t(z), dim=0, keepdim=True)

    def logsumexp_rows(self, z: Any) -> torch.Tensor:
        return torch.logsumexp(self._t(z), dim=0, keepdim=True)

    def sin(self, z: Any) -> torch.Tensor:
        return torch.sin(self._t(z))

    def cos(self, z: Any) -> torch.Tensor:
        return torch.cos(self._t(z))

    def tanh(self, z: Any) -> torch.Tensor:
        z = self._t(z)
        # the size test last: under torch.export it would put a guard on the symbolic batch size
        if type(z) is torch.Tensor and not _capturing() and z.device.type == "cpu" and z.numel() >= _NUMPY_TANH_MIN:
            return _NumpyTanh.apply(z)  # 2.5x faster than torch.tanh at 4.8·10⁴ values (see _NumpyTanh)
        return torch.tanh(z)

    def exp(self, z: Any) -> torch.Tensor:
        return torch.exp(self._t(z))

    def log(self, z: Any) -> torch.Tensor:
        return torch.log(self._t(z))

    def sqrt(self, z: Any) -> torch.Tensor:
        return torch.sqrt(self._t(z))

    def square(self, z: Any) -> torch.Tensor:
        return torch.square(self._t(z))

    def abs(self, z: Any) -> torch.Tensor:
        return torch.abs(self._t(z))

    def sign(self, z: Any) -> torch.Tensor:
        return torch.sign(self._t(z))

    def maximum(self, a: Any, b: Any) -> torch.Tensor:
        return torch.maximum(self._t(a, b), self._t(b, a))

    def minimum(self, a: Any, b: Any) -> torch.Tensor:
        return torch.minimum(self._t(a, b), self._t(b, a))

    def relu(self, z: Any) -> torch.Tensor:
        return torch.relu(self._t(z))

    def sigmoid(self, z: Any) -> torch.Tensor:
        return torch.sigmoid(self._t(z))

    def softplus(self, z: Any) -> torch.Tensor:
        z = self._t(z)
        return torch.logaddexp(z, torch.zeros_like(z))
