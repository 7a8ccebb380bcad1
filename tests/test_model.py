"""One model, three backends: objectives agree, gradients match finite differences."""

from __future__ import annotations

import numpy as np
import pytest

import control_dl as cdl

FIELDS = [cdl.Inside("tanh"), cdl.Outside("sigmoid"), cdl.Bottleneck("softplus", width=2), cdl.Inside("relu")]
CONTROLS = [
    cdl.PiecewiseConstant(n_steps=4),
    cdl.PiecewiseLinear(n_nodes=3, n_steps=4),
    cdl.TimeInvariant(n_steps=4),
    cdl.Spectral(basis="legendre", n_modes=3, n_steps=4),
    cdl.Spectral(basis="fourier", n_modes=3, n_steps=4),
]
FULL_COST = dict(l2=1e-2, h1=1e-2, l1=1e-2, turnpike=0.3, tracking=0.1, tracking_target=0.2)


def _problem(field, control, integrator="euler", loss="logistic", lift="pad", data=None):
    data = data if data is not None else cdl.datasets.ring(12, seed=1)
    return cdl.TrainingProblem(
        data=data,
        field=field,
        dim=3,
        control=control,
        horizon=1.5,
        integrator=integrator,
        cost=cdl.Cost(loss=loss, **FULL_COST),
        lift=lift,
    )


def _three_class_data() -> cdl.Dataset:
    rng = np.random.default_rng(3)
    x = rng.normal(size=(2, 15))
    y = np.arange(15) % 3
    return cdl.Dataset(x, y, x[:, :6], y[:6], task="multiclass", name="three")


@pytest.mark.parametrize("integrator", ["euler", "rk4"])
@pytest.mark.parametrize("control", CONTROLS, ids=lambda c: type(c).__name__ + getattr(c, "basis", ""))
@pytest.mark.parametrize("field", FIELDS, ids=lambda f: type(f).__name__ + f.activation)
def test_backends_agree(field, control, integrator):
    problem = _problem(field, control, integrator)
    w = problem.initial_guess(seed=2)
    values = [problem.objective(w, backend) for backend in ("numpy", "casadi", "torch")]
    assert values[0] > 0
    np.testing.assert_allclose(values[1:], values[0], rtol=1e-10, atol=0)


@pytest.mark.parametrize(
    "loss, lift, data",
    [("mse", "affine", None), ("cross_entropy", "pad", "three"), ("mse", "pad", "sin")],
)
def test_backends_agree_losses_and_lifts(loss, lift, data):
    data = {"three": _three_class_data(), "sin": cdl.datasets.sin(10), None: None}[data]
    problem = _problem(cdl.Inside("tanh"), cdl.PiecewiseConstant(3), "rk4", loss, lift, data)
    w = problem.initial_guess(seed=5)
    values = [problem.objective(w, backend) for backend in ("numpy", "casadi", "torch")]
    np.testing.assert_allclose(values[1:], values[0], rtol=1e-10, atol=0)


def _central_differences(f, w, eps=1e-6):
    g = np.zeros_like(w)
    for i in range(w.size):
        e = np.zeros_like(w)
        e[i] = eps
        g[i] = (f(w + e) - f(w - e)) / (2 * eps)
    return g


@pytest.mark.parametrize(
    "field, control, integrator, lift",
    [
        (cdl.Inside("tanh"), cdl.PiecewiseConstant(3), "euler", "pad"),
        (cdl.Outside("softplus"), cdl.PiecewiseLinear(n_nodes=2, n_steps=3), "rk4", "affine"),
        (cdl.Bottleneck("sigmoid", width=2), cdl.Spectral("fourier", 3, n_steps=3), "euler", "pad"),
    ],
)
def test_gradients_match_finite_differences(field, control, integrator, lift):
    problem = _problem(field, control, integrator, lift=lift)
    w = problem.initial_guess(seed=4)
    fd = _central_differences(lambda v: problem.objective(v, "numpy"), w)
    scale = np.max(np.abs(fd))
    for backend in ("casadi", "torch"):
        g = problem.gradient(w, backend)
        np.testing.assert_allclose(g, fd, rtol=1e-6, atol=1e-6 * scale)


def test_resnet_matches_hand_written_loop():
    problem = cdl.load_problem("ring", n_samples=30, dim=3, n_steps=6)
    w = problem.initial_guess(seed=7)
    blocks = problem.unflatten(w)
    h = problem.horizon / 6
    x = np.vstack([problem.data.x_train, np.zeros((1, 30))])
    for theta in blocks["theta"]:
        x = x + h * np.tanh(theta["A"] @ x + theta["b"][:, None])
    readout = blocks["readout"]["P"] @ x + blocks["readout"]["c"][:, None]
    np.testing.assert_allclose(problem.forward(w)[-1], x, rtol=1e-14, atol=1e-14)
    np.testing.assert_allclose(problem.predict(w), readout, rtol=1e-14, atol=1e-14)
    mse = np.mean((readout[0] - problem.data.y_train) ** 2)
    l2 = problem.cost.l2 * h * np.sum(w[: problem.layout.n_theta] ** 2)
    assert problem.objective(w) == pytest.approx(mse + l2, rel=1e-13)


def test_layout_round_trip_and_n_params():
    problem = cdl.load_problem("ring", dim=3, n_steps=20)
    assert problem.n_params == 20 * (9 + 3) + 4  # the 244 parameters of DESIGN.md
    w = np.arange(problem.n_params, dtype=float)
    blocks = problem.unflatten(w)
    assert len(blocks["theta"]) == 20
    assert blocks["theta"][0]["A"].shape == (3, 3)
    assert blocks["theta"][0]["A"][1, 0] == 1.0  # column-major: A[1,0] follows A[0,0]
    assert blocks["theta"][1]["A"][0, 0] == 12.0
    np.testing.assert_array_equal(blocks["readout"]["c"], [243.0])
    assert blocks["lift"] == {}


def test_theta_of_t_follows_the_control():
    problem = cdl.TrainingProblem(
        data=cdl.datasets.ring(10), dim=2, control=cdl.PiecewiseLinear(n_nodes=3, n_steps=4), horizon=2.0
    )
    w = problem.initial_guess(seed=0)
    lay = problem.layout
    c0, c1 = lay.coefficient(w, 0), lay.coefficient(w, 1)
    np.testing.assert_allclose(problem.theta(w, [0.5])[0], 0.5 * c0 + 0.5 * c1, rtol=1e-14)


def test_user_defined_field_runs_in_every_backend():
    class Linear:
        """f(x, θ) = M x: a user field written against ops."""

        def param_shapes(self, dim):
            return {"M": (dim, dim)}

        def __call__(self, x, params, ops):
            return ops.matmul(params["M"], x)

    problem = cdl.TrainingProblem(data=cdl.datasets.sin(8), field=Linear(), dim=2, control=cdl.PiecewiseConstant(3))
    w = problem.initial_guess(seed=1)
    values = [problem.objective(w, b) for b in ("numpy", "casadi", "torch")]
    np.testing.assert_allclose(values[1:], values[0], rtol=1e-12)


def test_bad_w_is_rejected(small_ring):
    with pytest.raises(ValueError, match="n_params"):
        small_ring.objective(np.zeros(3))
    w = small_ring.initial_guess()
    w[0] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        small_ring.objective(w)
    with pytest.raises(ValueError, match="backend"):
        small_ring.gradient(small_ring.initial_guess(), backend="numpy")
