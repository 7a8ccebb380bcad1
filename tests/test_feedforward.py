"""FeedForward (MLP) models: one model over three backends, the ResNet limit, specs, Kuntz's claims."""

from __future__ import annotations

import casadi as ca
import numpy as np
import pytest

import control_dl as cdl
from control_dl.backends import casadi_ops


def _mlp(widths, loss="logistic", n_samples=30, **kwargs) -> cdl.TrainingProblem:
    data = cdl.datasets.circle(n_samples, seed=1)
    return cdl.TrainingProblem(data=data, model=cdl.FeedForward(widths, **kwargs), cost=cdl.Cost(loss=loss, l2=1e-3))


def _input_output_map(problem: cdl.TrainingProblem, w: np.ndarray) -> tuple[ca.Function, ca.Function]:
    """∇Φ(x) and the Hessian of Φ(x) for the scalar output Φ of a trained net (CasADi AD)."""
    x = ca.SX.sym("x", 2)
    *_, phi = problem.trajectory(ca.DM(w), x, casadi_ops)
    hess, grad = ca.hessian(phi, x)
    return ca.Function("grad_phi", [x], [grad]), ca.Function("hess_phi", [x], [hess])


def _grid_gradients(grad: ca.Function, n: int = 81, box: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    g1 = np.linspace(-box, box, n)
    points = np.array(np.meshgrid(g1, g1)).reshape(2, -1)
    values = np.asarray(grad.map(points.shape[1])(points), dtype=float)
    return points, np.linalg.norm(values, axis=0)


@pytest.mark.parametrize(
    ("widths", "options"),
    [((2, 4, 3, 1), {}), ((2, 1, 2, 1), {"activation": "sigmoid"}), ((2, 2, 2), {"residual": True, "step": 0.5})],
)
def test_objective_agrees_across_backends(widths, options) -> None:
    loss = "cross_entropy" if widths[-1] == 2 else "logistic"
    data = cdl.datasets.circle(25, seed=2)
    problem = cdl.TrainingProblem(
        data=data, model=cdl.FeedForward(widths, **options), cost=cdl.Cost(loss=loss, l2=1e-2, l1=1e-3)
    )
    w = problem.initial_guess(seed=3)
    values = [problem.objective(w, backend=b) for b in ("numpy", "casadi", "torch")]
    assert values[1] == pytest.approx(values[0], abs=1e-10)
    assert values[2] == pytest.approx(values[0], abs=1e-10)


def test_gradients_match_finite_differences() -> None:
    problem = _mlp((2, 3, 2, 1))
    w = problem.initial_guess(seed=4)
    g_casadi = problem.gradient(w, backend="casadi")
    g_torch = problem.gradient(w, backend="torch")
    eps = 1e-6
    fd = np.array(
        [(problem.objective(w + eps * e) - problem.objective(w - eps * e)) / (2 * eps) for e in np.eye(w.size)]
    )
    np.testing.assert_allclose(g_casadi, fd, atol=1e-7)
    np.testing.assert_allclose(g_torch, g_casadi, atol=1e-12)


def test_residual_feedforward_is_the_euler_resnet() -> None:
    n_steps, horizon = 5, 1.0
    data = cdl.datasets.ring(30, seed=0)
    cost = cdl.Cost(loss="cross_entropy", l2=1e-2)
    resnet = cdl.TrainingProblem(
        data=data, field=cdl.Inside("tanh"), dim=2, control=cdl.PiecewiseConstant(n_steps), horizon=horizon, cost=cost
    )
    network = cdl.FeedForward([2] * (n_steps + 1), residual=True, step=horizon / n_steps, output_activation="tanh")
    mlp = cdl.TrainingProblem(data=data, model=network, cost=cost)
    theta = resnet.initial_guess(seed=5)[: resnet.layout.n_theta]
    w_resnet = np.r_[theta, np.eye(2).ravel(), np.zeros(2)]  # readout P = I, c = 0: λ2 is the identity
    assert mlp.n_params == theta.size and mlp.step_size == resnet.step_size
    np.testing.assert_allclose(mlp.forward(theta), resnet.forward(w_resnet), atol=1e-14)
    assert mlp.objective(theta) == pytest.approx(resnet.objective(w_resnet), abs=1e-14)
    np.testing.assert_allclose(mlp.theta(theta, [0.1, 0.5, 0.9]), resnet.theta(w_resnet, [0.1, 0.5, 0.9]))


def test_structure_of_a_feedforward_problem() -> None:
    problem = _mlp((2, 5, 3, 1))
    assert (problem.n_steps, problem.dim, problem.state_dims) == (3, 5, (2, 5, 3, 1))
    assert problem.n_params == (5 * 2 + 5) + (3 * 5 + 3) + (1 * 3 + 1)
    w = problem.initial_guess(seed=0)
    blocks = problem.unflatten(w)
    assert [b["A"].shape for b in blocks["theta"]] == [(5, 2), (3, 5), (1, 3)]
    assert blocks["readout"] == {} and blocks["lift"] == {}
    states = problem.forward(w)
    assert states.shape == (4, 5, 30)
    assert np.all(states[3, 1:] == 0.0)  # x_3 ∈ R^1 zero-padded to d = 5
    np.testing.assert_allclose(problem.predict(w), states[3, :1])


def test_spec_keys_model_and_widths() -> None:
    problem = cdl.load_problem("circle", model="mlp", widths=[2, 8, 8, 1], n_samples=40)
    assert problem.model == cdl.FeedForward((2, 8, 8, 1))
    assert problem.spec["model"]["widths"] == [2, 8, 8, 1]
    rebuilt = cdl.problem_from_spec(problem.spec)
    w = problem.initial_guess(seed=1)
    assert rebuilt.objective(w) == problem.objective(w)


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"widths": [3, 8, 1]}, "widths"),  # not the input size
        ({"widths": [2, 0, 1]}, "widths"),  # a zero width
        ({"widths": [2, 8, 2]}, "widths"),  # wrong output size for the logistic loss
        ({"widths": [2, "8", 1]}, "widths"),
        ({"widths": 8}, "widths"),
        ({}, "widths"),  # model = "mlp" without widths
        ({"widths": [2, 4, 1], "n_steps": 5}, "n_steps"),  # a ResNet option given explicitly
        ({"widths": [2, 4, 1], "h1": 1e-3}, "h1"),
    ],
)
def test_bad_feedforward_specs_are_spec_errors(overrides, field) -> None:
    with pytest.raises(cdl.SpecError, match=field):
        cdl.load_problem("circle", model="mlp", **overrides)


def test_widths_without_mlp_and_bad_models_are_spec_errors() -> None:
    with pytest.raises(cdl.SpecError, match="widths"):
        cdl.load_problem("circle", widths=[2, 4, 1])
    with pytest.raises(cdl.SpecError, match="model"):
        cdl.load_problem("circle", model="cnn")
    with pytest.raises(cdl.SpecError, match="widths"):
        cdl.FeedForward((2, 3, 2), residual=True)
    with pytest.raises(cdl.SpecError, match="field"):
        cdl.TrainingProblem(data=cdl.datasets.circle(10), model=cdl.FeedForward((2, 1)), field=cdl.Outside())


def test_direct_solver_trains_an_mlp() -> None:
    problem = _mlp((2, 6, 1), n_samples=60)
    result = cdl.solve(problem, cdl.Direct(max_iter=80), progress=False)
    assert result.status in ("converged", "max_iter")
    assert result.objective < problem.objective(problem.initial_guess(0))
    assert result.accuracy > 0.85


# ------------------------------------------------------------------ Kuntz's claims on trained nets
def test_non_augmented_mlp_has_no_critical_point() -> None:
    problem = _mlp((2, 2, 1), n_samples=80)
    result = cdl.solve(problem, cdl.Direct(max_iter=60), progress=False)
    assert cdl.diagnostics.classify_feedforward(problem).kind == "non-augmented"
    ranks = cdl.diagnostics.layer_ranks(problem, result)
    assert [r["A"] for r in ranks.weight_ranks] == [2, 1]  # full-rank A_k
    grad, _ = _input_output_map(problem, result.w)
    _, norms = _grid_gradients(grad, box=1.5)
    assert norms.min() > 1e-4 * norms.max()  # bounded away from 0 on the dense grid
    assert cdl.diagnostics.critical_points(problem, result).points == ()


def test_augmented_mlp_on_circle_has_a_nondegenerate_critical_point_inside() -> None:
    problem = _mlp((2, 8, 1), n_samples=120)
    result = cdl.solve(problem, cdl.Direct(max_iter=150), progress=False)
    assert cdl.diagnostics.classify_feedforward(problem).kind == "augmented"
    assert result.accuracy > 0.9
    grad, hess = _input_output_map(problem, result.w)
    points, norms = _grid_gradients(grad, box=0.75)
    inside = np.linalg.norm(points, axis=0) < 0.75
    x = points[:, inside][:, np.argmin(norms[inside])]
    for _ in range(30):  # Newton on ∇Φ(x) = 0
        x = x - np.linalg.solve(np.asarray(hess(x)), np.asarray(grad(x)).ravel())
    assert np.linalg.norm(np.asarray(grad(x))) < 1e-10
    assert np.linalg.norm(x) < 0.75
    eigenvalues = np.abs(np.linalg.eigvalsh(np.asarray(hess(x))))
    assert eigenvalues.min() > 1e-3 * eigenvalues.max()  # non-degenerate
    found = cdl.diagnostics.critical_points(problem, result).points
    assert any(not c.degenerate and np.linalg.norm(c.x - x) < 1e-6 for c in found)


def test_bottleneck_mlp_has_only_degenerate_critical_points() -> None:
    problem = _mlp((2, 1, 2, 1), n_samples=60)
    assert cdl.diagnostics.classify_feedforward(problem).kind == "bottleneck"
    result = cdl.solve(problem, cdl.Direct(max_iter=60), progress=False)
    _, hess = _input_output_map(problem, result.w)
    g1 = np.linspace(-1.5, 1.5, 21)
    for point in np.array(np.meshgrid(g1, g1)).reshape(2, -1).T:
        eigenvalues = np.abs(np.linalg.eigvalsh(np.asarray(hess(point))))
        assert eigenvalues.min() <= 1e-12 * (1.0 + eigenvalues.max())  # rank ≤ 1 everywhere
    assert all(c.degenerate for c in cdl.diagnostics.critical_points(problem, result).points)
    # a constructed bottleneck net with critical points: Φ(x) = tanh(tanh(x1)+½) + tanh(½−tanh(x1))
    w = np.r_[[1.0, 0.0, 0.0], [1.0, -1.0, 0.5, 0.5], [1.0, 1.0, 0.0]]
    grad, hess = _input_output_map(problem, w)
    for x2 in (-1.0, 0.0, 0.7):
        assert np.linalg.norm(np.asarray(grad([0.0, x2]))) < 1e-14
        eigenvalues = np.linalg.eigvalsh(np.asarray(hess([0.0, x2])))
        assert np.abs(eigenvalues).min() < 1e-14 and np.abs(eigenvalues).max() > 0.1


@pytest.mark.parametrize(
    ("widths", "kind", "bottlenecks"),
    [
        ((3, 3, 2, 1), "non-augmented", ()),
        ((2, 4, 8, 8, 3, 1), "augmented", ()),
        ((2, 1, 2, 1), "bottleneck", (1,)),
        ((4, 2, 3, 1, 5, 1), "bottleneck", (1, 3)),
    ],
)
def test_classify_feedforward_by_widths(widths, kind, bottlenecks) -> None:
    label = cdl.diagnostics.classify_feedforward(widths)
    assert (label.kind, label.bottlenecks) == (kind, bottlenecks)


def test_layer_ranks_on_a_constructed_net() -> None:
    problem = _mlp((2, 3, 1), n_samples=20)
    u, v = np.array([1.0, 2.0, -2.0]), np.array([0.6, 0.8])
    a0 = np.outer(u, v)  # rank 1, singular value ‖u‖‖v‖ = 3
    a1 = np.array([[0.5, -1.0, 2.0]])
    w = np.r_[a0.ravel(order="F"), [0.1, -0.2, 0.3], a1.ravel(order="F"), [0.0]]
    ranks = cdl.diagnostics.layer_ranks(problem, w)
    np.testing.assert_allclose(ranks.weight_singular_values[0]["A"], [3.0, 0.0], atol=1e-14)
    np.testing.assert_allclose(ranks.weight_singular_values[1]["A"], [np.linalg.norm(a1)])
    assert [r["A"] for r in ranks.weight_ranks] == [1, 1]
    assert np.all(ranks.jacobian_ranks[0] == 1) and np.all(ranks.jacobian_ranks[1] == 1)
    assert ranks.collapsed == [True, False] and ranks.n_collapsed == 1
    x = problem.data.x_train[:, :1]
    z = a0 @ x + np.array([[0.1], [-0.2], [0.3]])
    expected = np.linalg.svd((1 - np.tanh(z) ** 2) * a0, compute_uv=False)
    np.testing.assert_allclose(ranks.jacobian_singular_values[0][0], expected, atol=1e-13)
    assert ranks.state_dims == (2, 3, 1)


def test_layer_ranks_of_a_resnet_step() -> None:
    problem = cdl.load_problem("ring", n_samples=10, dim=2, n_steps=2)
    w = problem.initial_guess(seed=0)
    ranks = cdl.diagnostics.layer_ranks(problem, w)
    theta = problem.unflatten(w)["theta"][1]
    x = problem.forward(w)[1][:, :1]
    jac = np.eye(2) + problem.step_size * (1 - np.tanh(theta["A"] @ x + theta["b"][:, None]) ** 2) * theta["A"]
    np.testing.assert_allclose(ranks.jacobian_singular_values[1][0], np.linalg.svd(jac, compute_uv=False))
    np.testing.assert_allclose(ranks.weight_singular_values[1]["A"], np.linalg.svd(theta["A"], compute_uv=False))
    with pytest.raises(ValueError, match="FeedForward"):
        cdl.diagnostics.classify_feedforward(problem)


def test_classify_dispatches_to_feedforward_nets() -> None:
    assert cdl.diagnostics.classify(_mlp((2, 1, 2, 1))).label == "bottleneck"
    assert cdl.diagnostics.classify(_mlp((2, 8, 1))).label == "augmented"
    problem = _mlp((2, 2, 1))
    assert cdl.diagnostics.classify(problem).label == "non-augmented"
    singular = np.r_[[1.0, 2.0, 2.0, 4.0], [0.0, 0.0], [1.0, 1.0, 0.0]]  # A_0 = [[1, 2], [2, 4]]
    label = cdl.diagnostics.classify(problem, singular)
    assert label.label == "degenerate" and "A_0" in label.reason
