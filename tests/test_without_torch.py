"""The core imports and solves without torch installed."""

from __future__ import annotations

import subprocess
import sys

SCRIPT = """
import sys
sys.modules["torch"] = None  # any `import torch` now raises ImportError
import control_dl as cdl
problem = cdl.load_problem("ring", n_samples=20, n_steps=3)
w = problem.initial_guess()
assert abs(problem.objective(w, "numpy") - problem.objective(w, "casadi")) < 1e-12
result = cdl.solve(problem, cdl.Direct(hessian="lbfgs", max_iter=5), progress=False)
assert "torch" not in result.versions
try:
    problem.objective(w, "torch")
except cdl.SpecError as err:  # a missing extra is a SpecError naming it, not an ImportError
    assert "control_dl[torch]" in str(err), err
    print("ok")
"""


def test_core_works_without_torch():
    out = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "ok"
