"""fatrop against IPOPT on the same multiple-shooting NLP: prints one JSON document.

    python benchmarks/fatrop_vs_ipopt.py [--samples 50,400] [--steps 20] [--max-iter 10]

Ring, d = 3, both from ``problem.initial_guess(0)`` with the exact Hessian and the same iteration
limit: wall time (setup included), iterations and the objective reached. fatrop's Riccati solve
factorises dense (d·S)-dimensional stage blocks, so its cost grows like S³ where IPOPT's sparse
factorisation grows like S.
"""

from __future__ import annotations

import argparse
import json
import platform
import time

import control_dl as cdl


def run(samples: int, steps: int, max_iter: int) -> list[dict]:
    """One row per NLP solver on ring with ``samples`` samples and ``steps`` Euler steps."""
    problem = cdl.load_problem("ring", n_samples=samples, dim=3, n_steps=steps)
    rows = []
    for nlp in ("fatrop", "ipopt"):
        solver = cdl.Direct(nlp=nlp, transcription="multiple_shooting", max_iter=max_iter)
        start = time.perf_counter()
        result = cdl.solve(problem, solver, progress=False)
        rows.append(
            {
                "solver": solver.name,
                "samples": samples,
                "steps": steps,
                "stage_state": 3 * samples,
                "wall_s": time.perf_counter() - start,
                "iterations": result.iterations,
                "status": result.status,
                "objective": result.objective,
            }
        )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", default="50,400", help="comma-separated S values")
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--max-iter", type=int, default=10)
    args = parser.parse_args()
    rows = [row for s in args.samples.split(",") for row in run(int(s), args.steps, args.max_iter)]
    print(json.dumps({"machine": platform.processor() or platform.machine(), "rows": rows}, indent=2))


if __name__ == "__main__":
    main()
