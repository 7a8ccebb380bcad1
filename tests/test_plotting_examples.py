"""The examples behind the figures: every one takes ``--small`` and ``CONTROL_DL_SMALL=1`` (the figures guide says so)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def run_example(name: str, out: Path, small_flag: bool) -> subprocess.CompletedProcess:
    env = {**os.environ, "MPLBACKEND": "Agg"}
    env.pop("CONTROL_DL_SMALL", None)
    if not small_flag:
        env["CONTROL_DL_SMALL"] = "1"
    args = [sys.executable, str(EXAMPLES / f"{name}.py"), "--out", str(out)] + (["--small"] if small_flag else [])
    return subprocess.run(args, env=env, capture_output=True, text=True, timeout=300)


def test_every_example_takes_small_and_the_environment_variable():
    # demo.py and turnpike_claim.py had their own argparse without --small (a fresh user's report);
    # they now parse their arguments with the shared setup, as the other examples do
    for name in ("demo", "turnpike_claim"):
        text = (EXAMPLES / f"{name}.py").read_text(encoding="utf-8")
        assert "from _shared import" in text and "setup(" in text and "argparse" not in text, name
    for script in EXAMPLES.glob("*.py"):
        if script.stem in ("_shared", "make_gallery"):
            continue
        text = script.read_text(encoding="utf-8")
        assert "setup(" in text or ("--small" in text and "CONTROL_DL_SMALL" in text), script.name


@pytest.mark.parametrize(("name", "small_flag"), [("demo", True), ("turnpike_claim", False)])
def test_demo_and_turnpike_claim_run_small(name, small_flag, tmp_path):
    done = run_example(name, tmp_path, small_flag)
    assert done.returncode == 0, done.stderr[-2000:]
    if name == "demo":
        for problem in ("ring-3d", "ring-2d"):
            table = json.loads((tmp_path / problem / "compare.json").read_text())
            assert table  # the comparison ran
            with Image.open(tmp_path / problem / "compare.png") as image:
                assert image.size[0] > 100
    else:
        rows = json.loads(done.stdout[done.stdout.index("{") :])
        assert set(rows) == {"kappa=1", "kappa=0"}
        assert all(row["status"] for row in rows.values())
        assert (tmp_path / "turnpike_kappa.png").is_file()


def test_mlp_vs_resnet_singular_values_have_whole_layer_ticks(tmp_path, monkeypatch):
    # the mlp-2d panel (2 hidden layers) had ticks at 0.5, 1.5, … (a fresh user's report)
    import runpy
    from types import SimpleNamespace

    import matplotlib.pyplot as plt
    import numpy as np

    monkeypatch.syspath_prepend(str(EXAMPLES))
    env = runpy.run_path(str(EXAMPLES / "mlp_vs_resnet.py"), run_name="mlp_vs_resnet")
    rng = np.random.default_rng(0)
    reports = {
        name: (SimpleNamespace(jacobian_singular_values=[rng.uniform(0.1, 1, (5, 2)) for _ in range(n)]), n)
        for name, n in (("mlp-2d", 2), ("resnet-3d", 7))
    }
    monkeypatch.setattr(plt, "close", lambda *args: None)
    env["plot_singular_values"](reports, tmp_path / "singular_values.png")
    fig = plt.gcf()
    for ax in fig.axes:
        lo, hi = ax.get_xlim()
        ticks = [t for t in ax.get_xticks() if lo <= t <= hi]
        assert ticks and all(float(t).is_integer() for t in ticks), (ax.get_title(), ticks)
    plt.close(fig)
