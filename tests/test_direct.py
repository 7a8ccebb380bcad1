"""Direct methods: IPOPT trains and respects constraints; transcriptions agree, Gauss-Newton = exact,
L-BFGS-B over JIT code; failures are statuses."""

from __future__ import annotations

import dataclasses

import casadi as ca
import numpy as np
import pytest

import control_dl as cdl
from control_dl.engines import casadi_model
from control_dl.solvers import _transcriptions as transcriptions
from control_dl.solvers.checkpoint import checkpoint_iteration, load_checkpoint


@pytest.fixture(autouse=True)
def _jit_cache(tmp_path_factory, monkeypatch):
    """JIT libraries go to a per-session temporary cache, never to the user's cache or the cwd."""
    monkeypatch.setenv("CONTROL_DL_CACHE", str(tmp_path_factory.getbasetemp() / "cache"))


def test_ring_in_3d_is_separated():
    problem = cdl.load_problem("ring", dim=3)
    result = cdl.solve(problem, cdl.load_solver("ipopt-lbfgs", max_iter=150), progress=False)
    assert result.accuracy >= 0.99
    assert result.status in ("converged", "max_iter")
    assert result.objective == pytest.approx(problem.objective(result.w))
    assert result.history[0]["objective"] == pytest.approx(problem.objective(problem.initial_guess(0)))
    assert {"iter", "time", "objective", "loss", "accuracy"} <= set(result.history[-1])


def test_exact_hessian_converges_on_a_tiny_regression(small_sin):
    result = cdl.solve(small_sin, cdl.Direct(hessian="exact", max_iter=500), progress=False)
    assert result.status == "converged"
    # first-order optimality checked independently of IPOPT, with the torch gradient
    assert np.linalg.norm(small_sin.gradient(result.w, "torch")) < 1e-6


def test_max_iter_is_reported_not_hidden(small_ring):
    result = cdl.solve(small_ring, cdl.Direct(hessian="lbfgs", max_iter=2), progress=False)
    assert result.status == "max_iter"
    assert "Maximum_Iterations_Exceeded" in result.message


def test_user_ipopt_option_is_the_one_used(small_ring):
    solver = cdl.Direct(hessian="lbfgs", max_iter=50, ipopt_options={"max_iter": 3})
    result = cdl.solve(small_ring, solver, progress=False)
    assert result.iterations == 3 and result.status == "max_iter"


def test_bad_ipopt_option_is_a_spec_error_naming_it():
    with pytest.raises(cdl.SpecError, match="ipopt_options.*no_such_option"):
        cdl.Direct(ipopt_options={"no_such_option": 1})


@pytest.mark.parametrize("solver", [cdl.Direct(hessian="exact", max_iter=300), cdl.Direct(nlp="lbfgsb", max_iter=300)])
def test_theta_bounds_hold(solver):
    problem = cdl.load_problem("ring", n_samples=40, dim=3, n_steps=5, theta_max=0.3)
    result = cdl.solve(problem, solver, progress=False)
    theta = result.w[: problem.layout.n_theta]
    assert np.max(np.abs(theta)) <= 0.3 + 1e-8
    assert np.max(np.abs(theta)) > 0.299  # active: the unconstrained fit reaches |θ| ≈ 3 here


def test_lipschitz_constraint_certifies_each_step():
    problem = cdl.load_problem("ring", n_samples=40, dim=3, n_steps=5, lipschitz=0.5, l2=0.0)
    result = cdl.solve(problem, cdl.Direct(hessian="lbfgs", max_iter=600), progress=False)
    assert result.accuracy > 0.9
    h = problem.step_size
    for theta in problem.unflatten(result.w)["theta"]:
        assert h * np.linalg.norm(theta["A"], 2) <= 0.5 + 1e-7


def test_warm_start_from_a_result(small_ring):
    first = cdl.solve(small_ring, cdl.Direct(hessian="lbfgs", max_iter=20), progress=False)
    second = cdl.solve(small_ring, cdl.Direct(hessian="lbfgs", max_iter=5), w0=first, progress=False)
    assert second.history[0]["objective"] == pytest.approx(first.objective)


def test_solve_rejects_wrong_types(small_ring):
    with pytest.raises(cdl.SpecError, match="solver"):
        cdl.solve(small_ring, "ipopt-lbfgs")
    with pytest.raises(ValueError, match="n_params"):
        cdl.solve(small_ring, cdl.Direct(), w0=np.zeros(2))


@pytest.fixture(scope="module")
def tiny() -> cdl.TrainingProblem:
    """A small well-posed fit: sin, 6 samples, d = 2, one θ (time invariant), 4 RK4 steps, l2 > 0."""
    return cdl.load_problem(
        "sin", n_samples=6, dim=2, n_steps=4, control="time_invariant", horizon=1.0, integrator="rk4", l2=3e-3
    )


@pytest.fixture(scope="module")
def reference(tiny) -> cdl.Result:
    return cdl.solve(tiny, cdl.Direct(tol=1e-10), seed=1, progress=False)


def test_reference_converges(reference):
    assert reference.status == "converged"


@pytest.mark.parametrize(
    "solver",
    [
        cdl.Direct(transcription="multiple_shooting", tol=1e-10),
        cdl.Direct(transcription="collocation", collocation_degree=3, tol=1e-10),
        cdl.Direct(hessian="gauss-newton", tol=1e-10),
        cdl.Direct(transcription="multiple_shooting", hessian="gauss-newton", tol=1e-10),
    ],
    ids=lambda s: s.name,
)
def test_transcriptions_and_hessians_reach_the_same_optimum(tiny, reference, solver):
    result = cdl.solve(tiny, solver, seed=1, progress=False)
    assert result.status == "converged"
    # Legendre degree-3 collocation (order 6) and RK4 agree to far below 1e-6 at h = 1/4 here
    assert result.objective == pytest.approx(reference.objective, rel=1e-6)
    np.testing.assert_allclose(result.w, reference.w, rtol=1e-5, atol=1e-5)


def test_lbfgsb_reaches_the_ipopt_optimum(tiny, reference):
    result = cdl.solve(tiny, cdl.Direct(nlp="lbfgsb", tol=1e-14, max_iter=5000), seed=1, progress=False)
    assert result.status == "converged", result.message
    assert result.objective == pytest.approx(reference.objective, rel=1e-9)
    assert result.history[0]["iter"] == 0 and "grad_norm" in result.history[-1]


def test_lbfgsb_compiled_gradient_matches_torch(small_ring, tmp_path, monkeypatch):
    from control_dl.engines._casadi_model import objective_loss_gradient
    from control_dl.engines._jit import compile_function

    monkeypatch.setenv("CONTROL_DL_CACHE", str(tmp_path))
    f = objective_loss_gradient(casadi_model(small_ring), small_ring.data.x_train.shape[1])
    compiled, info = compile_function(f)
    assert info["compiled"] and not info["cache_hit"]
    assert compile_function(f)[1]["cache_hit"]  # the second run compiles nothing
    assert list((tmp_path / "jit").glob("*.so"))
    w = small_ring.initial_guess(3)
    j, loss, g, _ = compiled(w, small_ring.data.x_train, small_ring.targets)
    assert float(j) == pytest.approx(small_ring.objective(w), rel=1e-12)
    np.testing.assert_allclose(g.full().ravel(), small_ring.gradient(w, backend="torch"), rtol=1e-9, atol=1e-12)


def test_jit_falls_back_without_compiler(small_ring, monkeypatch, tmp_path):
    monkeypatch.setenv("CONTROL_DL_CACHE", str(tmp_path))
    monkeypatch.setenv("PATH", "")
    monkeypatch.delenv("CC", raising=False)
    with pytest.warns(RuntimeWarning, match="no C compiler"):
        result = cdl.solve(small_ring, cdl.Direct(nlp="lbfgsb", max_iter=5), progress=False)
    assert result.status == "max_iter" and "not compiled" in result.message


def test_lbfgsb_target_loss_and_warm_start(small_ring):
    solver = cdl.Direct(nlp="lbfgsb", max_iter=2000, target_loss=0.05)
    first = cdl.solve(small_ring, solver, progress=False)
    assert first.status == "converged" and first.loss <= 0.05 and "target" in first.message
    again = cdl.solve(small_ring, solver, w0=first, progress=False)  # warm start from a Result
    assert again.iterations == 0 and again.loss == pytest.approx(first.loss)


@pytest.mark.parametrize("control", ["piecewise_constant", "piecewise_linear", "time_invariant", "spectral"])
@pytest.mark.parametrize("integrator", ["euler", "rk4"])
def test_multiple_shooting_is_consistent_with_simulation(control, integrator):
    """At z0 (states = forward pass of w) the continuity constraints vanish and J equals the simulated J."""
    lift = "affine" if control == "spectral" else "pad"  # a trainable λ1 too
    problem = cdl.load_problem(
        "ring", n_samples=6, dim=3, n_steps=3, control=control, integrator=integrator, lift=lift, turnpike=0.1
    )
    w = problem.initial_guess(0)
    x, y = problem.data.x_train, problem.targets
    tr = transcriptions.multiple_shooting(casadi_model(problem), x, y, w)
    f = ca.Function("f", [tr.z], [tr.objective, tr.g])
    j, g = f(tr.z0)
    assert float(j) == pytest.approx(problem.objective(w), rel=1e-12)
    assert np.max(np.abs(np.asarray(g))) < 1e-12


def test_collocation_states_converge_to_the_flow():
    """With w fixed, the collocation states at T approach a fine RK4 solution at order 2K (Legendre)."""
    fine = cdl.load_problem("ring", n_samples=4, dim=3, n_steps=256, control="time_invariant", integrator="rk4")
    w = fine.initial_guess(0, scale=3.0)
    target = fine.forward(w)[-1]
    errors = []
    for n_steps in (2, 4):
        problem = cdl.load_problem("ring", n_samples=4, dim=3, n_steps=n_steps, control="time_invariant")
        tr = transcriptions.collocation(casadi_model(problem), problem.data.x_train, problem.targets, w, 2, "legendre")
        lbz, ubz = tr.lbz.copy(), tr.ubz.copy()
        lbz[: tr.n_w] = ubz[: tr.n_w] = w
        solver = ca.nlpsol("c", "ipopt", {"x": tr.z, "f": 0, "g": tr.g}, {"ipopt.print_level": 0, "print_time": 0})
        z = np.asarray(solver(x0=tr.z0, lbx=lbz, ubx=ubz, lbg=tr.lbg, ubg=tr.ubg)["x"]).ravel()
        errors.append(np.abs(z[-12:].reshape(3, 4, order="F") - target).max())
    assert errors[1] < 1e-4
    assert np.log2(errors[0] / errors[1]) > 3.5  # degree-2 Gauss-Legendre has order 4


def test_feed_forward_multiple_shooting_and_lbfgsb():
    """An MLP (state width changes per layer): multiple shooting is consistent, L-BFGS-B trains it,
    collocation (which needs a flow) is refused naming the field."""
    problem = cdl.load_problem("circle", model="mlp", widths=[2, 5, 3, 1], n_samples=10)
    w = problem.initial_guess(0)
    tr = transcriptions.multiple_shooting(casadi_model(problem), problem.data.x_train, problem.targets, w)
    j, g = ca.Function("f", [tr.z], [tr.objective, tr.g])(tr.z0)
    assert float(j) == pytest.approx(problem.objective(w), rel=1e-12) and np.max(np.abs(np.asarray(g))) < 1e-12
    result = cdl.solve(problem, cdl.Direct(nlp="lbfgsb", max_iter=50), progress=False)
    assert result.objective < problem.objective(w)
    with pytest.raises(cdl.SpecError, match="transcription"):
        cdl.solve(problem, cdl.Direct(transcription="collocation"), progress=False)


@pytest.mark.parametrize("control", ["piecewise_constant", "piecewise_linear", "spectral"])
@pytest.mark.parametrize("scheme", ["legendre", "radau"])
def test_collocation_builds_for_every_control(control, scheme):
    problem = cdl.load_problem("ring", n_samples=4, dim=3, n_steps=2, control=control)
    solver = cdl.Direct(transcription="collocation", collocation_scheme=scheme, collocation_degree=2, max_iter=3)
    result = cdl.solve(problem, solver, progress=False)
    assert result.status in ("max_iter", "converged")
    # three IPOPT steps on the collocation NLP lower J of the re-simulated network (evaluated here)
    assert problem.objective(result.w) < problem.objective(problem.initial_guess(0))


@pytest.mark.parametrize("transcription", ["single_shooting", "multiple_shooting"])
def test_constraints_hold_at_the_solution(transcription):
    problem = cdl.load_problem(
        "sin",
        n_samples=6,
        dim=2,
        n_steps=4,
        control="time_invariant",
        horizon=1.0,
        integrator="rk4",
        l2=3e-3,
        theta_max=0.2,
        lipschitz=0.05,
    )
    result = cdl.solve(problem, cdl.Direct(transcription=transcription, tol=1e-8), seed=1, progress=False)
    assert result.status == "converged"
    assert np.max(np.abs(result.w[: problem.layout.n_theta])) <= 0.2 + 1e-8
    # the RK4 step's increment bound q(h·Lip(σ)·‖A_k‖_F) ≤ c < 1 certifies invertibility
    bound = cdl.diagnostics.invertibility(problem, result, norm="frobenius").certificate
    assert 0.049 < bound <= 0.05 + 1e-6  # the constraint is active: without it the fit uses a larger A
    free = cdl.solve(dataclasses.replace(problem, constraints=cdl.Constraints()), cdl.Direct(), seed=1, progress=False)
    assert free.objective < result.objective


def test_lbfgsb_respects_theta_max():
    problem = cdl.load_problem("ring", n_samples=40, dim=3, n_steps=5, theta_max=0.2)
    result = cdl.solve(problem, cdl.Direct(nlp="lbfgsb", max_iter=100), progress=False)
    assert np.max(np.abs(result.w[: problem.layout.n_theta])) <= 0.2


def test_max_iter_is_a_status(small_ring):
    result = cdl.solve(small_ring, cdl.Direct(max_iter=1), progress=False)
    assert result.status == "max_iter" and result.iterations == 1
    result = cdl.solve(small_ring, cdl.Direct(nlp="lbfgsb", max_iter=1), progress=False)
    assert result.status == "max_iter"


@pytest.mark.filterwarnings("error::RuntimeWarning")
def test_evaluation_failure_is_a_status():
    """States overflow to inf at w0: IPOPT stops with Invalid_Number_Detected -> "failed", no exception.

    The Result reports the overflow (J = inf) without numpy's overflow warnings from evaluating it.
    (θ = 0 satisfies both |θ| ≤ M and h·Lip ≤ c, so these constraints can never be infeasible.)
    """
    problem = cdl.load_problem("ring", n_samples=8, dim=3, n_steps=30, activation="identity", l2=0.0)
    w0 = np.full(problem.n_params, 1e150)
    result = cdl.solve(problem, cdl.Direct(max_iter=20), w0=w0, progress=False)
    assert result.status in ("failed", "diverged") and result.status != "converged"
    result = cdl.solve(problem, cdl.Direct(nlp="lbfgsb", max_iter=20), w0=w0, progress=False)
    assert result.status in ("failed", "diverged") and not np.isfinite(result.objective)
    for transcription in ("multiple-shooting", "collocation"):  # their state guesses: the forward pass at w0
        result = cdl.solve(problem, cdl.load_solver(transcription, max_iter=3), w0=w0, progress=False)
        assert result.status in ("failed", "diverged")


def test_user_ipopt_option_overrides_the_default(small_ring):
    solver = cdl.Direct(max_iter=500, ipopt_options={"max_iter": 2})
    assert solver.solver_options()["max_iter"] == 2
    result = cdl.solve(small_ring, solver, progress=False)
    assert result.status == "max_iter" and result.iterations == 2


def test_bad_options_name_the_field():
    with pytest.raises(cdl.SpecError, match="transcription"):
        cdl.Direct(transcription="shooting")
    with pytest.raises(cdl.SpecError, match="hessian"):
        cdl.Direct(nlp="lbfgsb", hessian="exact")
    with pytest.raises(cdl.SpecError, match="collocation_degree"):
        cdl.Direct(transcription="collocation", collocation_degree=5)
    with pytest.raises(cdl.SpecError, match="transcription"):
        cdl.Direct(nlp="lbfgsb", transcription="multiple_shooting")
    with pytest.raises(cdl.SpecError, match="parallelization"):
        cdl.Direct(nlp="lbfgsb", parallelization="thread")


def test_presets_load():
    for name in ("lbfgsb", "ipopt-gn", "multiple-shooting", "collocation"):
        assert isinstance(cdl.load_solver(name), cdl.Direct)
    assert cdl.load_solver("lbfgsb").name == "lbfgsb-ss-lbfgs"


def test_subsample_and_thread_map(small_ring):
    solver = cdl.Direct(nlp="lbfgsb", subsample=10, parallelization="thread", jit=False, max_iter=30)
    x, _ = solver.batch(small_ring)
    assert x.shape[1] == 10
    result = cdl.solve(small_ring, solver, progress=False)
    serial = cdl.solve(small_ring, dataclasses.replace(solver, parallelization="serial"), progress=False)
    assert result.status in ("max_iter", "converged")
    np.testing.assert_allclose(result.w, serial.w, rtol=0, atol=1e-12)  # threads change nothing


@pytest.mark.parametrize("nlp", ["lbfgsb", "trust-ncg", "ipopt"])
def test_with_subsample_the_history_and_target_loss_use_all_training_samples(nlp):
    """A user's report: with subsample, the scipy back-ends logged the subsample's loss (0.0043 where
    the full data gave 0.034), and target_loss=0.01 stopped "converged" at Result.loss 0.031."""
    problem = cdl.load_problem("ring", dim=3, n_steps=5, n_samples=100)
    options = {"hessian": "lbfgs"} if nlp == "ipopt" else {}
    solver = cdl.Direct(nlp=nlp, max_iter=30, subsample=20, record_every=1, **options)
    result = cdl.solve(problem, solver, progress=False)
    for iteration, _, w in result.snapshots:
        entry = next(h for h in result.history if h["iter"] == iteration)
        objective, loss = problem.objective_and_loss(w)
        assert entry["objective"] == pytest.approx(objective, rel=1e-9) and entry["loss"] == pytest.approx(
            loss, rel=1e-9
        )
    target = cdl.solve(problem, dataclasses.replace(solver, max_iter=300, target_loss=0.01), progress=False)
    assert target.status != "converged" or target.loss <= 0.01, (target.status, target.message, target.loss)


def test_lbfgsb_writes_checkpoints(small_ring, tmp_path):
    path = tmp_path / "w.npz"
    solver = cdl.Direct(nlp="lbfgsb", max_iter=10, checkpoint=str(path), checkpoint_every=5)
    result = cdl.solve(small_ring, solver, progress=False)
    assert checkpoint_iteration(path) == 10 == result.iterations
    np.testing.assert_array_equal(load_checkpoint(path, small_ring), result.w)


def test_ipopt_target_loss_stops_early_as_converged(small_ring):
    result = cdl.solve(small_ring, cdl.Direct(hessian="lbfgs", max_iter=500, target_loss=0.1), progress=False)
    assert result.status == "converged" and "target" in result.message
    assert result.history[-1]["loss"] <= 0.1 < result.history[0]["loss"]


def test_compiled_objective_with_jacobian_gives_ipopt_the_same_iterates(small_ring):
    """IPOPT L-BFGS over the compiled J (+ compiled Jacobian) follows the uncompiled MX graph."""
    fast = cdl.solve(small_ring, cdl.Direct(hessian="lbfgs", max_iter=15), progress=False)
    plain = cdl.solve(small_ring, cdl.Direct(hessian="lbfgs", max_iter=15, jit=False), progress=False)
    np.testing.assert_allclose(fast.w, plain.w, rtol=1e-9, atol=1e-12)
    assert "grad_norm" in fast.history[-1]


def test_damaged_cache_entry_falls_back_with_a_warning(small_ring, tmp_path, monkeypatch):
    from control_dl.engines._casadi_model import objective_function
    from control_dl.engines._jit import compile_function

    monkeypatch.setenv("CONTROL_DL_CACHE", str(tmp_path))
    f = objective_function(casadi_model(small_ring), small_ring.data.x_train.shape[1])
    library = compile_function(f)[1]["path"]
    with open(library, "wb") as damaged:
        damaged.write(b"not a library")
    with pytest.warns(RuntimeWarning, match="cannot load"):
        g, info = compile_function(f)
    assert g is f and not info["compiled"]


def test_ipopt_thread_map_with_jit_compiles_cleanly(small_ring, recwarn):
    result = cdl.solve(small_ring, cdl.Direct(hessian="lbfgs", parallelization="thread", max_iter=5), progress=False)
    assert result.status == "max_iter"
    assert not [w for w in recwarn if "JIT" in str(w.message)]  # no failed compilation of a threaded map


@pytest.fixture(scope="module")
def tiny_sin() -> cdl.TrainingProblem:
    return cdl.load_problem("sin", n_samples=10, dim=2, n_steps=4)


def test_fatrop_reaches_ipopts_multiple_shooting_optimum(tiny_sin):
    fatrop = cdl.solve(tiny_sin, cdl.Direct(nlp="fatrop", transcription="multiple_shooting"), progress=False)
    ipopt = cdl.solve(tiny_sin, cdl.Direct(transcription="multiple_shooting"), progress=False)
    assert fatrop.status == "converged" and ipopt.status == "converged"
    assert fatrop.objective == pytest.approx(ipopt.objective, rel=1e-6)
    # first-order optimality checked independently of both solvers, with the torch gradient
    assert np.linalg.norm(tiny_sin.gradient(fatrop.w, "torch")) < 1e-6
    assert fatrop.history[0]["objective"] == pytest.approx(tiny_sin.objective(tiny_sin.initial_guess(0)))
    assert fatrop.engine["name"] == ipopt.engine["name"] == "casadi"  # every direct back-end records its engine


def test_fatrop_respects_bounds_and_lipschitz_constraints():
    problem = cdl.load_problem("ring", n_samples=12, dim=3, n_steps=3, lipschitz=0.5, theta_max=0.3)
    result = cdl.solve(problem, cdl.Direct(nlp="fatrop", transcription="multiple_shooting"), progress=False)
    assert result.status in ("converged", "max_iter")
    assert np.max(np.abs(result.w[: problem.layout.n_theta])) <= 0.3 + 1e-8
    for theta in problem.unflatten(result.w)["theta"]:
        assert problem.step_size * np.linalg.norm(theta["A"], 2) <= 0.5 + 1e-7


@pytest.mark.parametrize("max_iter", [0, 2, 3, 5])
def test_fatrop_max_iter_is_a_status_after_exactly_max_iter_iterations(tiny_sin, max_iter):
    """fatrop ran max_iter + 1 iterations (a user's report: 2/3/4/6/11 for 1/2/3/5/10), the extra one moving w."""
    solver = cdl.Direct(nlp="fatrop", transcription="multiple_shooting", max_iter=max_iter)
    result = cdl.solve(tiny_sin, solver, progress=False)
    assert result.status == "max_iter"
    assert result.iterations == max_iter and [h["iter"] for h in result.history] == list(range(max_iter + 1))
    if max_iter:
        assert "iteration limit reached (return flag 1)" in result.message


def test_fatrop_needs_multiple_shooting_exact_hessian_and_stagewise_controls(tiny_sin):
    with pytest.raises(cdl.SpecError, match="transcription"):
        cdl.Direct(nlp="fatrop")
    with pytest.raises(cdl.SpecError, match="hessian"):
        cdl.Direct(nlp="fatrop", transcription="multiple_shooting", hessian="lbfgs")
    shared = cdl.load_problem("sin", n_samples=10, dim=2, n_steps=4, control="piecewise_linear")
    with pytest.raises(cdl.SpecError, match="fatrop"):
        cdl.solve(shared, cdl.Direct(nlp="fatrop", transcription="multiple_shooting"), progress=False)


def test_sqpmethod_gauss_newton_reaches_ipopts_single_shooting_optimum(tiny_sin):
    sqp = cdl.solve(tiny_sin, cdl.Direct(nlp="sqpmethod"), progress=False)
    ipopt = cdl.solve(tiny_sin, cdl.Direct(hessian="exact"), progress=False)
    assert sqp.status == "converged" and ipopt.status == "converged"
    assert sqp.objective == pytest.approx(ipopt.objective, rel=1e-6)
    assert np.linalg.norm(tiny_sin.gradient(sqp.w, "torch")) < 1e-6
    assert sqp.iterations < ipopt.iterations  # Gauss-Newton SQP: 21 iterations against 209
    assert len(sqp.history) == sqp.iterations + 1  # the iteration callback logs every iterate


def test_sqpmethod_max_iter_and_its_options(tiny_sin):
    result = cdl.solve(tiny_sin, cdl.Direct(nlp="sqpmethod", max_iter=3), progress=False)
    # J: 2.158 -> 1.720 -> 46.30 -> 2.643: three SQP steps end above the start, so the run is "failed"
    # and returns its best iterate (iteration 1), never a "max_iter" above its start
    assert result.status == "failed" and "Maximum_Iterations_Exceeded" in result.message
    assert "above its start" in result.message
    assert result.objective == pytest.approx(min(h["objective"] for h in result.history), rel=1e-12)
    assert result.objective < result.history[0]["objective"] < result.history[-1]["objective"]
    with pytest.raises(cdl.SpecError, match="hessian"):
        cdl.Direct(nlp="sqpmethod", hessian="exact")
    with pytest.raises(cdl.SpecError, match="transcription"):
        cdl.Direct(nlp="sqpmethod", transcription="multiple_shooting")


def test_gauss_newton_product_matches_torch_jacobians():
    from control_dl.backends import torch_ops
    from control_dl.engines._casadi_model import gauss_newton_hvp

    torch = pytest.importorskip("torch")
    problem = cdl.load_problem("ring", n_samples=12, dim=3, n_steps=3, loss="logistic", h1=1e-2, turnpike=0.5)
    w = problem.initial_guess(1)
    v = np.random.default_rng(0).normal(size=w.size)
    product = gauss_newton_hvp(casadi_model(problem), 12)(w, v, problem.data.x_train, problem.targets)
    ops = torch_ops()
    x, y = ops.asarray(problem.data.x_train), ops.asarray(problem.targets)

    def predictions(wt):
        final = list(problem.trajectory(wt, x, ops))[-1]
        return problem.readout(final, problem.layout.readout(wt, ops), ops).reshape(-1)

    def rest(wt):  # J minus the terminal loss: regulariser and running terms, exact Hessian
        return problem.objective_terms(wt, x, y, ops)[0] - problem.objective_terms(wt, x, y, ops)[1]

    wt = torch.tensor(w)
    jac = torch.autograd.functional.jacobian(predictions, wt).numpy()
    logits = predictions(wt).numpy()
    loss_curvature = np.exp(-np.logaddexp(0, -logits) - np.logaddexp(0, logits)) / 12  # σ(1−σ)/S
    expected = jac.T @ (loss_curvature * (jac @ v)) + torch.autograd.functional.hessian(rest, wt).numpy() @ v
    np.testing.assert_allclose(np.asarray(product).ravel(), expected, rtol=1e-9, atol=1e-12)


def test_trust_ncg_gauss_newton_fits_the_ring():
    problem = cdl.load_problem("ring", n_samples=100, dim=3, l2=0.0)
    result = cdl.solve(problem, cdl.load_solver("trust-ncg", target_loss=1e-2, max_iter=300), progress=False)
    assert result.status == "converged" and result.loss <= 1e-2 and result.accuracy == 1.0
    objectives = [h["objective"] for h in result.history]
    assert all(b <= a for a, b in zip(objectives, objectives[1:], strict=False))  # a trust region never climbs
    with pytest.raises(cdl.SpecError, match="theta_max"):
        cdl.solve(cdl.load_problem("ring", n_samples=20, theta_max=1.0), cdl.Direct(nlp="trust-ncg"), progress=False)
    with pytest.raises(cdl.SpecError, match="hessian"):
        cdl.Direct(nlp="trust-ncg", hessian="exact")


def test_collocation_reports_the_nlp_objective_beside_the_resimulated_one(tiny):
    """IPOPT minimises the collocation objective; history 'objective', target_loss and
    Result.objective are J of the problem's integrator: both are reported and told apart."""
    coarse = cdl.load_problem("ring", n_samples=20, dim=3, n_steps=3, control="time_invariant")
    result = cdl.solve(coarse, cdl.Direct(transcription="collocation", max_iter=60), progress=False)
    last = result.history[-1]
    assert "collocation NLP" in result.message and "euler re-simulation" in result.message
    assert result.objective == pytest.approx(coarse.objective(result.w), rel=1e-10)
    # Euler with h = T/3 and order-6 collocation differ: two quantities, not one
    assert abs(last["nlp_objective"] - last["objective"]) > 1e-3 * last["objective"]
    result = cdl.solve(tiny, cdl.Direct(transcription="collocation", tol=1e-10), seed=1, progress=False)
    assert result.status == "converged"  # at a feasible point RK4 at h = 1/4 and the collocation states agree
    assert result.history[-1]["nlp_objective"] == pytest.approx(result.history[-1]["objective"], rel=1e-6)


def test_ipopt_lbfgs_preset_stays_feasible_under_the_lipschitz_constraint():
    """Issue 15: IPOPT's default L-BFGS start matrix (scalar1, σ = sᵀy/sᵀs) takes quasi-Newton steps
    far outside the Lipschitz-feasible set (violation 10 here) and ends at J = 1.64 from 0.45; the
    library default scalar2 (σ = yᵀy/sᵀy) stays feasible at every iterate and fits the ring."""
    problem = cdl.load_problem("ring", dim=3, n_samples=100, lipschitz=0.9)
    preset = cdl.load_solver("ipopt-lbfgs", max_iter=300)
    for solver in (preset, cdl.Direct(hessian="lbfgs"), cdl.Direct(transcription="multiple_shooting", hessian="lbfgs")):
        assert solver.solver_options()["limited_memory_initialization"] == "scalar2"
    result = cdl.solve(problem, preset, progress=False)
    assert max(h["constraint_violation"] for h in result.history) <= 1e-6
    assert result.accuracy >= 0.99 and result.objective < 0.05
    scalar1 = dataclasses.replace(preset, ipopt_options={"limited_memory_initialization": "scalar1"})
    default = cdl.solve(problem, scalar1, progress=False)
    assert max(h["constraint_violation"] for h in default.history) > 0.1
    assert default.status == "failed" and default.history[-1]["objective"] > default.history[0]["objective"]


def test_ipopt_gn_preset_is_damped_and_escapes_the_saddle_undamped_gn_stops_at():
    """Issue 15: undamped IPOPT Gauss-Newton on the constrained ring in 2-D stops at θ ≈ 0 with the
    constant predictor's loss (reported "failed", a saddle); the preset's damping μ = 1e-2 trains."""
    problem = cdl.load_problem("ring", dim=2, lipschitz=0.9)  # S = 400: the case
    preset = cdl.load_solver("ipopt-gn", max_iter=80)
    assert preset.gauss_newton_damping == 1e-2
    undamped = cdl.solve(problem, dataclasses.replace(preset, gauss_newton_damping=0.0), progress=False)
    damped = cdl.solve(problem, preset, progress=False)
    assert undamped.status == "failed" and "saddle" in undamped.message
    assert damped.objective < 0.6 * undamped.objective and damped.accuracy > 0.8


def test_ipopt_stops_failed_when_the_engine_fails_on_a_trial_point(small_ring, monkeypatch):
    """A user's report: a Dask shard silent past its timeout during IPOPT's evaluation of a trial point
    printed a traceback, IPOPT shortened the step and went on to max_iter; the guide says the solve
    then ends 'failed' (as L-BFGS-B's does). One failure, of the objective callback only."""
    import sys

    from control_dl.engines._torch import TorchEngine

    original, failed, flaky_calls = TorchEngine.evaluate, [], []

    def flaky(self, w, gradient=True):
        caller = sys._getframe(1)
        from_callback = type(caller.f_locals.get("self")).__name__ == "_Cache"
        if from_callback and not failed and len(flaky_calls) > 6:
            failed.append(True)
            raise RuntimeError("shard 1: no answer to evaluate in 3.0 s")
        flaky_calls.append(from_callback)
        return original(self, w, gradient)

    monkeypatch.setattr(TorchEngine, "evaluate", flaky)
    result = cdl.solve(small_ring, cdl.Direct(hessian="lbfgs", engine="torch", max_iter=40), progress=False)
    assert failed, "the objective callback was never called"
    assert result.status == "failed" and "no answer to evaluate" in result.message, result.message
