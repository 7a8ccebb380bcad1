"""The main job of `make demo`: the ring problem in 3-D (separable) and 2-D (not), solved and plotted.

Model, solver and run are separate blocks, as in do-mpc's examples.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import control_dl as cdl
from control_dl.cli import write_standard_figures

# --- model: Andreu's ring, lifted to 3-D (augmented) and kept in 2-D (non-augmented) ----------
PROBLEMS = {"ring-3d": cdl.load_problem("ring", dim=3), "ring-2d": cdl.load_problem("ring", dim=2)}

# --- solvers: the CasADi direct method (later issues add E-MSA and torch here) -----------------
SOLVERS = {
    "lbfgsb": cdl.load_solver("lbfgsb", max_iter=1000),  # JIT-compiled CasADi + scipy L-BFGS-B: the fast route
    "ipopt-lbfgs": cdl.load_solver("ipopt-lbfgs", max_iter=300),
}


# --- run ----------------------------------------------------------------------------------------
def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", default="runs/demo")
    args = parser.parse_args()
    rows = []
    for pname, problem in PROBLEMS.items():
        for sname, solver in SOLVERS.items():
            result = cdl.solve(problem, solver, seed=0)
            out = Path(args.out) / pname / sname
            result.save(out / "result.npz")
            write_standard_figures(problem, result, out)
            rows.append((pname, sname, result))
    header = (
        f"{'problem':<9} {'solver':<12} {'status':<10} {'loss':>9} {'train acc':>9} {'test acc':>9} {'time [s]':>8}"
    )
    print(header)
    print("-" * len(header))
    for pname, sname, r in rows:
        print(
            f"{pname:<9} {sname:<12} {r.status:<10} {r.loss:>9.2e} {r.accuracy:>9.3f} {r.test_accuracy:>9.3f} {r.wall_time:>8.2f}"
        )
    print(f"figures and results under {args.out}/")


if __name__ == "__main__":
    main()
