"""Sweeps: same results on 1 or 2 workers and on Dask, resume after SIGKILL, failures and timeouts as data."""

from __future__ import annotations

import contextlib
import os
import re
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import control_dl as cdl
from control_dl import SpecError
from control_dl.cli import main
from control_dl.experiments import RunStore, load_runs, load_sweep, run_sweep

ROOT = Path(__file__).resolve().parents[1]
SPEC = """
name = "tiny"
seeds = [0, 1]

[problem]
name = "ring"
n_samples = 40
n_steps = 4

[solver]
preset = "ipopt-lbfgs"
max_iter = 30

[grid]
dim = [1, 2, 3]     # dim = 1 < n_in = 2: these runs fail when built
l2 = [0.0, 1e-3]
"""


#: the scheduler's HTTP server on a free port (on 8787 a second cluster warns that it is taken)
NO_HTTP_PORT = {"dashboard_address": ":0"}


@pytest.fixture(scope="module")
def spec_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("spec") / "tiny.toml"
    path.write_text(SPEC)
    return path


@pytest.fixture(scope="module")
def reference(spec_path: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[dict]]:
    out = tmp_path_factory.mktemp("one_worker")
    return out, run_sweep(spec_path, out, workers=1, progress=False)


def by_id(rows: list[dict]) -> dict[str, dict]:
    return {row["run_id"]: row for row in rows}


def assert_same_runs(rows: list[dict], expected: list[dict]) -> None:
    """Same run ids, statuses and metrics, and bit-identical w in the Result files."""
    got, want = by_id(rows), by_id(expected)
    assert set(got) == set(want)
    for rid, row in want.items():
        assert got[rid]["status"] == row["status"]
        assert got[rid]["objective"] == row["objective"]
        if row["result_path"]:
            w_got = cdl.Result.load(got[rid]["result_path"]).w
            np.testing.assert_array_equal(w_got, cdl.Result.load(row["result_path"]).w)


def test_reference_sweep(reference: tuple[Path, list[dict]]) -> None:
    out, rows = reference
    assert len(rows) == 12 and len({r["run_id"] for r in rows}) == 12
    failed = [r for r in rows if r["status"] == "failed"]
    assert len(failed) == 4 and all(r["dim"] == 1 and "dim=1" in r["error"] for r in failed)
    assert all(r["result_path"] is None for r in failed)
    ok = [r for r in rows if r["status"] != "failed"]
    assert all(r["status"] == "max_iter" and r["iterations"] == 30 and Path(r["result_path"]).is_file() for r in ok)
    result = cdl.Result.load(ok[0]["result_path"])
    assert result.objective == ok[0]["objective"] and result.seed == ok[0]["seed"]
    assert {"numpy", "casadi", "control_dl"} <= set(result.versions)
    with sqlite3.connect(out / "index.sqlite") as db:
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_two_workers_give_the_same_results(spec_path: Path, reference: tuple, tmp_path: Path) -> None:
    assert_same_runs(run_sweep(spec_path, tmp_path, workers=2, progress=False), reference[1])


def test_dask_local_cluster_gives_the_same_index(spec_path: Path, reference: tuple, tmp_path: Path) -> None:
    distributed = pytest.importorskip("distributed")
    # a cluster started outside the sweep, reached by its address: the way a real cluster is used
    with distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None, scheduler_kwargs=NO_HTTP_PORT
    ) as cluster:
        rows = run_sweep(spec_path, tmp_path, scheduler=cluster.scheduler_address, progress=False)
    assert_same_runs(rows, reference[1])


def test_a_closed_client_is_a_spec_error(spec_path: Path, tmp_path: Path) -> None:
    """As for the Dask engine (check_connected): before, distributed's own error out of the sweep."""
    distributed = pytest.importorskip("distributed")
    with distributed.LocalCluster(
        n_workers=1, threads_per_worker=1, processes=False, dashboard_address=None, scheduler_kwargs=NO_HTTP_PORT
    ) as cluster:
        client = distributed.Client(cluster)
        client.close()
        with pytest.raises(
            cdl.SpecError, match=r"scheduler=.*is not connected to a scheduler \(client status 'closed'\)"
        ):
            run_sweep(spec_path, tmp_path, scheduler=client, progress=False)


def test_rerun_skips_finished_runs(spec_path: Path, reference: tuple) -> None:
    out, rows = reference
    # numpy scalars are counts and seconds like ints and floats (a grid read back from an index gives them)
    again = run_sweep(spec_path, out, workers=np.int64(1), timeout=np.float32(60), progress=False)
    done = {r["run_id"]: r["finished_at"] for r in rows if r["status"] != "failed"}
    assert {r["run_id"]: r["finished_at"] for r in again if r["run_id"] in done} == done
    assert len(again) == 12


KILLED = {
    "problem": {"name": "ring", "n_samples": 60, "n_steps": 6},
    "solver": {"preset": "ipopt-lbfgs", "max_iter": 40},
    "grid": {"dim": [2, 3, 4], "l2": [0.0, 1e-4, 1e-3]},
    "seeds": [0, 1],
}
KILLED_SWEEP = f"""
import sys
from control_dl.experiments import run_sweep

if __name__ == "__main__":  # worker processes are spawned: they import this file
    run_sweep({KILLED!r}, sys.argv[1], workers=2, progress=False)
"""


def test_sigkill_mid_sweep_then_resume(tmp_path: Path) -> None:
    out = tmp_path / "sweep"
    script = tmp_path / "sweep.py"
    script.write_text(KILLED_SWEEP)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen([sys.executable, str(script), str(out)], start_new_session=True, env=env)
    count = 0
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and proc.poll() is None:
            if (out / "index.sqlite").exists():
                with sqlite3.connect(f"file:{out / 'index.sqlite'}?mode=ro", uri=True, timeout=5) as db:
                    try:
                        count = db.execute("SELECT COUNT(*) FROM runs").fetchone()[0]
                    except sqlite3.OperationalError:  # table not created yet
                        count = 0
            if count >= 2:
                break
            time.sleep(0.02)
        assert proc.poll() is None, "the sweep ended before it could be killed"
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    assert 2 <= count < 18
    spec = load_sweep(KILLED)
    before = by_id(load_runs(out))
    rows = run_sweep(spec, out, workers=2, progress=False)
    ids = [r["run_id"] for r in rows]
    assert sorted(ids) == sorted(r.run_id for r in spec.runs()) and len(set(ids)) == 18
    for rid, row in before.items():  # finished runs were kept, not redone
        assert by_id(rows)[rid]["finished_at"] == row["finished_at"]
    with sqlite3.connect(out / "index.sqlite") as db:
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    files = sorted(p.name for p in (out / "runs").iterdir())
    assert files == sorted(f"{rid}.npz" for rid in ids)  # no temporary or half-written file
    assert all(cdl.Result.load(r["result_path"]).status == r["status"] for r in rows)


LONG_SWEEP = """
import sys
from control_dl.experiments import run_sweep

if __name__ == "__main__":
    spec = {"problem": {"name": "ring", "n_steps": 4}, "solver": {"preset": "ipopt-lbfgs"}, "seeds": [0, 1, 2]}
    run_sweep({**spec, "problem": {**spec["problem"], "n_samples": 20000}}, sys.argv[1], workers=2, progress=False)
"""


def test_workers_exit_when_the_sweep_process_is_killed_alone(tmp_path: Path) -> None:
    psutil = pytest.importorskip("psutil")
    script = tmp_path / "sweep.py"
    script.write_text(LONG_SWEEP)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen([sys.executable, str(script), str(tmp_path / "out")], start_new_session=True, env=env)
    try:
        deadline = time.monotonic() + 60
        workers: list = []
        while time.monotonic() < deadline and len(workers) < 2:
            time.sleep(0.1)
            workers = [c for c in psutil.Process(proc.pid).children() if "spawn_main" in " ".join(c.cmdline())]
        assert len(workers) == 2
        time.sleep(1.0)  # the workers are busy with their first run
        os.kill(proc.pid, signal.SIGKILL)  # the parent only: no process group kill
        proc.wait()
        _, alive = psutil.wait_procs(workers, timeout=15)
        assert not alive, "worker processes outlived the killed sweep"
    finally:
        if proc.poll() is None:
            proc.kill()
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)


def test_a_run_over_the_timeout_is_recorded_and_the_sweep_goes_on(tmp_path: Path) -> None:
    spec = {
        "problem": {"name": "ring", "n_steps": 4},
        "solver": {"preset": "ipopt-lbfgs", "max_iter": 30, "jit": False, "engine": "casadi"},  # uncompiled: slow
        "grid": {"n_samples": [20000, 40]},  # the first takes a minute, the second a fraction of a second
    }
    rows = by_id(run_sweep(spec, tmp_path, workers=1, timeout=3.0, progress=False))
    slow, fast = (next(r for r in rows.values() if r["point"]["n_samples"] == n) for n in (20000, 40))
    assert slow["status"] == "failed" and slow["message"].startswith("timeout") and slow["result_path"] is None
    assert fast["status"] in ("converged", "max_iter") and Path(fast["result_path"]).is_file()


def test_cli_runs_filters_and_sweep_resumes(spec_path: Path, reference: tuple, capsys: pytest.CaptureFixture) -> None:
    out = str(reference[0])
    assert main(["runs", out, "--where", "dim=3", "--where", "seed=1"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 3 and lines[0].split()[:2] == ["run_id", "status"]
    assert main(["runs", out, "--where", "dim=3", "--status", "diverged"]) == 0  # no run: the header stays whole
    assert [line.split() for line in capsys.readouterr().out.strip().splitlines()] == [lines[0].split()]
    assert main(["runs", out, "--status", "failed"]) == 0
    assert len(capsys.readouterr().out.strip().splitlines()) == 5
    assert main(["sweep", str(spec_path), "--out", out, "--no-progress"]) == 1  # resumed: nothing runs; 4 failed
    assert "12 runs" in capsys.readouterr().out
    assert len(load_runs(out, where={"problem.seed": 0, "l2": 0.001})) == 6
    with pytest.raises(cdl.SpecError, match="no run has this parameter"):
        load_runs(out, where={"dimension": 3})


def test_run_ids_are_stable_and_follow_the_parameters(spec_path: Path) -> None:
    runs = load_sweep(spec_path).runs()
    assert [r.run_id for r in runs] == [r.run_id for r in load_sweep(spec_path).runs()]
    doc = {"problem": {"name": "ring", "n_samples": 40}, "solver": {"preset": "ipopt-lbfgs"}}
    one = load_sweep(doc).runs()
    same = load_sweep({**doc, "problem": {"name": "ring", "n_samples": 40, "noise": 0.0}}).runs()
    other = load_sweep({**doc, "problem": {"name": "ring", "n_samples": 41}}).runs()
    assert one[0].run_id == same[0].run_id != other[0].run_id  # an explicit default is the same run


def test_grid_over_problems_solvers_and_prefixed_keys() -> None:
    base = {"problem": {"name": "ring"}, "solver": {"preset": "ipopt-lbfgs"}}
    runs = load_sweep({**base, "grid": {"problem": {"seed": [0, 1]}, "solver.tol": [1e-6]}}).runs()
    assert [r.params["problem"]["data"]["seed"] for r in runs] == [0, 1]
    assert all(r.params["solver"]["tol"] == 1e-6 and r.params["seed"] == 0 for r in runs)
    spec = load_sweep({**base, "grid": {"problem": ["ring", "xor"], "solver": ["ipopt-lbfgs", "ipopt-exact"]}})
    runs = spec.runs()
    assert len(runs) == 4
    assert {(r.params["problem"]["name"], r.params["solver"]["hessian"]) for r in runs} == {
        ("ring", "lbfgs"),
        ("ring", "exact"),
        ("xor", "lbfgs"),
        ("xor", "exact"),
    }


@pytest.mark.parametrize(
    ("doc", "match"),
    [
        ({"solver": {"preset": "ipopt-lbfgs"}}, "problem"),
        ({"problem": {"name": "ring"}, "solver": {"preset": "ipopt-lbfgs"}, "grid": {"nope": [1]}}, "nope"),
        ({"problem": {"name": "ring"}, "solver": {"preset": "ipopt-lbfgs"}, "grid": {"dim": 3}}, "grid.dim"),
        ({"problem": {"name": "ring"}, "solver": {"preset": "ipopt-lbfgs"}, "grid": {"dim": []}}, "grid.dim"),
        ({"problem": {"name": "ring"}, "solver": {"preset": "ipopt-lbfgs"}, "grid": {"max_iter": [-1]}}, "max_iter"),
        ({"problem": {"name": "ring"}, "solver": {"preset": "ipopt-lbfgs"}, "grid": {"dim": ["x"]}}, "dim"),
        ({"problem": {"name": "ring"}, "solver": {"preset": "ipopt-lbfgs"}, "seeds": [-1]}, "seeds"),
        ({"problem": {"name": "ring"}, "solver": {"preset": "ipopt-lbfgs"}, "seeds": []}, "seeds"),
        ({"problem": {"name": "nowhere"}, "solver": {"preset": "ipopt-lbfgs"}}, "nowhere"),
        (
            {"problem": {"name": "ring"}, "solver": {"preset": "ipopt-lbfgs"}, "grid": {"problem": [["ring"]]}},
            "problem",
        ),
        ({"problem": {"name": "ring", "path": "x.toml"}, "solver": {"preset": "ipopt-lbfgs"}}, "exactly one"),
        ({"problem": {"name": "ring"}, "solver": {"preset": "ipopt-lbfgs"}, "extra": 1}, "extra"),
    ],
)
def test_bad_sweep_specs_are_spec_errors(doc: dict, match: str) -> None:
    with pytest.raises(cdl.SpecError, match=match):
        load_sweep(doc).runs()


def test_numpy_values_in_a_sweep_dict_are_the_plain_values():
    """np.arange grids, numpy scalars and tuples as TOML would give them: the same runs, the same ids
    (an np.int64 in the grid used to fail in the index's JSON after its run had been solved)."""
    plain = {"problem": {"name": "ring", "n_samples": 40}, "solver": {"preset": "lbfgsb", "max_iter": 3}}
    python = {**plain, "grid": {"n_steps": [5, 6], "horizon": [1.0, 2.0]}, "seeds": [0, 1]}
    numpy = {
        **plain,
        "grid": {"n_steps": np.arange(5, 7), "horizon": (np.float32(1.0), 2.0)},
        "seeds": [np.int64(0), np.int64(1)],
    }
    runs = [load_sweep(doc).runs() for doc in (python, numpy)]
    assert [(r.run_id, r.point) for r in runs[0]] == [(r.run_id, r.point) for r in runs[1]]
    assert all(type(r.point["n_steps"]) is int for r in runs[1])


def test_bad_arguments_and_a_busy_folder(tmp_path: Path) -> None:
    doc = {"problem": {"name": "ring"}, "solver": {"preset": "ipopt-lbfgs"}}
    for bad in (0, np.int64(0), 1.0, True):
        with pytest.raises(cdl.SpecError, match=re.escape(f"workers={bad!r}: must be an integer >= 1")):
            run_sweep(doc, tmp_path, workers=bad)
    for bad in (-1, 0, np.inf, "60"):
        with pytest.raises(cdl.SpecError, match=re.escape(f"timeout={bad!r}: must be a finite number > 0")):
            run_sweep(doc, tmp_path, timeout=bad)
    with RunStore(tmp_path, writable=True), pytest.raises(cdl.SpecError, match="another sweep"):
        RunStore(tmp_path, writable=True)


def test_an_index_that_is_not_a_sweeps_is_a_spec_error(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    index = tmp_path / "index.sqlite"
    index.write_text("not a database")  # damaged, or another program's file
    with pytest.raises(cdl.SpecError, match=r"runs=.*index\.sqlite'.*not a sweep's index \(file is not a database\)"):
        load_runs(tmp_path)
    with pytest.raises(cdl.SpecError, match=r"out=.*index\.sqlite'.*not a sweep's index"):
        RunStore(tmp_path, writable=True)
    assert main(["runs", str(tmp_path)]) == 2 and "Traceback" not in capsys.readouterr().err
    index.unlink()
    with contextlib.closing(sqlite3.connect(index)) as db:
        db.execute("CREATE TABLE runs (id INTEGER)")  # another program's table of the same name
    with pytest.raises(cdl.SpecError, match="an SQLite file without a sweep's runs table"):
        load_runs(tmp_path)
    index.unlink()
    index.mkdir()
    with pytest.raises(cdl.SpecError, match=r"out=.*index\.sqlite'.*not a sweep's index"):
        RunStore(tmp_path, writable=True)
    index.rmdir()
    with RunStore(tmp_path, writable=True):  # each failure above released the folder's lock
        pass


class CrashingExecutor:
    """Runs calls inline, except that a call of the run ``culprit`` breaks every call in flight with it."""

    loses_inflight_on_abort = True

    def __init__(self, culprit: str, capacity: int = 2) -> None:
        self.culprit, self.capacity, self.restarts = culprit, capacity, 0
        self.batch: list = []

    def submit(self, fn, params, result_path, relative):  # noqa: ANN001, ANN201
        import concurrent.futures as cf

        from control_dl.experiments.sweep import run_id

        future = cf.Future()
        self.batch.append(future)
        if run_id(params) == self.culprit:
            from concurrent.futures.process import BrokenProcessPool

            for f in self.batch:
                if not f.done():
                    f.set_exception(BrokenProcessPool("a worker died"))
        else:
            future.set_result({"status": "converged", "objective": 1.0, "result_path": None})
        return future

    def restart(self) -> None:
        self.restarts += 1
        self.batch = []


def test_a_run_that_kills_its_worker_is_isolated_and_recorded(tmp_path: Path) -> None:
    from tqdm import tqdm

    from control_dl.experiments.runner import _loop

    runs = load_sweep({"problem": {"name": "ring"}, "solver": {"preset": "ipopt-lbfgs"}, "seeds": [0, 1, 2, 3]}).runs()
    executor = CrashingExecutor(culprit=runs[1].run_id)
    with RunStore(tmp_path, writable=True) as store, tqdm(disable=True) as bar:
        _loop(runs, store, executor, None, bar)
        rows = by_id(store.rows())
    assert rows[runs[1].run_id]["status"] == "failed" and "died" in rows[runs[1].run_id]["message"]
    assert all(rows[r.run_id]["status"] == "converged" for r in runs if r is not runs[1])
    assert executor.restarts == 2


values = st.one_of(
    st.integers(-3, 40),
    st.floats(allow_nan=True),
    st.booleans(),
    st.sampled_from(["ring", "xor", "ipopt-lbfgs", "lbfgs", "x.toml", ""]),
    st.none(),
)
tables = st.dictionaries(
    st.sampled_from(
        ["name", "path", "preset", "dim", "n_steps", "max_iter", "hessian", "seed", "problem", "solver", "zz"]
    ),
    st.one_of(values, st.lists(values, max_size=3)),
    max_size=4,
)


@settings(max_examples=200, deadline=None, suppress_health_check=list(HealthCheck))
@given(
    doc=st.dictionaries(
        st.sampled_from(["problem", "solver", "grid", "seeds", "name", "other"]),
        st.one_of(values, tables, st.lists(values, max_size=3)),
        max_size=5,
    )
)
def test_random_sweep_documents_expand_or_raise_spec_error(doc: dict) -> None:
    try:
        runs = load_sweep(doc).runs()
    except cdl.SpecError:
        return
    assert runs and all(len(r.run_id) == 16 for r in runs)


def test_example_sweep_file_expands() -> None:
    runs = load_sweep(ROOT / "examples" / "sweep_ring.toml").runs()
    assert len(runs) == 18 and {r.point["n_steps"] for r in runs} == {5, 10, 20}


def test_a_script_without_a_main_guard_gets_a_spec_error_naming_the_guard(tmp_path):
    """The sweep's pool starts with 'spawn', which re-runs the main script: without
    ``if __name__ == "__main__":`` the parent saw only a BrokenProcessPool. It is now refused
    before any child starts: one traceback, not one per child."""
    script = tmp_path / "sweep.py"
    sweep_file = ROOT / "examples" / "sweep_ring.toml"
    script.write_text(f"import control_dl as cdl\ncdl.experiments.run_sweep({str(sweep_file)!r}, 'out', workers=2)\n")
    run = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert run.returncode != 0
    assert "SpecError: workers=2" in run.stderr and 'if __name__ == "__main__":' in run.stderr
    assert run.stderr.count("Traceback (most recent call last)") == 1


def test_a_guarded_script_read_from_stdin_is_told_to_use_a_file(tmp_path):
    """``python - < sweep.py``: the spawned children cannot re-read the script (FileNotFoundError
    '<stdin>'); the guard is there, so the error must not ask for it (a user's report)."""
    sweep_file = ROOT / "examples" / "sweep_ring.toml"
    source = (
        "import control_dl as cdl\n"
        'if __name__ == "__main__":\n'
        f"    cdl.experiments.run_sweep({str(sweep_file)!r}, 'out', workers=2)\n"
    )
    run = subprocess.run([sys.executable, "-"], input=source, capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert run.returncode != 0
    last = run.stderr.strip().splitlines()[-1]
    assert "SpecError: workers=2" in last and "standard input" in last and "__main__" not in last
    assert run.stderr.count("Traceback (most recent call last)") == 1


@pytest.mark.parametrize(
    ("main_file", "source", "expected"),
    [
        (None, None, None),  # python -c, a notebook: spawn does not re-run anything
        ("<stdin>", None, "stdin"),
        ("train.py", "import x\nrun()\n", "no guard"),
        ("train.py", "def main(): ...\nif __name__ == '__main__':\n    main()\n", None),
    ],
)
def test_worker_start_error_names_the_main_script_only_when_it_is_the_cause(
    tmp_path, monkeypatch, main_file, source, expected
):
    import types

    from control_dl import _errors

    main = types.ModuleType("__main__")
    if main_file is not None:
        main.__file__ = str(tmp_path / main_file) if source is not None else main_file
        if source is not None:
            (tmp_path / main_file).write_text(source)
    monkeypatch.setitem(sys.modules, "__main__", main)
    assert _errors._main_script_lacks_guard() == expected
    message = str(_errors.worker_start_error("workers", 2, "the pool", OSError("port in use")))
    assert message.startswith("workers=2: could not start the pool")
    assert ("__main__" in message) == (expected == "no guard")
    assert ("standard input" in message) == (expected == "stdin")
    assert ("OSError: port in use" in message) == (expected is None)
    if expected is None:  # the check before starting anything lets it through
        _errors.require_rerunnable_main("workers", 2, "the pool")
        # a guarded script that solves outside its guard: the children re-ran it (a user's ~550 lines
        # of tracebacks ended in "Nanny failed to start" without a word about the guard)
        nanny = str(_errors.worker_start_error("engine", "Dask", "the workers", RuntimeError("Nanny failed to start")))
        assert "move the solve into it" in nanny and "port in use" not in nanny
    else:  # and refuses with the message the pool's failure would have given
        with pytest.raises(SpecError, match=re.escape(message)):
            _errors.require_rerunnable_main("workers", 2, "the pool")


@pytest.mark.parametrize(
    ("grid", "preset", "match"),
    [
        ({"seed": [0, 1]}, "ipopt-lbfgs", r"grid.seed=\[0, 1\]: ambiguous: .*run seed.*; write problem.seed$"),
        ({"seed": [0, 1]}, "adam", r"grid.seed=\[0, 1\]: .*solver option.*; write problem.seed or solver.seed$"),
        ({"loss": ["mse"]}, "ipopt-lbfgs", r"grid.loss=\['mse'\]: .*'loss' column.*; write problem.loss$"),
    ],
)
def test_a_bare_grid_key_that_names_two_things_is_refused(grid: dict, preset: str, match: str) -> None:
    doc = {"problem": {"name": "ring"}, "solver": {"preset": preset}, "grid": grid}
    with pytest.raises(cdl.SpecError, match=match):
        load_sweep(doc).runs()


def recorded_store(root: Path) -> list:
    """A sweep folder indexed without solving: every run of a small grid recorded as converged
    (even run ids) or failed, so that filters can be checked in milliseconds."""
    grid = {"problem.seed": [0, 1], "solver": ["ipopt-lbfgs", "ipopt-exact"], "n_steps": [2, 3], "l2": [1e-3]}
    runs = load_sweep({"problem": {"name": "ring"}, "solver": {"preset": "ipopt-lbfgs"}, "grid": grid}).runs()
    with RunStore(root, writable=True) as store:
        for i, run in enumerate(runs):
            store.record(run, {"status": "failed" if i % 2 else "converged", "objective": float(i)})
    return runs


def test_every_recorded_grid_value_finds_its_run(tmp_path: Path) -> None:
    runs = recorded_store(tmp_path)
    assert {tuple(r.point) for r in runs} == {("problem.seed", "solver", "n_steps", "l2", "seed")}
    for run in runs:
        for key, value in run.point.items():
            assert run.run_id in {row["run_id"] for row in load_runs(tmp_path, where={key: value})}, (key, value)
    exact = load_runs(tmp_path, where={"solver": "ipopt-exact", "problem.seed": 1, "n_steps": 3.0, "l2": 0.001})
    assert len(exact) == 1 and exact[0]["params"]["solver"]["hessian"] == "exact"
    assert (
        exact[0]["params"]["problem"]["data"]["seed"] == 1 and exact[0]["params"]["problem"]["control"]["n_steps"] == 3
    )
    assert len(load_runs(tmp_path, where={"hessian": "exact"}, status="failed")) == 2  # n_steps=3: odd


@pytest.mark.parametrize(
    ("where", "status", "match"),
    [
        (None, "done", r"status='done': must be one of \['converged', 'max_iter', 'failed', 'diverged'\]"),
        (None, "", "status=''"),
        ({"n_steps": "ten"}, None, r"where n_steps='ten': a string never equals its values \(number\)"),
        ({"hessian": 1}, None, r"where hessian=1: a number never equals its values \(string\)"),
        ({"n_steps": True}, None, "where n_steps=True: a boolean"),
        ({"dimension": 3}, "diverged", "where dimension=3: no run has this parameter"),  # no row is diverged
        (["n_steps=3"], None, "where=\\['n_steps=3'\\]: must be a dict"),
    ],
)
def test_filters_that_can_match_nothing_are_spec_errors(tmp_path: Path, where: object, status: str, match: str) -> None:
    recorded_store(tmp_path)
    with pytest.raises(cdl.SpecError, match=match):
        load_runs(tmp_path, where=where, status=status)


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--status", "done"], "status='done': must be one of"),
        (["--where", "n_steps=ten"], "where n_steps='ten'"),
        (["--where", "n_steps=2", "--where", "n_steps=3"], "--where n_steps: given twice"),
    ],
)
def test_cli_runs_refuses_filters_that_can_match_nothing(
    tmp_path: Path, flags: list, message: str, capsys: pytest.CaptureFixture
) -> None:
    recorded_store(tmp_path)
    assert main(["runs", str(tmp_path), *flags]) == 2
    captured = capsys.readouterr()
    assert message in captured.err and captured.out == ""


def test_a_bad_scheduler_is_named_by_its_flag_before_any_run(
    spec_path: Path, tmp_path: Path, capsys, monkeypatch
) -> None:
    pytest.importorskip("distributed")
    from control_dl.engines import dask as dask_module
    from control_dl.experiments import runner

    monkeypatch.setattr(runner, "_execute", lambda *args: pytest.fail("a run started"))
    argv = ["sweep", str(spec_path), "--out", str(tmp_path), "--scheduler"]
    assert main([*argv, "localhost"]) == 2
    assert "--scheduler='localhost': not a Dask scheduler address" in capsys.readouterr().err

    def refused(address, timeout):  # what a closed port gives after the probe's 30 s, at once
        raise OSError("Timed out trying to connect")

    monkeypatch.setattr(dask_module, "_probe_scheduler", refused)
    assert main([*argv, "tcp://127.0.0.1:9"]) == 2
    assert "--scheduler='tcp://127.0.0.1:9': no Dask scheduler answered there" in capsys.readouterr().err


def test_workers_next_to_a_running_scheduler_are_refused(spec_path: Path, tmp_path: Path, capsys) -> None:
    # refused before any connection: nothing listens on port 9
    argv = ["sweep", str(spec_path), "--out", str(tmp_path), "--scheduler", "tcp://127.0.0.1:9", "--workers", "2"]
    assert main(argv) == 2
    assert "--workers=2: a running --scheduler brings its own workers" in capsys.readouterr().err
    with pytest.raises(cdl.SpecError, match="workers=2: sets up local workers"):
        run_sweep(spec_path, tmp_path, workers=2, scheduler="tcp://127.0.0.1:9")
    assert not (tmp_path / "index.sqlite").exists()
