"""Critical points of Φ = λ2 ∘ flow ∘ λ1 and Kuntz's architecture classes, on real solves."""

from __future__ import annotations

import numpy as np
import pytest
from _diagnostic_solves import ring, square_1d

import control_dl as cdl

D = cdl.diagnostics


def test_input_output_map_matches_predict_and_finite_differences(small_sin):
    w = small_sin.initial_guess(3)
    phi = D.InputOutputMap(small_sin, w)
    x = np.array([0.3])
    value, grad, hess = phi(x)
    assert value == pytest.approx(float(small_sin.predict(w, x[:, None])[0, 0]), abs=1e-12)
    eps = 1e-5
    f = [phi(x + s)[0] for s in (-eps, eps)]
    g = [phi(x + s)[1][0] for s in (-eps, eps)]
    assert grad[0] == pytest.approx((f[1] - f[0]) / (2 * eps), rel=1e-6)
    assert hess[0, 0] == pytest.approx((g[1] - g[0]) / (2 * eps), rel=1e-5, abs=1e-8)


def test_non_augmented_invertible_has_no_critical_points():
    # d = n_in = 1 and d = n_in = 2, every step invertible (certificate < 1): Φ has no critical point.
    for problem, result in (square_1d(1, True), ring(2)):
        assert D.classify(problem, result).label == "non-augmented"
        certificate = D.invertibility(problem, result)
        assert certificate.invertible
        report = D.critical_points(problem, result)
        assert report.points == ()
        # bounded away from 0: in 1-D, Φ'(x) = P Π_k (1 + h f'(x_k)) and |1 + h f'| ≥ 1 − h Lip f
        lower = np.linalg.norm(problem.unflatten(result.w)["readout"]["P"]) * np.prod(1 - certificate.step_constants)
        if problem.dim == 1:
            assert report.grid_min_grad >= lower > 0
    assert D.critical_points(*ring(2)).grid_min_grad > 1e-3


def test_augmented_square_has_nondegenerate_minimum_at_zero():
    problem, result = square_1d(2, True)
    assert result.loss < 1e-5
    assert D.classify(problem, result).label == "augmented"
    report = D.critical_points(problem, result)
    assert len(report.points) == 1
    point = report.points[0]
    assert abs(point.x[0]) < 0.02
    assert point.hessian_eigenvalues[0] == pytest.approx(2.0, rel=0.05)  # Φ ≈ x², Φ'' = 2
    assert point.index == 0 and not point.degenerate


def test_large_steps_fold_a_non_augmented_network():
    # without the invertibility constraint 4 big Euler steps fold R: a critical point appears in d = 1
    problem, result = square_1d(1, False, n_steps=4, horizon=4.0)
    certificate = D.invertibility(problem, result).certificate
    assert certificate > 1
    report = D.critical_points(problem, result)
    assert any(abs(p.x[0]) < 0.05 and p.hessian_eigenvalues[0] > 1 for p in report.points)
    # d = n_in, but the steps are not certified invertible: not "non-augmented: Φ has no critical points"
    label = D.classify(problem, result)
    assert label.label == "uncertified" and f"{certificate:.3g}" in label.reason
    assert "critical points" in label.consequence


class _Scale:
    """f(x, a) = a x: a user field without lipschitz_sq_bound."""

    def param_shapes(self, dim):
        return {"a": (1,)}

    def __call__(self, x, params, ops):
        return params["a"] * x


def test_classify_cannot_certify_a_field_without_a_lipschitz_bound():
    problem = cdl.TrainingProblem(data=cdl.datasets.sin(10, seed=0), field=_Scale(), dim=1)
    label = D.classify(problem, problem.initial_guess(0))
    assert label.label == "uncertified" and "_Scale" in label.reason and "lipschitz_sq_bound" in label.reason
    assert "not checked" in D.classify(problem).reason  # no weights: the widths alone


def test_rank_deficient_lift_gives_only_degenerate_critical_points():
    problem = cdl.load_problem("ring", dim=2, n_steps=10, horizon=2.0, n_samples=100, lift="affine")
    result = cdl.solve(problem, cdl.Direct(hessian="lbfgs", max_iter=100), progress=False)
    assert D.classify(problem, result).label == "non-augmented"  # d = n_in and the trained L has rank 2…
    # …truncate λ1 = L x + l to rank 1: Φ(x) = g(vᵀx) is constant along ker L
    w = result.w.copy()
    lay = problem.layout
    lift = problem.unflatten(w)["lift"]["L"]
    u, s, vt = np.linalg.svd(lift)
    start = lay.n_theta + lay.n_out * (lay.dim + 1)
    w[start : start + lift.size] = (s[0] * np.outer(u[:, 0], vt[0])).ravel(order="F")
    assert D.classify(problem, w).label == "degenerate"
    report = D.critical_points(problem, w)
    assert len(report.points) > 0
    for point in report.points:
        assert point.degenerate
        assert np.min(np.abs(point.hessian_eigenvalues)) < 1e-8


def test_classify_labels():
    data = cdl.datasets.ring(20)
    assert D.classify(cdl.TrainingProblem(data=data, dim=2)).label == "non-augmented"
    assert D.classify(cdl.TrainingProblem(data=data, dim=3)).label == "augmented"
    bottleneck = cdl.TrainingProblem(data=data, dim=3, field=cdl.Bottleneck(width=2))
    assert D.classify(bottleneck).label == "bottleneck"
    for label in ("non-augmented", "uncertified", "augmented", "bottleneck", "degenerate"):
        assert D.architecture.CONSEQUENCES[label].endswith(".")


def test_critical_points_needs_scalar_output():
    problem = cdl.load_problem("ring", dim=2, n_steps=2, n_samples=10, loss="cross_entropy")
    with pytest.raises(ValueError, match="n_out"):
        D.critical_points(problem, problem.initial_guess())
