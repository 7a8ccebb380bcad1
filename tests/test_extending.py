"""The extension surface: user vector fields with numpy constants and callable losses, in every
backend and solver; their shapes are checked once, at problem construction."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

import control_dl as cdl

pytest.importorskip("torch")


class RotationField:
    """f(x, θ) = a · tanh(R x) + b with a fixed numpy rotation R (a constant, not a parameter)."""

    def __init__(self, dim: int) -> None:
        rng = np.random.default_rng(0)
        self.rotation = np.linalg.qr(rng.normal(size=(dim, dim)))[0]

    def param_shapes(self, dim):
        return {"a": (1,), "b": (dim,)}

    def __call__(self, x, params, ops):
        return params["a"] * ops.tanh(ops.matmul(self.rotation, x)) + params["b"] + 0.1 * ops.sin(x)


def user_mse(yhat, target, ops):
    """‖ŷ − y‖² per sample, written against ops."""
    return ops.sum_rows(ops.square(yhat - target))


def _solver(name, n):
    """Preset ``name`` limited to n iterations (epochs for the torch trainers)."""
    key = "epochs" if hasattr(cdl.load_solver(name), "epochs") else "max_iter"
    return cdl.load_solver(name, **{key: n})


def _ring(**kw):
    base = {"data": cdl.datasets.ring(24, seed=0), "dim": 3, "control": cdl.PiecewiseConstant(4)}
    return cdl.TrainingProblem(**{**base, **kw})


@pytest.fixture(scope="module")
def user_problem():
    return _ring(field=RotationField(3))


def test_user_field_with_numpy_constants_agrees_across_backends(user_problem):
    w = user_problem.initial_guess(0)
    j = user_problem.objective(w)
    assert user_problem.objective(w, backend="casadi") == pytest.approx(j, rel=1e-12)
    assert user_problem.objective(w, backend="torch") == pytest.approx(j, rel=1e-12)
    np.testing.assert_allclose(
        user_problem.gradient(w, backend="torch"), user_problem.gradient(w, backend="casadi"), rtol=1e-9, atol=1e-12
    )


@pytest.mark.parametrize("solver", ["torch-lbfgs", "adam", "lbfgsb", "ipopt-gn", "emsa"])
def test_user_field_trains_with_every_kind_of_solver(user_problem, solver):
    # issue 16: torch-lbfgs and adam raised "unsupported operand type(s) for @: 'numpy.ndarray' and 'Tensor'"
    result = cdl.solve(user_problem, _solver(solver, 30 if solver == "adam" else 15), progress=False)
    assert result.status in ("converged", "max_iter")
    j0 = user_problem.objective(user_problem.initial_guess(0))
    assert result.objective < j0
    assert user_problem.objective(result.w) == pytest.approx(result.objective, rel=1e-8)


class _WrongShape:
    def __init__(self, out):
        self.out = out

    def param_shapes(self, dim):
        return {"A": (dim, dim)}

    def __call__(self, x, params, ops):
        return self.out(ops.matmul(params["A"], x), ops)


@pytest.mark.parametrize(
    ("out", "says"),
    [
        (lambda z, ops: ops.transpose(z), r"returned shape \(2, 3\) for x of shape \(3, 2\)"),
        (lambda z, ops: ops.sum_rows(z), r"returned shape \(1, 2\)"),
        (lambda z, ops: ops.vstack([z, z]), r"returned shape \(6, 2\)"),
        (lambda z, ops: ops.matmul(z, np.ones((3, 3))), "raised ValueError"),
    ],
)
def test_a_wrong_field_is_a_spec_error_at_construction(out, says):
    with pytest.raises(cdl.SpecError, match="field=") as info:
        _ring(field=_WrongShape(out))
    assert info.match(says)


def test_bad_param_shapes_are_a_spec_error():
    class Bad(_WrongShape):
        def param_shapes(self, dim):
            return {"A": [dim, dim]}

    with pytest.raises(cdl.SpecError, match=r"param_shapes\(3\) returned"):
        _ring(field=Bad(lambda z, ops: z))


def test_callable_loss_is_checked_once():
    with pytest.raises(cdl.SpecError, match=r"loss=.*row of shape \(1, 24\)"):
        _ring(cost=cdl.Cost(loss=lambda yhat, target, ops: ops.sum(yhat - target)))
    with pytest.raises(cdl.SpecError, match="raised"):
        _ring(cost=cdl.Cost(loss=lambda yhat, target, ops: ops.nonexistent(yhat)))
    with pytest.raises(cdl.SpecError, match="loss="):
        cdl.Cost(loss="hinge")


@pytest.fixture(scope="module")
def mse_pair():
    builtin = _ring(cost=cdl.Cost(loss="mse", l2=1e-3))
    return builtin, dataclasses.replace(builtin, cost=cdl.Cost(loss=user_mse, l2=1e-3))


@pytest.mark.parametrize("backend", ["numpy", "casadi", "torch"])
def test_callable_loss_equals_the_builtin_mse_on_every_backend(mse_pair, backend):
    builtin, user = mse_pair
    w = builtin.initial_guess(3)
    assert user.objective(w, backend=backend) == pytest.approx(builtin.objective(w, backend=backend), rel=1e-14)
    if backend != "numpy":
        np.testing.assert_allclose(user.gradient(w, backend=backend), builtin.gradient(w, backend=backend), rtol=1e-13)


@pytest.mark.parametrize("solver", ["ipopt-gn", "trust-ncg", "lbfgsb", "torch-lbfgs", "emsa"])
def test_callable_loss_follows_the_builtin_iterates(mse_pair, solver):
    # same iterates in solvers that use the loss's value, gradient and Gauss-Newton Hessian (IPOPT's
    # hess_lag, trust-ncg's products: CasADi differentiates the user's loss twice)
    builtin, user = mse_pair
    results = [cdl.solve(p, _solver(solver, 8), progress=False) for p in (builtin, user)]
    assert results[1].objective == pytest.approx(results[0].objective, rel=1e-8)
    assert results[1].accuracy == results[0].accuracy
    assert results[1].objective < builtin.objective(builtin.initial_guess(0))
