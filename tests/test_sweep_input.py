"""Sweep input that used to give silently wrong records or raw OSErrors: each is one SpecError now."""

from __future__ import annotations

import contextlib
import re
import sqlite3
from pathlib import Path

import numpy as np
import pytest

import control_dl as cdl
from control_dl.experiments import RunStore, load_runs, load_sweep, run_sweep
from control_dl.experiments._task import execute_run
from control_dl.experiments.sweep import Run
from control_dl.problems.datafiles import file_sha256

BASE = {"problem": {"name": "ring", "n_samples": 40}, "solver": {"preset": "lbfgsb", "max_iter": 5}}


@pytest.mark.parametrize(
    ("grid", "named"),
    [
        ({"n_steps": [3], "problem.n_steps": [4]}, ("grid.problem.n_steps=[4]", "grid.n_steps = [3]")),
        ({"problem.n_steps": [4], "n_steps": [3]}, ("grid.n_steps=[3]", "grid.problem.n_steps = [4]")),
        ({"max_iter": [3], "solver.max_iter": [4]}, ("grid.solver.max_iter=[4]", "grid.max_iter = [3]")),
        ({"max_iter": [3], "solver": {"max_iter": [4]}}, ("grid.solver.max_iter=[4]", "grid.max_iter = [3]")),
        # TOML allows both a quoted dotted key and the nested table it would otherwise be
        ({"problem.seed": [1], "problem": {"seed": [2]}}, ("grid.problem.seed=[2]", "given twice")),
    ],
)
def test_two_grid_keys_for_one_parameter_are_refused(grid: dict, named: tuple[str, str]) -> None:
    """The later key used to win while the run's point kept both: the table showed the loser's value."""
    with pytest.raises(cdl.SpecError) as info:
        load_sweep({**BASE, "grid": grid}).runs()
    assert all(text in str(info.value) for text in named), str(info.value)


def test_one_key_per_parameter_still_expands() -> None:
    runs = load_sweep({**BASE, "grid": {"n_steps": [3], "solver.max_iter": [4], "problem": {"seed": [1]}}}).runs()
    assert [run.point for run in runs] == [{"n_steps": 3, "solver.max_iter": 4, "problem.seed": 1, "seed": 0}]
    assert runs[0].params["problem"]["control"]["n_steps"] == 3 and runs[0].params["solver"]["max_iter"] == 4


def test_a_sweep_refuses_another_programs_database_before_changing_it(tmp_path: Path) -> None:
    """It used to add its runs table and switch the file to WAL mode, then run the sweep (exit 0)."""
    index = tmp_path / "index.sqlite"
    with contextlib.closing(sqlite3.connect(index)) as db:
        db.execute("CREATE TABLE t (x INTEGER)")
        db.execute("INSERT INTO t VALUES (1)")
        db.commit()
    before = index.read_bytes()
    message = r"out='.*index\.sqlite': is an SQLite file without a sweep's runs table: another program's .*tables: t\)"
    with pytest.raises(cdl.SpecError, match=message):
        RunStore(tmp_path, writable=True)
    with pytest.raises(cdl.SpecError, match=message):
        run_sweep(BASE, tmp_path, progress=False)
    assert index.read_bytes() == before and sorted(p.name for p in tmp_path.iterdir()) == ["index.sqlite"]
    with contextlib.closing(sqlite3.connect(index)) as db:
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "delete"
    with pytest.raises(cdl.SpecError, match="runs='.*index.sqlite': is an SQLite file without a sweep's runs table"):
        load_runs(tmp_path)


def test_an_empty_index_file_becomes_a_sweeps_index(tmp_path: Path) -> None:
    (tmp_path / "index.sqlite").touch()  # an empty file is an empty SQLite database
    with RunStore(tmp_path, writable=True) as store:
        assert store.rows() == []
    assert load_runs(tmp_path) == []


@pytest.mark.parametrize(
    ("make", "why"),
    [
        (lambda out: (out / "runs").touch(), r"\(.*runs: File exists\)"),
        (lambda out: (out / ".lock").mkdir(), r"\(.*\.lock: Is a directory\)"),
        (lambda out: out.rmdir() or out.touch(), r"\(.*runs: Not a directory\)"),  # --out is a file
    ],
)
def test_a_folder_that_cannot_hold_a_sweep_is_one_spec_error(tmp_path: Path, make, why: str) -> None:  # noqa: ANN001
    """FileExistsError, IsADirectoryError, ... came out raw from RunStore."""
    out = tmp_path / "out"
    out.mkdir()
    make(out)
    with pytest.raises(cdl.SpecError, match=rf"^out='{re.escape(str(out))}': cannot hold a sweep's results {why}"):
        RunStore(out, writable=True)


@pytest.mark.skipif(not Path("/proc/self").is_dir(), reason="needs Linux /proc")
def test_a_folder_the_system_refuses_is_a_spec_error() -> None:
    with pytest.raises(cdl.SpecError, match=r"^out='/proc': cannot hold a sweep's results \(/proc/runs: "):
        RunStore("/proc", writable=True)


def test_result_paths_are_absolute_with_a_relative_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The rows' result_path, documented absolute, was relative to the working directory."""
    monkeypatch.chdir(tmp_path)
    run = Run("0123456789abcdef", {"problem": {}, "solver": {"solver": "lbfgsb"}, "seed": 0}, {"seed": 0})
    with RunStore("out", writable=True) as store:
        store.record(run, {"status": "converged", "result_path": store.result_file(run.run_id)})
    expected = str(tmp_path / "out" / "runs" / "0123456789abcdef.npz")
    assert [row["result_path"] for row in load_runs("out")] == [expected]
    monkeypatch.chdir(tmp_path / "out")
    with RunStore(".") as store:
        assert [row["result_path"] for row in store.rows()] == [expected]


@pytest.mark.parametrize(
    ("seeds", "shown", "why"),
    [
        ([0, 0], "[0, 0]", "repeats 0: each seed runs once"),  # ran once without a word
        ([1, 2, 1], "[1, 2, 1]", "repeats 1"),
        ((3, 3), "[3, 3]", "repeats 3"),  # a dict spec is plain TOML data: a tuple is a list
        (np.array([5, 5]), "[5, 5]", "repeats 5"),
        ("0", "'0'", "must be a non-empty list of distinct integers"),  # was reported as seeds=['0']
        ("01", "'01'", "must be a non-empty list"),  # was two seeds '0' and '1', then a type error
        (3, "3", "must be a non-empty list"),  # a lone integer might mean three seeds
        (np.zeros((1, 1), dtype=int), r"[[0]]", "must be a non-empty list"),
        ([0, "1"], "[0, '1']", "must be a non-empty list"),
        ([[0]], "[[0]]", "must be a non-empty list"),
    ],
)
def test_seeds_must_be_a_list_of_distinct_integers(seeds: object, shown: str, why: str) -> None:
    with pytest.raises(cdl.SpecError, match="^" + re.escape(f"seeds={shown}: {why}")):
        load_sweep({**BASE, "seeds": seeds})
    with pytest.raises(cdl.SpecError, match="^" + re.escape(f"seeds={shown}: {why}")):
        load_sweep({**BASE, "grid": {"seeds": seeds}})  # the [grid] spelling of the same list


def test_distinct_seeds_give_one_run_each() -> None:
    for seeds in ([2, 0, 1], (2, 0, 1), np.array([2, 0, 1])):
        runs = load_sweep({**BASE, "seeds": seeds}).runs()
        assert [run.params["seed"] for run in runs] == [2, 0, 1]
        assert all(type(run.params["seed"]) is int for run in runs)


CSV = "a,b,label\n" + "".join(f"{i / 10},{(-1) ** i / 3},{i % 2}\n" for i in range(12))
PROBLEM = """
name = "my-data"
[data]
dataset = "file"
path = "data/m.csv"
target = "label"
[model]
dim = 3
[control]
n_steps = 2
"""


@pytest.fixture
def data_sweep(tmp_path: Path) -> Path:
    """A sweep file in ``study/`` with its problem TOML and data files beside it."""
    study = tmp_path / "study"
    (study / "data").mkdir(parents=True)
    (study / "data" / "m.csv").write_text(CSV)
    (study / "data" / "m2.csv").write_text(CSV.replace("0.1,", "0.15,"))
    (study / "problem.toml").write_text(PROBLEM)
    return study


@pytest.mark.parametrize(
    "grid",
    [
        '"path" = ["data/m2.csv", "data/m.csv"]',
        '"problem.path" = ["data/m2.csv", "data/m.csv"]',
        'problem.path = ["data/m2.csv", "data/m.csv"]',  # a [grid.problem] table
    ],
)
def test_grid_data_paths_are_relative_to_the_sweep_file(
    data_sweep: Path, grid: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """They resolved against the working directory, unlike [problem] path and grid problem entries."""
    spec = data_sweep / "sweep.toml"
    spec.write_text(f'[problem]\npath = "problem.toml"\n[solver]\npreset = "lbfgsb"\n[grid]\n{grid}\n')
    monkeypatch.chdir(data_sweep.parent)  # another folder than the sweep file's
    runs = load_sweep(spec).runs()
    assert [run.params["problem"]["data"]["path"] for run in runs] == [
        str(data_sweep / "data" / "m2.csv"),
        str(data_sweep / "data" / "m.csv"),
    ]
    absolute = str(data_sweep / "data" / "m.csv")
    (run,) = load_sweep(
        {**BASE, "problem": {"path": str(data_sweep / "problem.toml")}, "grid": {"path": [absolute]}}
    ).runs()
    assert run.params["problem"]["data"]["path"] == absolute


def test_an_edited_data_file_is_a_new_run(data_sweep: Path) -> None:
    """Resume kept results computed on the old file (the file was not part of the run id) and
    exporting such a run then failed: its data file had changed."""
    spec = data_sweep / "sweep.toml"
    spec.write_text('seeds = [0, 1]\n[problem]\npath = "problem.toml"\n[solver]\npreset = "lbfgsb"\nmax_iter = 3\n')
    out = data_sweep / "out"
    first = run_sweep(spec, out, progress=False)
    csv = data_sweep / "data" / "m.csv"
    assert [row["params"]["data_sha256"] for row in first] == [file_sha256(csv)] * 2
    assert run_sweep(spec, out, progress=False) == first  # unchanged file: resumed, nothing re-run
    csv.write_text(CSV.replace("0.2,", "0.25,"))
    second = run_sweep(spec, out, progress=False)
    assert {row["run_id"] for row in second}.isdisjoint(row["run_id"] for row in first)
    assert [row["params"]["data_sha256"] for row in second] == [file_sha256(csv)] * 2
    for row in second:  # results on the new data: they load with their problem rebuilt from the file
        assert row["status"] != "failed", row["message"]
        assert cdl.Result.load(row["result_path"]).problem.data.source["sha256"] == file_sha256(csv)
    assert len(load_runs(out)) == 4  # the runs on the old file stay, recorded with its SHA-256
    assert load_runs(out, where={"data_sha256": file_sha256(csv)}) == second  # and a filter tells them apart


def test_catalog_problems_have_no_data_hash() -> None:
    """Ids of runs without a data file are unchanged by the hash."""
    (run,) = load_sweep(BASE).runs()
    assert sorted(run.params) == ["problem", "seed", "solver"]


def test_a_data_file_that_cannot_be_read_is_named_before_any_run(data_sweep: Path) -> None:
    doc = {**BASE, "problem": {"path": str(data_sweep / "problem.toml")}}
    for bad, why in (("nope.csv", "No such file"), ("data", "Is a directory")):
        with pytest.raises(
            cdl.SpecError, match=rf"^path='{re.escape(str(data_sweep / bad))}': cannot read the data file \({why}"
        ):
            load_sweep({**doc, "grid": {"path": [str(data_sweep / bad)]}}).runs()


def test_a_run_whose_data_file_changed_after_expansion_fails_and_says_so(data_sweep: Path) -> None:
    """A file edited between the expansion and the worker's read must not give a result under the old hash."""
    (run,) = load_sweep({**BASE, "problem": {"path": str(data_sweep / "problem.toml")}}).runs()
    (data_sweep / "data" / "m.csv").write_text(CSV.replace("0.2,", "0.25,"))
    target = data_sweep / "r.npz"
    outcome = execute_run(run.params, str(target), "r.npz")
    assert outcome["status"] == "failed" and not target.exists()
    assert "the data file changed after the sweep was expanded" in outcome["message"]
    assert "run the sweep again" in outcome["message"]


CHECKPOINTED = {**BASE, "solver": {**BASE["solver"], "checkpoint": "ck.npz", "checkpoint_every": 2}}


@pytest.mark.parametrize(
    ("doc", "points"),
    [
        ({**CHECKPOINTED, "seeds": [0, 1]}, "{'seed': 0} and {'seed': 1}"),
        ({**CHECKPOINTED, "grid": {"n_steps": [2, 3]}}, "{'n_steps': 2, 'seed': 0} and {'n_steps': 3, 'seed': 0}"),
        (  # one file spelled two ways
            {**CHECKPOINTED, "grid": {"checkpoint": ["ck.npz", "./ck.npz"]}},
            "{'checkpoint': 'ck.npz', 'seed': 0} and {'checkpoint': './ck.npz', 'seed': 0}",
        ),
    ],
)
def test_runs_sharing_a_checkpoint_file_are_refused(doc: dict, points: str) -> None:
    """Two workers overwrote each other's checkpoint file."""
    with pytest.raises(cdl.SpecError) as info:
        load_sweep(doc).runs()
    message = str(info.value)
    assert (
        message.startswith("checkpoint=")
        and f"more than one run of this sweep would write this file (the runs at {points})" in message
    )
    assert "leave checkpoint out of a sweep" in message and "give each run its own file" in message


def test_one_checkpoint_file_per_run_is_accepted() -> None:
    runs = load_sweep({**CHECKPOINTED, "grid": {"checkpoint": ["a.npz", "b.npz"]}}).runs()
    assert [run.params["solver"]["checkpoint"] for run in runs] == ["a.npz", "b.npz"]
    assert len(load_sweep(CHECKPOINTED).runs()) == 1


def test_the_runs_table_spells_booleans_as_where_takes_them() -> None:
    """A user's report: the table printed standardize=False, which --where refused (it takes TOML's false)."""
    from control_dl.experiments.store import runs_table

    table = runs_table([{"run_id": "r1", "status": "converged", "point": {"standardize": False, "jit": True}}])
    header, row = (line.split() for line in table.splitlines())
    assert dict(zip(header, row, strict=False))["standardize"] == "false" and "true" in row
