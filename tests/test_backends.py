"""The ``ops`` protocol: the same names, values, derivatives and kink convention in every backend."""

from __future__ import annotations

import inspect

import casadi as ca
import numpy as np
import pytest

import control_dl as cdl
from control_dl.backends import Ops, casadi_ops, numpy_ops, smooth_abs, torch_ops

torch = pytest.importorskip("torch")
TORCH = torch_ops()
BACKENDS = {"numpy": numpy_ops, "casadi": casadi_ops, "torch": TORCH}
PROTOCOL = sorted(n for n, v in vars(Ops).items() if inspect.isfunction(v) and not n.startswith("_"))

UNARY = [
    "sin",
    "cos",
    "tanh",
    "exp",
    "log",
    "sqrt",
    "square",
    "abs",
    "sign",
    "relu",
    "sigmoid",
    "softplus",
]
BINARY = ["maximum", "minimum"]
#: the documented kink convention: derivative at 0 (unary) or at a tie a = b (binary, per argument)
KINKS = {"relu": 0.0, "abs": 0.0, "sign": 0.0, "softplus": 0.5, "maximum": 0.5, "minimum": 0.5}


def _numpy(value):
    if isinstance(value, torch.Tensor):
        return value.detach().numpy()
    if isinstance(value, (ca.DM, ca.SX, ca.MX)):
        return np.array(ca.DM(value))
    return np.asarray(value)


def test_protocol_lists_every_op_a_field_needs():
    needed = {"sin", "cos", "abs", "exp", "log", "square", "tanh", "sqrt", "matmul", "asarray", "maximum"}
    assert needed <= set(PROTOCOL)
    assert set(UNARY) | set(BINARY) <= set(PROTOCOL)


@pytest.mark.parametrize("name", sorted(BACKENDS))
def test_every_backend_implements_the_protocol_with_its_signatures(name):
    ops = BACKENDS[name]
    assert isinstance(ops, Ops) and ops.name == name
    for op in PROTOCOL:
        impl = getattr(type(ops), op)
        assert impl is not getattr(Ops, op), f"{name} does not implement {op}"
        assert list(inspect.signature(impl).parameters) == list(inspect.signature(getattr(Ops, op)).parameters), op


@pytest.mark.parametrize("op", UNARY + BINARY)
def test_elementwise_values_agree(op):
    rng = np.random.default_rng(0)
    z = rng.normal(size=(3, 1))
    z = np.abs(z) + 0.1 if op in ("log", "sqrt") else z
    args = (z, rng.normal(size=(3, 1))) if op in BINARY else (z,)
    expected = getattr(numpy_ops, op)(*args)
    for name in ("casadi", "torch"):
        ops = BACKENDS[name]
        got = getattr(ops, op)(*[ops.asarray(a) for a in args])
        np.testing.assert_allclose(_numpy(got), expected, rtol=1e-14, atol=1e-15, err_msg=f"{name}.{op}")


def _casadi_derivative(op, points):
    syms = [ca.SX.sym(f"a{i}") for i in range(len(points))]
    out = getattr(casadi_ops, op)(*syms)
    jac = ca.Function("j", syms, [ca.jacobian(out, ca.vertcat(*syms))])
    return np.array(jac(*points)).ravel()


def _torch_derivative(op, points):
    args = [torch.tensor([[p]], dtype=torch.float64, requires_grad=True) for p in points]
    grads = torch.autograd.grad(getattr(TORCH, op)(*args).sum(), args)
    return np.array([g.item() for g in grads])


@pytest.mark.parametrize("op", UNARY + BINARY)
def test_derivatives_agree_including_the_kinks(op):
    rng = np.random.default_rng(1)
    points = [[x] for x in np.abs(rng.normal(size=3)) + 0.2]
    if op in BINARY:
        points = [[x, y] for x, y in rng.normal(size=(3, 2))]
    if op in KINKS:
        points.append([0.0, 0.0] if op in BINARY else [0.0])
    for p in points:
        np.testing.assert_allclose(_casadi_derivative(op, p), _torch_derivative(op, p), rtol=1e-12, atol=1e-15)
    if op in KINKS:
        kink = [0.0, 0.0] if op in BINARY else [0.0]
        np.testing.assert_array_equal(_casadi_derivative(op, kink), KINKS[op])


def test_relu_ring_gradient_at_zero_controls_agrees_across_backends():
    # Issue 16: ring d = 3, relu, θ = 0 (readout from initial_guess(0)): CasADi used relu'(0) = ½
    # (fmax's tie rule) and torch relu'(0) = 0, so the gradients differed by 0.018.
    problem = cdl.load_problem("ring", dim=3, activation="relu")
    w = problem.initial_guess(0)
    w[: problem.layout.n_theta] = 0.0
    g_casadi = problem.gradient(w, backend="casadi")
    g_torch = problem.gradient(w, backend="torch")
    np.testing.assert_allclose(g_casadi, g_torch, rtol=0, atol=1e-12)
    # f = relu(A x + b) at A = 0, b = 0: every pre-activation is 0, so relu'(0) = 0 gives ∂J/∂θ = 0
    # exactly (with relu'(0) = ½ it would not be); the readout's gradient is not 0.
    n_theta = problem.layout.n_theta
    assert np.all(g_casadi[:n_theta] == 0.0) and np.abs(g_casadi[n_theta:]).max() > 1e-3


@pytest.mark.parametrize("name", sorted(BACKENDS))
def test_numpy_constants_are_accepted_by_every_op(name):
    ops = BACKENDS[name]
    rng = np.random.default_rng(2)
    a, x, b = rng.normal(size=(2, 3)), rng.normal(size=(3, 1)), rng.normal(size=(2, 1))
    xb = ops.asarray(x)
    np.testing.assert_allclose(_numpy(ops.matmul(a, xb)), a @ x)
    np.testing.assert_allclose(_numpy(ops.matmul(a, x)), a @ x)
    np.testing.assert_allclose(_numpy(ops.maximum(xb, 0.0)), np.maximum(x, 0.0))
    np.testing.assert_allclose(_numpy(ops.vstack([xb, b])), np.vstack([x, b]))
    np.testing.assert_allclose(_numpy(ops.hstack([xb, x])), np.hstack([x, x]))
    np.testing.assert_allclose(_numpy(ops.reshape(np.arange(6.0), (2, 3))), np.arange(6.0).reshape((2, 3), order="F"))
    np.testing.assert_allclose(_numpy(ops.transpose(a)), a.T)
    np.testing.assert_allclose(_numpy(ops.sin(x)), np.sin(x))
    np.testing.assert_allclose(_numpy(ops.ones((2, 3))), np.ones((2, 3)))
    np.testing.assert_allclose(_numpy(ops.zeros((2, 3))), np.zeros((2, 3)))


@pytest.mark.parametrize("name", sorted(BACKENDS))
def test_fused_affine_and_scaled_add_equal_their_unfused_forms(name):
    """affine(a, x, b) = a x + b and add_scaled(x, α, y) = x + α y (torch fuses them: addmm, add)."""
    ops = BACKENDS[name]
    rng = np.random.default_rng(4)
    a, x, b, y = rng.normal(size=(2, 3)), rng.normal(size=(3, 1)), rng.normal(size=(2, 1)), rng.normal(size=(3, 1))
    xb = ops.asarray(x)
    np.testing.assert_allclose(_numpy(ops.affine(a, xb, b)), a @ x + b, rtol=1e-14)
    np.testing.assert_allclose(_numpy(ops.affine(ops.asarray(a), x, ops.asarray(b))), a @ x + b, rtol=1e-14)
    np.testing.assert_allclose(_numpy(ops.add_scaled(xb, 0.3, y)), x + 0.3 * y, rtol=1e-14)
    np.testing.assert_allclose(_numpy(ops.add_scaled(x, 0.3, ops.asarray(y))), x + 0.3 * y, rtol=1e-14)


def test_fused_torch_ops_have_the_unfused_derivatives():
    rng = np.random.default_rng(5)
    a, x, b = (torch.tensor(rng.normal(size=s), requires_grad=True) for s in ((2, 3), (3, 4), (2, 1)))
    u = torch.tensor(rng.normal(size=(2, 4)))
    fused = torch.autograd.grad((TORCH.affine(a, x, b) * u).sum(), (a, x, b))
    plain = torch.autograd.grad(((a @ x + b) * u).sum(), (a, x, b))
    for f, p in zip(fused, plain, strict=True):
        np.testing.assert_allclose(f.numpy(), p.numpy(), rtol=1e-14)
    y = torch.tensor(rng.normal(size=(3, 4)), requires_grad=True)
    gx, gy = torch.autograd.grad((TORCH.add_scaled(x, 0.7, y) * torch.ones(3, 4, dtype=torch.float64)).sum(), (x, y))
    np.testing.assert_allclose(gx.numpy(), np.ones((3, 4)))
    np.testing.assert_allclose(gy.numpy(), np.full((3, 4), 0.7))


@pytest.mark.filterwarnings("ignore:`torch.jit.script` is deprecated")  # raised inside torch.func.hessian
def test_torch_tanh_on_cpu_equals_torch_tanh_in_value_and_every_derivative(monkeypatch):
    """TorchOps.tanh computes cpu values with numpy (torch's cpu tanh is scalar: 5x slower); values
    to an ulp, and reverse, double-reverse, batched, forward-mode and torch.func derivatives as torch's."""
    from control_dl.backends import _torch

    rng = np.random.default_rng(6)
    z = torch.tensor(rng.normal(scale=3.0, size=(3, 50)), requires_grad=True)
    applied: list[int] = []
    forward = _torch._NumpyTanh.forward
    monkeypatch.setattr(_torch._NumpyTanh, "forward", staticmethod(lambda t: applied.append(t.numel()) or forward(t)))
    TORCH.tanh(z)
    assert applied == []  # 150 values: torch's own tanh (the custom Function costs more than it saves)
    monkeypatch.setattr(_torch, "_NUMPY_TANH_MIN", 1)  # from here on the numpy path, on small tensors
    z.data[0, :3] = torch.tensor([0.0, 1e-12, -40.0], dtype=torch.float64)  # 0, tiny (tanh z = z), saturated
    y, ref = TORCH.tanh(z), torch.tanh(z)
    np.testing.assert_allclose(y.detach().numpy(), ref.detach().numpy(), rtol=3e-16, atol=0)
    u = torch.tensor(rng.normal(size=(3, 50)))
    (g,) = torch.autograd.grad((y * u).sum(), z, create_graph=True)
    (g_ref,) = torch.autograd.grad((ref * u).sum(), z, create_graph=True)
    # 1 − y² near saturation magnifies an ulp of y: compare derivatives absolutely (|u| ~ 1)
    np.testing.assert_allclose(g.detach().numpy(), g_ref.detach().numpy(), rtol=0, atol=2e-15)
    (h,) = torch.autograd.grad(g.sum(), z)
    (h_ref,) = torch.autograd.grad(g_ref.sum(), z)
    np.testing.assert_allclose(h.numpy(), h_ref.numpy(), rtol=0, atol=2e-15)
    theta = torch.tensor(rng.normal(size=4), requires_grad=True)
    x = torch.tensor(rng.normal(size=(2, 6)))
    hessians = []
    for tanh in (TORCH.tanh, torch.tanh):  # E-MSA's batched reverse-over-reverse
        (grad,) = torch.autograd.grad(tanh(theta.reshape(2, 2) @ x).sum(), theta, create_graph=True)
        eye = torch.eye(4, dtype=torch.float64)
        hessians.append(torch.autograd.grad(grad, theta, eye, is_grads_batched=True)[0].numpy())
    np.testing.assert_allclose(*hessians, rtol=1e-13, atol=1e-15)
    point = z.detach()[1]
    np.testing.assert_allclose(
        torch.func.hessian(lambda t: TORCH.tanh(t).sum())(point).numpy(),
        torch.func.hessian(lambda t: torch.tanh(t).sum())(point).numpy(),
        rtol=0,
        atol=2e-15,
    )
    np.testing.assert_allclose(torch.func.vmap(TORCH.tanh)(z.detach()).numpy(), ref.detach().numpy(), rtol=3e-16)
    assert applied and applied[0] == 150


@pytest.mark.parametrize("name", sorted(BACKENDS))
def test_reductions_match_numpy(name):
    ops = BACKENDS[name]
    z = np.random.default_rng(3).normal(size=(4, 3)) * 30.0  # large logits: logsumexp must be stable
    np.testing.assert_allclose(_numpy(ops.sum(ops.asarray(z))), np.sum(z), rtol=1e-14)
    np.testing.assert_allclose(_numpy(ops.sum_rows(ops.asarray(z))), z.sum(axis=0, keepdims=True), rtol=1e-14)
    lse = np.log(np.sum(np.exp(z), axis=0, keepdims=True))
    np.testing.assert_allclose(_numpy(ops.logsumexp_rows(ops.asarray(z))), lse, rtol=1e-14)


def test_smooth_abs_is_the_l1_smoothing():
    z = np.array([[-2.0, 0.0, 1e-6, 3.0]])
    eps = 1e-3
    np.testing.assert_allclose(smooth_abs(z, eps, numpy_ops), np.sqrt(z**2 + eps**2) - eps)
    assert np.all(np.abs(smooth_abs(z, eps, numpy_ops) - np.abs(z)) <= eps)
    s = ca.SX.sym("s")
    assert float(ca.Function("d", [s], [ca.gradient(smooth_abs(s, eps, casadi_ops), s)])(0.0)) == 0.0


def test_torch_constants_follow_the_operand_device():
    # the "meta" device stands in for a GPU: a numpy constant must land where the tensor lives
    x = torch.zeros((3, 2), dtype=torch.float64, device="meta")
    assert TORCH.matmul(np.ones((2, 3)), x).device.type == "meta"
    assert TORCH.maximum(x, 0.0).device.type == "meta"
    assert TORCH.vstack([np.ones((1, 2)), x]).device.type == "meta"
    assert torch_ops(device="meta").ones((2, 2)).device.type == "meta"
