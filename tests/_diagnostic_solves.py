"""Small real solves shared by the diagnostics tests (each solved once per session)."""

from __future__ import annotations

from functools import cache

import numpy as np

import control_dl as cdl


def exact(max_iter: int = 300) -> cdl.Direct:
    """IPOPT with the exact Hessian: fast and reliable on these few-parameter problems."""
    return cdl.Direct(hessian="exact", max_iter=max_iter)


@cache
def square_1d(dim: int, invertible: bool, n_steps: int = 10, horizon: float = 1.0) -> tuple:
    """y = x² on 100 points; with ``invertible`` every step satisfies h·Lip f ≤ 0.9."""
    overrides = {"dim": dim, "n_steps": n_steps, "horizon": horizon, "l2": 0.0}
    if invertible:
        overrides["lipschitz"] = 0.9
    problem = cdl.load_problem("square_1d", **overrides)
    solver = exact() if invertible else cdl.Direct(hessian="lbfgs", max_iter=300)
    return problem, cdl.solve(problem, solver, progress=False)


@cache
def ring(dim: int) -> tuple:
    """Ring on [0, 2] with invertible steps (h·Lip f ≤ 0.9): d = 2 (100 points, 10 steps) or d = 3 (60, 5)."""
    n_samples, n_steps, max_iter = (100, 10, 200) if dim == 2 else (60, 5, 60)
    problem = cdl.load_problem("ring", dim=dim, n_steps=n_steps, horizon=2.0, n_samples=n_samples, lipschitz=0.9)
    return problem, cdl.solve(problem, exact(max_iter), progress=False)


def isotonic_floor(x: np.ndarray, y: np.ndarray) -> float:
    """Smallest mean squared error of any monotone (increasing or decreasing) function of x.

    Pool-adjacent-violators on y sorted by x, for both directions.
    """
    ys = y[np.argsort(x)]

    def pav_error(values: np.ndarray) -> float:
        blocks: list[list[float]] = []  # [sum, count]
        for v in values:
            blocks.append([float(v), 1.0])
            while len(blocks) > 1 and blocks[-2][0] / blocks[-2][1] > blocks[-1][0] / blocks[-1][1]:
                total, count = blocks.pop()
                blocks[-1][0] += total
                blocks[-1][1] += count
        fit = np.concatenate([np.full(int(c), s / c) for s, c in blocks])
        return float(np.mean((fit - values) ** 2))

    return min(pav_error(ys), pav_error(-ys))
