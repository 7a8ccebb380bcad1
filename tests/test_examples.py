"""Every seed example runs in its CI-sized mode and writes its figures."""

from __future__ import annotations

import os
import runpy
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

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


@pytest.mark.parametrize("name", sorted(OUTPUTS))
def test_example_runs_small(name, tmp_path, monkeypatch):
    monkeypatch.syspath_prepend(str(EXAMPLES))
    monkeypatch.setattr(sys, "argv", [f"{name}.py", "--small", "--out", str(tmp_path)])
    runpy.run_path(str(EXAMPLES / f"{name}.py"), run_name="__main__")
    for file in OUTPUTS[name]:
        with Image.open(tmp_path / file) as image:
            assert image.size[0] > 100 and image.size[1] > 100


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
