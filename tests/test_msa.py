"""MSA / E-MSA: costates against autodiff, the PMP residual, monotone descent and the step control."""

from __future__ import annotations

from typing import ClassVar

import numpy as np
import pytest

import control_dl as cdl
from control_dl.backends import get_ops
from control_dl.engines import Casadi
from control_dl.solvers._msa_inner import InnerProblem, StageMap


def _inner(problem: cdl.TrainingProblem, w: np.ndarray, rho: float) -> InnerProblem:
    """The inner problem of MSA at w on the casadi engine (full batch)."""
    engine = Casadi(jit=False).bind(problem, problem.data.x_train, problem.targets)
    return InnerProblem(StageMap(problem, jit=False), engine, engine.sweep(w), rho)


def _torch_state_gradient(problem: cdl.TrainingProblem, w: np.ndarray, states: np.ndarray, k: int) -> np.ndarray:
    """dJ/dx_k by torch autograd: restart the forward pass from x_k and add every cost term after it."""
    ops = get_ops("torch")
    wt, y = ops.asarray(w), ops.asarray(problem.targets)
    readout = problem.layout.readout(wt, ops)
    x = ops.asarray(states[k]).requires_grad_(True)
    n = x.shape[1]
    total, state = 0.0, x
    for j in range(k, problem.n_steps + 1):
        if j > k:
            state = problem.step(state, problem.stage_thetas(wt, j - 1, ops), ops, j - 1)
        if j > 0 and problem.cost.has_running_cost:
            total = total + problem.step_size * problem.running_cost(state, y, readout, ops) / n
    total = total + problem.terminal_loss(state, y, readout, ops) / n
    total.backward()
    return x.grad.numpy()


@pytest.mark.parametrize("integrator", ["euler", "rk4"])
def test_costates_equal_minus_state_gradients(integrator: str) -> None:
    """The sweep MSA runs on (the engine's one costate pass): p_k = −dJ/dx_k by torch autograd."""
    problem = cdl.load_problem(
        "ring", n_samples=12, dim=3, n_steps=4, integrator=integrator, turnpike=0.3, tracking=0.2
    )
    w = problem.initial_guess(seed=1)
    sweep = _inner(problem, w, 1.0).sweep
    states = np.array(sweep.states)
    assert np.allclose(states, problem.forward(w), atol=1e-12)
    for k in range(problem.n_steps + 1):
        assert np.allclose(sweep.costates[k], -_torch_state_gradient(problem, w, states, k), rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize(
    "overrides",
    [
        {"l2": 1e-2, "h1": 1e-2, "l1": 1e-2},
        {"control": "time_invariant", "integrator": "rk4"},
        {"control": "spectral", "n_modes": 3, "h1": 1e-2},
        {"loss": "logistic", "turnpike": 0.1},
    ],
)
def test_hamiltonian_gradient_is_minus_objective_gradient(overrides: dict) -> None:
    """At the current θ the penalties vanish: ∂H̃/∂θ = −∇_θ J (so the PMP residual is ‖∇_θ J‖ per block)."""
    problem = cdl.load_problem("ring", n_samples=10, dim=3, n_steps=4, **overrides)
    w = problem.initial_guess(seed=2)
    n_theta = problem.layout.n_theta
    inner = _inner(problem, w, rho=3.0)
    ev = inner.evaluate(w[:n_theta], hessian=True)
    assert np.allclose(ev.grad, problem.gradient(w, backend="torch")[:n_theta], rtol=1e-8, atol=1e-11)
    # φ is block-separable (the Jacobi split removes the H1 coupling), so its Hessian is the blocks
    direction = np.random.default_rng(0).normal(size=n_theta)
    eps = 1e-6
    fd = (inner.evaluate(w[:n_theta] + eps * direction).grad - inner.evaluate(w[:n_theta] - eps * direction).grad) / (
        2 * eps
    )
    hv = np.concatenate([h @ inner.stages.block(direction, b) for b, h in enumerate(ev.hess)])
    assert np.allclose(hv, fd, rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize(
    ("name", "overrides", "options"),
    [
        ("sin", {"n_samples": 10, "dim": 1, "n_steps": 2, "l2": 0.05}, {}),
        ("sin", {"n_samples": 10, "dim": 1, "n_steps": 2, "l2": 0.05}, {"memory": 5}),
        # the exact readout descends past this ring's critical point (see the test below): L-BFGS-B readout
        ("ring", {"n_samples": 20, "dim": 3, "n_steps": 3, "l2": 0.1}, {"readout": "lbfgsb"}),
    ],
)
def test_pmp_residual_small_at_the_end(name: str, overrides: dict, options: dict) -> None:
    problem = cdl.load_problem(name, **overrides)
    solver = cdl.load_solver("emsa", max_iter=300, tol=1e-5, jit=False, **options)
    result = cdl.solve(problem, solver, progress=False)
    assert result.status == "converged", result.message
    assert result.history[-1]["pmp_residual"] <= 1e-4
    assert result.objective < result.history[0]["objective"]
    grad = problem.gradient(result.w)  # independent check: ∂H_k/∂θ_k = −∇_{θ_k} J
    per_layer = np.linalg.norm(grad[: problem.layout.n_theta].reshape(problem.n_steps, -1), axis=1)
    assert per_layer.max() <= 1e-4


def test_exact_readout_is_optimal_for_the_states_and_goes_below_the_inexact_one() -> None:
    """Variable projection: after every update ∇_{P,c} J = 0 (the readout is the least-squares fit
    of the final states). On this ring (MSE, unregularised readout, l2 = 0.1) the inexact L-BFGS-B
    readout stops at the critical point θ ≈ 0 that direct L-BFGS-B also finds; the exact readout
    keeps descending (θ small, the readout growing: J has no minimiser along that path)."""
    problem = cdl.load_problem("ring", n_samples=20, dim=3, n_steps=3, l2=0.1)
    exact = cdl.solve(problem, cdl.load_solver("emsa", max_iter=40, jit=False), progress=False)
    assert max(h["readout_grad_norm"] for h in exact.history[1:]) <= 1e-10
    inexact = cdl.solve(problem, cdl.load_solver("emsa", readout="lbfgsb", max_iter=300, tol=1e-5), progress=False)
    direct = cdl.solve(problem, cdl.load_solver("lbfgsb", tol=1e-12), progress=False)
    assert inexact.status == direct.status == "converged"
    assert inexact.objective == pytest.approx(direct.objective, rel=1e-6)
    assert exact.objective < 0.5 * inexact.objective


def test_emsa_decreases_the_objective_monotonically_on_ring() -> None:
    problem = cdl.load_problem("ring", n_samples=60)
    result = cdl.solve(problem, cdl.load_solver("emsa", max_iter=25, jit=False), progress=False)
    objective = np.array([h["objective"] for h in result.history])
    assert np.all(np.diff(objective) <= 1e-12 * objective[:-1])
    assert objective[-1] < 0.5 * objective[0]
    assert {"pmp_residual", "rho", "accepted", "accuracy", "loss"} <= set(result.history[-1])


def test_step_control_catches_increases_of_plain_msa() -> None:
    problem = cdl.load_problem("ring", n_samples=60)
    raw = cdl.solve(problem, cdl.MSA(rho=0.0, inner="newton", max_iter=15, adapt_rho=False, jit=False), progress=False)
    raw_objective = np.array([h["objective"] for h in raw.history])
    assert np.any(np.diff(raw_objective) > 0), "a raw MSA step should increase J on this problem"
    controlled = cdl.solve(problem, cdl.MSA(rho=0.0, inner="newton", max_iter=15, jit=False), progress=False)
    objective = np.array([h["objective"] for h in controlled.history])
    assert np.all(np.diff(objective) <= 0)
    caught = [h for h in controlled.history if h["accepted"] == 0 or h["step"] < 1]
    assert caught, "the step control should have shortened or rejected a step"


@pytest.mark.parametrize("inner", ["lbfgsb", "ipopt"])
def test_other_inner_solvers_descend_and_respect_bounds(inner: str) -> None:
    problem = cdl.load_problem("ring", n_samples=30, n_steps=5, theta_max=0.8)
    w0 = np.clip(problem.initial_guess(seed=0), -0.8, 0.8)
    result = cdl.solve(problem, cdl.MSA(rho=1.0, inner=inner, max_iter=6, jit=False), w0=w0, progress=False)
    assert result.objective < result.history[0]["objective"]
    assert np.abs(result.w[: problem.layout.n_theta]).max() <= 0.8 + 1e-8


def test_time_invariant_and_spectral_controls_descend() -> None:
    for overrides in ({"control": "time_invariant"}, {"control": "spectral", "n_modes": 3}):
        problem = cdl.load_problem("ring", n_samples=30, n_steps=5, **overrides)
        result = cdl.solve(problem, cdl.load_solver("emsa", max_iter=5, jit=False), progress=False)
        assert result.objective < result.history[0]["objective"]


def test_presets_and_option_validation() -> None:
    assert cdl.load_solver("msa").rho == 0.0
    emsa = cdl.load_solver("emsa")
    assert emsa.rho > 0 and emsa.name.startswith("emsa") and isinstance(emsa, cdl.MSA)
    for bad in (
        {"inner": "bfgs"},
        {"rho": -1.0},
        {"inner_iters": 0},
        {"rho_factor": 1.0},
        {"batch_size": 0},
        {"rho_max": 1e-3},
        {"readout": "newton"},
        {"memory": -1},
        {"memory": "many"},
        {"memory": 5, "inner": "lbfgsb"},
        {"memory": 5, "inner": "newton", "inner_iters": 3},
        {"memory": 5, "inner": "newton", "inner_iters": 1, "batch_size": 10},
    ):
        with pytest.raises(cdl.SpecError, match=next(iter(bad))):
            cdl.MSA(**bad)
    with pytest.raises(cdl.SpecError, match="inner"):
        cdl.solve(cdl.load_problem("ring", n_samples=10, lipschitz=0.5), cdl.MSA(inner="newton"), progress=False)


def test_mini_batches_run_and_record_the_full_objective() -> None:
    problem = cdl.load_problem("ring", n_samples=40, n_steps=4)
    result = cdl.solve(problem, cdl.MSA(rho=1.0, inner="newton", batch_size=16, max_iter=4, jit=False), progress=False)
    assert result.status == "max_iter" and len(result.history) == 5
    assert result.history[0]["objective"] == pytest.approx(problem.objective(problem.initial_guess(0)))


@pytest.mark.parametrize(
    ("name", "overrides"),
    [
        ("ring", {"field": "outside", "activation": "softplus"}),
        ("ring", {"field": "bottleneck", "width": 2, "integrator": "rk4"}),
        ("ring", {"loss": "logistic", "turnpike": 0.2, "tracking": 0.1, "h1": 1e-2, "l1": 1e-3}),
        ("ring", {"lift": "affine", "dim": 3}),
        ("ring", {"control": "piecewise_linear", "n_nodes": 3}),
        ("spiral", {"loss": "cross_entropy", "activation": "sigmoid"}),
    ],
)
def test_emsa_descends_on_every_model_variant(name: str, overrides: dict) -> None:
    problem = cdl.load_problem(name, n_samples=24, n_steps=4, **overrides)
    result = cdl.solve(problem, cdl.load_solver("emsa", max_iter=4, jit=False), progress=False)
    objective = np.array([h["objective"] for h in result.history])
    assert result.status == "max_iter" and np.all(np.isfinite(objective))
    assert np.all(np.diff(objective) <= 0) and objective[-1] < objective[0]


# ------------------------------------------------------------------------- feed-forward (MLP) models
def _mlp(**overrides) -> cdl.TrainingProblem:
    return cdl.load_problem("circle", model="mlp", widths=[2, 4, 3, 1], n_samples=40, **overrides)


def test_mlp_costates_equal_minus_state_gradients() -> None:
    """p_k ∈ R^{w_k} is −dJ/dx_k (torch autograd) at every layer, though the state size changes."""
    problem = _mlp(l1=1e-3)
    w = problem.initial_guess(seed=1)
    sweep = _inner(problem, w, 1.0).sweep
    padded = problem.forward(w)
    for k, width in enumerate(problem.state_dims):
        assert sweep.states[k].shape == sweep.costates[k].shape == (width, 40)
        assert np.allclose(sweep.states[k], padded[k, :width], atol=1e-12)
        grad = -_torch_state_gradient(problem, w, sweep.states, k)
        assert np.allclose(sweep.costates[k], grad, rtol=1e-9, atol=1e-13)
    assert all(np.array_equal(q, p) for q, p in zip(sweep.q, sweep.costates[:-1], strict=True))


@pytest.mark.parametrize("rho", [0.0, 2.0])
def test_mlp_hamiltonian_gradient_is_minus_objective_gradient(rho: float) -> None:
    """∂H̃_k/∂θ_k = −∇_{θ_k} J at the current θ (ρ = 0 and ρ > 0); the per-layer Hessians match
    finite differences of the gradient."""
    problem = _mlp(l1=1e-3)
    w = problem.initial_guess(seed=2)
    inner = _inner(problem, w, rho)
    ev = inner.evaluate(w, hessian=True)
    grad = problem.gradient(w, backend="torch")
    assert np.allclose(ev.grad, grad, rtol=1e-8, atol=1e-12)
    offsets = problem.layout.offsets
    norms = [np.linalg.norm(grad[offsets[k] : offsets[k + 1]]) for k in range(problem.n_steps)]
    assert np.allclose(inner.block_norms(ev.grad), norms, rtol=1e-8)
    assert [h.shape for h in ev.hess] == [(m, m) for m in problem.layout.sizes]
    direction, eps = np.random.default_rng(0).normal(size=w.size), 1e-6
    fd = (inner.evaluate(w + eps * direction).grad - inner.evaluate(w - eps * direction).grad) / (2 * eps)
    hv = np.concatenate([h @ inner.stages.block(direction, k) for k, h in enumerate(ev.hess)])
    assert np.allclose(hv, fd, rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("inner", ["newton", "lbfgsb", "ipopt"])
def test_emsa_decreases_the_objective_monotonically_on_an_mlp(inner: str) -> None:
    problem = _mlp(theta_max=1.5)
    w0 = np.clip(problem.initial_guess(seed=0), -1.5, 1.5)
    solver = cdl.load_solver("emsa", inner=inner, inner_iters=5, max_iter=12, jit=False)
    result = cdl.solve(problem, solver, w0=w0, progress=False)
    objective = np.array([h["objective"] for h in result.history])
    assert result.status == "max_iter" and np.all(np.diff(objective) <= 0)
    assert objective[-1] < 0.75 * objective[0]
    assert np.abs(result.w).max() <= 1.5 + 1e-8
    assert all(h["readout_grad_norm"] == 0.0 for h in result.history)  # λ2 = identity: no readout block


def test_emsa_reaches_a_small_pmp_residual_on_a_tiny_mlp() -> None:
    problem = cdl.load_problem("sin", model="mlp", widths=[1, 3, 1], n_samples=10, l2=0.2)
    result = cdl.solve(problem, cdl.load_solver("emsa", max_iter=600, tol=1e-5, jit=False), progress=False)
    assert result.status == "converged", result.message
    assert result.history[-1]["pmp_residual"] <= 1e-4
    assert result.objective < result.history[0]["objective"]
    assert np.abs(problem.gradient(result.w)).max() <= 1e-4  # independent check: ∇_θ J = −∂H/∂θ
    # the diagnostic's PMP residual is the number E-MSA's history records (one definition)
    report = cdl.diagnostics.pmp_residual(problem, result)
    assert report.residual == pytest.approx(result.history[-1]["pmp_residual"], rel=1e-6)


def test_step_control_caps_rho(small_ring):
    solver = cdl.MSA(rho=0.0, inner="newton", max_iter=15, rho_factor=10.0, rho_max=0.5, jit=False)
    result = cdl.solve(small_ring, solver, progress=False)
    rhos = [h["rho"] for h in result.history]
    assert max(rhos) == 0.5  # uncapped, this run climbs to 10
    objectives = [h["objective"] for h in result.history]
    assert all(b <= a + 1e-12 for a, b in zip(objectives, objectives[1:], strict=False))


class _CountingEngine(Casadi):
    """The casadi engine, counting the calls MSA makes (a user-supplied EngineSpec)."""

    calls: ClassVar[dict[str, int]] = {}

    def bind(self, problem, x, y, normaliser=None, regulariser=True):
        engine = super().bind(problem, x, y, normaliser, regulariser)
        calls = type(self).calls
        for name in ("sweep", "augmented_hamiltonian", "evaluate", "states"):
            method = getattr(engine, name)

            def counted(*args, _method=method, _name=name, **kwargs):
                calls[_name] = calls.get(_name, 0) + 1
                return _method(*args, **kwargs)

            setattr(engine, name, counted)
        return engine


def test_msa_evaluates_through_the_engine_it_is_given() -> None:
    """Sweeps, stage Hamiltonians and J come from the engine passed as ``engine`` (one sweep per
    accepted iterate); the message names the engine; a bad engine is a SpecError."""
    problem = cdl.load_problem("ring", n_samples=20, n_steps=4)
    _CountingEngine.calls.clear()
    result = cdl.solve(problem, cdl.MSA(rho=1.0, max_iter=5, engine=_CountingEngine(jit=False)), progress=False)
    calls = _CountingEngine.calls
    accepted = 1 + sum(h["accepted"] for h in result.history[1:])
    assert calls["sweep"] == accepted and calls["augmented_hamiltonian"] >= 5 and calls["states"] >= 5
    assert "casadi engine" in result.message
    reference = cdl.solve(problem, cdl.MSA(rho=1.0, max_iter=5, engine="casadi", jit=False), progress=False)
    assert np.array_equal(result.w, reference.w)
    for bad in ("numpy", 3):
        with pytest.raises(cdl.SpecError, match="engine"):
            cdl.MSA(engine=bad)


def test_emsa_on_the_torch_engine_equals_the_casadi_engine() -> None:
    """Same iterates on both engines: the histories of J agree to round-off and both converge to the
    same stationary point (PMP residual ≤ tol) within the solver tolerance."""
    pytest.importorskip("torch")
    problem = cdl.load_problem("sin", n_samples=10, dim=1, n_steps=2, l2=0.05)
    runs = {
        engine: cdl.solve(problem, cdl.load_solver("emsa", max_iter=300, tol=1e-7, engine=engine), progress=False)
        for engine in ("casadi", "torch")
    }
    casadi, torch = runs["casadi"], runs["torch"]
    assert casadi.engine["name"] == "casadi" and torch.engine["name"] == "torch"
    assert casadi.status == torch.status == "converged"
    steps = min(len(casadi.history), len(torch.history))
    assert steps >= 10
    j_casadi = np.array([h["objective"] for h in casadi.history[:steps]])
    j_torch = np.array([h["objective"] for h in torch.history[:steps]])
    assert np.allclose(j_casadi, j_torch, rtol=1e-8, atol=1e-12)
    assert np.allclose(casadi.w, torch.w, atol=1e-6)
    assert casadi.objective == pytest.approx(torch.objective, rel=1e-10)


@pytest.mark.parametrize("engine", ["casadi", "torch"])
def test_reference_values_from_the_sweep_equal_the_hamiltonian_evaluation(engine: str) -> None:
    """φ(c⁰) = −Σ_k p_{k+1}·x_{k+1} + R(c⁰) and ∇φ(c⁰) = ∇_θ J (what L-BFGS-B starts from without
    evaluating H̃) equal the engine's H̃ evaluation at c⁰, with running costs, H1 coupling and RK4;
    the summed value equals the sum of the per-block (Jacobi-split) values up to the constant
    (blocks − 1) R(c⁰)."""
    if engine == "torch":
        pytest.importorskip("torch")
    problem = cdl.load_problem(
        "ring", n_samples=10, dim=3, n_steps=4, integrator="rk4", l2=1e-2, h1=1e-2, turnpike=0.1, tracking=0.2
    )
    w = problem.initial_guess(seed=3)
    bound = (Casadi(jit=False) if engine == "casadi" else cdl.engines.Torch()).bind(
        problem, problem.data.x_train, problem.targets
    )
    inner = InnerProblem(StageMap(problem, jit=False), bound, bound.sweep(w), 2.0)
    n_theta = problem.layout.n_theta
    reference = inner.at_reference(bound.evaluate(w).gradient[:n_theta])
    total = inner.evaluate(w[:n_theta], blocks=False)
    per_block = inner.evaluate(w[:n_theta])
    assert reference.values.shape == total.values.shape == (1,)
    assert reference.values[0] == pytest.approx(total.values[0], rel=1e-12, abs=1e-14)
    assert np.allclose(reference.grad, total.grad, rtol=1e-10, atol=1e-13)
    r0 = float(inner.stages.reg_vg(w[:n_theta])[0])
    assert per_block.values.sum() == pytest.approx(total.values[0] + (problem.n_steps - 1) * r0, rel=1e-12)


def test_automatic_memory_couples_only_single_full_batch_newton_steps() -> None:
    """``memory="auto"`` (the emsa preset) uses 5 secant pairs where the run takes one Newton step on
    full batches, and is off otherwise (mini-batches, several Newton steps, L-BFGS-B blocks) instead
    of raising like an explicit memory; the message says which ran."""
    problem = cdl.load_problem("ring", n_samples=20, n_steps=4)
    assert cdl.load_solver("emsa").memory == "auto"
    runs = {
        "newton": ({}, "memory 5"),
        "batches": ({"batch_size": 10}, None),
        "five steps": ({"inner_iters": 5}, None),
        "lbfgsb": ({"inner": "lbfgsb"}, None),
    }
    for options, expected in runs.values():
        result = cdl.solve(problem, cdl.load_solver("emsa", max_iter=4, jit=False, **options), progress=False)
        assert (expected in result.message) if expected else ("memory" not in result.message)
        assert result.objective < result.history[0]["objective"]
    explicit = cdl.solve(problem, cdl.MSA(rho=1.0, memory=5, max_iter=4, jit=False), progress=False)
    automatic = cdl.solve(problem, cdl.MSA(rho=1.0, memory="auto", max_iter=4, jit=False), progress=False)
    assert np.array_equal(explicit.w, automatic.w)


def test_automatic_memory_removes_the_coupling_stall_on_the_sin_toy() -> None:
    """From ``initial_guess(2)`` the uncoupled Newton steps of the 20 layers stall (J ≈ 5e-2, residual
    4.5e-3 after 500 iterations, docs/benchmarks/msa.md; J > 5e-2 after 60); with the preset's memory the run stops
    ``converged`` at PMP residual ≤ 1e-4 (checked against the objective's gradient) below Adam's
    10 000-step objective 9.5e-4."""
    problem = cdl.load_problem("sin")
    w0 = problem.initial_guess(2)
    pytest.importorskip("torch")
    options = {"engine": "torch", "jit": False}  # no compiling: the cheapest set-up for this size
    coupled = cdl.solve(problem, cdl.load_solver("emsa", max_iter=300, **options), w0=w0, progress=False)
    assert coupled.status == "converged", coupled.message
    grad = problem.gradient(coupled.w)[: problem.layout.n_theta]
    assert np.linalg.norm(grad.reshape(problem.n_steps, -1), axis=1).max() <= 1e-4
    assert coupled.objective < 9.5e-4
    uncoupled = cdl.solve(problem, cdl.load_solver("emsa", max_iter=60, memory=0, **options), w0=w0, progress=False)
    assert uncoupled.status == "max_iter" and uncoupled.objective > 10 * coupled.objective


def test_interpolating_line_search_of_the_lbfgsb_inner_solver_descends_monotonically() -> None:
    """With the L-BFGS-B inner solver a failed trial α is followed by the safeguarded minimiser of the
    quadratic through J(0), the costate slope and J(α) (so α leaves the halving ladder 1, ½, ¼, inside
    [α/10, α/2]), and an accepted α < 1 sets ρ ← ρ/α; J still never increases."""
    problem = cdl.load_problem("ring", n_samples=40, n_steps=5)
    result = cdl.solve(problem, cdl.load_solver("emsa", inner="lbfgsb", max_iter=30, jit=False), progress=False)
    objective = np.array([h["objective"] for h in result.history])
    assert np.all(np.diff(objective) <= 0) and objective[-1] < 0.5 * objective[0]
    steps = [h["step"] for h in result.history[1:]]
    assert all(0.001 <= a <= 1.0 for a in steps)
    assert any(a not in (1.0, 0.5, 0.25) for a in steps), "no interpolated step taken"
    for before, after in zip(result.history, result.history[1:], strict=False):
        if after["accepted"] and after["step"] < 1.0:
            assert after["rho"] == pytest.approx(min(max(before["rho"] / after["step"], 1e-2), 1e8))
