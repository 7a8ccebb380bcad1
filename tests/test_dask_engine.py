"""The Dask data-parallel engine against a local engine on the whole batch (LocalCluster, 2 workers).

Workers are threads of this process (``processes=False``): the shards still go through scatter,
actors and the (in-process) comms; the benchmark ``benchmarks/dask_scaling.py`` runs real processes.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import platform
import sys
import threading
import time
from dataclasses import dataclass
from typing import Any

import numpy as np
import pytest
from scipy.optimize import minimize

import control_dl as cdl
from control_dl.engines import Auto, Casadi, CasadiEngine, Engine, make_engine
from control_dl.problems.costs import predict_labels
from control_dl.solvers.checkpoint import checkpoint_iteration, load_checkpoint

distributed = pytest.importorskip("distributed")
from control_dl.engines.dask import Dask, DaskEngineError  # noqa: E402

RTOL = 1e-12
#: the scheduler's HTTP server on a free port (on 8787 a second cluster warns that it is taken)
NO_HTTP_PORT = {"dashboard_address": ":0"}


LOCAL = Casadi(jit=False)  # uncompiled: no compile time in the suite; the same Functions as with jit
#: the in-process test clusters' comms are inproc, where "auto" means actor calls: both are asked for
TRANSPORTS = ["actor", "socket"]


@dataclass(frozen=True)
class Truncating(Casadi):
    """A broken local engine: binds to its shard minus its first column."""

    def bind(self, problem: Any, x: np.ndarray, y: np.ndarray, normaliser: Any = None, regulariser: bool = True):
        return super().bind(problem, x[:, 1:], y[:, 1:], normaliser, regulariser)


# --------------------------------------------------------------------------- fixtures
@pytest.fixture(scope="module")
def client():
    with (
        distributed.LocalCluster(
            n_workers=2, threads_per_worker=1, processes=False, dashboard_address=None, scheduler_kwargs=NO_HTTP_PORT
        ) as cluster,
        distributed.Client(cluster) as c,
    ):
        yield c


@pytest.fixture(scope="module")
def ring() -> cdl.TrainingProblem:
    return cdl.load_problem("ring", n_samples=60, dim=3, n_steps=5, l2=1e-2, turnpike=0.1)


def _close(a: np.ndarray, b: np.ndarray) -> bool:
    return bool(np.linalg.norm(np.ravel(a) - np.ravel(b)) <= RTOL * np.linalg.norm(np.ravel(b)))


# --------------------------------------------------------------------------- tests
@pytest.mark.parametrize("transport", TRANSPORTS)
@pytest.mark.parametrize("n_shards", [2, 3])
def test_sums_equal_the_local_engine(client, ring, n_shards, transport):
    """J, loss, ∇J, correct count, G·v and states through 2 or 3 shards = one local engine, to 1e-12."""
    x, y = ring.data.x_train, ring.targets
    local = make_engine(LOCAL, ring, x, y)
    w = ring.initial_guess(seed=1)
    v = np.random.default_rng(0).normal(size=w.size)
    with make_engine(Dask(client, n_shards=n_shards, local=LOCAL, transport=transport), ring, x, y) as engine:
        assert engine.info["n_shards"] == n_shards and engine.info["local"] == "casadi"
        assert engine.info["transport"] == transport
        ev, ref = engine.evaluate(w), local.evaluate(w)
        assert ev.n_samples == x.shape[1]
        for a, b in ((ev.objective, ref.objective), (ev.loss, ref.loss), (ev.gradient, ref.gradient)):
            assert _close(a, b)
        assert ev.predictions is None  # not sent unless asked (predictions=True)
        labels = ring.data.y_train
        assert ev.n_correct == np.count_nonzero(predict_labels("binary", "mse", ref.predictions) == labels)
        assert _close(engine.gauss_newton_product(w, v), local.gauss_newton_product(w, v))
        assert all(_close(a, b) for a, b in zip(engine.states(w), local.states(w), strict=True))
        assert engine.evaluate(w, gradient=False).gradient is None


def test_the_local_engines_choice_is_made_once_and_recorded(client, ring):
    """local=Auto(...): shard 0 times the candidates and every shard runs the winner (each used to
    choose by itself); the timings and the reason travel to Result.engine and its summary line."""
    x, y = ring.data.x_train, ring.targets
    with make_engine(Dask(client, n_shards=3, local=Auto(casadi=LOCAL)), ring, x, y) as engine:
        info = engine.info["local_info"]
        assert info["name"] == engine.info["local"] in ("casadi", "torch")
        assert set(info["auto"]["timings_s"]) == {"casadi", "torch"}
        assert engine.batch_spec().local == getattr(Auto(casadi=LOCAL), info["name"])  # the winner's options
        assert {part["name"] for part in engine._call("engine_info")} == {info["name"]}  # every shard
    result = cdl.Result(status="max_iter", message="", w=ring.initial_guess(0), objective=1.0, loss=1.0)
    result.engine = engine.info
    assert f"engine=dask (local {info['name']}, actor calls) (auto: {info['auto']['reason']})" in result.summary()


def test_predictions_on_request_and_correct_counts_of_one_hot_targets(client):
    """predictions=True sends λ2(x_N) (= the local engine's); a 3-class cross-entropy problem's
    correct-class count (one-hot targets) gives the local engine's accuracy."""
    rng = np.random.default_rng(0)
    features = rng.normal(size=(80, 2))
    data = cdl.Dataset.from_arrays(features, np.argmax(features @ rng.normal(size=(2, 3)), axis=1), seed=0)
    problem = cdl.TrainingProblem(
        data=data, field=cdl.Inside(), dim=3, control=cdl.PiecewiseConstant(4), cost=cdl.Cost(loss="cross_entropy")
    )
    x, y, w = data.x_train, problem.targets, problem.initial_guess(seed=3)
    ref = make_engine(LOCAL, problem, x, y).evaluate(w)
    accuracy = ref.accuracy(data.task, "cross_entropy", data.y_train)
    assert 0 < accuracy < 1  # the count can be wrong both ways
    with make_engine(Dask(client, n_shards=3, local=LOCAL, predictions=True), problem, x, y) as engine:
        ev = engine.evaluate(w)
    assert ev.predictions.shape == ref.predictions.shape and _close(ev.predictions, ref.predictions)
    assert ev.accuracy(data.task, "cross_entropy", data.y_train) == accuracy
    assert ev.n_correct == round(accuracy * x.shape[1])


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_sweep_stays_on_workers_and_hamiltonians_add(client, ring, transport):
    """Per-shard augmented Hamiltonians (values, ∇, ∇²) add up to the whole batch's, at a perturbed Θ."""
    x, y = ring.data.x_train, ring.targets
    w = ring.initial_guess(seed=2)
    local = make_engine(LOCAL, ring, x, y)
    thetas = [np.concatenate(ring.stage_thetas(w, k, cdl.backends.numpy_ops)) + 0.1 for k in range(ring.n_steps)]
    ref = local.augmented_hamiltonian(local.sweep(w), thetas, rho=0.7, hessian=True)
    with make_engine(Dask(client, local=LOCAL, transport=transport), ring, x, y) as engine:
        sweep = engine.sweep(w)
        assert sweep.states == [] and sweep.costates == []  # nothing gathered
        got = engine.augmented_hamiltonian(sweep, thetas, rho=0.7, hessian=True)
        assert _close(got.values, ref.values)
        assert all(_close(a, b) for a, b in zip(got.gradients, ref.gradients, strict=True))
        assert all(_close(a, b) for a, b in zip(got.hessians, ref.hessians, strict=True))
        with pytest.raises(ValueError, match="not made by this Dask engine"):
            engine.augmented_hamiltonian(local.sweep(w), thetas, rho=0.7)


def _lbfgsb(engine: Engine, w0: np.ndarray, on_eval: Any = None, maxiter: int = 500) -> Any:
    def fun(w: np.ndarray) -> tuple[float, np.ndarray]:
        ev = engine.evaluate(w)
        assert ev.n_samples == engine.n_samples  # every sample counted, every evaluation
        if on_eval is not None:
            on_eval()
        return ev.objective, ev.gradient

    options = {"maxiter": maxiter, "gtol": 1e-6, "ftol": 1e-10}
    return minimize(fun, w0, jac=True, method="L-BFGS-B", options=options)


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_lbfgsb_on_two_shards_equals_the_serial_solve(client, ring, transport):
    """Same iterates while rounding differences are small; the same optimum to the solver's tolerance."""
    x, y, w0 = ring.data.x_train, ring.targets, ring.initial_guess(seed=0)
    local = make_engine(LOCAL, ring, x, y)
    with make_engine(Dask(client, n_shards=2, local=LOCAL, transport=transport), ring, x, y) as engine:
        early = [_lbfgsb(e, w0, maxiter=10) for e in (local, engine)]
        serial, sharded = (_lbfgsb(e, w0) for e in (local, engine))
    np.testing.assert_allclose(early[1].x, early[0].x, rtol=0, atol=1e-9)
    assert serial.success and sharded.success
    assert abs(sharded.fun - serial.fun) <= 1e-6 * serial.fun


KILLED = threading.Event()


class DoomedEngine(CasadiEngine):
    """Closes its own worker during its ``after``-th evaluation (once per test), on shards > 0."""

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        self.worker = distributed.get_worker()  # bound in the actor's creation task, on its worker

    def evaluate(self, w: np.ndarray, gradient: bool = True) -> Any:
        self.calls = getattr(self, "calls", 0) + 1
        if not self.regulariser and self.calls == self.spec.after and not KILLED.is_set():
            KILLED.set()
            self.worker.loop.add_callback(self.worker.close, executor_wait=False)
            time.sleep(1.0)  # the worker dies while this evaluation runs
        return super().evaluate(w, gradient)


@dataclass(frozen=True)
class Doomed(Casadi):
    after: int = 3

    def bind(self, problem: Any, x: np.ndarray, y: np.ndarray, normaliser: Any = None, regulariser: bool = True):
        return DoomedEngine(problem, x, y, normaliser, regulariser, self)


@pytest.fixture
def cluster_of():
    """A fresh in-process cluster of n workers (its workers get killed)."""
    KILLED.clear()
    made = []

    def make(n: int) -> tuple[Any, Any]:
        cluster = distributed.LocalCluster(
            n_workers=n, threads_per_worker=1, processes=False, dashboard_address=None, scheduler_kwargs=NO_HTTP_PORT
        )
        made.append((distributed.Client(cluster), cluster))
        return made[-1]

    yield make
    for item in made:
        for closeable in item:
            closeable.close()


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_a_worker_killed_mid_solve_is_replaced_and_the_solve_goes_on(ring, cluster_of, caplog, transport):
    """Direct L-BFGS-B through Dask: the worker of shard 1 dies during an evaluation; the shard is
    re-sent to the other worker and the solve ends where the serial one does (every sample counted).
    Over a direct connection the evaluation that was running still answers (it is complete and
    right); the next call finds the connection closed by the closing worker."""
    client, _ = cluster_of(2)
    serial = cdl.solve(ring, cdl.load_solver("lbfgsb", engine=LOCAL, tol=1e-9), progress=False)
    engine = Dask(client, local=Doomed(jit=False), transport=transport)
    with caplog.at_level("WARNING", logger="control_dl.engines.dask"):
        sharded = cdl.solve(ring, cdl.load_solver("lbfgsb", engine=engine, tol=1e-9), progress=False)
    assert KILLED.is_set() and len(client.scheduler_info()["workers"]) == 1
    assert "shard 1 re-sent" in caplog.text
    assert serial.status == sharded.status == "converged"
    assert abs(sharded.objective - serial.objective) <= 1e-5 * serial.objective  # flat valley: ftol stops


@pytest.mark.parametrize(
    ("preset", "transport"),
    [
        ("lbfgsb", "actor"),
        ("trust-ncg", "actor"),
        ("ipopt-lbfgs", "actor"),
        ("lbfgsb", "socket"),
        ("trust-ncg", "socket"),
    ],
)
def test_no_worker_left_fails_with_a_checkpoint_to_resume_from(ring, cluster_of, tmp_path, preset, transport):
    """The only worker dies: status "failed" (never a wrong sum), the Result and the checkpoint hold
    the last logged w, and a resumed solve from it converges (every single-shooting driver). The
    failure writes its own checkpoint: with checkpoint_every = 4 the file held an older w (a user's
    resume lost 24 iterations)."""
    client, _ = cluster_of(1)
    checkpoint = tmp_path / "checkpoint.npz"
    options = {"tol": 1e-9, "checkpoint": str(checkpoint), "checkpoint_every": 4}
    engine = Dask(client, n_shards=2, local=Doomed(jit=False, after=8), timeout=2, transport=transport)
    failed = cdl.solve(ring, cdl.load_solver(preset, engine=engine, **options), progress=False)
    assert (
        failed.status == "failed"
        and "no Dask worker is connected to the scheduler (none joined in 2 s)" in failed.message
    )
    assert checkpoint_iteration(checkpoint) >= 2
    w = load_checkpoint(checkpoint, ring)
    np.testing.assert_array_equal(failed.w, w)  # the Result carries the last logged w, as the checkpoint
    assert failed.iterations == checkpoint_iteration(checkpoint) == len(failed.history) - 1
    resumed = cdl.solve(ring, cdl.load_solver("lbfgsb", engine=LOCAL, tol=1e-9), w0=w, progress=False)
    assert resumed.status == "converged"
    assert ring.objective(w) < ring.objective(ring.initial_guess())


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_a_shard_answering_for_fewer_samples_is_an_error(client, ring, transport):
    spec = Dask(client, local=Truncating(jit=False), transport=transport)
    with make_engine(spec, ring, ring.data.x_train, ring.targets) as engine:
        with pytest.raises(DaskEngineError, match="answered for 29 samples, it holds 30"):
            engine.evaluate(ring.initial_guess())


@pytest.mark.parametrize("inline_s", [0.25, 0.0])
def test_short_calls_run_on_the_workers_event_loop(client, ring, monkeypatch, inline_s):
    """A call is first run in the worker's actor thread; once a call of that method took less than
    ``_INLINE_S``, the next runs on the worker's event loop (separate_thread=False), same answers."""
    from control_dl.engines import dask as dask_engine

    monkeypatch.setattr(dask_engine, "_INLINE_S", inline_s)
    threads: list[int] = []
    evaluate = dask_engine._ShardWorker.evaluate

    def spy(self: Any, *args: Any) -> Any:
        threads.append(threading.get_ident())
        return evaluate(self, *args)

    monkeypatch.setattr(dask_engine._ShardWorker, "evaluate", spy)
    w = ring.initial_guess(seed=1)
    with make_engine(Dask(client, n_shards=1, local=LOCAL), ring, ring.data.x_train, ring.targets) as engine:
        first, second = engine.evaluate(w), engine.evaluate(w)
    assert (threads[0] != threads[1]) == (inline_s > 0)  # 0: never inline, both in the actor thread
    assert first.objective == second.objective and np.array_equal(first.gradient, second.gradient)


@pytest.mark.parametrize(
    ("options", "field"),
    [
        ({"n_shards": 0}, "n_shards"),
        ({"client": "tcp://x:1", "workers": 2}, "workers"),
        ({"local": "dask"}, "local"),
        ({"local": 3}, "local"),
        ({"timeout": -1.0}, "timeout"),
        ({"retries": -1}, "retries"),
        ({"client": 3.5}, "client"),
        ({"predictions": 1}, "predictions"),
        ({"client": "nonsense"}, "client='nonsense': not a Dask scheduler address"),
        ({"client": "tcp://host"}, "client='tcp://host'"),
        ({"client": "http://127.0.0.1:8786"}, "'http' is not a Dask protocol"),
        ({"local": "gpu"}, "local='gpu': must be a local engine"),
        ({"timeout": "10"}, "timeout='10': must be a finite number > 0"),  # was a TypeError from '>'
        ({"timeout": float("inf")}, "timeout=inf: must be a finite number > 0"),
        ({"processes": "yes"}, "processes='yes': must be True or False"),
        ({"workers": 2.0}, "workers=2.0: must be an integer >= 1"),
        ({"retries": 1.5}, "retries=1.5: must be an integer >= 0"),
        ({"transport": "tcp"}, "transport='tcp': must be one of \\['auto', 'socket', 'actor'\\]"),
        ({"transport": None}, "transport=None"),
    ],
)
def test_bad_options_name_the_field(options, field):
    with pytest.raises(cdl.SpecError, match=field):
        Dask(**options)


def test_numpy_scalars_are_counts_and_seconds():
    spec = Dask(workers=np.int64(2), n_shards=np.int32(4), retries=np.int64(0), timeout=np.float32(5))
    values = (spec.workers, spec.n_shards, spec.retries, spec.timeout)
    assert values == (2, 4, 0, 5.0) and [type(v) for v in values] == [int, int, int, float]


def test_a_scheduler_that_does_not_answer_is_a_spec_error_naming_the_address(ring):
    """Before: a raw OSError after 30 s (from Python) and a 66-line traceback (from the CLI)."""
    closed = "tcp://127.0.0.1:9"  # discard port: nothing listens
    with pytest.raises(cdl.SpecError, match=r"client='tcp://127.0.0.1:9': no Dask scheduler answered"):
        make_engine(Dask(closed, timeout=1.0, local=LOCAL), ring, ring.data.x_train, ring.targets)


def test_the_cli_names_scheduler_for_a_bad_address_before_any_work(tmp_path, capsys, monkeypatch):
    """control-dl solve --scheduler: errors name the flag (they said client='...'), and an address
    where nothing answers is found before the solver is built and run."""
    from control_dl import cli
    from control_dl.engines import dask as dask_module

    out = str(tmp_path / "run")
    assert cli.main(["solve", "ring", "--engine", "dask", "--scheduler", "localhost", "--out", out]) == 2
    assert "--scheduler='localhost': not a Dask scheduler address" in capsys.readouterr().err

    def refused(address, timeout):  # what a closed port gives after the probe's 30 s, at once
        assert timeout == 30
        raise OSError("Timed out trying to connect")

    monkeypatch.setattr(dask_module, "_probe_scheduler", refused)
    monkeypatch.setattr(cli, "_solve_and_write", lambda *args: pytest.fail("solved without a scheduler"))
    assert cli.main(["solve", "ring", "--engine", "dask", "--scheduler", "tcp://127.0.0.1:9", "--out", out]) == 2
    assert "--scheduler='tcp://127.0.0.1:9': no Dask scheduler answered there" in capsys.readouterr().err


@pytest.mark.parametrize("greeting", [b"", b"\xff" * 64], ids=["silent", "not-dask"])
def test_a_service_that_is_not_a_scheduler_is_a_spec_error_within_the_timeout(ring, greeting):
    """A port that accepts but never speaks Dask (an HTTP server, the dashboard's port) kept the
    client in distributed's handshake for good (a user killed it after 4 minutes); one that answers
    with other bytes raised whatever its reader hit (a MemoryError for 3 EiB)."""
    import socket

    server = socket.create_server(("127.0.0.1", 0))
    accepted = []

    def serve() -> None:
        with contextlib.suppress(OSError):
            while True:
                connection, _ = server.accept()
                accepted.append(connection)  # kept open, never closed by us before the end
                connection.sendall(greeting)

    threading.Thread(target=serve, daemon=True).start()
    address = f"tcp://127.0.0.1:{server.getsockname()[1]}"
    started = time.perf_counter()
    try:
        with pytest.raises(cdl.SpecError, match=r"no Dask scheduler answered there"):
            make_engine(Dask(address, timeout=1.0, local=LOCAL), ring, ring.data.x_train, ring.targets)
    finally:
        server.close()
        for connection in accepted:
            connection.close()
    assert time.perf_counter() - started < 10


def test_more_shards_than_samples_and_unpicklable_problems_are_spec_errors(client, ring):
    small = cdl.load_problem("ring", n_samples=4, dim=3, n_steps=2)
    with pytest.raises(cdl.SpecError, match="n_shards"):
        make_engine(Dask(client, n_shards=5, local=LOCAL), small, small.data.x_train, small.targets)

    class Unpicklable(cdl.Inside):
        def __reduce__(self):
            raise TypeError("no pickling")

    bad = cdl.TrainingProblem(data=small.data, field=Unpicklable(), dim=3)
    with pytest.raises(cdl.SpecError, match="must pickle"):
        make_engine(Dask(client, local=LOCAL), bad, bad.data.x_train, bad.targets)


@pytest.mark.parametrize("local", ["casadi", "auto"])
def test_the_solvers_jit_reaches_the_shards_casadi_engines(client, ring, local):
    """Before: the shards compiled their CasADi Functions (jit=True) whatever the solver's jit said,
    which on workers without a C compiler is not a detail."""
    solver = cdl.load_solver("lbfgsb", engine=Dask(client, local=local), jit=False, parallelization="thread")
    casadi = Casadi(jit=False, parallelization="thread")
    with solver.bind_engine(ring, ring.data.x_train, ring.targets) as engine:
        assert engine.spec.local == (casadi if local == "casadi" else Auto(casadi=casadi))
        timed = engine.info["local_info"]
    if local == "casadi":  # what the shard's engine says of itself
        assert timed["name"] == "casadi" and timed["jit"] is False and timed["compile"] == "not compiled"


@pytest.mark.parametrize("engine", ["dask", "spec"])
def test_msa_with_an_ipopt_inner_step_on_dask_is_refused(client, engine):
    """Before: an IndexError out of cdl.solve (the IPOPT inner problem reads every sample's states
    and costates, which a Dask sweep keeps on the workers)."""
    spec = "dask" if engine == "dask" else Dask(client)
    with pytest.raises(cdl.SpecError, match=r"inner='ipopt': IPOPT's inner problem takes every sample's states"):
        cdl.load_solver("emsa", inner="ipopt", engine=spec)


def test_a_closed_client_is_a_spec_error(ring):
    """Before: AttributeError: 'NoneType' object has no attribute 'address'."""
    with distributed.LocalCluster(
        n_workers=1, threads_per_worker=1, processes=False, dashboard_address=None, scheduler_kwargs=NO_HTTP_PORT
    ) as cluster:
        closed = distributed.Client(cluster)
        closed.close()
        with pytest.raises(cdl.SpecError, match=r"client=.*is not connected to a scheduler \(client status 'closed'\)"):
            make_engine(Dask(closed, local=LOCAL), ring, ring.data.x_train, ring.targets)


def test_a_client_closed_during_a_solve_is_named_not_a_lost_worker(ring):
    """A user's report: closing one's own Client mid-solve failed with 'shard 0 could not be rebuilt
    after its worker was lost: ... AttributeError('NoneType' object has no attribute 'run_function')'."""
    with distributed.LocalCluster(
        n_workers=1, threads_per_worker=1, processes=False, dashboard_address=None, scheduler_kwargs=NO_HTTP_PORT
    ) as cluster:
        own = distributed.Client(cluster)
        engine = make_engine(Dask(own, local=LOCAL), ring, ring.data.x_train, ring.targets)
        engine.evaluate(ring.initial_guess())
        own.close()
        with pytest.raises(
            DaskEngineError, match=r"^the Dask Client this engine uses was closed \(client status 'closed'\)"
        ):
            engine.evaluate(ring.initial_guess())
        engine.close()


def test_cli_solve_on_a_running_scheduler(client, tmp_path, capsys):
    """``control-dl solve --engine dask --scheduler ADDRESS --transport socket`` trains through the cluster."""
    from control_dl.cli import main

    address = client.scheduler.address
    args = ["solve", "ring", "--set", "n_samples=40", "--set", "n_steps=4", "--solver", "lbfgsb", "--no-progress"]
    code = main(
        [
            *args,
            "--out",
            str(tmp_path),
            "--engine",
            "dask",
            "--scheduler",
            address,
            "--transport",
            "socket",
            "--option",
            "max_iter=5",
            "--option",
            "jit=false",
        ]
    )
    assert code == 0
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert "dask engine" in summary["message"] and summary["iterations"] == 5
    assert summary["engine"]["transport"] == "socket"  # on this inproc cluster "auto" would call actors
    for flag, value, said in (("--workers", "2", "2"), ("--transport", "actor", "'actor'")):
        assert main([*args, "--out", str(tmp_path), flag, value]) == 2  # only with --engine dask
        assert f"{flag}={said}: only with --engine dask" in capsys.readouterr().err
    # before: --option engine=torch was silently dropped next to --engine dask
    assert main([*args, "--out", str(tmp_path), "--engine", "dask", "--option", "engine=torch"]) == 2
    assert "--option engine='torch' and --engine dask: give the engine once" in capsys.readouterr().err
    # before: refused ("--scheduler only with --engine dask") although the engine was dask
    options = ["--option", "engine=dask", "--option", "max_iter=2", "--option", "jit=false"]
    assert main([*args, "--out", str(tmp_path), "--scheduler", address, *options]) == 0


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_emsa_through_dask_equals_the_serial_run(client, ring, transport):
    """E-MSA's sweeps, stage Hamiltonians and readout steps through 2 shards: the same iterates."""
    serial = cdl.solve(ring, cdl.load_solver("emsa", engine=LOCAL, max_iter=3, jit=False), progress=False)
    solver = cdl.load_solver("emsa", engine=Dask(client, local=LOCAL, transport=transport), max_iter=3, jit=False)
    sharded = cdl.solve(ring, solver, progress=False)
    assert sharded.iterations == serial.iterations == 3
    assert abs(sharded.objective - serial.objective) <= 1e-8 * serial.objective
    np.testing.assert_allclose(sharded.w, serial.w, rtol=0, atol=1e-6)


def test_a_scheduler_without_workers_is_a_spec_error_naming_it(monkeypatch, caplog):
    """The wait for a first worker (120 s by default) was silent: after _QUIET_WAIT_S it says so."""
    from control_dl.engines import dask as dask_engine
    from control_dl.engines.dask import scheduler_client

    with distributed.LocalCluster(
        n_workers=0, processes=False, dashboard_address=None, scheduler_kwargs=NO_HTTP_PORT
    ) as empty:
        with pytest.raises(
            cdl.SpecError, match=r"scheduler='.*': the scheduler has no worker \(none joined in 0.5 s\)"
        ):
            scheduler_client("scheduler", empty.scheduler_address, 10, workers_timeout=0.5)
        assert "waiting up to" not in caplog.text  # shorter than the quiet wait: nothing said
        monkeypatch.setattr(dask_engine, "_QUIET_WAIT_S", 0.2)
        with pytest.raises(cdl.SpecError, match=r"none joined in 0.5 s"):
            scheduler_client("scheduler", empty.scheduler_address, 10, workers_timeout=0.5)
        assert "no worker has joined the Dask scheduler" in caplog.text and "waiting up to 0.3 s more" in caplog.text


def test_mini_batch_emsa_binds_every_batch_on_the_cluster_of_the_first(ring, monkeypatch):
    """With client=None a bind starts a cluster; mini-batch MSA binds once per batch, and started
    one cluster per iteration (a user's 5 iterations: 23.7 s, against 2.7 s with a Client)."""
    from control_dl.engines import dask as dask_engine

    started = []
    start = dask_engine.start_local_cluster
    monkeypatch.setattr(dask_engine, "start_local_cluster", lambda *a, **k: started.append(1) or start(*a, **k))
    solver = cdl.load_solver(
        "emsa", engine=Dask(workers=2, processes=False, local=LOCAL), max_iter=3, jit=False, batch_size=20, memory=0
    )
    result = cdl.solve(ring, solver, progress=False)
    assert result.iterations == 3 and result.engine["name"] == "dask"
    assert len(started) == 1


def test_an_engine_owns_and_closes_the_cluster_it_starts(ring):
    x, y, w = ring.data.x_train, ring.targets, ring.initial_guess()
    engine = make_engine(Dask(workers=2, processes=False, local=LOCAL), ring, x, y)
    assert engine.info["workers"] == engine.info["n_shards"] == 2
    assert _close(engine.evaluate(w).gradient, make_engine(LOCAL, ring, x, y).evaluate(w).gradient)
    client = engine.client
    engine.close()
    assert client.status == "closed"


def test_a_script_without_a_main_guard_gets_a_spec_error_naming_the_guard(tmp_path):
    """Local workers start with 'spawn', which re-runs the main script: without
    ``if __name__ == "__main__":`` Dask says only "Nanny failed to start"; the engine says why,
    before any worker starts."""
    import subprocess
    import sys

    script = tmp_path / "train.py"
    script.write_text(
        "import control_dl as cdl\n"
        "problem = cdl.load_problem('ring', n_samples=200, dim=3, n_steps=4)\n"
        "solver = cdl.load_solver('lbfgsb', engine=cdl.engines.Dask(workers=1), max_iter=2)\n"
        "cdl.solve(problem, solver, progress=False)\n"
    )
    run = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert run.returncode != 0
    assert "SpecError" in run.stderr and 'if __name__ == "__main__":' in run.stderr
    assert run.stderr.count("Traceback (most recent call last)") == 1  # refused before any worker started
    guarded = tmp_path / "guarded.py"
    body = "".join("    " + line + "\n" for line in script.read_text().splitlines())
    guarded.write_text(f'def main():\n{body}\n\nif __name__ == "__main__":\n    main()\n')
    assert (
        subprocess.run([sys.executable, str(guarded)], capture_output=True, timeout=120, cwd=tmp_path).returncode == 0
    )


def test_the_guides_yaml_for_command_line_workers_is_the_local_cluster_config():
    """docs/guide/dask.md gives LOCAL_CLUSTER_CONFIG as a YAML file for `dask worker` clusters."""
    import re
    from pathlib import Path

    import dask

    yaml = pytest.importorskip("yaml")
    from control_dl.engines.dask import LOCAL_CLUSTER_CONFIG

    guide = (Path(__file__).parents[1] / "docs" / "guide" / "dask.md").read_text()
    (block,) = re.findall(r"```yaml\n(.*?)```", guide, flags=re.S)
    config = yaml.safe_load(block)
    for key, value in LOCAL_CLUSTER_CONFIG.items():
        got = dask.config.get(key, config=config)
        assert got == value or dask.utils.parse_timedelta(got) == dask.utils.parse_timedelta(value), key
    leaves: list[str] = []  # the file sets exactly these keys, no more

    def walk(node: dict, prefix: str) -> None:
        for key, value in node.items():
            if isinstance(value, dict):
                walk(value, f"{prefix}{key}.")
            else:
                leaves.append(f"{prefix}{key}")

    walk(config, "")
    assert sorted(leaves) == sorted(LOCAL_CLUSTER_CONFIG)


def _affinities() -> tuple[list[int], list[int]]:
    """The cores of the calling thread and of a thread it starts (run on a worker)."""
    started: list[list[int]] = []
    thread = threading.Thread(target=lambda: started.append(sorted(os.sched_getaffinity(0))))
    thread.start()
    thread.join()
    return sorted(os.sched_getaffinity(0)), started[0]


@pytest.mark.skipif(not hasattr(os, "sched_getaffinity"), reason="thread affinity is Linux's")
def test_local_worker_processes_filling_the_cores_are_bound_to_one_each_also_after_a_restart(monkeypatch):
    from control_dl.engines.dask import cores_to_bind, start_local_cluster

    available = os.sched_getaffinity
    cores = sorted(available(0))[:2]  # this process may run on these (2 workers even on a big machine)
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: set(cores) if pid == 0 else available(pid))
    n = len(cores)
    assert cores_to_bind(n, processes=True) == tuple(cores)
    assert cores_to_bind(n, processes=False) is None  # threads of this process: never bound
    assert cores_to_bind(n + 1, processes=True) is None  # two workers would share a core
    assert cores_to_bind(n - 1, processes=True) is None  # another cluster may be bound to the first cores
    with (
        start_local_cluster(n, processes=True, field="workers", value=n) as cluster,
        distributed.Client(cluster) as client,
    ):
        expected = {k: ([cores[k]], [cores[k]]) for k in range(n)}
        for _ in range(2):  # as started, then as the nannies restart them
            names = {address: info["name"] for address, info in client.scheduler_info()["workers"].items()}
            assert {names[address]: got for address, got in client.run(_affinities).items()} == expected
            client.restart()


def _pages_faulted_again() -> list[int]:
    """Page faults of a thread that allocates and frees a 96 MB working set, on the passes after
    the first (run on a worker: the shards compute in such a thread)."""
    import resource

    faults: list[int] = []

    def work() -> None:
        for _ in range(4):
            before = resource.getrusage(resource.RUSAGE_THREAD).ru_minflt
            arrays = [np.ones((3, 100_000)) for _ in range(40)]  # 2.4 MB each, as a ring state of 10⁵ samples
            del arrays
            faults.append(resource.getrusage(resource.RUSAGE_THREAD).ru_minflt - before)

    thread = threading.Thread(target=work)
    thread.start()
    thread.join()
    return faults[1:]


@pytest.mark.skipif(
    not sys.platform.startswith("linux") or platform.libc_ver()[0] != "glibc", reason="glibc's allocator settings"
)
def test_local_worker_processes_keep_their_working_memory_between_evaluations():
    """LOCAL_CLUSTER_CONFIG's allocator settings reach the workers: a computing thread's freed memory
    is kept, not handed back and faulted in again (by default glibc does it here on every pass for
    the part beyond the thread arena's first 64 MiB heap: 7 618 pages a pass)."""
    from control_dl.engines.dask import start_local_cluster

    with (
        start_local_cluster(1, processes=True, field="workers", value=1) as cluster,
        distributed.Client(cluster) as client,
    ):
        (faults,) = client.run(_pages_faulted_again).values()
    assert max(faults) < 100, faults


def test_a_timeout_shorter_than_binding_a_shard_is_a_spec_error_naming_it(client, ring):
    """Before: distributed's raw TimeoutError out of cdl.solve (a user's timeout=0.05)."""
    with pytest.raises(cdl.SpecError, match=r"timeout=1e-06: shard 0 was not bound in time"):
        make_engine(Dask(client, timeout=1e-6, local=LOCAL), ring, ring.data.x_train, ring.targets)
    engine = make_engine(Dask(client, local=LOCAL), ring, ring.data.x_train, ring.targets)  # the cluster is fine
    assert engine.evaluate(ring.initial_guess()).n_samples == ring.data.x_train.shape[1]
    engine.close()


# --------------------------------------------------------------------------- transports
@pytest.fixture(scope="module")
def tcp_client():
    """In-process workers that talk tcp, as a real cluster's do (``transport="auto"``: direct connections)."""
    with (
        distributed.LocalCluster(
            n_workers=2,
            threads_per_worker=1,
            processes=False,
            protocol="tcp",
            dashboard_address=None,
            scheduler_kwargs=NO_HTTP_PORT,
        ) as cluster,
        distributed.Client(cluster, direct_to_workers=True) as c,
    ):
        yield c


def test_auto_transport_is_a_direct_connection_on_tcp_and_actor_calls_elsewhere(client, tcp_client, ring):
    x, y, w = ring.data.x_train, ring.targets, ring.initial_guess(seed=4)
    ref = make_engine(LOCAL, ring, x, y).evaluate(w)
    for c, transport in ((tcp_client, "socket"), (client, "actor")):
        with make_engine(Dask(c, local=LOCAL), ring, x, y) as engine:
            assert engine.info["transport"] == transport
            assert _close(engine.evaluate(w).gradient, ref.gradient)


def test_an_unreachable_worker_turns_auto_to_actor_calls_and_socket_into_a_spec_error(
    tcp_client, ring, monkeypatch, caplog
):
    """A firewall between driver and workers: "auto" warns and calls through Dask, "socket" says why."""
    from control_dl.engines import dask as dask_engine

    def refused(address: Any, key: bytes, timeout: float) -> Any:
        raise ConnectionRefusedError(111, "Connection refused")

    monkeypatch.setattr(dask_engine, "connect_channel", refused)
    x, y, w = ring.data.x_train, ring.targets, ring.initial_guess(seed=4)
    with pytest.raises(cdl.SpecError, match=r"transport='socket': shard 0's worker .* cannot be reached at"):
        make_engine(Dask(tcp_client, local=LOCAL, transport="socket"), ring, x, y)
    with caplog.at_level("WARNING", logger="control_dl.engines.dask"):
        engine = make_engine(Dask(tcp_client, local=LOCAL), ring, x, y)
    with engine:
        assert engine.info["transport"] == "actor" and "through Dask actors instead" in caplog.text
        assert _close(engine.evaluate(w).gradient, make_engine(LOCAL, ring, x, y).evaluate(w).gradient)


class NeedsCode(Exception):
    """An exception that pickles but does not unpickle: its __init__ does not take its args back."""

    def __init__(self, code: int, detail: str) -> None:
        super().__init__(f"code {code}: {detail}")


class FlakyEngine(CasadiEngine):
    """On shard 0 (the regulariser's), raises in its 2nd evaluation; on shard 1, sleeps 1.5 s in it."""

    def evaluate(self, w: np.ndarray, gradient: bool = True) -> Any:
        self.calls = getattr(self, "calls", 0) + 1
        if self.calls == 2 and self.regulariser and self.spec.fault == "raise":
            raise FloatingPointError("shard 0 failed")
        if self.calls == 2 and self.regulariser and self.spec.fault == "oserror":
            raise OSError("shard 0 failed to read its cache")
        if self.calls == 2 and self.regulariser and self.spec.fault == "unpicklable":
            raise NeedsCode(7, "bad shard")
        if self.calls == 2 and self.regulariser and self.spec.fault == "interrupt":
            raise KeyboardInterrupt("shard 0 interrupted")
        if self.calls == 2 and not self.regulariser and self.spec.fault == "sleep":
            time.sleep(1.5)
        return super().evaluate(w, gradient)


@dataclass(frozen=True)
class Flaky(Casadi):
    fault: str = "raise"

    def bind(self, problem: Any, x: np.ndarray, y: np.ndarray, normaliser: Any = None, regulariser: bool = True):
        return FlakyEngine(problem, x, y, normaliser, regulariser, self)


@pytest.mark.parametrize("transport", TRANSPORTS)
@pytest.mark.parametrize("fault", ["raise", "oserror", "interrupt", "unpicklable", "sleep"])
def test_a_failed_or_timed_out_call_leaves_the_next_calls_answers_right(client, ring, transport, fault, monkeypatch):
    """A shard's error reaches the caller as raised there, never taken for a fault of the cluster
    (before: an engine's OSError was, and waited 5 s for the scheduler); a shard past ``timeout``
    is a DaskEngineError; the answers that call left unread (the other shard's, the late one)
    never answer a later call: the next evaluations, at other w, equal the local engine's."""
    from control_dl.engines import dask as dask_engine

    asked: list[int] = []
    answers = dask_engine.DaskEngine._answers
    monkeypatch.setattr(dask_engine.DaskEngine, "_answers", lambda self, shard: asked.append(1) or answers(self, shard))
    x, y = ring.data.x_train, ring.targets
    local = make_engine(LOCAL, ring, x, y)
    spec = Dask(client, local=Flaky(jit=False, fault=fault), timeout=0.5, transport=transport)
    with make_engine(spec, ring, x, y) as engine:
        engine.evaluate(ring.initial_guess(seed=1))
        error, match = {
            "raise": (FloatingPointError, "shard 0 failed"),
            "oserror": (OSError, "shard 0 failed to read its cache"),
            # before: the worker's thread or event loop ended, the call repeated or the cluster gone
            "interrupt": (KeyboardInterrupt, "shard 0 interrupted"),
            # before: a TypeError from unpickling it, or (actor calls over tcp) no answer, ever
            "unpicklable": (DaskEngineError, r"evaluate raised .*NeedsCode: code 7: bad shard on its worker"),
            "sleep": (DaskEngineError, "no answer"),
        }[fault]
        started = time.perf_counter()
        with pytest.raises(error, match=match) as raised:
            engine.evaluate(ring.initial_guess(seed=2))
        assert type(raised.value) is error and not asked and engine.info["rebuilt_shards"] == 0
        assert fault == "sleep" or time.perf_counter() - started < 2.5  # not a wait for the scheduler (5 s)
        time.sleep(1.5 if fault == "sleep" else 0.0)  # the late answer arrives meanwhile
        for seed in (3, 4):
            w = ring.initial_guess(seed=seed)
            assert _close(engine.evaluate(w).gradient, local.evaluate(w).gradient)


def test_an_actor_call_that_dask_cannot_complete_on_a_live_worker_is_repeated(client, ring, monkeypatch, caplog):
    """transport="actor": the first call to shard 0 fails in Dask's comm (CommClosedError, an
    OSError) while its worker lives. Before: 5 s of polling the scheduler, then that OSError out
    of the evaluation (a traceback out of cdl.solve); now the actor answers, the call is repeated
    there, and the shard's data is not sent again."""
    from distributed.comm.core import CommClosedError

    from control_dl.engines import dask as dask_engine

    class Broken:
        def result(self, timeout: float) -> Any:
            raise CommClosedError("in <TCP (closed) Actor call>: Stream is closed")

    fire, broken = dask_engine.DaskEngine._fire, [Broken()]

    def fire_broken_once(self: Any, i: int, method: str, args: tuple[Any, ...], call: Any) -> Any:
        return broken.pop() if i == 0 and broken and method == "evaluate" else fire(self, i, method, args, call)

    x, y, w = ring.data.x_train, ring.targets, ring.initial_guess(seed=5)
    with make_engine(Dask(client, local=LOCAL, transport="actor"), ring, x, y) as engine:
        monkeypatch.setattr(dask_engine.DaskEngine, "_fire", fire_broken_once)
        with caplog.at_level("WARNING", logger="control_dl.engines.dask"):
            assert _close(engine.evaluate(w).gradient, make_engine(LOCAL, ring, x, y).evaluate(w).gradient)
        assert not broken and "shard 0: its call to" in caplog.text and "calling again" in caplog.text
        assert engine.info["rebuilt_shards"] == 0


class PredictionlessEngine(CasadiEngine):
    """Leaves out the predictions, as ``Evaluation`` allows (None)."""

    def evaluate(self, w: np.ndarray, gradient: bool = True) -> Any:
        return dataclasses.replace(super().evaluate(w, gradient), predictions=None)


@dataclass(frozen=True)
class Predictionless(Casadi):
    def bind(self, problem: Any, x: np.ndarray, y: np.ndarray, normaliser: Any = None, regulariser: bool = True):
        return PredictionlessEngine(problem, x, y, normaliser, regulariser, self)


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_a_local_engine_without_predictions_evaluates_through_dask(client, ring, transport):
    """Before: the shard's correct-class count failed on None (an AttributeError over direct
    connections; through actor calls it was taken for a broken call, repeated, then reported as one)."""
    x, y, w = ring.data.x_train, ring.targets, ring.initial_guess(seed=6)
    local = make_engine(LOCAL, ring, x, y).evaluate(w)
    with make_engine(Dask(client, local=Predictionless(jit=False), transport=transport), ring, x, y) as engine:
        ev = engine.evaluate(w)
    assert _close(ev.gradient, local.gradient) and ev.n_correct is None and ev.n_samples == x.shape[1]


class CrashingEngine(CasadiEngine):
    """SIGKILLs its own worker process in its ``after``-th evaluation on shard 1, once (a marker file)."""

    def evaluate(self, w: np.ndarray, gradient: bool = True) -> Any:
        import signal
        from pathlib import Path

        self.calls = getattr(self, "calls", 0) + 1
        marker = Path(self.spec.marker)
        if not self.regulariser and self.calls == self.spec.after and not marker.exists():
            marker.write_text(str(os.getpid()))
            os.kill(os.getpid(), signal.SIGKILL)
        return super().evaluate(w, gradient)


@dataclass(frozen=True)
class Crashing(Casadi):
    marker: str = ""
    after: int = 4

    def bind(self, problem: Any, x: np.ndarray, y: np.ndarray, normaliser: Any = None, regulariser: bool = True):
        return CrashingEngine(problem, x, y, normaliser, regulariser, self)


def test_a_worker_process_killed_mid_solve_is_replaced_over_direct_connections(ring, tmp_path):
    """Real worker processes on tcp (transport "auto": direct connections): the process of shard 1
    dies by SIGKILL inside an evaluation; its connection drops, Dask reports the worker gone (its
    nanny starts a new one), the shard is bound again and the solve ends where the serial one does."""
    import sys

    import cloudpickle

    module = sys.modules[__name__]
    cloudpickle.register_pickle_by_value(module)  # the worker processes cannot import this test file
    marker = tmp_path / "killed"
    try:
        with (
            distributed.LocalCluster(
                n_workers=2, threads_per_worker=1, dashboard_address=None, scheduler_kwargs=NO_HTTP_PORT
            ) as cluster,
            distributed.Client(cluster, direct_to_workers=True) as client,
        ):
            engine = Dask(client, local=Crashing(jit=False, marker=str(marker)))
            sharded = cdl.solve(ring, cdl.load_solver("lbfgsb", engine=engine, tol=1e-9), progress=False)
            assert int(marker.read_text()) not in client.run(os.getpid).values()  # that process is gone
    finally:
        cloudpickle.unregister_pickle_by_value(module)
    serial = cdl.solve(ring, cdl.load_solver("lbfgsb", engine=LOCAL, tol=1e-9), progress=False)
    assert sharded.engine["transport"] == "socket" and sharded.engine["rebuilt_shards"] == 1
    assert serial.status == sharded.status == "converged"
    assert abs(sharded.objective - serial.objective) <= 1e-5 * serial.objective


def test_a_worker_lost_while_its_shard_is_bound_gets_the_shard_placed_elsewhere(ring, cluster_of, monkeypatch, caplog):
    """Before: distributed's FutureCancelledError out of cdl.solve (a worker killed during bind)."""
    from control_dl.engines import dask as dask_engine

    client, cluster = cluster_of(2)
    place = dask_engine.DaskEngine._place

    def place_after_a_loss(self: Any, i: int, worker: str) -> None:
        if i == 1 and not KILLED.is_set():
            KILLED.set()
            victim = next(w for w in cluster.workers.values() if w.address == worker)
            client.sync(victim.close)
        place(self, i, worker)

    monkeypatch.setattr(dask_engine.DaskEngine, "_place", place_after_a_loss)
    x, y, w = ring.data.x_train, ring.targets, ring.initial_guess(seed=1)
    with caplog.at_level("WARNING", logger="control_dl.engines.dask"):
        engine = make_engine(Dask(client, local=LOCAL), ring, x, y)
    with engine:
        assert "lost while shard 1 was sent to it" in caplog.text and engine.info["rebuilt_shards"] == 1
        assert _close(engine.evaluate(w).gradient, make_engine(LOCAL, ring, x, y).evaluate(w).gradient)


@pytest.mark.parametrize(
    ("address", "transport", "chosen"),
    [
        ("tcp://10.0.0.1:8786", "auto", "socket"),
        ("tls://10.0.0.1:8786", "auto", "actor"),  # the direct connection would not be encrypted
        ("inproc://10.0.0.1/1/1", "auto", "actor"),
        ("ws://10.0.0.1:8786", "auto", "actor"),
        ("tcp://10.0.0.1:8786", "actor", "actor"),
        ("tls://10.0.0.1:8786", "socket", "socket"),  # asked for: done, with a warning
    ],
)
def test_the_transport_follows_the_schedulers_protocol(address, transport, chosen, caplog):
    from types import SimpleNamespace

    from control_dl.engines.dask import DaskEngine

    engine = SimpleNamespace(
        spec=Dask(transport=transport), client=SimpleNamespace(scheduler=SimpleNamespace(address=address))
    )
    with caplog.at_level("WARNING", logger="control_dl.engines.dask"):
        assert DaskEngine._choose_transport(engine) == chosen
    assert ("travel unencrypted" in caplog.text) == (address.startswith("tls") and transport == "socket")


def test_a_connection_that_cannot_be_opened_again_mid_solve_turns_auto_to_actor_calls(tcp_client, ring, monkeypatch):
    """Shard 1 hung up (as after a failed call) and its worker now unreachable directly: that call
    goes on with shard 0's answer over its connection and shard 1's through an actor call; every
    later call through actors; the same numbers as the local engine throughout."""
    from control_dl.engines import dask as dask_engine

    x, y = ring.data.x_train, ring.targets
    local = make_engine(LOCAL, ring, x, y)
    with make_engine(Dask(tcp_client, local=LOCAL), ring, x, y) as engine:
        assert engine.info["transport"] == "socket" and engine.batch_spec().transport == "auto"  # may still fall back
        engine._shards[1].hang_up()
        monkeypatch.setattr(dask_engine, "connect_channel", lambda *args: (_ for _ in ()).throw(TimeoutError()))
        for seed in (5, 6):
            w = ring.initial_guess(seed=seed)
            assert _close(engine.evaluate(w).gradient, local.evaluate(w).gradient)
        assert engine.info["transport"] == "actor" and all(shard.channel is None for shard in engine._shards)
        assert engine.batch_spec().transport == "actor"  # the next mini-batch does not dial again


def test_a_connection_that_breaks_while_its_worker_lives_is_dialled_again(tcp_client, ring, monkeypatch, caplog):
    """Closed by the worker's end (an answer never comes) or broken at the driver's (the call cannot
    be sent): the worker is asked about first, found alive, the connection dialled again and the
    call repeated; no shard is rebuilt. Before: ChannelError out of solve (a user's reset
    connection) and, for a failed send, the live worker's shard sent all over again."""
    import socket

    from control_dl.engines import dask as dask_engine

    monkeypatch.setattr(dask_engine, "_POLL", 0.01)
    x, y = ring.data.x_train, ring.targets
    local = make_engine(LOCAL, ring, x, y)
    refuse = threading.Event()  # set: the next call a shard's serving thread gets is closed unanswered
    serving = dask_engine._ShardWorker.serving

    def serving_unless_refused(self: Any) -> bool:
        if refuse.is_set():
            refuse.clear()
            return False
        return serving(self)

    monkeypatch.setattr(dask_engine._ShardWorker, "serving", serving_unless_refused)
    with make_engine(Dask(tcp_client, local=LOCAL), ring, x, y) as engine, caplog.at_level("WARNING"):
        refuse.set()
        w = ring.initial_guess(seed=7)
        assert _close(engine.evaluate(w).gradient, local.evaluate(w).gradient)
        assert caplog.text.count("dialling again") == 1
        broken = socket.socket(fileno=os.dup(engine._shards[0].channel.fileno()))
        broken.shutdown(socket.SHUT_RDWR)
        broken.close()
        w = ring.initial_guess(seed=8)
        assert _close(engine.evaluate(w).gradient, local.evaluate(w).gradient)
        assert caplog.text.count("dialling again") == 2
        assert engine.info["rebuilt_shards"] == 0 and "lost" not in caplog.text


def test_when_no_worker_is_left_the_engine_waits_for_one_to_join(ring, cluster_of, caplog):
    """A nanny restarts a killed worker in about 2 s; a solve whose every worker died used to fail
    at once. A worker that joins within ``timeout`` takes the shards and the solve goes on."""
    client, cluster = cluster_of(1)
    joined = []

    def start_a_worker() -> None:
        KILLED.wait(30)
        time.sleep(2.0)  # after the worker's last evaluation (1 s) and the engine's finding it gone

        async def start() -> Any:
            return await distributed.Worker(cluster.scheduler_address, nthreads=1)

        joined.append(client.sync(start))

    helper = threading.Thread(target=start_a_worker)
    helper.start()
    try:
        engine = Dask(client, n_shards=2, local=Doomed(jit=False, after=4), timeout=5)
        with caplog.at_level("WARNING", logger="control_dl.engines.dask"):
            result = cdl.solve(ring, cdl.load_solver("lbfgsb", engine=engine, tol=1e-9), progress=False)
    finally:
        helper.join()
        for worker in joined:
            client.sync(worker.close)
    assert KILLED.is_set() and "waiting up to 5 s for one to join" in caplog.text
    assert result.status == "converged" and result.engine["rebuilt_shards"] >= 1


class FailingEngine(CasadiEngine):
    """Raises in its 3rd evaluation: the solve ends "failed"."""

    def evaluate(self, w: np.ndarray, gradient: bool = True) -> Any:
        self.calls = getattr(self, "calls", 0) + 1
        if self.calls == 3:
            raise RuntimeError("the local engine failed")
        return super().evaluate(w, gradient)


@dataclass(frozen=True)
class Failing(Casadi):
    def bind(self, problem: Any, x: np.ndarray, y: np.ndarray, normaliser: Any = None, regulariser: bool = True):
        return FailingEngine(problem, x, y, normaliser, regulariser, self)


def test_solve_closes_the_engines_it_made_also_when_it_fails(ring, monkeypatch):
    """A failed solve's traceback kept its Dask engine, and the cluster the engine had started,
    alive until the garbage collector or the interpreter's exit found it (then distributed warned
    of coroutines never awaited); cdl.solve now closes every engine made while it ran."""
    from control_dl.engines.dask import DaskEngine

    closed = []
    close = DaskEngine.close
    monkeypatch.setattr(DaskEngine, "close", lambda self: closed.append(self.client) or close(self))
    solver = cdl.load_solver("lbfgsb", engine=Dask(workers=2, processes=False, local=Failing(jit=False)))
    result = cdl.solve(ring, solver, progress=False)
    assert result.status == "failed" and "the local engine failed" in result.message
    assert len(closed) == 1 and closed[0].status == "closed"


def test_closing_engines_closes_what_make_engine_made_inside_and_nothing_else(client, ring):
    x, y = ring.data.x_train, ring.targets
    outside = make_engine(Dask(client, local=LOCAL), ring, x, y)
    with cdl.engines.closing_engines():
        inside = make_engine(Dask(client, local=LOCAL), ring, x, y)
        assert inside.evaluate(ring.initial_guess()).n_samples == x.shape[1]
    assert all(shard.actor is None for shard in inside._shards)  # released
    with pytest.raises(DaskEngineError, match="this Dask engine is closed"):  # was an AttributeError on None
        inside.evaluate(ring.initial_guess())
    assert outside.evaluate(ring.initial_guess()).n_samples == x.shape[1]  # still usable
    outside.close()


@pytest.mark.parametrize("preset", ["emsa", "msa"])
def test_msa_through_a_failing_engine_returns_a_failed_result(client, ring, preset, tmp_path):
    """Before: the DaskEngineError of a cluster without workers came out of cdl.solve for (E-)MSA,
    where the other solvers return status "failed" with the last logged iterate."""
    solver = cdl.load_solver(
        preset,
        engine=Dask(client, local=Failing(jit=False)),
        max_iter=5,
        jit=False,
        checkpoint=str(tmp_path / "checkpoint.npz"),
        checkpoint_every=100,
    )
    result = cdl.solve(ring, solver, progress=False)
    assert result.status == "failed" and "the local engine failed" in result.message
    assert result.iterations == len(result.history) - 1
    np.testing.assert_array_equal(result.w, load_checkpoint(tmp_path / "checkpoint.npz", ring))


def test_a_connection_that_cannot_be_dialled_again_to_a_live_worker_is_not_a_lost_worker(
    tcp_client, ring, monkeypatch, caplog
):
    """transport="socket", one refused dial after a hang-up: before, the live worker's shard was
    re-sent to that same worker ("lost: shard 0 re-sent to" it) and counted as rebuilt."""
    from control_dl.engines import dask as dask_engine

    x, y, w = ring.data.x_train, ring.targets, ring.initial_guess(seed=9)
    dial = dask_engine.connect_channel
    refusals = [ConnectionRefusedError(111, "Connection refused")]

    def refused_once(*args: Any) -> Any:
        if refusals:
            raise refusals.pop()
        return dial(*args)

    with make_engine(Dask(tcp_client, local=LOCAL, transport="socket"), ring, x, y) as engine:
        monkeypatch.setattr(dask_engine, "connect_channel", refused_once)
        engine._shards[0].hang_up()
        with caplog.at_level("WARNING", logger="control_dl.engines.dask"):
            assert _close(engine.evaluate(w).gradient, make_engine(LOCAL, ring, x, y).evaluate(w).gradient)
        assert not refusals and "dialling again" in caplog.text and "lost" not in caplog.text
        assert engine.info["rebuilt_shards"] == 0 and engine.info["transport"] == "socket"


def test_a_shard_rebuilt_on_a_worker_that_dies_meanwhile_goes_to_another(ring, cluster_of, monkeypatch, caplog):
    """Before: "shard 1 could not be rebuilt ...: No valid workers found" and a failed solve,
    with live workers left (a fresh user's race: the chosen worker killed in turn)."""
    from control_dl.engines import dask as dask_engine

    client, cluster = cluster_of(3)
    place = dask_engine.DaskEngine._place
    victims: list[str] = []

    def place_on_a_dying_worker(self: Any, i: int, worker: str) -> None:
        if KILLED.is_set() and not victims:  # the first placement after the loss: its target dies too
            victims.append(worker)
            client.sync(next(w for w in cluster.workers.values() if w.address == worker).close)
        place(self, i, worker)

    monkeypatch.setattr(dask_engine.DaskEngine, "_place", place_on_a_dying_worker)
    engine = Dask(client, n_shards=2, local=Doomed(jit=False))
    with caplog.at_level("WARNING", logger="control_dl.engines.dask"):
        result = cdl.solve(ring, cdl.load_solver("lbfgsb", engine=engine, tol=1e-9), progress=False)
    assert victims and f"Dask worker {victims[0]} lost while shard 1 was sent to it" in caplog.text
    assert result.status == "converged" and result.engine["rebuilt_shards"] == 2
