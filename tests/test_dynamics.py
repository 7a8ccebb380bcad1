"""The dynamics interface: both implementations keep its contract; a user's dynamics runs everywhere."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest

import control_dl as cdl
from control_dl.backends import numpy_ops
from control_dl.problems.dynamics import Dynamics, Flow, LayerStack
from control_dl.problems.layout import block_size
from control_dl.problems.spec import describe

COST = cdl.Cost(loss="mse", l2=0.3, h1=0.2, l1=0.1, l1_eps=1e-3)


def _flow_problem(integrator: str = "rk4") -> cdl.TrainingProblem:
    return cdl.TrainingProblem(
        data=cdl.datasets.ring(8, seed=0),
        field=cdl.Bottleneck("tanh", width=2),
        dim=3,
        control=cdl.PiecewiseLinear(n_nodes=4, n_steps=6),
        horizon=1.5,
        integrator=integrator,
        cost=COST,
        lift="affine",
    )


def _stack_problem() -> cdl.TrainingProblem:
    cost = cdl.Cost(loss="mse", l2=0.3, l1=0.1, l1_eps=1e-3)
    network = cdl.FeedForward((1, 5, 3, 1), activation="tanh", step=0.25)
    return cdl.TrainingProblem(data=cdl.datasets.sin(8), model=network, cost=cost)


PROBLEMS = {
    "flow_rk4": lambda: _flow_problem("rk4"),
    "flow_euler": lambda: _flow_problem("euler"),
    "stack": _stack_problem,
}


@pytest.fixture(params=sorted(PROBLEMS))
def problem(request) -> cdl.TrainingProblem:
    return PROBLEMS[request.param]()


def test_problem_delegates_to_its_dynamics(problem) -> None:
    dyn = problem.dynamics
    assert isinstance(dyn, Flow if problem.model is None else LayerStack)
    assert (problem.n_steps, problem.step_size, problem.state_dims) == (dyn.n_steps, dyn.step_size, dyn.state_dims)
    assert problem.horizon == pytest.approx(dyn.n_steps * dyn.step_size)
    assert len(dyn.state_dims) == dyn.n_steps + 1
    assert problem.layout.has_readout == dyn.has_readout == (dyn.vector_field is not None)


def test_step_shapes_per_stage(problem) -> None:
    dyn, w = problem.dynamics, problem.initial_guess(seed=1)
    n_samples = 4
    for k in range(dyn.n_steps):
        thetas = dyn.stage_thetas(w, k, numpy_ops)
        assert len(thetas) == dyn.n_nodes
        assert all(t.shape == (block_size(dyn.stage_shapes(k)),) for t in thetas)
        x = np.random.default_rng(k).normal(size=(dyn.state_dims[k], n_samples))
        assert dyn.step(k, x, thetas, numpy_ops).shape == (dyn.state_dims[k + 1], n_samples)
    states = list(problem.trajectory(w, problem.data.x_train, numpy_ops))
    assert tuple(s.shape[0] for s in states) == dyn.state_dims


def test_layout_offsets_round_trip(problem) -> None:
    dyn, lay = problem.dynamics, problem.layout
    assert lay.offsets == dyn.offsets and lay.sizes == dyn.sizes and lay.n_theta == dyn.n_theta
    assert lay.n_coeffs == len(dyn.block_shapes) and lay.p == max(dyn.sizes)
    w = np.arange(problem.n_params, dtype=float)
    blocks = problem.unflatten(w)
    flat = [v.ravel(order="F") for block in blocks["theta"] for v in block.values()]
    flat += [v.ravel(order="F") for part in ("readout", "lift") for v in blocks[part].values()]
    np.testing.assert_array_equal(np.concatenate(flat), w)  # every entry of w named exactly once, in order
    if dyn.vector_field is not None:  # a flow: C_j at j·p, the layout every saved result uses
        assert lay.uniform and lay.offsets == tuple(range(0, lay.n_theta + 1, lay.p))
        assert lay.theta_shapes == dict(problem.field.param_shapes(problem.dim))
    else:
        assert not lay.uniform and lay.n_params == lay.n_theta
        with pytest.raises(ValueError, match="block_shapes"):
            _ = lay.theta_shapes


def test_theta_of_t_is_the_stage_theta(problem) -> None:
    dyn, w = problem.dynamics, problem.initial_guess(seed=2)
    h = dyn.step_size
    nodes = (0.0,) if dyn.n_nodes == 1 else problem.scheme.nodes
    for k in range(dyn.n_steps):
        for c, theta_k in zip(nodes, dyn.stage_thetas(w, k, numpy_ops), strict=True):
            row = problem.theta(w, np.array([(k + c) * h]))[0]
            np.testing.assert_allclose(row[: theta_k.size], theta_k, rtol=0, atol=1e-14)
            assert not np.any(row[theta_k.size :])  # zero padding only


def test_flow_theta_interpolates_its_nodes() -> None:
    problem = _flow_problem()
    w = problem.initial_guess(seed=3)
    coeffs = [problem.layout.coefficient(w, j) for j in range(4)]
    node_times = np.linspace(0.0, problem.horizon, 4)
    np.testing.assert_allclose(problem.theta(w, node_times), np.stack(coeffs), rtol=0, atol=1e-15)


def _smooth_abs(v: np.ndarray, eps: float) -> float:
    return float(np.sum(np.sqrt(v * v + eps * eps) - eps))


def test_flow_regulariser_is_the_closed_form() -> None:
    """Piecewise-linear θ: ∫‖θ‖² = Σ Δ(‖a‖² + a·b + ‖b‖²)/3, ∫‖θ'‖² = Σ ‖b − a‖²/Δ, L1 at the midpoints."""
    problem = _flow_problem("euler")
    w = problem.initial_guess(seed=4)
    c = [problem.layout.coefficient(w, j) for j in range(4)]
    delta = problem.horizon / 3
    l2 = sum(delta * (a @ a + a @ b + b @ b) / 3 for a, b in zip(c[:-1], c[1:], strict=True))
    h1 = sum((b - a) @ (b - a) / delta for a, b in zip(c[:-1], c[1:], strict=True))
    mids = problem.theta(w, (np.arange(problem.n_steps) + 0.5) * problem.step_size)
    l1 = problem.step_size * _smooth_abs(mids, COST.l1_eps)
    expected = COST.l2 * l2 + COST.h1 * h1 + COST.l1 * l1
    assert problem.regulariser(w, numpy_ops) == pytest.approx(expected, rel=1e-12)


def test_stack_regulariser_is_the_closed_form() -> None:
    problem = _stack_problem()
    w = problem.initial_guess(seed=5)
    theta, h, cost = w[: problem.layout.n_theta], problem.step_size, problem.cost
    expected = cost.l2 * h * theta @ theta + cost.l1 * h * _smooth_abs(theta, cost.l1_eps)
    assert problem.regulariser(w, numpy_ops) == pytest.approx(expected, rel=1e-12)


def test_capabilities() -> None:
    flow, stack = _flow_problem().dynamics, _stack_problem().dynamics
    assert flow.shared_step and not stack.shared_step
    assert flow.stage_weights.shape == (6, 3, 4) and stack.stage_weights is None
    assert not flow.separable and stack.separable
    assert _flow_problem().dynamics == Flow(cdl.Bottleneck("tanh", width=2), 3, cdl.PiecewiseLinear(4, 6), 1.5, "rk4")
    with pytest.raises(TypeError, match="vector field"):
        stack.rhs(np.zeros((1, 1)), np.zeros(10), numpy_ops)
    with pytest.raises(ValueError, match="stage index"):
        _stack_problem().step(np.zeros((1, 1)), [np.zeros(10)], numpy_ops)


# ------------------------------------------------------------------ a user's own dynamics
@dataclass(frozen=True)
class LinearLayers(Dynamics):
    """x_{k+1} = A_k x_k: a deep linear network of widths (1, 3, 2, 1), written only against the interface."""

    widths: tuple[int, ...] = (1, 3, 2, 1)

    n_nodes = 1
    separable = True

    @property
    def n_steps(self) -> int:
        return len(self.widths) - 1

    @property
    def step_size(self) -> float:
        return 1.0

    @property
    def state_dims(self) -> tuple[int, ...]:
        return self.widths

    @property
    def block_shapes(self) -> tuple[dict[str, tuple[int, ...]], ...]:
        return tuple({"A": (b, a)} for a, b in zip(self.widths[:-1], self.widths[1:], strict=True))

    def stage_shapes(self, k: int) -> dict[str, tuple[int, ...]]:
        return self.block_shapes[k]

    def stage_thetas(self, w: Any, k: int, ops: Any) -> list[Any]:
        return [self.block(w, k)]

    def step(self, k: int, x: Any, thetas: list[Any], ops: Any) -> Any:
        return ops.matmul(ops.reshape(thetas[0], self.block_shapes[k]["A"]), x)

    def regulariser(self, w: Any, cost: cdl.Cost, ops: Any) -> Any:
        theta = w[: self.n_theta]
        return cost.l2 * ops.sum(theta * theta)

    def theta(self, w: np.ndarray, t: np.ndarray) -> np.ndarray:
        return np.zeros((np.size(t), max(self.sizes)))

    def initial_theta(self, rng: np.random.Generator, scale: float) -> np.ndarray:
        return rng.normal(0.0, scale, self.n_theta)


def test_a_users_dynamics_runs_in_every_backend_and_solver() -> None:
    problem = cdl.TrainingProblem(data=cdl.datasets.sin(20), model=LinearLayers(), cost=cdl.Cost("mse", l2=1e-3))
    assert problem.n_params == 3 + 6 + 2 and problem.dynamics is problem.model
    w = problem.initial_guess(seed=0)
    a0, a1, a2 = w[:3].reshape(3, 1), w[3:9].reshape(2, 3, order="F"), w[9:].reshape(1, 2)
    expected = np.mean((a2 @ a1 @ a0 @ problem.data.x_train - problem.targets) ** 2) + 1e-3 * w @ w
    values = [problem.objective(w, backend) for backend in ("numpy", "casadi", "torch")]
    np.testing.assert_allclose(values, expected, rtol=1e-12)
    np.testing.assert_allclose(problem.gradient(w, "torch"), problem.gradient(w, "casadi"), rtol=1e-10, atol=1e-14)
    result = cdl.solve(problem, cdl.load_solver("lbfgsb", max_iter=50), progress=False)
    assert result.objective < values[0]
    with pytest.raises(cdl.SpecError, match="widths"):
        cdl.TrainingProblem(data=cdl.datasets.sin(20), model=LinearLayers((1, 3, 2)))
    with pytest.raises(cdl.SpecError, match="h1"):
        cdl.TrainingProblem(data=cdl.datasets.sin(20), model=LinearLayers(), cost=cdl.Cost("mse", h1=1e-3))


@dataclass(frozen=True)
class LinearLayersWithReadout(LinearLayers):
    has_readout = True


def test_a_readout_needs_one_state_width() -> None:
    with pytest.raises(cdl.SpecError, match="one state width"):
        cdl.TrainingProblem(data=cdl.datasets.sin(10), model=LinearLayersWithReadout())
    problem = cdl.TrainingProblem(data=cdl.datasets.sin(10), model=LinearLayersWithReadout((2, 2)))
    assert problem.layout.readout_shapes == {"P": (1, 2), "c": (1,)} and problem.n_params == 4 + 3
    w = problem.initial_guess(seed=0)
    np.testing.assert_allclose(problem.objective(w, "torch"), problem.objective(w), rtol=1e-12)


def test_a_users_dynamics_has_no_spec_and_its_result_still_saves(tmp_path, caplog) -> None:
    problem = cdl.TrainingProblem(data=cdl.datasets.sin(10), model=LinearLayers(), cost=cdl.Cost("mse"))
    assert describe(problem) is None  # nothing to rebuild it from: the result keeps w, not the problem
    result = cdl.solve(problem, cdl.load_solver("lbfgsb", max_iter=5), progress=False)
    result.save(tmp_path / "linear")
    with caplog.at_level(logging.WARNING, logger="control_dl"):
        loaded = cdl.Result.load(tmp_path / "linear")
    np.testing.assert_array_equal(loaded.w, result.w)
    assert loaded.problem is None and "pass problem= to Result.load" in caplog.text  # said at load time
    with_problem = cdl.Result.load(tmp_path / "linear", problem=problem)
    np.testing.assert_allclose(
        with_problem.predict(problem.data.x_test), problem.predict(result.w, problem.data.x_test)
    )


def test_theta_heatmap_draws_every_dynamics(problem) -> None:
    """θ(t) consumers need no model switch (the heatmap raised AttributeError for a layer stack)."""
    matplotlib = pytest.importorskip("matplotlib")
    matplotlib.use("Agg")
    w = problem.initial_guess(seed=6)
    ax = cdl.plotting.theta_heatmap(problem, SimpleNamespace(w=w))
    np.testing.assert_array_equal(
        ax.collections[0].get_array().reshape(problem.layout.p, -1)[:, 0],
        problem.theta(w, [0.5 * problem.step_size])[0],
    )
    matplotlib.pyplot.close(ax.figure)
