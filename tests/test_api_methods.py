"""Public functions and methods that no other test called by name, each checked against something
independent: finite differences, the other backend, the unflattened layout, an analytic value or
its documented error contract (found by an audit of the public API against the tests)."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import scipy.optimize

import control_dl as cdl
from control_dl.backends import get_ops
from control_dl.diagnostics.morse import InputOutputMap
from control_dl.experiments.store import RunStore
from control_dl.experiments.sweep import Run
from control_dl.problems.datasets import as_features, encode_labels
from control_dl.result import atomic_write_bytes, package_versions, temporary_sibling

numpy_ops = get_ops("numpy")


# ----------------------------------------------------------------------------- problems
def test_theta_vector_picks_the_blocks_unflatten_reports_and_is_linear(small_ring):
    p = small_ring
    w = p.initial_guess(seed=1)
    thetas = p.unflatten(w)["theta"]
    n = len(thetas)
    for k in (0, n - 1):
        weights = np.eye(n)[k]
        theta = p.theta_vector(w, weights, numpy_ops)
        unpacked = p.layout.unpack(theta, p.dynamics.stage_shapes(k), numpy_ops)
        for name, value in thetas[k].items():
            np.testing.assert_array_equal(np.reshape(unpacked[name], np.shape(value)), value)
    # θ = Σ_j a_j C_j: a combination of two blocks is the combination of their vectors
    mix = p.theta_vector(w, np.r_[0.5, -2.0, np.zeros(n - 2)], numpy_ops)
    expected = 0.5 * p.theta_vector(w, np.eye(n)[0], numpy_ops) - 2.0 * p.theta_vector(w, np.eye(n)[1], numpy_ops)
    np.testing.assert_allclose(mix, expected, rtol=0, atol=1e-15)
    assert p.dynamics.theta_vector(w, np.eye(n)[2], numpy_ops).shape == (p.layout.n_theta // n,)


def test_initial_theta_is_the_start_of_initial_guess_and_scales(small_ring):
    p = small_ring
    theta = p.dynamics.initial_theta(np.random.default_rng(3), 1.0)
    assert theta.shape == (p.layout.n_theta,)
    np.testing.assert_array_equal(theta, p.initial_guess(seed=3)[: p.layout.n_theta])
    # the scale multiplies the standard deviation of the same draws
    np.testing.assert_allclose(p.dynamics.initial_theta(np.random.default_rng(3), 2.5), 2.5 * theta)


def test_layer_stack_initial_theta_uses_fan_in_scaling():
    net = cdl.FeedForward(widths=(2, 400, 1))
    p = cdl.TrainingProblem(data=cdl.datasets.ring(20, seed=0), model=net)
    theta = p.dynamics.initial_theta(np.random.default_rng(0), 1.0)
    assert theta.shape == (p.layout.n_theta,) == (400 * 2 + 400 + 400 + 1,)
    # θ_0 = (A_0, b_0), 1200 entries ~ N(0, 1/2); θ_1 = (A_1, b_1), 401 entries ~ N(0, 1/400)
    assert np.std(theta[:1200]) == pytest.approx(1 / np.sqrt(2), rel=0.1)
    assert np.std(theta[1200:]) == pytest.approx(1 / np.sqrt(400), rel=0.1)
    np.testing.assert_allclose(p.dynamics.initial_theta(np.random.default_rng(0), 3.0), 3.0 * theta)


def test_feedforward_layer_shapes_and_activations():
    net = cdl.FeedForward(widths=(2, 5, 4, 1), activation="relu", output_activation="identity")
    assert net.n_layers == 3
    assert [net.layer_shapes(k) for k in range(3)] == [
        {"A": (5, 2), "b": (5,)},
        {"A": (4, 5), "b": (4,)},
        {"A": (1, 4), "b": (1,)},
    ]
    assert [net.layer_activation(k) for k in range(3)] == ["relu", "relu", "identity"]


def test_batch_objective_is_the_objective_and_shards_add_up(small_ring):
    p = small_ring
    w = p.initial_guess(seed=2)
    x, y = p.data.x_train, p.targets
    j, loss, predictions = p.batch_objective(w, x, y, numpy_ops)
    assert float(j) == pytest.approx(p.objective(w), rel=1e-12)
    assert float(loss) == pytest.approx(p.objective_and_loss(w)[1], rel=1e-12)
    assert predictions.shape == (p.layout.n_out, x.shape[1])
    # shards with n = S and R on one shard only sum to J (the Dask engine's convention)
    s = x.shape[1]
    first = p.batch_objective(w, x[:, :15], y[:, :15], numpy_ops, normaliser=s)[0]
    rest = p.batch_objective(w, x[:, 15:], y[:, 15:], numpy_ops, normaliser=s, regulariser=False)[0]
    assert float(first + rest) == pytest.approx(float(j), rel=1e-12)


def test_batch_objective_on_torch_is_differentiable_and_agrees(small_ring):
    torch = pytest.importorskip("torch")
    p = small_ring
    w = p.initial_guess(seed=2)
    wt = torch.tensor(w, requires_grad=True)
    xt, yt = torch.tensor(p.data.x_train), torch.tensor(p.targets)
    j, _, _ = p.batch_objective(wt, xt, yt, get_ops("torch"))
    j.backward()
    assert j.item() == pytest.approx(p.objective(w), rel=1e-12)
    np.testing.assert_allclose(wt.grad.numpy(), p.gradient(w), rtol=1e-8, atol=1e-12)


def test_check_w_returns_float64_and_names_the_field(small_ring):
    p = small_ring
    w = p.check_w(list(p.initial_guess(0)))
    assert w.dtype == np.float64 and w.shape == (p.n_params,)
    with pytest.raises(cdl.SpecError, match=rf"w0 has 3 entries.*n_params={p.n_params}"):
        p.check_w([1.0, 2.0, 3.0], field="w0")
    bad = np.zeros(p.n_params)
    bad[4] = np.nan
    with pytest.raises(cdl.SpecError, match="w contains NaN"):
        p.check_w(bad)
    with pytest.raises(cdl.SpecError, match="must be an array"):
        p.check_w({"a": 1})


# ----------------------------------------------------------------------------- data
def test_dataset_transform_standardises_the_training_split_and_inverts():
    rng = np.random.default_rng(0)
    X = rng.normal([5.0, -3.0], [2.0, 0.1], size=(200, 2))
    y = (X[:, 0] > 5).astype(int)
    data = cdl.Dataset.from_arrays(X, y, standardize=True, seed=0)
    np.testing.assert_allclose(data.x_train.mean(axis=1), 0.0, atol=1e-12)
    np.testing.assert_allclose(data.x_train.std(axis=1), 1.0, rtol=1e-12)
    raw = X[:3].T
    z = data.transform(raw)
    np.testing.assert_allclose(z, (raw - data.mean[:, None]) / data.scale[:, None])
    np.testing.assert_allclose(data.inverse_transform(z), raw, rtol=1e-14)
    plain = cdl.Dataset.from_arrays(X, y, seed=0)
    np.testing.assert_array_equal(plain.transform(raw), raw)


def test_as_features_transposes_samples_and_rejects_ambiguous_shapes():
    X = np.arange(12.0).reshape(4, 3)  # 4 samples of 3 features
    np.testing.assert_array_equal(as_features(X, 3, layout="samples"), X.T)
    np.testing.assert_array_equal(as_features(X.T, 3), X.T)
    with pytest.raises(cdl.SpecError, match="must be a matrix"):
        as_features(np.arange(3.0), 3)
    with pytest.raises(cdl.SpecError, match="layout"):
        as_features(X, 3, layout="columns")
    with pytest.raises(cdl.SpecError, match="X_new"):
        as_features(X, 3, layout="features", field="X_new")


def test_encode_labels_sorts_string_classes_and_infers_the_task():
    task, encoded, names = encode_labels(np.array(["dog", "cat", "dog", "emu"]))
    assert task == "multiclass" and names == ("cat", "dog", "emu")
    np.testing.assert_array_equal(encoded, [1, 0, 1, 2])
    task, encoded, names = encode_labels([np.array([0, 1, 1]), np.array([1, 0])])
    assert task == "binary" and names is None
    np.testing.assert_array_equal(encoded[1], [1, 0])
    task, _, names = encode_labels(np.array([0.5, 1.5]))
    assert task == "regression" and names is None
    with pytest.raises(cdl.SpecError, match="task"):
        encode_labels(np.array(["a", "b"]), task="regression")


# ----------------------------------------------------------------------------- engines
def test_batch_spec_rebinds_the_same_engine_on_another_batch(small_ring):
    p = small_ring
    w = p.initial_guess(seed=0)
    x, y = p.data.x_train, p.targets
    spec = cdl.engines.Casadi(jit=False)
    engine = spec.bind(p, x, y)
    assert engine.batch_spec() == spec
    half = engine.batch_spec().bind(p, x[:, :20], y[:, :20])
    expected = p.batch_objective(w, x[:, :20], y[:, :20], numpy_ops)[0]
    assert half.evaluate(w, gradient=False).objective == pytest.approx(float(expected), rel=1e-12)


def test_casadi_model_pieces_agree_with_the_numpy_model(small_ring):
    ca = pytest.importorskip("casadi")
    p = small_ring
    model = cdl.engines.casadi_model(p)
    w = p.initial_guess(seed=4)
    x, y = p.data.x_train, p.targets
    # the objective and its gradient (functions / objective_expr / objective_parts) against numpy and torch
    j, loss = model.objective(w, x, y)
    assert (j, loss) == pytest.approx(p.objective_and_loss(w), rel=1e-12)
    _, g = model.objective_gradient(w, x, y)
    np.testing.assert_allclose(g, p.gradient(w, backend="torch"), rtol=1e-9, atol=1e-12)
    # the states (trajectory_expr / mapped / step_at / stage_vector) against the numpy forward pass
    wm = ca.MX.sym("w", p.n_params)
    states = ca.Function("X", [wm], model.trajectory_expr(wm, ca.DM(x)))(w)
    forward = p.forward(w)
    assert len(states) == forward.shape[0] == p.n_steps + 1
    for k, state in enumerate(states):
        np.testing.assert_allclose(np.asarray(state), forward[k], rtol=1e-12, atol=1e-14)
    # one stage on one sample
    theta_k = ca.Function("T", [wm], [model.stage_vector(wm, 2)])(w)
    column = np.asarray(model.step_at(2)(forward[2][:, :1], theta_k)).ravel()
    np.testing.assert_allclose(column, forward[3][:, 0], rtol=1e-12, atol=1e-14)


# ----------------------------------------------------------------------------- diagnostics
def test_input_output_map_grad_norms_match_finite_differences(small_ring):
    p = small_ring
    w = p.initial_guess(seed=0)
    phi = InputOutputMap(p, w)
    points = np.array([[0.3, -0.7, 1.1], [0.2, 0.5, -0.4]])
    eps = 1e-6
    expected = []
    for m in range(points.shape[1]):
        grad = [
            (float(phi(points[:, m] + eps * e)[0]) - float(phi(points[:, m] - eps * e)[0])) / (2 * eps)
            for e in np.eye(2)
        ]
        expected.append(np.linalg.norm(grad))
    np.testing.assert_allclose(phi.grad_norms(points), expected, rtol=1e-6)


# ----------------------------------------------------------------------------- solvers
def test_next_rho_grows_on_rejection_shrinks_on_good_steps_and_clamps():
    msa = cdl.MSA(rho=1.0, rho_factor=3.0, rho_min=0.5, rho_max=20.0)
    assert msa.next_rho(1.0, accepted=False, ratio=0.9) == 3.0
    assert msa.next_rho(1.0, accepted=True, ratio=0.05) == 3.0  # poor agreement: grow
    assert msa.next_rho(9.0, accepted=True, ratio=0.3) == 9.0  # fair: keep
    assert msa.next_rho(9.0, accepted=True, ratio=0.9) == 3.0  # good: shrink
    assert msa.next_rho(10.0, accepted=False, ratio=0.0) == 20.0  # never above rho_max
    assert msa.next_rho(0.6, accepted=True, ratio=0.9) == 0.5  # never below min(ρ₀, rho_min)
    assert msa.next_rho(0.1, accepted=False, ratio=0.0) == 0.5  # from below rho_min: at least rho_min


@pytest.mark.parametrize(
    ("options", "method"),
    [(cdl.LbfgsbOptions(maxcor=7), "L-BFGS-B"), (cdl.TrustNcgOptions(eta=0.1), "trust-ncg")],
)
def test_scipy_options_are_all_accepted_by_scipy(options, method):
    got = options.scipy_options(max_iter=30, tol=1e-7)
    assert got["maxiter"] == 30 and got["gtol"] == 1e-7
    if method == "L-BFGS-B":
        assert got["maxcor"] == 7 and got["ftol"] == 1e-7 and got["maxfun"] == 20 * 30 + 100
    else:
        assert got["eta"] == 0.1
    rosen = {"jac": scipy.optimize.rosen_der, "hessp": scipy.optimize.rosen_hess_prod}
    if method == "L-BFGS-B":
        del rosen["hessp"]
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # scipy warns on an option it does not know
        out = scipy.optimize.minimize(scipy.optimize.rosen, np.zeros(3), method=method, options=got, **rosen)
    assert out.nit <= 30


def test_recorder_elapsed_is_the_clock_of_the_history(small_ring):
    from control_dl.solvers.base import Recorder

    recorder = Recorder(small_ring, 2, False)
    w = small_ring.initial_guess(0)
    before = recorder.elapsed()
    recorder.log(0, w, *small_ring.objective_and_loss(w))
    after = recorder.elapsed()
    assert 0.0 <= before <= recorder.history[0]["time"] <= after


# ----------------------------------------------------------------------------- plotting helpers
def test_grid_lines_cover_the_input_plane_and_flow_lines_push_them_through(small_ring):
    p = small_ring
    lines = cdl.plotting.grid_lines(p, n_lines=4, resolution=7)
    assert lines.shape == (8, 2, 7)
    assert np.ptp(lines[:4, 0], axis=1).max() == 0.0  # the first lines keep x_1 constant
    assert np.ptp(lines[4:, 1], axis=1).max() == 0.0
    w = p.initial_guess(seed=0)
    flowed = cdl.plotting.flow_lines(p, w, lines)
    assert flowed.shape == (p.n_steps + 1, 8, p.dim, 7)
    np.testing.assert_allclose(flowed[-1][5], p.forward(w, lines[5])[-1])
    np.testing.assert_allclose(flowed[0][2][:2], lines[2])  # λ1 zero-pads: x_0 = (x, 0)
    np.testing.assert_array_equal(flowed[0][2][2], 0.0)
    with pytest.raises(ValueError, match="grid of the input plane needs"):  # a SpecError is a ValueError
        cdl.plotting.grid_lines(cdl.load_problem("sin", n_samples=10, dim=2, n_steps=2))


# ----------------------------------------------------------------------------- files and the run store
def test_atomic_write_bytes_replaces_and_leaves_no_temporary(tmp_path):
    target = tmp_path / "out.bin"
    atomic_write_bytes(target, b"first")
    atomic_write_bytes(target, b"second")
    assert target.read_bytes() == b"second"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.bin"]
    sibling = temporary_sibling(target)
    assert sibling.parent == tmp_path and sibling.name.startswith(".") and sibling.name.endswith(".tmp")
    assert temporary_sibling(target) != sibling


def test_package_versions_report_the_installed_versions():
    versions = package_versions()
    assert versions["numpy"] == np.__version__
    assert versions["control_dl"] == cdl.__version__


def test_run_store_finished_needs_the_result_file(tmp_path):
    run = Run(run_id="abc", params={"seed": 0}, point={"seed": 0})
    other = Run(run_id="def", params={"seed": 1}, point={"seed": 1})
    assert RunStore.result_file("abc") == "runs/abc.npz"
    with RunStore(tmp_path, writable=True) as store:
        (tmp_path / "runs").mkdir(exist_ok=True)
        (tmp_path / "runs" / "abc.npz").write_bytes(b"x")
        (tmp_path / "runs" / ".half.npz.tmp").write_bytes(b"x")
        for r in (run, other):
            store.record(r, {"status": "converged", "result_path": RunStore.result_file(r.run_id)})
        assert store.finished() == {"abc"}  # "def" is indexed but its file is missing
        assert [p.name for p in store.remove_temporaries()] == [".half.npz.tmp"]
        assert sorted(p.name for p in (tmp_path / "runs").iterdir()) == ["abc.npz"]


def test_compare_curves_draw_the_median_over_seeds_per_iteration(small_ring):
    pytest.importorskip("torch")
    solvers = [
        cdl.TorchTrainer(optimizer="adam", lr=0.05, epochs=6),
        cdl.TorchTrainer(optimizer="sgd", lr=0.1, epochs=4),
    ]
    table = cdl.compare(small_ring, solvers, seeds=(0, 1, 2))
    ax_time, ax_iter = cdl.plotting.compare_curves(table)
    assert [line.get_label() for line in ax_iter.get_lines()] == list(table.results)
    for line, results in zip(ax_iter.get_lines(), table.results.values(), strict=True):
        curves = [[h["objective"] for h in r.history] for r in results]
        n = max(map(len, curves))
        padded = np.array([c + [c[-1]] * (n - len(c)) for c in curves])
        np.testing.assert_allclose(line.get_ydata(), np.median(padded, axis=0))
        np.testing.assert_array_equal(line.get_xdata(), np.arange(n))
    assert len(ax_time.get_lines()) == 2 and ax_time.get_xscale() == "log"
    assert ax_iter.get_xlabel() == "iteration" and ax_time.get_xlabel() == "wall time since the first iterate [s]"


def test_takes_any_engine_decides_which_engines_a_direct_solver_accepts():
    assert cdl.Direct(nlp="lbfgsb").takes_any_engine
    assert cdl.Direct(nlp="ipopt", transcription="single_shooting", hessian="lbfgs").takes_any_engine
    assert not cdl.Direct(nlp="ipopt", transcription="multiple_shooting", hessian="lbfgs").takes_any_engine
    assert not cdl.Direct(nlp="ipopt", transcription="single_shooting", hessian="exact").takes_any_engine
    cdl.Direct(nlp="lbfgsb", engine="torch")  # accepted
    with pytest.raises(cdl.SpecError, match="engine"):
        cdl.Direct(nlp="ipopt", transcription="multiple_shooting", engine="torch")


@pytest.mark.parametrize("transcription", ["single_shooting", "multiple_shooting"])
def test_transcribe_starts_feasible_at_the_forward_pass(small_ring, transcription):
    ca = pytest.importorskip("casadi")
    p = small_ring
    w0 = p.initial_guess(seed=0)
    tr = cdl.Direct(nlp="ipopt", transcription=transcription, hessian="exact").transcribe(p, w0)
    assert tr.n_w == p.n_params
    np.testing.assert_array_equal(tr.z0[: p.n_params], w0)
    values = ca.Function("nlp", [tr.z], [tr.objective, tr.g])(tr.z0)
    assert float(values[0]) == pytest.approx(p.objective(w0), rel=1e-12)
    g = np.asarray(values[1]).ravel()
    if transcription == "multiple_shooting":  # the states' guess is w0's forward pass: continuity holds
        assert g.size == p.n_steps * p.dim * p.data.x_train.shape[1]
        np.testing.assert_allclose(g, 0.0, atol=1e-12)
        assert tr.z0.size == p.n_params + g.size
    else:
        assert g.size == 0
