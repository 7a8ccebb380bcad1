"""The control-dl command line."""

from __future__ import annotations

import json

import pytest

import control_dl
from control_dl.cli import main, parse_assignment


def test_list(capsys):
    assert main(["list"]) == 0
    out = capsys.readouterr().out
    assert "ring" in out and "ipopt-lbfgs" in out


def test_solve_writes_result_summary_and_figures(tmp_path, capsys):
    out = tmp_path / "run"
    code = main(
        [
            "solve",
            "ring",
            "--set",
            "n_samples=30",
            "--set",
            "n_steps=4",
            "--option",
            "max_iter=10",
            "--out",
            str(out),
            "--no-progress",
        ]
    )
    assert code == 0
    assert (out / "result.npz").is_file()
    summary = json.loads((out / "summary.json").read_text())
    assert summary["status"] in ("converged", "max_iter") and summary["iterations"] <= 10
    for name in ("convergence.png", "decision_boundary.png", "trajectories.png"):
        assert (out / name).stat().st_size > 1000
    assert "lbfgsb-ss-lbfgs" in capsys.readouterr().out  # the default solver: the fastest to a target
    assert summary["problem"] == "ring" and summary["engine"]["name"] in ("casadi", "torch")


def test_bad_key_exits_2_with_the_key(tmp_path, capsys):
    assert main(["solve", "ring", "--set", "depth=3", "--out", str(tmp_path)]) == 2
    assert "depth" in capsys.readouterr().err


def test_parse_assignment_reads_toml_values():
    assert parse_assignment("l2=1e-3") == ("l2", 1e-3)
    assert parse_assignment("dim=3") == ("dim", 3)
    assert parse_assignment("activation=tanh") == ("activation", "tanh")
    assert parse_assignment("widths=[2, 4, 1]") == ("widths", [2, 4, 1])


def test_no_command_prints_the_help_and_version_is_known(capsys):
    assert main([]) == 2
    assert "solve" in capsys.readouterr().out
    with pytest.raises(SystemExit) as stop:
        main(["--version"])
    assert stop.value.code == 0 and control_dl.__version__ in capsys.readouterr().out


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["solve", "ring", "--engine", "Dask"], "argument --engine: invalid choice: 'Dask'"),
        (["solve", "ring", "--engine", "dask", "--workers", "0"], "argument --workers: '0': must be an integer >= 1"),
        (["sweep", "spec.toml", "--workers", "two"], "argument --workers: 'two': must be an integer >= 1"),
    ],
)
def test_bad_flag_values_are_usage_errors_naming_the_flag(argv, message, capsys):
    with pytest.raises(SystemExit) as exit_:
        main(argv)
    assert exit_.value.code == 2 and message in capsys.readouterr().err


@pytest.mark.parametrize(
    "argv",
    [
        ["solve", "ring", "--option", "max_iter=5"],
        ["turnpike", "ring", "--horizons", "1,2"],
        ["compare", "ring", "--solvers", "lbfgsb"],
        ["sweep", "examples/sweep_ring.toml"],
    ],
    ids=lambda argv: argv[0],
)
def test_an_unusable_out_folder_is_a_usage_error_before_any_work(argv, tmp_path, capsys, monkeypatch):
    """Before: a solve ran to the end, then lost its result to FileExistsError (a user's report)."""
    from pathlib import Path

    monkeypatch.chdir(Path(__file__).parents[1])  # the sweep file's relative path
    taken = tmp_path / "afile"
    taken.write_text("")
    assert main([*argv, "--out", str(taken), "--no-progress"]) == 2
    assert f"--out {str(taken)!r}: exists and is not a folder" in capsys.readouterr().err
    assert main([*argv, "--out", str(taken / "below"), "--no-progress"]) == 2
    assert "cannot create the folder" in capsys.readouterr().err
    assert taken.read_text() == ""  # nothing was written over it


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--set", "n_steps=4", "--set", "n_steps=5"], "--set n_steps: given twice (4 and 5)"),
        (["--option", "max_iter=2", "--option", "max_iter=3"], "--option max_iter: given twice (2 and 3)"),
        (["--option", "max_iter"], "--option 'max_iter': expected key=value"),  # the flag it came with
        (["--set", "=4"], "--set '=4': expected key=value"),
    ],
)
def test_a_key_given_twice_or_no_assignment_is_a_usage_error(argv, message, tmp_path, capsys):
    """The last of two values used to win without a word."""
    assert main(["solve", "ring", *argv, "--out", str(tmp_path)]) == 2
    assert message in capsys.readouterr().err


def test_bad_input_leaves_no_empty_output_folder(tmp_path, capsys):
    """Before: a solver-side SpecError (an unknown option, an unknown preset) left an empty --out."""
    for args in (
        ["solve", "ring", "--set", "n_samples=20", "--option", "nosuch=1"],
        ["solve", "ring", "--set", "n_samples=20", "--solver", "nosuch"],
        ["compare", "ring", "--set", "n_samples=20", "--solvers", "lbfgsb,nosuch"],
    ):
        out = tmp_path / "runs" / "bb"
        assert main([*args, "--out", str(out)]) == 2 and "error" in capsys.readouterr().err
        assert not out.exists() and not out.parent.exists(), args  # every level it created (it left 'runs')
    kept = tmp_path / "kept"
    kept.mkdir()  # the user's own folder stays, empty or not
    assert main(["solve", "ring", "--option", "nosuch=1", "--out", str(kept)]) == 2 and kept.is_dir()


def test_exit_codes_count_diverged_runs_and_an_interruption(tmp_path, capsys, monkeypatch):
    """A user's report: compare exited 0 over a diverged run (sweep too, printing '0 failed'), and Ctrl-C
    printed a KeyboardInterrupt traceback."""
    import control_dl.cli as cli

    wild = tmp_path / "wild-sgd.toml"
    wild.write_text('solver = "torch"\noptimizer = "sgd"\nlr = 1e6\nepochs = 5\n')
    argv = ["compare", "ring", "--set", "n_samples=20", "--set", "n_steps=3", "--solvers", f"lbfgsb,{wild}"]
    assert main([*argv, "--out", str(tmp_path / "c"), "--no-progress"]) == 1
    assert "diverged" in capsys.readouterr().out
    assert cli.exit_code(["converged", "max_iter"]) == 0 and cli.exit_code(["converged", "diverged"]) == 1

    def interrupted(args):
        raise KeyboardInterrupt

    monkeypatch.setattr(cli, "_cmd_sweep", interrupted)
    assert main(["sweep", "spec.toml", "--out", str(tmp_path / "s")]) == 130
    assert capsys.readouterr().err.strip() == (
        "control-dl: interrupted; run the same command again to resume (finished runs are kept)"
    )


def test_bad_cli_inputs_that_raised_tracebacks(tmp_path, capsys):
    """A solver TOML whose `solver` is a list (TypeError: unhashable), compare --target nan (accepted)."""
    listed = tmp_path / "listed.toml"
    listed.write_text('solver = ["direct"]\n')
    assert main(["solve", "ring", "--solver", str(listed), "--out", str(tmp_path / "a")]) == 2
    assert "solver=['direct']: must be one of" in capsys.readouterr().err
    for target in ("nan", "inf"):
        argv = ["compare", "ring", "--solvers", "lbfgsb", "--target", target, "--out", str(tmp_path / "b")]
        assert main(argv) == 2 and "must be a finite number >= 0" in capsys.readouterr().err


def test_solve_removes_the_previous_runs_summary_and_figures_before_writing(tmp_path, monkeypatch):
    """A user's report: an interrupted solve left the new result.npz beside the previous run's summary
    and figures, with nothing to tell them apart."""
    import control_dl.cli as cli

    argv = ["solve", "ring", "--set", "n_samples=20", "--set", "n_steps=3"]
    assert main([*argv, "--option", "max_iter=2", "--out", str(tmp_path), "--no-progress"]) == 0
    assert (tmp_path / "summary.json").is_file() and (tmp_path / "convergence.png").is_file()

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(cli, "write_standard_figures", interrupted)  # killed after result.npz, before the figures
    assert main([*argv, "--option", "max_iter=3", "--out", str(tmp_path), "--no-progress"]) == 130
    assert not (tmp_path / "summary.json").exists() and not (tmp_path / "convergence.png").exists()
    assert control_dl.Result.load(tmp_path / "result.npz").iterations == 3
