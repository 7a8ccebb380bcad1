r"""The trained network out of the library: torch module, CasADi function, ONNX file.

All three are built from the problem's one model (:meth:`TrainingProblem.trajectory` and
:meth:`TrainingProblem.readout`, written once against ``ops``), evaluated with the torch or the
CasADi ``ops`` at the trained w; nothing is re-implemented. Each computes the input-output map

    Φ(x) = λ2(x(T)),   x(0) = λ1((x − μ) / s),   x_{k+1} = Φ_h(x_k, θ(t_k))

on raw inputs x (μ, s: the standardisation fitted on the training split, when there was one), so
its outputs equal :meth:`Result.predict` (logits for the classification losses).
"""

from __future__ import annotations

import io
import logging
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ._errors import SpecError
from ._files import check_destination

if TYPE_CHECKING:
    from .problems.training import TrainingProblem

logger = logging.getLogger(__name__)

__all__ = ["to_casadi", "to_onnx", "to_torch"]


def _torch() -> Any:
    try:
        import torch
    except ImportError:
        raise SpecError(
            "export to torch/ONNX needs torch, the optional extra 'torch': pip install 'control_dl[torch]'"
        ) from None
    return torch


def to_torch(problem: TrainingProblem, w: Any) -> Any:
    """A ``torch.nn.Module`` computing Φ on raw sample-major inputs, in float64.

    The decision vector w is the module's one parameter (``module.w``, trainable further with any
    torch optimiser); the problem's layout maps it to θ(t), the readout (P, c) and the lift.

    Parameters
    ----------
    problem : TrainingProblem
        The problem the network was trained on.
    w : array_like
        Trained decision vector.

    Returns
    -------
    torch.nn.Module
        ``forward(X)``: X of shape ``S × n_in`` (float64, raw units) → ``S × n_out`` predictions;
        ``module.to("cuda")`` moves w, μ and s, and X must then be on that device.

    Raises
    ------
    SpecError
        If torch is not installed.
    """
    torch = _torch()
    from .backends import torch_ops

    w = problem.check_w(w)
    data = problem.data

    class ControlNetwork(torch.nn.Module):
        """Φ(x) = λ2(x(T)) of a control_dl problem; forward takes S × n_in, returns S × n_out."""

        def __init__(self) -> None:
            super().__init__()
            self.w = torch.nn.Parameter(torch.as_tensor(w, dtype=torch.float64).clone())
            mean = np.zeros(data.n_in) if data.mean is None else data.mean
            scale = np.ones(data.n_in) if data.scale is None else data.scale
            self.register_buffer("mean", torch.as_tensor(mean, dtype=torch.float64)[:, None].clone())
            self.register_buffer("scale", torch.as_tensor(scale, dtype=torch.float64)[:, None].clone())

        def forward(self, X: Any) -> Any:
            ops = torch_ops(device=X.device)  # constants (e.g. the zero padding of λ1) on X's device
            x = (X.T - self.mean) / self.scale if data.mean is not None else X.T
            *_, x_final = problem.trajectory(self.w, x, ops)
            return problem.readout(x_final, problem.layout.readout(self.w, ops), ops).T

    return ControlNetwork()


def to_casadi(problem: TrainingProblem, w: Any, name: str = "phi") -> Any:
    """The map Φ as a ``casadi.Function`` of one raw input column, with exact derivatives.

    Built by running the problem's trajectory and readout with the CasADi ``ops`` on a symbolic
    input (``SX``) and the trained w as constants, so CasADi's AD gives exact Jacobians and Hessians
    of Φ (e.g. for an MPC or an ``Opti`` problem that embeds the network). Map it over samples with
    ``phi.map(S)``.

    Parameters
    ----------
    problem : TrainingProblem
        The problem the network was trained on.
    w : array_like
        Trained decision vector, ``(n_params,)``.
    name : str
        Name of the Function.

    Returns
    -------
    casadi.Function
        ``name: x (n_in × 1) → y (n_out × 1)``.

    Raises
    ------
    SpecError
        ``w`` does not fit the problem (length, NaN/inf).
    """
    import casadi as ca

    from .backends import casadi_ops

    w = ca.DM(problem.check_w(w))
    data = problem.data
    x = ca.SX.sym("x", data.n_in, 1)
    z = (x - ca.DM(data.mean)) / ca.DM(data.scale) if data.mean is not None else x
    *_, x_final = problem.trajectory(w, z, casadi_ops)
    y = problem.readout(x_final, problem.layout.readout(w, casadi_ops), casadi_ops)
    return ca.Function(name, [x], [y], ["x"], ["y"])


#: training samples used to trace the exports and to check the ONNX file
_N_EXAMPLES = 256


def _example_inputs(problem: TrainingProblem) -> np.ndarray:
    """The first (at most 256) raw training inputs, sample-major: what the exports are traced on."""
    x = problem.data.x_train[:, :_N_EXAMPLES]
    return np.ascontiguousarray(problem.data.inverse_transform(x).T)


#: ONNX opset of the exported files
_OPSET = 17


def _logaddexp(g: Any, a: Any, b: Any) -> Any:
    """ONNX graph of log(eᵃ + eᵇ) = max(a, b) + log(1 + e^{−|a − b|}) (softplus in the torch ops).

    The TorchScript exporter has no rule for ``aten::logaddexp``; :func:`to_onnx` registers this one
    for the duration of an export only.
    """
    torch = _torch()
    one = g.op("Constant", value_t=torch.tensor(1.0, dtype=torch.float64))
    gap = g.op("Neg", g.op("Abs", g.op("Sub", a, b)))
    return g.op("Add", g.op("Max", a, b), g.op("Log", g.op("Add", one, g.op("Exp", gap))))


def to_onnx(problem: TrainingProblem, w: Any, path: str | Path) -> Path:
    """Write Φ as an ONNX model (float64) through :func:`to_torch` and check it with onnxruntime.

    Exported with torch's TorchScript-based exporter (``dynamo=False``): the dynamo exporter of
    torch 2.13 stores Python float constants such as the step h as float32 (0.2 becomes
    0.20000000298), which moves the outputs by ~1e-9; the TorchScript path keeps every constant in
    float64 and needs no ``onnxscript`` (it has no rule for ``logaddexp``, the softplus of the torch
    ops: :func:`_logaddexp` is registered while exporting). Before the file is written, onnxruntime runs it on (up to 256 of) the
    training inputs and the outputs must match the torch module to 1e-9 relative.

    Parameters
    ----------
    problem : TrainingProblem
        The problem the network was trained on.
    w : array_like
        Trained decision vector.
    path : str or Path
        Destination file.

    Returns
    -------
    Path
        The file: input ``X`` (``S × n_in``, float64, raw units; S is dynamic), output ``y``
        (``S × n_out``).

    Raises
    ------
    SpecError
        If ``path`` cannot be written (:func:`check_destination`, checked first), onnx /
        onnxruntime (the optional extra ``export``) are missing, or the check fails.
    """
    path = check_destination(path)
    torch = _torch()
    try:
        import onnx  # noqa: F401  (the exporter needs it)
        import onnxruntime
    except ImportError:
        raise SpecError(
            "export to ONNX needs onnx and onnxruntime, the optional extra 'export': pip install 'control_dl[export]'"
        ) from None
    from .result import atomic_write_bytes

    module = to_torch(problem, w).eval()
    x_raw = _example_inputs(problem)
    buffer = io.BytesIO()
    torch.onnx.register_custom_op_symbolic("aten::logaddexp", _logaddexp, _OPSET)
    try:
        with warnings.catch_warnings(), torch.no_grad():
            warnings.simplefilter("ignore")  # the TorchScript exporter's deprecation notice
            torch.onnx.export(
                module,
                (torch.as_tensor(x_raw),),
                buffer,
                dynamo=False,
                opset_version=_OPSET,
                input_names=["X"],
                output_names=["y"],
                dynamic_axes={"X": {0: "S"}, "y": {0: "S"}},
            )
            expected = module(torch.as_tensor(x_raw)).numpy()
    finally:
        torch.onnx.unregister_custom_op_symbolic("aten::logaddexp", _OPSET)
    model = buffer.getvalue()
    session = onnxruntime.InferenceSession(model, providers=["CPUExecutionProvider"])
    got = session.run(None, {"X": x_raw})[0]
    # the tolerance scales with the outputs' size: a diverged network's outputs of 1e18 differed by
    # 1.9e8 (1.9e-10 of them) between the two runtimes' float64 round-off, and were refused
    scale = float(np.max(np.abs(expected), initial=0.0))
    if got.shape != expected.shape or not np.all(np.abs(got - expected) <= 1e-9 * scale + 1e-12):
        difference = np.max(np.abs(got - expected)) if got.shape == expected.shape else f"shape {got.shape}"
        raise SpecError(
            f"ONNX export check failed: onnxruntime differs from torch by {difference} on outputs of size up to "
            f"{scale:.3g}"
        )
    atomic_write_bytes(path, model)
    return path


#: file suffix per export format of :func:`write_export`
FORMATS = {"torch": ".pt2", "casadi": ".casadi", "onnx": ".onnx"}


def write_export(problem: TrainingProblem, w: Any, fmt: str, path: str | Path) -> Path:
    """Write the network to a file another program loads without control_dl.

    ``torch``: a ``torch.export`` program (``torch.export.load(path).module()(X)`` with X a tensor,
    S dynamic); ``casadi``: ``casadi.Function.load(path)``; ``onnx``: :func:`to_onnx`. A ``path``
    whose suffix is not the format's (:data:`FORMATS`) is written all the same, with a log warning.

    Parameters
    ----------
    problem : TrainingProblem
        The problem the network was trained on.
    w : array_like
        Trained decision vector.
    fmt : {"torch", "casadi", "onnx"}
        Format.
    path : str or Path
        Destination (written atomically).

    Returns
    -------
    Path
        The file.

    Raises
    ------
    SpecError
        On an unknown format, a ``path`` that cannot be written (:func:`check_destination`, before
        any work) or a missing optional extra.
    """
    import tempfile

    from .result import atomic_write_bytes

    if fmt not in FORMATS:
        raise SpecError(f"format={fmt!r}: must be one of {sorted(FORMATS)}")
    path = check_destination(path)
    if path.suffix != FORMATS[fmt]:  # written as asked; a name another program would misread is likely a slip
        logger.warning("writing a %s export to %s: its suffix is not %s", fmt, path, FORMATS[fmt])
    if fmt == "onnx":
        return to_onnx(problem, w, path)
    if fmt == "casadi":
        with tempfile.TemporaryDirectory() as folder:
            file = Path(folder) / "phi.casadi"
            to_casadi(problem, w).save(str(file))
            atomic_write_bytes(path, file.read_bytes())
        return path
    torch = _torch()
    module = to_torch(problem, w).eval()
    x = torch.as_tensor(_example_inputs(problem))
    program = torch.export.export(module, (x,), dynamic_shapes=({0: torch.export.Dim("S")},))
    buffer = io.BytesIO()
    torch.export.save(program, buffer)
    atomic_write_bytes(path, buffer.getvalue())
    return path
