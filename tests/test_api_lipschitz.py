"""The Lipschitz bounds of control_dl.problems.lipschitz and the per-sample losses of
control_dl.problems.costs, each against an independent computation: difference quotients of the
field itself, numpy's matrix norms, the textbook loss formulas (found untested by name in an audit)."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

import control_dl as cdl
from control_dl.backends import get_ops
from control_dl.problems import lipschitz
from control_dl.problems.costs import loss_per_sample

numpy_ops = get_ops("numpy")
FIELDS = [cdl.Inside("tanh"), cdl.Inside("sigmoid"), cdl.Outside("tanh"), cdl.Bottleneck("softplus", width=2)]


def _params(field, dim, rng):
    return {name: rng.normal(size=shape) for name, shape in field.param_shapes(dim).items()}


def _call(field, x, params):
    p = {k: (v[:, None] if v.ndim == 1 else v) for k, v in params.items()}  # b as a d × 1 column
    return field(x, p, numpy_ops)


@pytest.mark.parametrize("field", FIELDS, ids=lambda f: f"{type(f).__name__}-{f.activation}")
def test_field_bound_dominates_difference_quotients(field):
    rng = np.random.default_rng(0)
    dim = 3
    params = _params(field, dim, rng)
    spectral = np.sqrt(lipschitz.field_lipschitz_sq(field, params, numpy_ops, norm="spectral"))
    frobenius = np.sqrt(lipschitz.field_lipschitz_sq(field, params, numpy_ops, norm="frobenius"))
    assert spectral <= frobenius * (1 + 1e-12)  # ‖M‖₂ ≤ ‖M‖_F
    x, y = rng.normal(size=(dim, 2000)), rng.normal(size=(dim, 2000))
    y = x + 10.0 ** rng.uniform(-4, 0, 2000) * (y - x)  # near and far pairs
    quotients = np.linalg.norm(_call(field, x, params) - _call(field, y, params), axis=0) / np.linalg.norm(
        x - y, axis=0
    )
    assert quotients.max() <= spectral * (1 + 1e-9)
    assert quotients.max() > 0.05 * spectral  # the bound is not vacuous


def test_spectral_bound_is_attained_by_a_linear_field():
    # identity activation: f = A x + b, Lip f = ‖A‖₂ exactly, along A's top right singular vector
    rng = np.random.default_rng(1)
    field = cdl.Inside("identity")
    params = _params(field, 4, rng)
    bound = np.sqrt(lipschitz.field_lipschitz_sq(field, params, numpy_ops, norm="spectral"))
    assert bound == pytest.approx(np.linalg.norm(params["A"], 2), rel=1e-12)
    assert lipschitz.spectral_norm(params["A"]) == pytest.approx(np.linalg.svd(params["A"])[1][0], rel=1e-14)
    v = np.linalg.svd(params["A"])[2][0][:, None]
    x = rng.normal(size=(4, 1))
    ratio = np.linalg.norm(_call(field, x + v, params) - _call(field, x, params))
    assert ratio == pytest.approx(bound, rel=1e-12)
    assert lipschitz.matrix_names(field) == ("A",)
    assert set(lipschitz.matrix_names(cdl.Bottleneck("tanh", width=2))) == {"A", "W"}


def test_field_bound_without_a_known_form_is_a_spec_error():
    class Custom:
        def param_shapes(self, dim):
            return {"A": (dim, dim)}

        def __call__(self, x, params, ops):
            return ops.tanh(params["A"] @ x)

    with pytest.raises(cdl.SpecError, match="lipschitz_sq_bound"):
        lipschitz.field_lipschitz_sq(Custom(), {"A": np.eye(2)}, numpy_ops)


@pytest.mark.parametrize(
    ("integrator", "control", "expected"),
    [
        ("euler", cdl.PiecewiseConstant(4), 4),
        ("rk4", cdl.PiecewiseConstant(4), 4),  # RK4's three nodes of a step share θ_k
        ("rk4", cdl.TimeInvariant(4), 1),
        ("euler", cdl.PiecewiseLinear(n_nodes=3, n_steps=4), 4),  # t_0..t_3 are distinct times
        ("rk4", cdl.PiecewiseLinear(n_nodes=3, n_steps=4), 9),  # t_0, t_0 + h/2, ..., t_4 = T: 2N + 1 times
    ],
)
def test_distinct_nodes_counts_the_distinct_thetas(integrator, control, expected):
    problem = cdl.TrainingProblem(
        data=cdl.datasets.ring(20, seed=0), field=cdl.Inside("tanh"), dim=3, control=control, integrator=integrator
    )
    nodes = lipschitz.distinct_nodes(problem)
    assert len(nodes) == expected
    weights = [problem.stage_weights[k, j].tobytes() for k, j in nodes]
    assert len(set(weights)) == len(weights)


def test_node_bounds_and_step_constants_are_h_times_the_layer_norms(small_ring):
    p = dataclasses.replace(small_ring, constraints=cdl.Constraints(lipschitz=0.5))
    w = p.initial_guess(seed=5)
    h = p.step_size
    matrices = [theta["A"] for theta in p.unflatten(w)["theta"]]
    rows = lipschitz.node_bounds_sq(p, w, numpy_ops, norm="frobenius")
    np.testing.assert_allclose(rows, [h**2 * np.sum(a * a) for a in matrices], rtol=1e-12)  # tanh: L_σ = 1
    np.testing.assert_allclose(
        lipschitz.step_constants(p, w), [h * np.linalg.norm(a, 2) for a in matrices], rtol=1e-12
    )  # Euler: Lip Ψ_k ≤ h L_k
    assert lipschitz.constraint_limit(p) == 0.5  # Euler: r = c
    rk4 = dataclasses.replace(p, integrator="rk4")
    r = lipschitz.constraint_limit(rk4)
    assert r < 0.5 and lipschitz.increment_bound("rk4", r) == pytest.approx(0.5, rel=1e-10)  # r = q⁻¹(c)


@pytest.mark.parametrize("backend", ["numpy", "torch"])
def test_loss_per_sample_matches_the_textbook_formulas(backend):
    if backend == "torch":
        pytest.importorskip("torch")
    ops = get_ops(backend)
    rng = np.random.default_rng(2)

    def per_sample(name, yhat, target):
        return np.asarray(loss_per_sample(name, ops.asarray(yhat), ops.asarray(target), ops), dtype=float).ravel()

    yhat, y = rng.normal(size=(2, 5)), rng.normal(size=(2, 5))
    np.testing.assert_allclose(per_sample("mse", yhat, y), np.sum((yhat - y) ** 2, axis=0), rtol=1e-14)
    logit, label = 8 * rng.normal(size=(1, 6)), rng.integers(0, 2, size=(1, 6)).astype(float)
    sigma = 1 / (1 + np.exp(-logit))
    bce = -(label * np.log(sigma) + (1 - label) * np.log(1 - sigma))  # binary cross-entropy of σ(ŷ)
    np.testing.assert_allclose(per_sample("logistic", logit, label), bce.ravel(), rtol=1e-10)
    logits = rng.normal(size=(3, 4))
    onehot = np.eye(3)[:, rng.integers(0, 3, 4)]
    softmax = np.exp(logits) / np.exp(logits).sum(axis=0)
    np.testing.assert_allclose(
        per_sample("cross_entropy", logits, onehot), -np.log(np.sum(onehot * softmax, axis=0)), rtol=1e-12
    )
