"""The main job of `make demo`: the ring in 3-D (separable) and 2-D (not), every solver family compared.

Model, solvers and run are separate blocks, as in do-mpc's examples. Each problem is solved by the
CasADi direct method, E-MSA (when its preset exists) and the torch baselines, all from the same
initial guess; the table, compare.{json,csv,png} and per-solver figures go under --out (default
runs/demo). ``--small`` (or ``CONTROL_DL_SMALL=1``) runs it at toy size, as every example.
"""

from __future__ import annotations

import matplotlib.pyplot as plt
from _shared import setup

import control_dl as cdl
from control_dl.cli import write_standard_figures
from control_dl.result import atomic_write_bytes

small, out_dir = setup("demo", __doc__, default="runs/demo")

# --- model: Andreu's ring, lifted to 3-D (augmented) and kept in 2-D (non-augmented) ----------
size = dict(n_samples=40, n_steps=4) if small else {}
PROBLEMS = {"ring-3d": cdl.load_problem("ring", dim=3, **size), "ring-2d": cdl.load_problem("ring", dim=2, **size)}

# --- solvers: direct (CasADi), Pontryagin (E-MSA, when present), torch baselines --------------
# budgets are trimmed so the whole demo runs in under two minutes on two cores
scale = 0.02 if small else 1.0
SOLVERS = {
    "lbfgsb": cdl.load_solver("lbfgsb", max_iter=round(1000 * scale)),  # JIT CasADi + scipy L-BFGS-B: the fast route
    "ipopt-lbfgs": cdl.load_solver("ipopt-lbfgs", max_iter=round(300 * scale)),
}
if "emsa" in cdl.list_solvers():
    SOLVERS["emsa"] = cdl.load_solver("emsa", max_iter=round(250 * scale))
SOLVERS["adam"] = cdl.load_solver("adam", epochs=round(600 * scale), lr=0.02)
SOLVERS["torch-lbfgs"] = cdl.load_solver("torch-lbfgs", epochs=round(300 * scale))
TARGET_LOSS = 1e-2


# --- run ----------------------------------------------------------------------------------------
def main() -> None:
    for pname, problem in PROBLEMS.items():
        out = out_dir / pname
        table = cdl.compare(problem, SOLVERS, seeds=(0,), target=TARGET_LOSS)
        atomic_write_bytes(out / "compare.json", table.to_json().encode())
        atomic_write_bytes(out / "compare.csv", table.to_csv().encode())
        fig, axes = plt.subplots(1, 2, figsize=(11, 4.2))
        cdl.plotting.compare_curves(table, axes=axes)
        fig.suptitle(f"{pname}: solvers compared from the same initial guess")
        fig.tight_layout()
        fig.savefig(out / "compare.png", dpi=110)
        plt.close(fig)
        for sname, results in table.results.items():
            results[0].save(out / sname / "result.npz")
            write_standard_figures(problem, results[0], out / sname)
        print(f"\n## {pname} (time to target: training loss <= {TARGET_LOSS:g})\n")
        print(table.to_markdown())
    print(f"\nfigures and results under {out_dir}/")


if __name__ == "__main__":
    main()
