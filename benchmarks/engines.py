"""Engines side by side: J + ∇J cost per engine, and time to a target loss for every single-shooting
driver (L-BFGS-B, trust-ncg, IPOPT limited-memory) on each engine against torch L-BFGS and Adam.

One run, the same problem object and initial w for everyone, one thread each, set-up included
(each solve starts from an empty JIT cache, so CasADi's compilation is paid where it happens).
Cases:

(a) ring, S = 400, d = 3, N = 20, MSE (no regulariser), target 1e-3;
(b) ring, S = 10 000, d = 3, N = 100, MSE, target 1e-3;
(c) scikit-learn digits (load_digits, standardised, 75 % stratified train: S = 1347, d = 64,
    PiecewiseConstant(10), cross-entropy, l2 = 1e-4), target = torch L-BFGS's final training loss
    floored at 1e-4;
(d) width sweep d ∈ {3, 8, 16, 32, 64} at S = 1000 (ring, N = 10): J + ∇J per engine and what
    ``engine="auto"`` picks.

Prints one JSON document (machine load included). Usage::

    python benchmarks/engines.py [--quick] [--cases a,b,c,d]

``--quick`` caps the iterations, shrinks case (b) to S = 2000 and the sweep to d ∈ {3, 16, 64}.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np  # noqa: E402
import torch  # noqa: E402

import control_dl as cdl  # noqa: E402
from control_dl import engines  # noqa: E402
from control_dl.engines import _auto  # noqa: E402

ENGINE_NAMES = ("auto", "casadi", "torch")


def load() -> list[float]:
    """1-, 5- and 15-minute load averages (the machine is shared: ratios matter, not seconds)."""
    return [round(v, 2) for v in os.getloadavg()]


def fresh_cache() -> None:
    """An empty JIT cache for the next solve (its set-up then includes any compilation)."""
    os.environ["CONTROL_DL_CACHE"] = tempfile.mkdtemp(prefix="control_dl_bench_")


def fgrad(problem: cdl.TrainingProblem, repeats: int) -> dict:
    """Set-up and median J + ∇J seconds per engine, torch's trainer as reference, and auto's pick."""
    x, y = problem.data.x_train, problem.targets
    w = problem.initial_guess(0)
    out: dict = {}
    for name, spec in (("casadi", engines.Casadi()), ("torch", engines.Torch())):
        fresh_cache()
        start = time.perf_counter()
        engine = engines.make_engine(spec, problem, x, y)
        setup = time.perf_counter() - start
        engine.evaluate(w)
        times = []
        for _ in range(repeats):
            start = time.perf_counter()
            engine.evaluate(w)
            times.append(time.perf_counter() - start)
        out[name] = {"setup_s": setup, "fgrad_s": float(np.median(times))}
    trainer = cdl.TorchTrainer(optimizer="lbfgs")
    trainer.objective_and_gradient(problem, w)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        trainer.objective_and_gradient(problem, w)
        times.append(time.perf_counter() - start)
    out["torch_trainer_fgrad_s"] = float(np.median(times))
    out["ratio_torch_engine_vs_trainer"] = out["torch"]["fgrad_s"] / out["torch_trainer_fgrad_s"]
    out["ratio_casadi_vs_torch"] = out["casadi"]["fgrad_s"] / out["torch"]["fgrad_s"]
    auto = engines.make_engine("auto", problem, x, y)
    out["auto"] = {"choice": auto.name, **auto.info["auto"]}
    return out


def time_to_target(result: cdl.Result, target: float) -> float | None:
    """Seconds (from the start of the solve, set-up included) to the first logged loss ≤ target."""
    for entry in result.history:
        if entry["loss"] <= target:
            return float(entry["time"])
    return None


def record(result: cdl.Result, target: float) -> dict:
    return {
        "time_to_target_s": time_to_target(result, target),
        "wall_s": result.wall_time,
        "status": result.status,
        "iterations": result.iterations,
        "final_loss": result.loss,
        "accuracy": result.accuracy,
        "engine": result.engine.get("name"),
        "auto_reason": result.engine.get("auto", {}).get("reason"),
    }


def race(problem: cdl.TrainingProblem, target: float, caps: dict, engine_names: tuple, skip: dict) -> dict:
    """Time to target of every driver on every engine, and of the torch baselines."""
    w0 = problem.initial_guess(0)
    runs: dict = {}
    drivers = {
        "lbfgsb": dict(nlp="lbfgsb", max_iter=caps["lbfgsb"]),
        "trust-ncg": dict(nlp="trust-ncg", max_iter=caps["trust-ncg"]),
        "ipopt-lbfgs": dict(nlp="ipopt", hessian="lbfgs", max_iter=caps["ipopt"]),
    }
    for driver, options in drivers.items():
        for engine in engine_names:
            if (driver, engine) in skip or ("*", engine) in skip:
                runs[f"{driver}/{engine}"] = {"skipped": skip.get((driver, engine), skip.get(("*", engine)))}
                continue
            fresh_cache()
            solver = cdl.Direct(engine=engine, target_loss=target, tol=1e-12, **options)
            runs[f"{driver}/{engine}"] = record(cdl.solve(problem, solver, w0=w0, progress=False), target)
    for name, solver in (
        ("torch-lbfgs", cdl.TorchTrainer(optimizer="lbfgs", epochs=caps["torch-lbfgs"])),
        ("adam", cdl.TorchTrainer(optimizer="adam", lr=caps["adam_lr"], epochs=caps["adam"])),
    ):
        runs[name] = record(cdl.solve(problem, solver, w0=w0, progress=False), target)
    base = runs["torch-lbfgs"]["time_to_target_s"]
    if base:
        for run in runs.values():
            if run.get("time_to_target_s"):
                run["ratio_vs_torch_lbfgs"] = run["time_to_target_s"] / base
    return runs


def digits_problem() -> cdl.TrainingProblem:
    """scikit-learn digits as issue 14 poses it (standardised on the training split)."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split
    from sklearn.preprocessing import StandardScaler

    x, y = load_digits(return_X_y=True)
    x_train, x_test, y_train, y_test = train_test_split(x, y, train_size=0.75, stratify=y, random_state=0)
    scaler = StandardScaler().fit(x_train)
    data = cdl.Dataset(
        scaler.transform(x_train).T, y_train, scaler.transform(x_test).T, y_test, task="multiclass", name="digits"
    )
    return cdl.TrainingProblem(
        data=data, dim=64, control=cdl.PiecewiseConstant(10), cost=cdl.Cost("cross_entropy", l2=1e-4)
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer iterations, smaller cases")
    parser.add_argument("--cases", default="a,b,c,d", help="comma-separated subset of a,b,c,d")
    args = parser.parse_args()
    torch.set_num_threads(1)
    quick, cases = args.quick, set(args.cases.split(","))
    repeats = 5 if quick else 15
    out: dict = {
        "machine": {"platform": platform.platform(), "cpus": os.cpu_count(), "load_start": load()},
        "torch": torch.__version__,
        "quick": quick,
        "casadi_max_width": _auto.CASADI_MAX_WIDTH,
    }
    ring_caps = {"lbfgsb": 1000, "trust-ncg": 200, "ipopt": 1000, "torch-lbfgs": 1000, "adam": 3000, "adam_lr": 0.02}
    if quick:
        ring_caps.update(lbfgsb=300, ipopt=300, **{"trust-ncg": 60, "torch-lbfgs": 300, "adam": 500})
    if "a" in cases:
        problem = cdl.load_problem("ring", dim=3, n_steps=20, n_samples=400, l2=0.0)
        out["ring_400"] = {"fgrad": fgrad(problem, repeats), "target": 1e-3}
        out["ring_400"]["runs"] = race(problem, 1e-3, ring_caps, ENGINE_NAMES, {})
    if "b" in cases:
        n = 2000 if quick else 10000
        problem = cdl.load_problem("ring", dim=3, n_steps=100, n_samples=n, l2=0.0)
        out[f"ring_{n}"] = {"fgrad": fgrad(problem, max(3, repeats // 3)), "target": 1e-3}
        budget = "not run: the time budget of this case (auto's choice is timed above)"
        skip = {(driver, name): budget for driver in ("trust-ncg", "ipopt-lbfgs") for name in ("casadi", "torch")}
        caps = {**ring_caps, "lbfgsb": 500, "ipopt": 300, "torch-lbfgs": 500, "adam": 300}
        out[f"ring_{n}"]["runs"] = race(problem, 1e-3, caps, ENGINE_NAMES, skip)
    if "c" in cases:
        problem = digits_problem()
        caps = {"lbfgsb": 400, "trust-ncg": 30, "ipopt": 200, "torch-lbfgs": 400, "adam": 300, "adam_lr": 0.01}
        if quick:
            caps.update(lbfgsb=150, ipopt=150, **{"trust-ncg": 20, "torch-lbfgs": 150, "adam": 100})
        reference = cdl.solve(problem, cdl.TorchTrainer(optimizer="lbfgs", epochs=caps["torch-lbfgs"]), progress=False)
        target = max(reference.loss, 1e-4)
        out["digits"] = {
            "fgrad": fgrad(problem, repeats),
            "target": target,
            "reference_torch_lbfgs_loss": reference.loss,
        }
        hopeless = f"state width 64 >= {_auto.CASADI_MAX_WIDTH}: per-sample CasADi is ~{{r:.0f}}x torch per J+grad"
        ratio = out["digits"]["fgrad"]["ratio_casadi_vs_torch"]
        out["digits"]["runs"] = race(problem, target, caps, ENGINE_NAMES, {("*", "casadi"): hopeless.format(r=ratio)})
    if "d" in cases:
        sweep = {}
        for d in (3, 16, 64) if quick else (3, 8, 16, 32, 64):
            problem = cdl.load_problem("ring", dim=d, n_steps=10, n_samples=1000)
            sweep[str(d)] = fgrad(problem, repeats)
        out["width_sweep_S1000"] = sweep
    out["machine"]["load_end"] = load()
    print(json.dumps(out, indent=1, default=float))


if __name__ == "__main__":
    main()
