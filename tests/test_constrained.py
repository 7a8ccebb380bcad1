"""The fast constrained route: augmented Lagrangian around L-BFGS-B with exact restoration (real solves)."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

import control_dl as cdl
from control_dl.problems.costs import predict_labels
from control_dl.solvers._constrained import NodeBalls

D = cdl.diagnostics


def certified(**overrides) -> cdl.Direct:
    """The recommended preset, with a smaller budget where a test needs less."""
    return cdl.load_solver("certified", **overrides)


def frobenius_certificate(problem, result) -> float:
    return D.invertibility(problem, result, norm="frobenius").certificate


@pytest.mark.parametrize("integrator", ["euler", "rk4"])
def test_ring_3d_trains_to_full_accuracy_with_an_active_certificate(integrator):
    # h = 0.4 and c = 0.5: the unconstrained fit has larger steps, so the constraint binds
    problem = cdl.load_problem("ring", dim=3, n_steps=5, horizon=2.0, lipschitz=0.5, integrator=integrator)
    result = cdl.solve(problem, certified(max_iter=1000), progress=False)
    assert result.accuracy >= 0.99
    assert D.invertibility(problem, result).certificate < 1
    assert 0.49 < frobenius_certificate(problem, result) <= 0.5  # active, and never above c
    assert result.objective < result.history[0]["objective"]
    free = cdl.solve(
        dataclasses.replace(problem, constraints=cdl.Constraints()), certified(max_iter=1000), progress=False
    )
    assert frobenius_certificate(problem, free) > 0.5


@pytest.mark.parametrize("integrator", ["euler", "rk4"])
def test_catalog_ring_3d_with_the_recommended_preset(integrator):
    problem = cdl.load_problem("ring", dim=3, lipschitz=0.9, integrator=integrator)  # S = 400, N = 20, T = 1
    result = cdl.solve(problem, certified(max_iter=300), progress=False)
    assert result.accuracy >= 0.99
    assert D.invertibility(problem, result).certificate < 1


def test_agrees_with_ipopt_on_an_active_constraint():
    problem = cdl.load_problem("ring", n_samples=40, dim=2, n_steps=3, horizon=2.0, lipschitz=0.9)
    ours = cdl.solve(problem, certified(tol=1e-12), progress=False)
    ipopt = cdl.solve(problem, cdl.load_solver("ipopt-exact"), progress=False)
    assert ours.status == ipopt.status == "converged"
    assert ours.objective == pytest.approx(ipopt.objective, rel=1e-6)
    assert frobenius_certificate(problem, ours) == pytest.approx(0.9, abs=1e-9)
    assert frobenius_certificate(problem, ours) <= 0.9


def test_ring_2d_stays_a_homeomorphism_and_cannot_enclose_the_disk():
    problem = cdl.load_problem("ring", dim=2, n_steps=10, horizon=2.0, lipschitz=0.9)
    result = cdl.solve(problem, certified(max_iter=1000), progress=False)
    assert D.invertibility(problem, result).certificate < 1
    topology = D.decision_region_topology(problem, result)
    assert topology.inner_class == 1
    assert topology.reaches_edge  # the inner class region is the pre-image of a half-plane: unbounded
    fresh = cdl.datasets.ring(4000, seed=123)
    labels = predict_labels(fresh.task, problem.cost.loss, problem.predict(result.w, fresh.x_train))
    assert np.mean(labels == fresh.y_train) < 1.0


def test_spectral_norm_admits_larger_frobenius_norms():
    spectral = cdl.load_problem("ring", dim=3, n_steps=5, horizon=2.0, lipschitz=0.5, lipschitz_norm="spectral")
    frobenius = dataclasses.replace(spectral, constraints=cdl.Constraints(lipschitz=0.5))
    by_spectral = cdl.solve(spectral, certified(max_iter=1000), progress=False)
    by_frobenius = cdl.solve(frobenius, certified(max_iter=1000), progress=False)
    for problem, result in ((spectral, by_spectral), (frobenius, by_frobenius)):
        assert D.invertibility(problem, result).certificate <= frobenius_certificate(problem, result)
        assert D.invertibility(problem, result).certificate <= 0.5
    assert frobenius_certificate(frobenius, by_frobenius) <= 0.5
    assert frobenius_certificate(spectral, by_spectral) > 0.5  # ‖A_k‖_F above what the Frobenius form allows
    assert D.invertibility(spectral, by_spectral).certificate > 0.49  # the spectral constraint is active


@pytest.mark.parametrize(
    "control",
    [
        {"control": "piecewise_linear", "n_nodes": 3},
        {"control": "time_invariant"},
        {"control": "spectral", "n_modes": 3},
    ],
    ids=lambda c: c["control"],
)
@pytest.mark.parametrize("norm", ["frobenius", "spectral"])
def test_every_control_ends_feasible(control, norm):
    problem = cdl.load_problem(
        "ring", n_samples=60, dim=3, n_steps=4, horizon=2.0, lipschitz=0.5, lipschitz_norm=norm, **control
    )
    result = cdl.solve(problem, certified(max_iter=200), progress=False)
    assert D.invertibility(problem, result, norm=norm).certificate <= 0.5
    assert result.objective < result.history[0]["objective"]


def test_theta_max_and_lipschitz_together():
    problem = cdl.load_problem("ring", n_samples=60, dim=3, n_steps=4, horizon=2.0, lipschitz=0.5, theta_max=0.8)
    result = cdl.solve(problem, certified(max_iter=300), progress=False)
    assert np.max(np.abs(result.w[: problem.layout.n_theta])) <= 0.8
    assert frobenius_certificate(problem, result) <= 0.5
    # the summary says what was certified, so a certified run does not read like an unconstrained one
    assert "constraints: lipschitz<=0.5 (frobenius), |theta|<=0.8, violation=0" in result.summary()
    assert result.engine["name"] in ("casadi", "torch")  # the certified route records its engine too
    free = dataclasses.replace(result, problem=dataclasses.replace(problem, constraints=cdl.Constraints()))
    assert "constraints" not in free.summary()


def test_projections_are_the_nearest_points_of_the_balls():
    rng = np.random.default_rng(0)
    for norm in ("frobenius", "spectral"):
        problem = cdl.load_problem("ring", n_samples=8, dim=4, n_steps=2, lipschitz=0.5, lipschitz_norm=norm)
        balls = NodeBalls(problem)
        z = 20.0 * rng.normal(size=(5, 16))
        projected = balls.project(z)
        assert np.all(balls.norms(projected) <= balls.radius * (1 + 1e-12))
        # variational inequality of a projection onto a convex set: ⟨z − P z, y − P z⟩ ≤ 0 for y in B
        for _ in range(50):
            y = balls.project(rng.normal(size=(5, 16)) * rng.uniform(0.1, 20.0))
            assert np.all(np.sum((z - projected) * (y - projected), axis=1) <= 1e-9)
        if norm == "spectral":  # singular values clipped at ρ
            s = np.linalg.svd(z.reshape(-1, 4, 4), compute_uv=False)
            kept = np.linalg.svd(projected.reshape(-1, 4, 4), compute_uv=False)
            np.testing.assert_allclose(kept, np.minimum(s, balls.radius), rtol=1e-10)


def test_fields_without_a_norm_ball_name_ipopt():
    problem = cdl.load_problem("ring", n_samples=8, n_steps=2, field="bottleneck", width=2, lipschitz=0.5)
    with pytest.raises(cdl.SpecError, match="ipopt"):
        cdl.solve(problem, certified(), progress=False)


class _UnboundedField:
    """A user field without ``lipschitz_sq_bound``: no solver can constrain it."""

    def param_shapes(self, dim):
        return {"A": (dim, dim), "b": (dim,)}

    def __call__(self, x, params, ops):
        return ops.tanh(ops.matmul(params["A"], x) + params["b"])


def test_a_user_field_without_a_bound_is_told_to_add_one_by_every_route():
    problem = cdl.TrainingProblem(
        data=cdl.datasets.ring(20, seed=0),
        dim=3,
        field=_UnboundedField(),
        control=cdl.PiecewiseConstant(2),
        constraints=cdl.Constraints(lipschitz=0.9),
    )
    for solver in (certified(), cdl.load_solver("ipopt-exact")):  # not "use ipopt", then "no bound"
        with pytest.raises(cdl.SpecError, match=r"field='_UnboundedField'.*lipschitz_sq_bound\(params, ops\)"):
            cdl.solve(problem, solver, progress=False)


def test_spectral_norm_is_rejected_by_interior_point_solvers():
    problem = cdl.load_problem("ring", n_samples=8, n_steps=2, lipschitz=0.5, lipschitz_norm="spectral")
    with pytest.raises(cdl.SpecError, match="lipschitz_norm='spectral'.*certified"):
        cdl.solve(problem, cdl.load_solver("ipopt-exact"), progress=False)


def test_lipschitz_norm_is_a_spec_key():
    assert cdl.load_problem("ring", lipschitz=0.9, lipschitz_norm="spectral").constraints.lipschitz_norm == "spectral"
    assert cdl.load_problem("ring", lipschitz=0.9).constraints.lipschitz_norm == "frobenius"
    with pytest.raises(cdl.SpecError, match="lipschitz_norm='nuclear'"):
        cdl.load_problem("ring", lipschitz=0.9, lipschitz_norm="nuclear")


def test_a_run_stopped_early_still_returns_a_feasible_network():
    # 5 iterations leave the augmented Lagrangian far from feasible; the exact restoration does not
    problem = cdl.load_problem("ring", n_samples=60, dim=3, n_steps=4, horizon=4.0, lipschitz=0.3)
    w0 = problem.initial_guess(0, scale=3.0)
    assert frobenius_certificate(problem, w0) > 0.3  # an infeasible start
    result = cdl.solve(problem, certified(max_iter=5), w0=w0, progress=False)
    assert result.status in ("max_iter", "failed")
    assert frobenius_certificate(problem, result) <= 0.3
    assert max(entry["violation"] for entry in result.history) > 1e-3
    assert {"violation", "penalty"} <= set(result.history[-1])
