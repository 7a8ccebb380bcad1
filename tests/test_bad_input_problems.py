"""Bad input to problems, datasets, results and solve: one SpecError naming the field, and numpy scalars accepted.

Two kinds of defect are pinned here. (1) numpy integers and floats (``np.int64`` from ``np.arange``,
``np.float32`` from a tensor) were refused by the spec (``n_steps=np.int64(5): must be an
integer``), and where accepted they were stored raw so ``Result.save`` died in ``json.dumps``.
(2) Ordinary mistakes (a path of None, a flag given as a string, a time outside [0, T], an array of
the wrong shape) raised pathlib's / numpy's own errors or silently returned a wrong answer (θ(t)
extrapolated past T, a (3, S) array "standardised" against 2 features by broadcasting).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

import control_dl as cdl
from control_dl._errors import is_integer, is_number
from control_dl.backends import numpy_ops
from control_dl.problems import lipschitz, step_index


@pytest.fixture(scope="module")
def ring() -> tuple[cdl.TrainingProblem, cdl.Result]:
    problem = cdl.load_problem("ring", n_samples=30, dim=3, n_steps=4)
    return problem, cdl.solve(problem, cdl.load_solver("lbfgsb", max_iter=3), progress=False)


def _raises(field: str, call: Callable[[], Any]) -> str:
    with pytest.raises(cdl.SpecError) as info:
        call()
    assert str(info.value).startswith(field), str(info.value)
    return str(info.value)


@pytest.mark.parametrize(
    ("value", "integer", "number"),
    [
        (3, True, True),
        (np.int64(3), True, True),
        (np.uint8(3), True, True),
        (2.5, False, True),
        (np.float32(2.5), False, True),
        (np.float64("nan"), False, True),
        (True, False, False),
        (np.bool_(True), False, False),
        ("3", False, False),
        (None, False, False),
        (1j, False, False),
        (np.array(3), False, False),
    ],
)
def test_integer_and_number_predicates(value, integer, number):
    assert is_integer(value) is integer
    assert is_number(value) is number


NUMPY_OVERRIDES = [
    ("n_steps", np.int64(5)),
    ("dim", np.int32(3)),
    ("n_samples", np.int64(30)),
    ("seed", np.int64(3)),
    ("horizon", np.float32(2.0)),
    ("horizon", np.float64(2.0)),
    ("l2", np.float32(1e-3)),
    ("noise", np.float64(0.1)),
    ("lipschitz", np.float64(0.9)),
]


@pytest.mark.parametrize(("key", "value"), NUMPY_OVERRIDES, ids=[f"{k}-{type(v).__name__}" for k, v in NUMPY_OVERRIDES])
def test_numpy_scalars_are_the_same_override_as_python_ones(key, value):
    """load_problem(key=np.int64(5)) is load_problem(key=5): same spec (Python types), same objective."""
    base = {"n_samples": 30, "dim": 3, "n_steps": 4}
    plain = cdl.load_problem("ring", **{**base, key: value.item()})
    numpy = cdl.load_problem("ring", **{**base, key: value})
    assert numpy.spec == plain.spec
    assert all(
        type(v) in (int, float, str, bool, list, type(None))
        for sect in numpy.spec.values()
        if isinstance(sect, dict)
        for v in sect.values()
    )
    w = plain.initial_guess()
    assert numpy.objective(w) == plain.objective(w)


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("width", np.int64(2)),
        ("n_nodes", np.int64(3)),
        ("widths", np.array([2, 4, 1])),
        ("widths", (np.int64(2), 4, 1)),
    ],
)
def test_numpy_integers_in_model_and_control_keys(key, value):
    extra = {"width": {"field": "bottleneck"}, "n_nodes": {"control": "piecewise_linear"}, "widths": {"model": "mlp"}}
    problem = cdl.load_problem("ring", n_samples=30, **extra[key], **{key: value})
    assert (
        problem.spec == cdl.load_problem("ring", n_samples=30, **extra[key], **{key: np.asarray(value).tolist()}).spec
    )


def test_a_problem_built_from_numpy_scalars_saves_and_loads(tmp_path):
    """Every stored number (dataset source, field, control, solver options, seed) survives save/load."""
    problem = cdl.TrainingProblem(
        data=cdl.datasets.ring(np.int64(30)),
        field=cdl.Bottleneck(width=np.int64(3)),
        dim=np.int64(3),
        control=cdl.PiecewiseConstant(np.int64(3)),
        horizon=np.float32(1.0),
        cost=cdl.Cost(l2=np.float32(1e-3)),
    )
    result = cdl.solve(problem, cdl.load_solver("lbfgsb", max_iter=np.int64(3)), seed=np.int64(0), progress=False)
    loaded = cdl.Result.load(result.save(tmp_path / "r.npz"))
    np.testing.assert_array_equal(loaded.w, result.w)
    assert loaded.problem.objective(loaded.w) == pytest.approx(result.objective, rel=1e-12)
    assert loaded.seed == 0 and loaded.solver_spec["max_iter"] == 3


@pytest.mark.parametrize("n_test", [0, 1, 2.5, "5"])
def test_a_bad_test_count_is_named_n_test(n_test):
    """It was reported as ``n_samples=0`` (the check ran on the test count under the training name)."""
    _raises("n_test", lambda: cdl.datasets.ring(20, n_test=n_test))


def test_generated_data_record_python_numbers():
    """A generator's source (saved with every result) holds Python numbers, and the same data."""
    numpy = cdl.datasets.spheres(
        np.int64(20), noise=np.float32(0.5), seed=np.int64(1), n_test=np.int64(4), n_in=np.int64(3)
    )
    plain = cdl.datasets.spheres(20, noise=float(np.float32(0.5)), seed=1, n_test=4, n_in=3)
    assert numpy.source == plain.source
    assert all(type(v) in (int, float, str) for v in numpy.source.values())
    np.testing.assert_array_equal(numpy.x_train, plain.x_train)


def test_cost_and_constraint_numbers_are_stored_as_python_floats():
    cost = cdl.Cost(l1=1.0, l1_eps=np.float32(1e-3), tracking=1.0, tracking_target=np.float32(0.5))
    constraints = cdl.Constraints(theta_max=np.float32(2.0), lipschitz=np.float64(0.5))
    values = [cost.l1_eps, cost.tracking_target, constraints.theta_max, constraints.lipschitz]
    assert [type(v) for v in values] == [float] * 4
    assert values == [pytest.approx(1e-3), 0.5, 2.0, 0.5]


CASES: list[tuple[str, str, Callable[..., Any]]] = [
    ("problem name None", "problem", lambda p, r, tmp: cdl.load_problem(None)),
    ("solver name 3", "solver", lambda p, r, tmp: cdl.load_solver(3)),
    ("data file None", "path", lambda p, r, tmp: cdl.Dataset.from_file(None)),
    ("result path None", "path", lambda p, r, tmp: r.save(None)),
    ("load path None", "path", lambda p, r, tmp: cdl.Result.load(None)),
    ("save into a folder", "path", lambda p, r, tmp: r.save(tmp)),
    ("save flag text", "data", lambda p, r, tmp: r.save(tmp / "x.npz", data="no")),
    (
        "load with another problem",
        "problem",
        lambda p, r, tmp: cdl.Result.load(r.save(tmp / "a.npz"), problem=cdl.load_problem("sin")),
    ),
    ("load with a name", "problem", lambda p, r, tmp: cdl.Result.load(r.save(tmp / "b.npz"), problem="ring")),
    (
        "standardize text",
        "standardize",
        lambda p, r, tmp: cdl.Dataset.from_arrays(np.zeros((8, 2)), np.arange(8) % 2, standardize="yes"),
    ),
    ("cost as a dict", "cost", lambda p, r, tmp: cdl.TrainingProblem(data=p.data, dim=3, cost={"l2": 1.0})),
    (
        "constraints as a dict",
        "constraints",
        lambda p, r, tmp: cdl.TrainingProblem(data=p.data, dim=3, constraints={"lipschitz": 0.9}),
    ),
    ("initial scale negative", "scale", lambda p, r, tmp: p.initial_guess(scale=-1.0)),
    ("initial scale NaN", "scale", lambda p, r, tmp: p.initial_guess(scale=np.nan)),
    ("gradient backend numpy", "backend", lambda p, r, tmp: p.gradient(r.w, backend="numpy")),
    ("accuracy split unknown", "split", lambda p, r, tmp: p.accuracy(r.w, split="val")),
    ("theta at NaN", "t", lambda p, r, tmp: p.theta(r.w, [np.nan])),
    ("theta before 0", "t", lambda p, r, tmp: p.theta(r.w, [-1.0])),
    ("theta past T", "t", lambda p, r, tmp: r.theta([0.5, 99.0])),
    ("theta of text", "t", lambda p, r, tmp: r.theta("a")),
    ("forward X transposed", "X", lambda p, r, tmp: p.forward(r.w, p.data.x_train.T)),
    ("forward X NaN", "X", lambda p, r, tmp: p.forward(r.w, np.full((2, 3), np.nan))),
    ("forward X no samples", "X", lambda p, r, tmp: p.forward(r.w, np.zeros((2, 0)))),
    ("predict X text", "X", lambda p, r, tmp: r.predict("x")),
    ("transform wrong width", "X", lambda p, r, tmp: p.data.transform(np.zeros((3, 5)))),
    ("solve a name", "problem", lambda p, r, tmp: cdl.solve("ring", cdl.Direct())),
    ("solve with a solver name", "solver", lambda p, r, tmp: cdl.solve(p, "lbfgsb")),
    ("solve arguments swapped", "problem", lambda p, r, tmp: cdl.solve(cdl.Direct(), p)),
    ("solve progress text", "progress", lambda p, r, tmp: cdl.solve(p, cdl.Direct(max_iter=1), progress="no")),
    (
        "stage past N",
        "k",
        lambda p, r, tmp: p.stage_thetas(r.w, 99, numpy_ops),
    ),
    ("stage a float", "k", lambda p, r, tmp: p.stage_thetas(r.w, 1.0, numpy_ops)),
    ("step past N", "k", lambda p, r, tmp: p.step(np.zeros((3, 1)), p.stage_thetas(r.w, 0, numpy_ops), numpy_ops, k=9)),
    ("step_index of NaN", "t", lambda p, r, tmp: step_index([np.nan], 1.0, 3)),
    ("step_index horizon 0", "horizon", lambda p, r, tmp: step_index([0.5], 0.0, 3)),
    ("step_index no steps", "n_steps", lambda p, r, tmp: step_index([0.5], 1.0, 0)),
    ("step constants unknown norm", "norm", lambda p, r, tmp: lipschitz.step_constants(p, r.w, "l7")),
    ("step constants of another w", "w", lambda p, r, tmp: lipschitz.step_constants(p, r.w[:-1])),
    ("increment bound unknown scheme", "integrator", lambda p, r, tmp: lipschitz.increment_bound("rk45", 0.5)),
    ("node limit unknown scheme", "integrator", lambda p, r, tmp: lipschitz.node_limit("rk45", 0.9)),
    (
        "data set name a number",
        "name",
        lambda p, r, tmp: cdl.Dataset.from_arrays(np.zeros((8, 2)), np.arange(8) % 2, name=3),
    ),
    (
        "Dataset name None",
        "name",
        lambda p, r, tmp: cdl.Dataset(
            p.data.x_train, p.data.y_train, p.data.x_test, p.data.y_test, "binary", name=None
        ),
    ),
    ("w complex", "w", lambda p, r, tmp: p.objective(r.w + 1j)),
    ("theta at a matrix of times", "t", lambda p, r, tmp: p.theta(r.w, [[0.1, 0.2]])),
    ("Result of a list of lists", "w", lambda p, r, tmp: cdl.Result("converged", "", [[1.0]], 1.0, 1.0)),
    ("Result objective text", "objective", lambda p, r, tmp: cdl.Result("converged", "", np.zeros(2), "low", 1.0)),
]


@pytest.mark.parametrize(("name", "field", "call"), CASES, ids=[c[0] for c in CASES])
def test_bad_input_is_one_spec_error(name, field, call, ring, tmp_path):
    _raises(field, lambda: call(*ring, tmp_path))


def test_theta_accepts_the_whole_closed_interval(ring):
    """t = 0 and t = T are inside [0, T] (θ(T) is the last step's control)."""
    problem, result = ring
    theta = result.theta([0.0, problem.horizon])
    np.testing.assert_array_equal(theta, problem.theta(result.w, np.array([0.0, problem.horizon])))
    np.testing.assert_array_equal(theta[1], problem.theta(result.w, [problem.times[-2]])[0])


@pytest.mark.skipif(
    not os.path.isdir("/proc/self"), reason="needs Linux /proc (a folder no one can write to, root included)"
)
def test_a_folder_that_cannot_be_written_is_a_spec_error(ring):
    """The atomic write's temporary file used to fail with FileNotFoundError after the work was done."""
    from control_dl.result import atomic_write_bytes

    _raises("path", lambda: atomic_write_bytes("/proc/self/x.npz", b"data"))
    _raises("path", lambda: ring[1].save("/proc/self/result.npz"))


NUMPY_SOLVER_OPTIONS = [
    ("adam", {"epochs": np.int64(2), "lr": np.float32(0.01), "batch_size": np.int64(8), "seed": np.int64(1)}),
    ("sgd", {"epochs": np.int64(2), "momentum": np.float32(0.5), "threads": np.int64(1)}),
    ("emsa", {"max_iter": np.int64(2), "rho": np.float32(1.0), "batch_size": np.int64(10), "seed": np.int64(1)}),
    ("lbfgsb", {"max_iter": np.int64(2), "tol": np.float32(1e-6), "record_every": np.int64(1)}),
    ("ipopt-exact", {"max_iter": np.int64(2), "tol": np.float64(1e-6)}),
]


@pytest.mark.parametrize(("name", "options"), NUMPY_SOLVER_OPTIONS, ids=[n for n, _ in NUMPY_SOLVER_OPTIONS])
def test_solver_options_given_as_numpy_scalars_run_like_python_ones(name, options, ring, tmp_path):
    """np.int64 batch_size / seed crashed inside torch (split_with_sizes, manual_seed); options are stored as Python numbers."""
    solver = cdl.load_solver(name, **options)
    assert all(type(getattr(solver, key)) in (int, float) for key in options)
    plain = cdl.load_solver(name, **{key: value.item() for key, value in options.items()})
    first = cdl.solve(ring[0], solver, progress=False)
    second = cdl.solve(ring[0], plain, progress=False)
    assert first.status == second.status
    np.testing.assert_allclose(first.w, second.w, rtol=1e-12, atol=1e-12)
    assert cdl.Result.load(first.save(tmp_path / "r.npz")).solver_spec == second.solver_spec
