"""Problem and solver specs: the catalog loads, overrides apply, every bad input is a SpecError."""

from __future__ import annotations

import numpy as np
import pytest

import control_dl as cdl


@pytest.mark.parametrize("name", ["ring", "spiral", "circle", "xor", "square_1d", "spheres", "sin"])
def test_catalog_problem_loads(name):
    assert name in cdl.list_problems()
    problem = cdl.load_problem(name, n_samples=20)
    w = problem.initial_guess()
    assert np.isfinite(problem.objective(w))
    assert problem.spec["data"]["dataset"] == name


def test_overrides_reach_the_problem():
    problem = cdl.load_problem("ring", dim=4, n_steps=7, horizon=2.0, l2=0.5, activation="relu", integrator="rk4")
    assert (problem.dim, problem.n_steps, problem.horizon) == (4, 7, 2.0)
    assert problem.cost.l2 == 0.5
    assert problem.field.activation == "relu"
    assert problem.integrator == "rk4"


def test_control_kinds_from_spec():
    problem = cdl.load_problem("sin", control="spectral", basis="fourier", n_modes=5, n_steps=10)
    assert isinstance(problem.control, cdl.Spectral)
    assert problem.control.n_modes == 5
    problem = cdl.load_problem("sin", field="bottleneck", width=3)
    assert problem.field.width == 3


@pytest.mark.parametrize(
    "overrides, field",
    [
        ({"dim": 1}, "dim"),
        ({"n_steps": 0}, "n_steps"),
        ({"n_steps": 2.5}, "n_steps"),
        ({"l2": -1.0}, "l2"),
        ({"h1": float("nan")}, "h1"),
        ({"noise": float("inf")}, "noise"),
        ({"noise": -0.1}, "noise"),
        ({"activation": "swish"}, "activation"),
        ({"activation": 3}, "activation"),
        ({"field": "outer"}, "field"),
        ({"loss": "hinge"}, "loss"),
        ({"loss": "cross_entropy", "dataset": "sin"}, "loss"),
        ({"integrator": "midpoint"}, "integrator"),
        ({"horizon": 0.0}, "horizon"),
        ({"n_samples": 1}, "n_samples"),
        ({"seed": -1}, "seed"),
        ({"lipschitz": 1.5}, "lipschitz"),
        ({"theta_max": 0.0}, "theta_max"),
        ({"width": 3}, "width"),
        ({"n_modes": 2}, "n_modes"),
        ({"control": "spectral", "basis": "chebyshev"}, "basis"),
        ({"control": "piecewise_linear", "n_nodes": 1}, "n_nodes"),
        ({"dataset": "moons"}, "dataset"),
        ({"lift": "random"}, "lift"),
        ({"depth": 3}, "depth"),
    ],
)
def test_bad_values_are_spec_errors_naming_the_key(overrides, field):
    with pytest.raises(cdl.SpecError, match=field):
        cdl.load_problem("ring", **overrides)


def test_unknown_sections_and_keys_in_documents():
    base = {"data": {"dataset": "ring", "n_samples": 10}}
    with pytest.raises(cdl.SpecError, match="network"):
        cdl.problem_from_spec({**base, "network": {}})
    with pytest.raises(cdl.SpecError, match=r"model\.depth.*valid keys"):
        cdl.problem_from_spec({**base, "model": {"depth": 3}})
    with pytest.raises(cdl.SpecError, match="data"):
        cdl.problem_from_spec({"data": 3})


def test_unknown_problem_lists_the_catalog(tmp_path):
    with pytest.raises(cdl.SpecError, match="ring"):
        cdl.load_problem("moons")
    with pytest.raises(cdl.SpecError, match="no such file"):
        cdl.load_problem(tmp_path / "missing.toml")
    bad = tmp_path / "bad.toml"
    bad.write_text("[data\n")
    with pytest.raises(cdl.SpecError, match="invalid TOML"):
        cdl.load_problem(bad)


def test_a_local_folder_or_file_named_like_a_catalog_entry_does_not_hide_it(tmp_path, monkeypatch):
    """A run folder ``ring/`` (``control-dl solve ring --out ring``) or ``lbfgsb/`` in the current
    directory made the catalog names unreachable ("no such file")."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "ring").mkdir()
    (tmp_path / "lbfgsb").mkdir()
    assert cdl.load_problem("ring", n_samples=10).data.name == "ring"
    assert cdl.load_solver("lbfgsb").nlp == "lbfgsb"
    (tmp_path / "mine").write_text('[data]\ndataset = "xor"\nn_samples = 16\n')
    assert cdl.load_problem("./mine").data.name == "xor"  # a local file is reached by its path
    with pytest.raises(cdl.SpecError, match="is a directory"):
        cdl.load_problem("./ring")


def test_problem_from_a_file_path(tmp_path):
    path = tmp_path / "mine.toml"
    path.write_text('[data]\ndataset = "xor"\nn_samples = 16\n[model]\ndim = 3\n[cost]\nloss = "logistic"\n')
    problem = cdl.load_problem(path, n_steps=3)
    assert problem.data.name == "xor" and problem.dim == 3 and problem.n_steps == 3


def test_solver_presets_and_overrides():
    assert {"ipopt-exact", "ipopt-lbfgs"} <= set(cdl.list_solvers())
    solver = cdl.load_solver("ipopt-lbfgs", max_iter=7, ipopt_options={"mu_strategy": "adaptive"})
    assert solver.max_iter == 7 and solver.hessian == "lbfgs"
    options = solver.solver_options()
    assert options["max_iter"] == 7 and options["mu_strategy"] == "adaptive"


@pytest.mark.parametrize(
    "overrides, field",
    [
        ({"max_iterations": 3}, "max_iterations"),
        ({"max_iter": -1}, "max_iter"),
        ({"hessian": "bfgs"}, "hessian"),
        ({"tol": 0}, "tol"),
    ],
)
def test_bad_solver_options(overrides, field):
    with pytest.raises(cdl.SpecError, match=field):
        cdl.load_solver("ipopt-lbfgs", **overrides)


def test_an_engine_for_a_torch_trainer_says_where_engines_apply():
    with pytest.raises(cdl.SpecError, match="torch trainers .* engines apply to the direct"):
        cdl.load_solver("adam", engine="casadi")


def test_unknown_solver_lists_presets():
    with pytest.raises(cdl.SpecError, match="ipopt-lbfgs"):
        cdl.load_solver("newton-raphson")


def test_deeply_nested_toml_is_a_spec_error(tmp_path):
    path = tmp_path / "deep.toml"
    path.write_text("name = " + "[" * 500 + "]" * 500 + "\n")
    with pytest.raises(cdl.SpecError, match="nested too deeply"):
        cdl.load_problem(path)
    tables = tmp_path / "tables.toml"
    tables.write_text("data = " + "{a = " * 500 + "1" + "}" * 500 + "\n")
    with pytest.raises(cdl.SpecError, match="nested too deeply"):
        cdl.load_problem(tables)


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"seed": -1}, "seed=-1: must be an integer >= 0"),  # numpy's own ValueError before
        ({"seed": 1.5}, "seed=1.5: must be an integer >= 0"),  # a TypeError before
        ({"w0": np.zeros(3)}, "w0 has 3 entries, this problem has n_params="),
        ({"w0": "abc"}, "w0 must be an array of"),
        ({"w0": np.full(21, np.nan)}, "w0 contains NaN or inf"),
    ],
)
def test_solve_arguments_are_spec_errors_naming_them(arguments, message):
    problem = cdl.load_problem("ring", n_samples=20, dim=2, n_steps=3)
    assert problem.n_params == 21
    with pytest.raises(cdl.SpecError, match=message):
        cdl.solve(problem, cdl.load_solver("lbfgsb", max_iter=2), progress=False, **arguments)


def test_a_negative_seed_on_the_command_line_is_a_usage_error(tmp_path, capsys):
    from control_dl.cli import main

    assert main(["solve", "ring", "--seed", "-1", "--out", str(tmp_path / "out")]) == 2
    assert "seed=-1: must be an integer >= 0" in capsys.readouterr().err
    assert not (tmp_path / "out" / "result.npz").exists()
