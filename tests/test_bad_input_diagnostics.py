"""Bad input to the diagnostics and figures: one SpecError naming the field, never a numpy/casadi traceback.

Each case is an ordinary mistake (a float or a string where an integer goes, a negative tolerance, a
box given transposed, a layer past the last one, a problem of the wrong kind, a failed or mismatched
result, the arguments swapped); before these checks they raised numpy's or casadi's own errors
(``TypeError: 'float' object cannot be interpreted as an integer``, ``Degenerate map operation``,
``LinAlgError``), AttributeError, or silently returned something (a box with low > high, a norm
name that was ignored, ``log="no"`` taken as True).
"""

from __future__ import annotations

import importlib
import warnings
from collections.abc import Callable
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
import pytest

import control_dl as cdl
from control_dl import diagnostics as D
from control_dl import plotting as P


@pytest.fixture(scope="module")
def ring() -> tuple[cdl.TrainingProblem, cdl.Result]:
    """Ring, d = 3, 5 steps, a short solve with snapshots."""
    problem = cdl.load_problem("ring", n_samples=30, dim=3, n_steps=5)
    return problem, cdl.solve(problem, cdl.load_solver("lbfgsb", max_iter=5, record_every=2), progress=False)


@pytest.fixture(scope="module")
def sin() -> tuple[cdl.TrainingProblem, np.ndarray]:
    """sin regression (n_in = n_out = 1), d = 2, 3 steps, at its initial guess."""
    problem = cdl.load_problem("sin", n_samples=20, dim=2, n_steps=3)
    return problem, problem.initial_guess()


@pytest.fixture(scope="module")
def mlp() -> tuple[cdl.TrainingProblem, np.ndarray]:
    """A feed-forward net 2-4-1 on the ring data (not a flow)."""
    problem = cdl.load_problem("ring", n_samples=30, model="mlp", widths=[2, 4, 1])
    return problem, problem.initial_guess()


@pytest.fixture(scope="module")
def autonomous() -> tuple[cdl.TrainingProblem, np.ndarray]:
    """A time-invariant flow (euler_convergence needs θ(t) independent of the grid)."""
    problem = cdl.load_problem("ring", n_samples=20, dim=3, n_steps=4, control="time_invariant")
    return problem, problem.initial_guess()


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def _raises(field: str, call: Callable[[], Any]) -> str:
    """Run ``call``; it must raise one SpecError whose message starts with ``field``."""
    with pytest.raises(cdl.SpecError) as info:
        call()
    message = str(info.value)
    assert message.startswith(field), message
    return message


def _failed(problem: cdl.TrainingProblem) -> cdl.Result:
    w = np.full(problem.n_params, np.nan)
    return cdl.Result(status="diverged", message="objective became NaN", w=w, objective=np.nan, loss=np.nan)


# (name, field, call(ring, result, sin, w_sin, mlp, w_mlp, autonomous, w_autonomous))
CASES: list[tuple[str, str, Callable[..., Any]]] = [
    # arguments of the wrong kind
    ("problem given by name", "problem", lambda r, res, *_: D.turnpike("ring", res)),
    ("arguments swapped", "problem", lambda r, res, *_: D.pmp_residual(res, r)),
    ("result None", "result", lambda r, res, *_: D.invertibility(r, None)),
    ("classify by name", "problem", lambda *_: D.classify("ring")),
    ("classify_feedforward int", "problem", lambda *_: D.classify_feedforward(3)),
    ("classify_feedforward of a flow", "problem", lambda r, *_: D.classify_feedforward(r)),
    ("sweep solver by name", "solver", lambda r, *_: D.turnpike_sweep(r, "lbfgsb", [1.0])),
    # a result of another problem
    ("mismatched result", "w", lambda r, res, s, ws, *_: D.turnpike(s, res)),
    # diagnostics on a problem kind they do not support
    ("invertibility of a layer stack", "problem", lambda r, res, s, ws, m, wm, *_: D.invertibility(m, wm)),
    ("invert a layer stack", "problem", lambda r, res, s, ws, m, wm, *_: D.invert(m, wm, np.zeros((1, 2)))),
    ("sweep a layer stack", "problem", lambda r, res, s, ws, m, wm, *_: D.turnpike_sweep(m, cdl.Direct(), [1.0])),
    ("topology of a regression", "problem", lambda r, res, s, ws, *_: D.decision_region_topology(s, ws)),
    ("convergence of a ResNet", "control", lambda r, res, *_: D.euler_convergence(r, res)),
    # numbers
    ("critical_points n_starts float", "n_starts", lambda r, res, s, ws, *_: D.critical_points(s, ws, n_starts=2.5)),
    ("critical_points n_starts 0", "n_starts", lambda r, res, s, ws, *_: D.critical_points(s, ws, n_starts=0)),
    ("critical_points n_grid 0", "n_grid", lambda r, res, s, ws, *_: D.critical_points(s, ws, n_grid=0)),
    ("critical_points tol NaN", "tol", lambda r, res, s, ws, *_: D.critical_points(s, ws, tol=np.nan)),
    ("critical_points max_iter 0", "max_iter", lambda r, res, s, ws, *_: D.critical_points(s, ws, max_iter=0)),
    ("critical_points seed -1", "seed", lambda r, res, s, ws, *_: D.critical_points(s, ws, seed=-1)),
    ("bounds transposed", "bounds", lambda r, res, s, ws, *_: D.critical_points(s, ws, bounds=[[-1], [1]])),
    ("bounds low > high", "bounds", lambda r, res, s, ws, *_: D.critical_points(s, ws, bounds=[[1, -1]])),
    ("bounds NaN", "bounds", lambda r, res, s, ws, *_: D.critical_points(s, ws, bounds=[[np.nan, 1]])),
    ("bounds text", "bounds", lambda r, res, s, ws, *_: D.critical_points(s, ws, bounds="box")),
    ("invertibility norm unknown", "norm", lambda r, res, *_: D.invertibility(r, res, norm="l7")),
    ("invert tol negative", "tol", lambda r, res, *_: D.invert(r, res, res.states[-1], tol=-1.0)),
    ("invert max_iter float", "max_iter", lambda r, res, *_: D.invert(r, res, res.states[-1], max_iter=1.5)),
    ("topology resolution 0", "resolution", lambda r, res, *_: D.decision_region_topology(r, res, resolution=0)),
    ("topology extent negative", "extent", lambda r, res, *_: D.decision_region_topology(r, res, 21, extent=-1)),
    ("topology extent NaN", "extent", lambda r, res, *_: D.decision_region_topology(r, res, 21, extent=np.nan)),
    ("layer_ranks rtol negative", "rtol", lambda r, res, s, ws, m, wm, *_: D.layer_ranks(m, wm, rtol=-1.0)),
    ("layer_ranks layout unknown", "layout", lambda r, res, s, ws, m, wm, *_: D.layer_ranks(m, wm, layout="rows")),
    ("euler n_steps scalar", "n_steps", lambda *a: D.euler_convergence(a[6], a[7], n_steps=4)),
    ("euler n_steps zero", "n_steps", lambda *a: D.euler_convergence(a[6], a[7], n_steps=[0, 4])),
    ("euler n_steps float", "n_steps", lambda *a: D.euler_convergence(a[6], a[7], n_steps=[2.5, 4])),
    ("euler refine 0", "refine", lambda *a: D.euler_convergence(a[6], a[7], n_steps=(2, 4), refine=0)),
    ("euler refine bool", "refine", lambda *a: D.euler_convergence(a[6], a[7], n_steps=(2, 4), refine=True)),
    ("sweep horizons empty", "horizons", lambda r, *_: D.turnpike_sweep(r, cdl.Direct(), [])),
    ("sweep horizons scalar", "horizons", lambda r, *_: D.turnpike_sweep(r, cdl.Direct(), 2.0)),
    ("sweep horizons text", "horizons", lambda r, *_: D.turnpike_sweep(r, cdl.Direct(), "1,2")),
    ("sweep horizon NaN", "horizons", lambda r, *_: D.turnpike_sweep(r, cdl.Direct(), [1.0, np.nan])),
    # arrays
    ("invert states transposed", "x_final", lambda r, res, *_: D.invert(r, res, res.states[-1].T)),
    ("invert one state", "x_final", lambda r, res, *_: D.invert(r, res, res.states[-1][:, 0])),
    ("invert no states", "x_final", lambda r, res, *_: D.invert(r, res, np.zeros((3, 0)))),
    ("invert NaN states", "x_final", lambda r, res, *_: D.invert(r, res, np.full((3, 2), np.nan))),
    ("layer_ranks no samples", "X", lambda r, res, s, ws, m, wm, *_: D.layer_ranks(m, wm, X=np.zeros((2, 0)))),
    ("input-output map of another w", "w", lambda r, res, s, ws, *_: D.InputOutputMap(s, res.w)),
    (
        "input-output map points transposed",
        "points",
        lambda r, res, s, ws, *_: D.InputOutputMap(s, ws).grad_norms(np.zeros((4, 2))),
    ),
    ("input-output map at a wrong point", "x", lambda r, res, s, ws, *_: D.InputOutputMap(s, ws)(np.zeros(3))),
    # snapshots
    ("training_dynamics of a vector", "result", lambda r, res, *_: D.training_dynamics(r, res.w)),
    # figures: numbers and indices
    ("boundary resolution float", "resolution", lambda r, res, *_: P.decision_boundary(r, res, resolution=2.5)),
    ("boundary resolution negative", "resolution", lambda r, res, *_: P.decision_boundary(r, res, resolution=-5)),
    ("trajectories max_points 0", "max_points", lambda r, res, *_: P.trajectories(r, res, max_points=0)),
    ("time_paths max_points 0", "max_points", lambda r, res, s, ws, *_: P.time_paths(s, ws, max_points=0)),
    ("time_paths coord past d", "coord", lambda r, res, s, ws, *_: P.time_paths(s, ws, coord=5)),
    ("layer past N", "layer", lambda r, res, *_: P.grid_deformation(r, res, layer=99)),
    ("layer float", "layer", lambda r, res, *_: P.grid_deformation(r, res, layer=2.0)),
    ("grid n_lines 0", "n_lines", lambda r, res, *_: P.grid_deformation(r, res, n_lines=0)),
    ("grid resolution 0", "resolution", lambda r, res, *_: P.grid_lines(r, resolution=0)),
    ("grid max_points negative", "max_points", lambda r, res, *_: P.grid_deformation(r, res, max_points=-1)),
    ("layers past N", "layer", lambda r, res, *_: P.layers(r, res, layers=[0, 99])),
    ("layers int", "layers", lambda r, res, *_: P.layers(r, res, layers=2)),
    ("layers empty", "layers", lambda r, res, *_: P.layers(r, res, layers=[])),
    ("layers max_points 0", "max_points", lambda r, res, *_: P.layers(r, res, layers=[0], max_points=0)),
    ("heatmap resolution 0", "resolution", lambda r, res, *_: P.theta_heatmap(r, res, resolution=0)),
    ("morse levels 0", "levels", lambda r, res, *_: P.morse_contours(r, res, levels=0)),
    ("morse resolution 0", "resolution", lambda r, res, *_: P.morse_contours(r, res, resolution=0)),
    (
        "morse points text",
        "critical_points",
        lambda r, res, *_: P.morse_contours(r, res, resolution=10, critical_points="x"),
    ),
    ("regression_fit resolution 1", "resolution", lambda r, res, s, ws, *_: P.regression_fit(s, ws, resolution=1)),
    ("flow_lines a vector", "lines", lambda r, res, *_: P.flow_lines(r, res.w, np.zeros(5))),
    ("animation fps 0", "fps", lambda r, res, *_: P.animate_flow(r, res, "a.gif", fps=0)),
    ("animation frames past N", "layer", lambda r, res, *_: P.animate_flow(r, res, "a.gif", frames=[99])),
    ("animation path suffix", "path", lambda r, res, *_: P.animate_flow(r, res, "a.xyz", frames=[0])),
    # figures: flags, choices, objects
    ("turnpike log text", "log", lambda r, res, *_: P.turnpike([(r, res)], log="no")),
    ("training_heatmap log text", "log", lambda r, res, *_: P.training_heatmap(r, res, log="yes")),
    ("turnpike quantity unknown", "quantity", lambda r, res, *_: P.turnpike_series(r, res, "bogus")),
    ("turnpike one pair", "runs", lambda r, res, *_: P.turnpike((r, res))),
    ("turnpike no runs", "runs", lambda r, res, *_: P.turnpike([])),
    ("convergence one result", "results", lambda r, res, *_: P.convergence(res)),
    ("convergence no results", "results", lambda r, res, *_: P.convergence([])),
    ("convergence unknown y", "y", lambda r, res, *_: P.convergence([res], y="bogus")),
    ("convergence x unknown", "x", lambda r, res, *_: P.convergence([res], x="epoch")),
    ("compare_curves of a string", "table", lambda *_: P.compare_curves("table")),
    ("ax not an Axes", "ax", lambda r, res, *_: P.decision_boundary(r, res, ax="ax", resolution=10)),
    ("2-D axes for 3-D states", "ax", lambda r, res, *_: P.trajectories(r, res, ax=plt.figure().add_subplot())),
    ("2-D axes for a 3-D grid", "ax", lambda r, res, *_: P.grid_deformation(r, res, ax=plt.figure().add_subplot())),
    ("fig not a Figure", "fig", lambda r, res, *_: P.layers(r, res, layers=[0], fig="fig")),
    # figures of the wrong problem kind
    ("boundary of a regression", "problem", lambda r, res, s, ws, *_: P.decision_boundary(s, ws)),
    ("regression_fit of a classifier", "problem", lambda r, res, *_: P.regression_fit(r, res)),
    ("grid of 1-D inputs", "problem", lambda r, res, s, ws, *_: P.grid_deformation(s, ws)),
    ("figure of a mismatched result", "w", lambda r, res, s, ws, *_: P.trajectories(s, res)),
]


@pytest.mark.parametrize(("name", "field", "call"), CASES, ids=[c[0] for c in CASES])
def test_bad_input_is_one_spec_error(name, field, call, ring, sin, mlp, autonomous, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # an animation that got through would write here
    _raises(field, lambda: call(*ring, *sin, *mlp, *autonomous))


@pytest.mark.parametrize(
    "call",
    [
        lambda p, r: D.turnpike(p, r),
        lambda p, r: D.pmp_residual(p, r),
        lambda p, r: D.invertibility(p, r),
        lambda p, r: D.training_dynamics(p, r),
        lambda p, r: P.decision_boundary(p, r, resolution=10),
        lambda p, r: P.theta_heatmap(p, r),
    ],
    ids=["turnpike", "pmp_residual", "invertibility", "training_dynamics", "decision_boundary", "theta_heatmap"],
)
def test_a_diverged_result_is_named_by_its_status(call, ring):
    """A solve that left NaN in w is refused with its status and message, not 'w contains NaN'."""
    message = _raises("result", lambda: call(ring[0], _failed(ring[0])))
    assert "diverged" in message and "objective became NaN" in message


def test_result_methods_of_a_diverged_solve_name_the_status(ring):
    failed = _failed(ring[0])
    failed.problem = ring[0]
    calls = (
        lambda: failed.states,
        lambda: failed.theta([0.5]),
        lambda: failed.predict(np.zeros((2, 1))),
        lambda: failed.to_casadi(),
        lambda: failed.export("casadi", "unused.casadi"),  # refused before a file is written
    )
    for call in calls:
        assert "diverged" in _raises("result", call)


def test_all_horizons_are_checked_before_the_first_solve(ring, monkeypatch):
    """A bad last horizon used to fail only after the earlier horizons were solved."""
    turnpike_module = importlib.import_module("control_dl.diagnostics.turnpike")  # the module, not the function

    def no_solve(*args, **kwargs):
        raise AssertionError("solved before the horizons were checked")

    monkeypatch.setattr(turnpike_module, "solve", no_solve)
    _raises("horizons", lambda: D.turnpike_sweep(ring[0], cdl.Direct(), [1.0, 2.0, -4.0]))


def test_valid_inputs_of_numpy_types_are_accepted(ring, sin, autonomous):
    """np.int64 / np.float64 / arrays where int / float / lists go give the same answers."""
    problem, result = ring
    plain = D.decision_region_topology(problem, result, resolution=21, extent=2.0)
    numpy = D.decision_region_topology(problem, result, resolution=np.int64(21), extent=np.float32(2.0))
    np.testing.assert_array_equal(plain.labels, numpy.labels)
    first = D.euler_convergence(*autonomous, n_steps=(2, 4), refine=2)
    second = D.euler_convergence(*autonomous, n_steps=np.array([2, 4]), refine=np.int64(2))
    np.testing.assert_allclose(first.errors, second.errors, rtol=0, atol=0)
    box = D.critical_points(*sin, bounds=[-1.0, 1.0], n_starts=np.int64(2), n_grid=50)  # (2,) box for n_in = 1
    np.testing.assert_array_equal(box.bounds, [[-1.0, 1.0]])
    assert P.grid_deformation(problem, result, layer=np.int64(2), n_lines=3, resolution=5, max_points=0) is not None


def test_invert_takes_the_states_as_nested_lists(ring):
    """x_final as nested lists is a matrix like any other: the same inversion as from the array."""
    problem, result = ring
    final = result.states[-1]
    from_array = D.invert(problem, result, final, max_iter=50)
    from_list = D.invert(problem, result, final.tolist(), max_iter=np.int64(50))
    np.testing.assert_array_equal(from_array.states, from_list.states)


def test_turnpike_figure_of_a_zero_control_draws_without_warnings(ring):
    """θ ≡ 0 (w = 0) has no positive value to put on a log axis: matplotlib warned twice per call."""
    problem = ring[0]
    w = np.zeros(problem.n_params)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        ax = P.turnpike([(problem, w)])
    assert ax.get_yscale() == "linear"
    np.testing.assert_array_equal(ax.lines[0].get_ydata(), 0.0)
    assert P.turnpike([ring]).get_yscale() == "log"


def test_a_result_of_another_network_of_the_same_size_is_refused(ring):
    """relu instead of tanh: the same n_params, so only the specs tell the networks apart."""
    problem, result = ring
    relu = cdl.load_problem("ring", n_samples=30, dim=3, n_steps=5, activation="relu")
    assert relu.n_params == problem.n_params
    assert "activation is 'tanh' there, 'relu' here" in _raises("result", lambda: D.turnpike(relu, result))
    same = cdl.load_problem("ring", n_samples=30, dim=3, n_steps=5)  # reloaded: another object, the same network
    np.testing.assert_array_equal(D.turnpike(same, result).theta_norm, D.turnpike(problem, result).theta_norm)
    other_data = cdl.load_problem("spiral", n_samples=30, dim=3, n_steps=5)  # the net on other data: allowed
    assert D.turnpike(other_data, result).theta_norm.shape == (6,)


def test_loading_a_result_onto_another_network_of_the_same_size_is_refused(ring, tmp_path):
    problem, result = ring
    path = result.save(tmp_path / "r.npz")
    relu = cdl.load_problem("ring", n_samples=30, dim=3, n_steps=5, activation="relu")
    _raises("problem", lambda: cdl.Result.load(path, problem=relu))
    assert cdl.Result.load(path, problem=problem).problem is problem


@pytest.mark.parametrize(
    "call",
    [
        lambda p, w: D.critical_points(p, w),
        lambda p, w: D.InputOutputMap(p, w),
        lambda p, w: P.morse_contours(p, w),
    ],
    ids=["critical_points", "InputOutputMap", "morse_contours"],
)
def test_the_morse_diagnostics_need_a_scalar_output(call):
    """Three classes (cross-entropy, n_out = 3): Φ is not a scalar function, so it has no Morse critical points."""
    rng = np.random.default_rng(0)
    data = cdl.Dataset.from_arrays(rng.normal(size=(30, 2)), np.arange(30) % 3)
    problem = cdl.TrainingProblem(
        data=data, dim=3, control=cdl.PiecewiseConstant(2), cost=cdl.Cost(loss="cross_entropy")
    )
    assert "n_out=3" in _raises("problem", lambda: call(problem, problem.initial_guess()))
