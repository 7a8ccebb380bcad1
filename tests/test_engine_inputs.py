"""Bad input to an engine is one SpecError naming it, on every engine (the checks live in ``Engine``).

Also: ``engine="auto"`` drops a candidate that fails and keeps the one that works.
"""

from __future__ import annotations

import logging

import numpy as np
import pytest

import control_dl as cdl
from control_dl import engines
from control_dl.engines import _auto

torch = pytest.importorskip("torch")

LOCAL = {"casadi": engines.Casadi(jit=False), "torch": engines.Torch()}  # uncompiled: no compile time


@pytest.fixture(scope="module")
def ring() -> cdl.TrainingProblem:
    return cdl.load_problem("ring", n_samples=60, dim=3, n_steps=5)


def _bind(ring, name, x=None, y=None, **kwargs):
    x = ring.data.x_train if x is None else x
    y = ring.targets if y is None else y
    return engines.make_engine(LOCAL[name], ring, x, y, **kwargs)


# --------------------------------------------------------------------------- the batch, at make_engine
BAD_BATCHES = [
    ("x transposed", lambda p: {"x": p.data.x_train.T}, r"x='array of shape \(60, 2\)'.*transposed"),
    ("x one row short", lambda p: {"x": p.data.x_train[:1]}, r"x='array of shape \(1, 60\)'.*2 × S"),
    ("x a vector", lambda p: {"x": p.data.x_train[0]}, r"x='array of shape \(60,\)'"),
    ("x no samples", lambda p: {"x": p.data.x_train[:, :0], "y": p.targets[:, :0]}, r"x=.*S ≥ 1"),
    ("x strings", lambda p: {"x": np.full((2, 60), "a")}, r"x='<U1 array'"),
    ("x complex", lambda p: {"x": p.data.x_train + 1j}, r"x='complex128 array'"),
    ("x a NaN", lambda p: {"x": np.where(np.arange(60) == 7, np.nan, p.data.x_train)}, r"x=.*finite.*column 7"),
    ("y labels (S,)", lambda p: {"y": p.data.y_train}, r"y='array of shape \(60,\)'.*class labels"),
    ("y 10 of 60 columns", lambda p: {"y": p.targets[:, :10]}, r"y='array of shape \(1, 10\)'.*1 × 60"),
    ("y 1 x 1", lambda p: {"y": np.ones((1, 1))}, r"y='array of shape \(1, 1\)'"),
    ("y two rows, n_out=1", lambda p: {"y": np.vstack([p.targets, p.targets])}, r"y='array of shape \(2, 60\)'"),
    ("y transposed", lambda p: {"y": p.targets.T}, r"y=.*transposed"),
    ("y an inf", lambda p: {"y": np.where(np.arange(60) == 3, np.inf, p.targets)}, r"y=.*finite.*column 3"),
    ("normaliser 0", lambda p: {"normaliser": 0}, r"normaliser=0: must be a finite number > 0"),
    ("normaliser -5", lambda p: {"normaliser": -5}, r"normaliser=-5: must be a finite number > 0"),
    ("normaliser nan", lambda p: {"normaliser": float("nan")}, r"normaliser=nan"),
    ("normaliser a string", lambda p: {"normaliser": "60"}, r"normaliser='60'"),
    ("regulariser 'no'", lambda p: {"regulariser": "no"}, r"regulariser='no': must be True or False"),
]


@pytest.mark.parametrize("name", ["casadi", "torch", "auto"])
@pytest.mark.parametrize(("case", "make", "message"), BAD_BATCHES, ids=[c[0] for c in BAD_BATCHES])
def test_a_bad_batch_is_one_spec_error_at_make_engine(ring, name, case, make, message):
    """Before: J = 0.7525 from 10 of 100 columns, J < 0 for normaliser=-5, inf, or CasADi/torch tracebacks."""
    kwargs = {"x": ring.data.x_train, "y": ring.targets, **make(ring)}
    spec = engines.Auto(casadi=LOCAL["casadi"]) if name == "auto" else LOCAL[name]
    with pytest.raises(cdl.SpecError, match=message):
        engines.make_engine(spec, ring, **kwargs)


@pytest.mark.parametrize("name", ["casadi", "torch"])
def test_a_good_batch_in_other_types_gives_the_same_objective(ring, name):
    """float32 x, a cpu tensor x, a normaliser given as a numpy number: accepted, converted, same J."""
    w = ring.initial_guess(0)
    ref = _bind(ring, name).evaluate(w).objective
    for x in (ring.data.x_train.astype(np.float32), torch.as_tensor(ring.data.x_train)):
        assert _bind(ring, name, x=x).evaluate(w).objective == pytest.approx(ref, rel=1e-6)
    halved = _bind(ring, name, normaliser=np.float64(120.0), regulariser=np.bool_(False))
    assert halved.normaliser == 120.0 and halved.regulariser is False


# --------------------------------------------------------------------------- w and friends, on every call
def _bad_calls(ring):
    w = ring.initial_guess(0)
    n = ring.n_params
    return [
        ("evaluate, w one short", lambda e: e.evaluate(w[:-1]), rf"w='array of shape \({n - 1},\)'.*n_params={n}"),
        ("evaluate, w a row", lambda e: e.evaluate(w[None, :]), rf"w='array of shape \(1, {n}\)'"),
        ("evaluate, w complex", lambda e: e.evaluate(w + 0j), r"w='complex128 array'"),
        ("evaluate, w bools", lambda e: e.evaluate(np.ones(n, bool)), r"w='bool array'"),
        ("evaluate, w a string", lambda e: e.evaluate("w"), r"w='<U1 array'"),
        ("evaluate, w ragged", lambda e: e.evaluate([[1.0], [1.0, 2.0]]), r"w='list'"),
        ("evaluate, tensor w with grad", lambda e: e.evaluate(torch.zeros(n, requires_grad=True)), r"w='Tensor'"),
        ("evaluate, gradient 'yes'", lambda e: e.evaluate(w, gradient="yes"), r"gradient='yes'"),
        ("gauss_newton_product, v short", lambda e: e.gauss_newton_product(w, w[:3]), r"v='array of shape \(3,\)'"),
        ("gauss_newton_product, w short", lambda e: e.gauss_newton_product(w[:3], w), r"w='array of shape \(3,\)'"),
        ("states, w short", lambda e: e.states(w[:-1]), r"w='array of shape"),
        ("sweep, w short", lambda e: e.sweep(w[:-1]), r"w='array of shape"),
        (
            "augmented_hamiltonian, rho -1",
            lambda e: e.augmented_hamiltonian(e.sweep(w), _thetas(ring, w), -1.0),
            r"rho=-1.0: must be a finite number >= 0",
        ),
        (
            "augmented_hamiltonian, hessian 'no'",
            lambda e: e.augmented_hamiltonian(e.sweep(w), _thetas(ring, w), 0.0, hessian="no"),
            r"hessian='no'",
        ),
        (
            "augmented_hamiltonian, thetas short",
            lambda e: e.augmented_hamiltonian(e.sweep(w), _thetas(ring, w)[:-1], 0.0),
            r"thetas=4: must hold one Θ_k per step, N=5",
        ),
    ]


def _thetas(problem, w):
    from control_dl.backends import numpy_ops

    return [np.concatenate(problem.stage_thetas(w, k, numpy_ops)) for k in range(problem.n_steps)]


@pytest.mark.parametrize("name", ["casadi", "torch"])
def test_a_bad_argument_to_an_engine_method_is_one_spec_error(ring, name):
    """Before: CasADi 'Input 0 (w) has mismatching shape', torch 'shape [1, 1] is invalid', or accepted."""
    engine = _bind(ring, name)
    for case, call, message in _bad_calls(ring):
        with pytest.raises(cdl.SpecError, match=message):
            call(engine)
        assert case  # the case's name shows in the traceback of a failure


@pytest.mark.parametrize("name", ["casadi", "torch"])
def test_w_as_a_list_float32_or_cpu_tensor_is_accepted_alike_on_every_engine(ring, name):
    """Before: a torch tensor w worked on torch, and raised NotImplementedError on CasADi."""
    w = ring.initial_guess(0)
    engine = _bind(ring, name)
    ref = engine.evaluate(w)
    for other in (list(w), w.astype(np.float32), torch.as_tensor(w)):
        ev = engine.evaluate(other)
        assert ev.objective == pytest.approx(ref.objective, rel=1e-6)
        np.testing.assert_allclose(ev.gradient, ref.gradient, rtol=1e-5, atol=1e-12)
    np.testing.assert_allclose(
        engine.gauss_newton_product(torch.as_tensor(w), list(w)), engine.gauss_newton_product(w, w)
    )
    assert np.isnan(engine.evaluate(np.full_like(w, np.nan)).objective)  # a diverged iterate: NaN, not an error


def test_an_engine_of_your_own_gets_the_checks():
    """The checks wrap every subclass's methods (Engine.__init_subclass__), not only the bundled engines'."""
    seen = []

    class Echo(engines.Engine):
        name = "echo"

        def evaluate(self, w, gradient=True):
            seen.append(w)
            return engines.Evaluation(float(np.sum(w)), 0.0, None, None, self.n_samples)

        def gauss_newton_product(self, w, v):
            return v

        def states(self, w):
            return []

        def sweep(self, w):
            return engines.Sweep(w)

        def augmented_hamiltonian(self, sweep, thetas, rho, hessian=False):
            return engines.StageValues(np.zeros(0), [])

    problem = cdl.load_problem("ring", n_samples=10, dim=3, n_steps=2)
    with pytest.raises(cdl.SpecError, match="normaliser=-1"):
        Echo(problem, problem.data.x_train, problem.targets, normaliser=-1)
    engine = Echo(problem, problem.data.x_train, problem.targets)
    with pytest.raises(cdl.SpecError, match="w="):
        engine.evaluate(np.zeros(3))
    assert engine.evaluate(list(range(problem.n_params))).objective == sum(range(problem.n_params))
    assert seen[-1].dtype == np.float64 and seen[-1].shape == (problem.n_params,)
    assert Echo.evaluate.__doc__ is None and Echo.evaluate.__name__ == "evaluate"


# --------------------------------------------------------------------------- the Dask engine
def test_the_dask_engine_checks_the_batch_before_any_cluster_and_w_on_every_call(ring):
    distributed = pytest.importorskip("distributed")
    from control_dl.engines.dask import Dask

    with pytest.raises(cdl.SpecError, match=r"y='array of shape \(1, 10\)'"):
        engines.make_engine(
            Dask(workers=1, processes=False, local=LOCAL["casadi"]), ring, ring.data.x_train, ring.targets[:, :10]
        )
    with (
        distributed.LocalCluster(n_workers=1, threads_per_worker=1, processes=False, dashboard_address=None) as cluster,
        distributed.Client(cluster) as client,
        engines.make_engine(Dask(client, local=LOCAL["casadi"]), ring, ring.data.x_train, ring.targets) as engine,
    ):
        w = ring.initial_guess(0)
        with pytest.raises(cdl.SpecError, match=r"w='array of shape"):
            engine.evaluate(w[:-1])
        with pytest.raises(cdl.SpecError, match=r"v='array of shape"):
            engine.gauss_newton_product(w, w[:2])
        assert engine.evaluate(torch.as_tensor(w)).objective == pytest.approx(
            _bind(ring, "casadi").evaluate(w).objective
        )


# --------------------------------------------------------------------------- auto: a failing candidate
class NpField:
    """A field written with numpy (np.tanh): fine on CasADi symbols, an error on tensors that require grad."""

    def param_shapes(self, dim):
        return {"a": (dim,)}

    def __call__(self, x, params, ops):
        return np.tanh(x) * params["a"]


@pytest.fixture
def np_problem():
    return cdl.TrainingProblem(
        data=cdl.datasets.ring(30, seed=0), field=NpField(), dim=3, control=cdl.PiecewiseConstant(n_steps=3)
    )


@pytest.mark.filterwarnings("ignore")  # casadi's and numpy's warnings about numpy functions on casadi values
def test_auto_drops_a_candidate_that_fails_and_says_why(np_problem, caplog):
    """Before: RuntimeError "Can't call numpy() on Tensor that requires grad" from auto's timing."""
    problem = np_problem
    auto = engines.Auto(casadi=LOCAL["casadi"])
    with caplog.at_level(logging.WARNING, logger="control_dl.engines._auto"):
        engine = engines.make_engine(auto, problem, problem.data.x_train, problem.targets)
    assert engine.name == "casadi"
    info = engine.info["auto"]
    assert info["failed"]["torch"].startswith("RuntimeError: Can't call numpy() on Tensor that requires grad")
    assert set(info["timings_s"]) == {"casadi"}
    assert info["reason"].startswith("only casadi works (torch failed: RuntimeError")
    assert "dropped the torch engine" in caplog.text and "using casadi" in caplog.text
    w = problem.initial_guess(0)
    assert engine.evaluate(w).objective == pytest.approx(problem.objective(w, backend="casadi"), rel=1e-12)


@pytest.mark.filterwarnings("ignore")
def test_auto_falls_back_to_a_prescreened_casadi_when_torch_fails(np_problem, monkeypatch):
    """The pre-screen skips CasADi as slow; a torch that fails makes CasADi the answer after all."""
    monkeypatch.setattr(_auto, "CASADI_MAX_WIDTH", 3)
    problem = np_problem
    engine = engines.make_engine(engines.Auto(casadi=LOCAL["casadi"]), problem, problem.data.x_train, problem.targets)
    assert engine.name == "casadi"
    assert "torch" in engine.info["auto"]["failed"] and engine.info["auto"]["skipped"] == {}
    assert engine.info["auto"]["timings_s"] == {}


@pytest.mark.filterwarnings("ignore")
def test_a_solve_with_auto_runs_on_the_candidate_that_works(np_problem):
    result = cdl.solve(np_problem, cdl.load_solver("lbfgsb", max_iter=3, jit=False), progress=False)
    assert result.engine["name"] == "casadi"
    assert "torch" in result.engine["auto"]["failed"]
    assert np.isfinite(result.objective)


def test_auto_with_no_working_candidate_is_one_spec_error(ring, monkeypatch):
    def broken(engine, w):
        raise RuntimeError(f"{engine.name} is broken\nsecond line")

    monkeypatch.setattr(_auto, "time_evaluation", broken)
    with pytest.raises(
        cdl.SpecError, match=r"engine='auto': no candidate .*casadi: RuntimeError: casadi is broken; torch"
    ):
        engines.make_engine(engines.Auto(casadi=LOCAL["casadi"]), ring, ring.data.x_train, ring.targets)


def test_a_bad_option_of_an_auto_candidate_is_raised_not_dropped(ring):
    """Auto(torch=Torch(device="cuda")) without a GPU: the device option cannot act, so it is refused."""
    if torch.cuda.is_available():
        pytest.skip("a CUDA device is available here: the option acts")
    auto = engines.Auto(casadi=LOCAL["casadi"], torch=engines.Torch(device="cuda"))
    with pytest.raises(cdl.SpecError, match="device='cuda': no CUDA device"):
        engines.make_engine(auto, ring, ring.data.x_train, ring.targets)


def test_a_lone_auto_candidate_is_tried_once_untimed(ring, monkeypatch):
    """Only torch (pre-screen): evaluated once, so a failure shows at set-up, not in the solver."""
    monkeypatch.setattr(_auto, "CASADI_MAX_WIDTH", 3)
    calls = []
    original = engines.TorchEngine.evaluate
    monkeypatch.setattr(
        engines.TorchEngine, "evaluate", lambda self, *a, **k: calls.append(1) or original(self, *a, **k)
    )
    engine = engines.make_engine("auto", ring, ring.data.x_train, ring.targets)
    assert engine.name == "torch" and len(calls) == 1 and engine.info["auto"]["timings_s"] == {}


# --------------------------------------------------------------------------- Casadi(parallelization=...)
def test_casadi_thread_parallelization_with_jit_acts_on_the_sweep_and_says_so(ring):
    """jit=True with "thread": J/∇J compiled serial, the sweep threaded (not a no-op, so not refused)."""
    w = ring.initial_guess(0)
    serial = _bind(ring, "casadi")
    threaded = engines.make_engine(
        engines.Casadi(jit=True, parallelization="thread"), ring, ring.data.x_train, ring.targets
    )
    assert threaded.sweep_model.parallelization == "thread" and threaded.model.parallelization == "serial"
    assert threaded.info["parallelization"].startswith("thread (states and sweep;")
    assert serial.info["parallelization"] == "serial"
    for a, b in zip(threaded.sweep(w).costates, serial.sweep(w).costates, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-15)
