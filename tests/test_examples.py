"""Every seed example runs in its CI-sized mode and writes its figures."""

from __future__ import annotations

import json
import os
import runpy
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import control_dl as cdl
from control_dl.diagnostics.morse import InputOutputMap

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
#: example -> files it must write
OUTPUTS = {
    "ring_dimensions": [
        "boundaries.png",
        "layers_d2.png",
        "layers_d3.png",
        "grid_d2.png",
        "grid_d3.png",
        "flow_d3.gif",
    ],
    "spiral": ["boundary.png", "layers.png", "grid.png", "flow.gif"],
    "regularisation": ["regularisation.png"],
    "initialisations": ["initialisations.png"],
    "turnpike": ["turnpike.png", "theta_longest.png"],
    "square_1d": ["square_1d.png", "layers_d2.png"],
    "morse": ["morse.png"],
    "invertible": ["invertible.png"],
    "mlp_vs_resnet": ["singular_values.png", "layers_mlp-2d.png", "layers_resnet-3d.png"],
    "training_dynamics": ["heatmaps.png"],
    "emsa_sin": ["convergence.png"],
    "real_data": ["confusion.png", "convergence.png"],
}


#: scripts smoke-tested elsewhere: demo (make demo), turnpike_claim (the slow test it mirrors)
TESTED_ELSEWHERE = {"_shared", "demo", "make_gallery", "turnpike_claim"}


def test_every_example_is_listed():
    scripts = {p.stem for p in EXAMPLES.glob("*.py")} - TESTED_ELSEWHERE
    assert scripts <= set(OUTPUTS)


def _solves(env: dict) -> list[tuple[object, object, int]]:
    """(problem, result, seed) of every solve an example left in its module namespace."""
    problems, results = env.get("problems"), env.get("results")
    if isinstance(problems, dict) and isinstance(results, dict):
        return [(problems[k], results[k], 0) for k in problems]
    if "problem" in env and isinstance(results, dict):  # one problem, one solve per seed or per solver
        return [(env["problem"], r, key if isinstance(key, int) else 0) for key, r in results.items()]
    if "problem" in env and isinstance(results, list):  # one problem, several solvers
        return [(env["problem"], r, 0) for r in results]
    if "problem" in env and "result" in env:
        return [(env["problem"], env["result"], 0)]
    return [(p, r, 0) for p, r in env.get("pairs", [])]


def _check_solve(problem, result, seed, constrained: bool) -> None:
    """What any solve must satisfy, recomputed from w alone (not from the solver's own report)."""
    assert result.status in ("converged", "max_iter"), result.message
    assert problem.objective(result.w) == pytest.approx(result.objective, rel=1e-7)
    if result.accuracy is not None:
        assert problem.accuracy(result.w) == result.accuracy
    if not constrained:  # a constrained solve may first leave an infeasible start uphill
        assert result.objective < problem.objective(problem.initial_guess(seed))


def _check_lipschitz(problem, result, c) -> None:
    """The invertibility constraint h ‖A_k‖₂ Lip(σ) ≤ c, by numpy's spectral norm.

    IPOPT's iterates need not be feasible before it converges (the CI-sized runs stop at max_iter),
    so there only the property the constraint is for is required: every step a contraction (< 1).
    """
    bound = c + 1e-6 if result.status == "converged" else 1.0
    for block in problem.unflatten(result.w)["theta"]:
        assert problem.step_size * np.linalg.norm(block["A"], 2) * problem.field.lipschitz < bound


def _check_specific(name: str, env: dict, out: Path) -> None:
    """A fact about what each example computes, checked independently of its figures."""
    if name == "invertible":
        problem, result = env["problems"]["lipschitz c = 0.9"], env["results"]["lipschitz c = 0.9"]
        _check_lipschitz(problem, result, 0.9)
        x_t = problem.forward(result.w)[-1]
        x_0 = problem.forward(result.w)[0]  # the fixed-point inverse recovers x(0) from x(T)
        np.testing.assert_allclose(env["inverse"](problem, result.w, x_t), x_0, atol=1e-8)
    elif name == "square_1d":
        for problem, result, _ in _solves(env):
            _check_lipschitz(problem, result, 0.9)
    elif name == "turnpike":
        for problem, result, _ in _solves(env):  # the running error at T is the training loss
            assert cdl.diagnostics.turnpike(problem, result).error_t[-1] == pytest.approx(result.loss, rel=1e-10)
    elif name == "morse":
        for dim, problem in env["problems"].items():
            w = env["results"][dim].w
            phi = InputOutputMap(problem, w)  # CasADi AD gradient, not the example's finite differences
            for point in env["critical_points"](problem, w):
                assert np.linalg.norm(phi(point)[1]) < 1e-3
    elif name == "ring_dimensions":
        for dim, problem in env["problems"].items():
            with Image.open(out / f"flow_d{dim}.gif") as gif:
                assert gif.n_frames >= problem.n_steps + 1  # at least one frame per layer
    elif name == "initialisations":
        ws = [r.w for r in env["results"].values()]
        assert all(np.abs(a - b).max() > 1e-6 for a, b in zip(ws[:-1], ws[1:], strict=True))
    elif name == "training_dynamics":
        problem = env["PROBLEM"]
        for solver in env["SOLVERS"]:
            result = cdl.Result.load(out / solver / "result.npz")
            assert problem.objective(result.w) == pytest.approx(result.objective, rel=1e-7)
            dyn = cdl.diagnostics.training_dynamics(problem, result)
            assert dyn.distance[0] > 0 and np.all(np.isfinite(dyn.distance))
    elif name == "real_data":  # each export computes result.predict; the saved result rebuilds its data
        assert set(env["gaps"]) >= {"torch", "casadi"} and max(env["gaps"].values()) < 1e-9
        loaded = cdl.Result.load(out / "digits_result")
        assert loaded.problem.data.class_names == tuple("0123456789")
    elif name == "mlp_vs_resnet":
        summary = json.loads((out / "summary.json").read_text())
        for rows in summary.values():
            for row in rows:
                assert 0 <= row["collapsed_layers"] <= row["n_layers"]
                assert 0.0 <= row["train_accuracy"] <= 1.0 and row["min_median_jacobian_ratio"] > 0


@pytest.mark.parametrize("name", sorted(OUTPUTS))
def test_example_runs_small(name, tmp_path, monkeypatch):
    monkeypatch.syspath_prepend(str(EXAMPLES))
    monkeypatch.setattr(sys, "argv", [f"{name}.py", "--small", "--out", str(tmp_path)])
    env = runpy.run_path(str(EXAMPLES / f"{name}.py"), run_name="__main__")
    for file in OUTPUTS[name]:
        with Image.open(tmp_path / file) as image:
            assert image.size[0] > 100 and image.size[1] > 100
    constrained = name in ("invertible", "square_1d")
    for problem, result, seed in _solves(env):
        _check_solve(problem, result, seed, constrained)
    assert _solves(env) or name in ("mlp_vs_resnet", "training_dynamics")
    _check_specific(name, env, tmp_path)


def test_small_mode_from_environment(tmp_path):
    env = {**os.environ, "CONTROL_DL_SMALL": "1", "MPLBACKEND": "Agg"}
    env["PYTHONPATH"] = os.pathsep.join([str(EXAMPLES.parent), env.get("PYTHONPATH", "")])
    done = subprocess.run(
        [sys.executable, str(EXAMPLES / "invertible.py"), "--out", str(tmp_path)],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert "lipschitz c = 0.9:" in done.stdout and (tmp_path / "invertible.png").is_file()
