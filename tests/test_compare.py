"""compare(): like-for-like solver tables, their exports, and the ``control-dl compare`` command."""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass

import numpy as np
import pytest

import control_dl as cdl
from control_dl.cli import main
from control_dl.solvers.base import Recorder, make_result

pytest.importorskip("torch")


@dataclass(frozen=True)
class _GradientStep:
    """A tiny solver that reports a ``pmp_residual`` (stands in for MSA in these tests)."""

    steps: int = 3
    kind = "test"
    name = "gradient-step"

    def run(self, problem: cdl.TrainingProblem, w0: np.ndarray, progress: bool) -> cdl.Result:
        recorder, w = Recorder(problem, self.steps, progress), w0.copy()
        for k in range(self.steps + 1):
            j, loss = problem.objective_and_loss(w)
            g = problem.gradient(w)
            recorder.log(k, w, j, loss, pmp_residual=float(np.linalg.norm(g)))
            w = w - 0.5 * g if k < self.steps else w
        return make_result(problem, self, w, "max_iter", "done", recorder, self.steps)


@pytest.fixture
def solvers() -> list:
    return [
        cdl.load_solver("ipopt-lbfgs", max_iter=5),
        cdl.TorchTrainer(optimizer="adam", lr=0.05, epochs=8),
        cdl.TorchTrainer(optimizer="lbfgs", epochs=4),
        _GradientStep(),
    ]


def test_a_repeated_seed_is_a_spec_error(small_ring: cdl.TrainingProblem) -> None:
    """Before: --seeds 0,0 averaged two identical runs as if they were two starts."""
    with pytest.raises(cdl.SpecError, match=r"seeds=\(0, 0\): must not repeat a seed"):
        cdl.compare(small_ring, ["lbfgsb"], seeds=(0, 0))


def test_rows_have_the_same_fields_for_every_solver(small_ring: cdl.TrainingProblem, solvers: list) -> None:
    table = cdl.compare(small_ring, solvers, seeds=(0, 1), target=10.0)
    assert [row["solver"] for row in table] == ["ipopt-ss-lbfgs", "torch-adam", "torch-lbfgs", "gradient-step"]
    keys = {frozenset(row) for row in table.rows}
    assert len(keys) == 1
    assert {"solver", "status", "loss", "accuracy", "test_accuracy", "iterations", "wall_time"} <= set(table[0])
    assert {"time_to_target", "time_to_target_std", "pmp_residual", "pmp_residual_std"} <= set(table[0])
    assert len({frozenset(run) for run in table.runs}) == 1 and len(table.runs) == 8
    # a huge target is reached at the start by every seed
    assert all(row["target_reached"] == 2 for row in table)
    # the clock starts at each run's first logged iterate (before: a CasADi compile, paid by the
    # first solve of a process only, was in the first run's wall time: 0.94 against 0.06 s)
    for run, result in zip(table.runs, (r for rs in table.results.values() for r in rs), strict=True):
        setup = result.history[0]["time"]
        assert run["setup_time"] == setup and run["time_to_target"] == 0.0
        assert run["wall_time"] == pytest.approx(result.wall_time - setup, abs=1e-12)
    # mean ± std are over the seeds' results
    losses = [r.loss for r in table.results["torch-adam"]]
    assert table[1]["loss"] == pytest.approx(np.mean(losses))
    assert table[1]["loss_std"] == pytest.approx(np.std(losses))


def test_pmp_residual_is_the_same_measure_for_every_solver(small_ring: cdl.TrainingProblem, solvers: list) -> None:
    # piecewise-constant θ without H1: the residual is max_k h ‖∂H_k/∂θ‖ = max_k ‖∂J/∂θ_k‖ at the final w,
    # the number E-MSA's history records
    table = cdl.compare(small_ring, solvers)
    lay = small_ring.layout
    for row, (label, results) in zip(table.rows, table.results.items(), strict=True):
        grad = small_ring.gradient(results[0].w)[: lay.n_theta].reshape(lay.n_coeffs, lay.p)
        expected = np.linalg.norm(grad, axis=1).max()
        assert row["pmp_residual"] == pytest.approx(expected, rel=1e-6), label
    # the same measure for other controls: the largest gradient in a coefficient block of the control
    linear = cdl.load_problem("ring", n_samples=20, dim=3, n_steps=3, control="piecewise_linear")
    table = cdl.compare(linear, [solvers[1], _GradientStep()])
    for row, results in zip(table.rows, table.results.values(), strict=True):
        offsets = linear.dynamics.offsets
        grad = linear.gradient(results[0].w)
        expected = max(np.linalg.norm(grad[a:b]) for a, b in zip(offsets[:-1], offsets[1:], strict=True))
        assert row["pmp_residual"] == pytest.approx(expected, rel=1e-6)


def test_every_solver_starts_from_the_same_initial_guess(small_ring: cdl.TrainingProblem, solvers: list) -> None:
    table = cdl.compare(small_ring, solvers[1:], seeds=(0, 2))
    for i, seed in enumerate((0, 2)):
        j0 = small_ring.objective(small_ring.initial_guess(seed))
        for results in table.results.values():
            assert results[i].seed == seed
            assert results[i].history[0]["objective"] == pytest.approx(j0, rel=1e-12)


def test_exports_round_trip(small_ring: cdl.TrainingProblem, solvers: list) -> None:
    table = cdl.compare(small_ring, {"my-adam": solvers[1], "torch-lbfgs": solvers[2]}, seeds=(0,))
    markdown = table.to_markdown().splitlines()
    assert len(markdown) == 2 + len(table) and "my-adam" in markdown[2]
    parsed = list(csv.DictReader(io.StringIO(table.to_csv())))
    assert [r["solver"] for r in parsed] == ["my-adam", "torch-lbfgs"]
    assert float(parsed[0]["loss"]) == pytest.approx(table[0]["loss"])
    doc = json.loads(table.to_json())
    assert doc["rows"] == json.loads(json.dumps(table.rows))
    assert len(doc["curves"]["torch-lbfgs"][0]) == len(table.results["torch-lbfgs"][0].history)
    # the JSON curves are on the table's clock, as the figure's (before: raw times, set-up included)
    history = table.results["torch-lbfgs"][0].history
    expected = [[h["iter"], h["time"] - history[0]["time"], h["objective"]] for h in history]
    np.testing.assert_allclose(doc["curves"]["torch-lbfgs"][0], expected, rtol=1e-12, atol=1e-15)


def test_bad_solver_name_lists_the_available_ones(small_ring: cdl.TrainingProblem) -> None:
    with pytest.raises(cdl.SpecError) as info:
        cdl.compare(small_ring, ["adam", "no-such-solver"])
    assert "no-such-solver" in str(info.value)
    for name in cdl.list_solvers():
        assert name in str(info.value)
    with pytest.raises(cdl.SpecError, match="solvers"):
        cdl.compare(small_ring, [])
    with pytest.raises(cdl.SpecError, match="seeds"):
        cdl.compare(small_ring, ["adam"], seeds=())


def test_cli_compare_writes_table_json_csv_and_figure(tmp_path, capsys) -> None:
    quick = tmp_path / "quick-adam.toml"
    quick.write_text('solver = "torch"\noptimizer = "adam"\nlr = 0.05\nepochs = 5\n')
    (tmp_path / "quick-lbfgs.toml").write_text('solver = "torch"\noptimizer = "lbfgs"\nepochs = 5\n')
    out = tmp_path / "out"
    argv = [
        "compare",
        "ring",
        "--set",
        "n_samples=30",
        "--set",
        "n_steps=3",
        "--solvers",
        f"{quick},{tmp_path / 'quick-lbfgs.toml'}",
    ]
    code = main([*argv, "--seeds", "0,1", "--target", "0.3", "--out", str(out), "--no-progress"])
    assert code == 0
    printed = capsys.readouterr().out
    assert "| solver |" in printed and "| quick-lbfgs |" in printed
    assert {p.name for p in out.iterdir()} == {"compare.json", "compare.csv", "compare.png"}
    assert json.loads((out / "compare.json").read_text())["seeds"] == [0, 1]
    assert main(["compare", "ring", "--solvers", "nope", "--out", str(out)]) == 2
    assert "available" in capsys.readouterr().err
    for flag, value in (
        ("--solvers", "lbfgsb,,adam"),
        ("--solvers", "lbfgsb,"),
        ("--seeds", "0,,1"),
        ("--seeds", "0,x"),
    ):
        other = "--seeds" if flag == "--solvers" else "--solvers"  # an empty entry was silently skipped
        assert (
            main(["compare", "ring", flag, value, other, "0" if other == "--seeds" else "lbfgsb", "--out", str(out)])
            == 2
        )
        assert f"{flag} {value!r}: expected comma-separated" in capsys.readouterr().err
