r"""Like-for-like solver comparison: every solver on one problem, from the same starts, measured alike.

For each seed s the start is ``problem.initial_guess(s)`` for every solver; each row of the table
aggregates one solver over the seeds as mean ± standard deviation (population, ddof = 0).
Time-to-target is the wall time of the first recorded iterate whose training loss is ≤ the target.
The PMP residual is evaluated at every final iterate by :func:`control_dl.diagnostics.pmp_residual`,
the same measure for every solver and every control: the largest gradient of the summed Hamiltonian
in a θ block of w, max_j ‖∂J/∂B_j‖ (max_k h ‖∂H_k/∂θ‖ for piecewise-constant θ without an H1 term).
"""

from __future__ import annotations

import csv
import io
import json
import math
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .._errors import is_integer, is_number, spec_error
from ..diagnostics.pmp import pmp_residual
from ..problems.training import TrainingProblem
from ..result import Result
from ..solvers.base import Solver, solve
from ..solvers.catalog import load_solver

#: Quantities aggregated over seeds: row key -> (per-run key, markdown header).
METRICS = {
    "objective": "objective",
    "loss": "final loss",
    "accuracy": "train acc",
    "test_accuracy": "test acc",
    "iterations": "iterations",
    "setup_time": "setup [s]",
    "wall_time": "wall time [s]",
    "time_to_target": "time to target [s]",
    "pmp_residual": "PMP residual",
}


@dataclass
class CompareTable:
    """Result of :func:`compare`: one aggregated row per solver (a plain list of dicts).

    Every row has the same keys: ``solver``, ``status`` (e.g. ``"converged"`` or
    ``"converged×2, max_iter×1"``), ``n_seeds``, ``target_reached`` (seeds that reached the target,
    None without a target) and, for each quantity q in :data:`METRICS`, ``q`` (mean over seeds) and
    ``q_std``. ``wall_time`` and ``time_to_target`` count from each run's first logged iterate;
    ``setup_time`` is what came before it (binding the engine, compiling CasADi Functions: paid by
    the first solve of a process only, as the compiled code is cached). A quantity that does not
    exist (accuracy for regression, the PMP residual of a non-finite w, time-to-target never
    reached) is None.

    Attributes
    ----------
    rows : list of dict
        One aggregated row per solver, in the order given.
    runs : list of dict
        One row per (solver, seed) with the per-run values.
    results : dict
        Solver label → list of :class:`~control_dl.Result`, one per seed (not serialised).
    target : float or None
        The loss target of time-to-target.
    seeds : tuple of int
        Seeds of the initial guesses.
    problem_spec : dict or None
        Specification of the problem compared on.
    """

    rows: list[dict[str, Any]]
    runs: list[dict[str, Any]]
    results: dict[str, list[Result]] = field(repr=False)
    target: float | None
    seeds: tuple[int, ...]
    problem_spec: dict[str, Any] | None = None

    def __iter__(self) -> Iterator[dict[str, Any]]:
        return iter(self.rows)

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, index: int) -> dict[str, Any]:
        return self.rows[index]

    def to_markdown(self) -> str:
        """The table as GitHub markdown, ``mean ± std`` cells (std shown for more than one seed).

        Returns
        -------
        str
            Markdown text.
        """
        headers = ["solver", "status", *METRICS.values()]
        lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
        for row in self.rows:
            cells = [row["solver"], row["status"]]
            for key in METRICS:
                cell = _format_cell(row[key], row[f"{key}_std"], row["n_seeds"], key)
                if (
                    key == "time_to_target"
                    and row["target_reached"] is not None
                    and row["target_reached"] < row["n_seeds"]
                ):
                    cell += f" ({row['target_reached']}/{row['n_seeds']} reached)"
                cells.append(cell)
            lines.append("| " + " | ".join(cells) + " |")
        return "\n".join(lines)

    def to_csv(self) -> str:
        """The aggregated rows as CSV (empty cells for None).

        Returns
        -------
        str
            CSV text with a header line.
        """
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=list(self.rows[0]) if self.rows else [], lineterminator="\n")
        writer.writeheader()
        writer.writerows(self.rows)
        return buffer.getvalue()

    def curves(self) -> dict[str, list[tuple[np.ndarray, np.ndarray, np.ndarray]]]:
        """Each run's logged (iteration, time, objective), time on the comparison's clock (:func:`_clock`).

        Returns
        -------
        dict
            Solver label → one ``(iter, time [s], J)`` triple of equal-length arrays per seed
            (empty for a run that logged nothing).
        """
        return {
            label: [
                (np.array([h["iter"] for h in r.history]), _clock(r), np.array([h["objective"] for h in r.history]))
                for r in runs
            ]
            for label, runs in self.results.items()
        }

    def to_json(self) -> str:
        """Rows, per-run values and the (iter, time, objective) curves (:meth:`curves`) as JSON.

        Returns
        -------
        str
            JSON text (NaN/inf written as null).
        """
        curves = {
            label: [np.column_stack(curve).tolist() if curve[0].size else [] for curve in runs]
            for label, runs in self.curves().items()
        }
        doc = {
            "seeds": list(self.seeds),
            "target": self.target,
            "problem_spec": self.problem_spec,
            "rows": self.rows,
            "runs": self.runs,
            "curves": curves,
        }
        return json.dumps(_finite(doc), indent=2)


def compare(
    problem: TrainingProblem,
    solvers: Sequence[str | Solver] | Mapping[str, str | Solver],
    seeds: Sequence[int] = (0,),
    target: float | None = None,
    progress: bool = False,
) -> CompareTable:
    """Run every solver from ``problem.initial_guess(seed)`` for every seed and tabulate.

    Parameters
    ----------
    problem : TrainingProblem
        The one problem all solvers solve.
    solvers : sequence of str or Solver, or mapping of label to str or Solver
        Preset names or TOML paths (see :func:`~control_dl.list_solvers`), or solver objects
        (labelled by name, or by the keys of a mapping). All names are resolved before anything runs.
    seeds : sequence of int
        Seeds of the initial guesses (each solver runs once per seed).
    target : float, optional
        Training-loss level for the time-to-target column.
    progress : bool
        Show each solve's progress bar.

    Returns
    -------
    CompareTable
        Aggregated rows (mean ± std over seeds), per-run rows and the Results.

    Raises
    ------
    SpecError
        An unknown solver name (the message lists the available presets), no solvers, bad or
        repeated seeds, or a bad target.
    """
    if not isinstance(problem, TrainingProblem):
        raise TypeError(f"problem must be a TrainingProblem, got {type(problem).__name__}")
    if isinstance(solvers, (str, Solver)) or len(solvers) == 0:
        raise spec_error("solvers", solvers, "must be a non-empty list of preset names or solver objects")
    seeds = tuple(seeds)
    if not seeds or any(not is_integer(s) or s < 0 for s in seeds):
        raise spec_error("seeds", seeds, "must be a non-empty list of integers >= 0")
    seeds = tuple(int(s) for s in seeds)
    if len(set(seeds)) < len(seeds):  # a repeated start would be averaged in as if it were another
        raise spec_error("seeds", seeds, "must not repeat a seed")
    if target is not None and (not is_number(target) or not math.isfinite(target) or target < 0):
        raise spec_error("target", target, "must be a finite number >= 0")
    labelled = _resolve(solvers)
    results: dict[str, list[Result]] = {label: [] for label, _ in labelled}
    runs = []
    for label, solver in labelled:
        for seed in seeds:
            result = solve(problem, solver, seed=seed, progress=progress)
            results[label].append(result)
            values = _run_values(problem, result, target)
            runs.append({"solver": label, "seed": seed, "status": result.status, **values})
    rows = [_aggregate(label, [r for r in runs if r["solver"] == label], target) for label, _ in labelled]
    return CompareTable(rows, runs, results, target, seeds, problem.spec)


# ------------------------------------------------------------------------------------- internals
def _resolve(solvers: Sequence[str | Solver] | Mapping[str, str | Solver]) -> list[tuple[str, Solver]]:
    """(unique label, solver object) pairs; names and TOML paths (labelled by stem) are loaded."""
    items = list(solvers.items()) if isinstance(solvers, Mapping) else [(None, item) for item in solvers]
    labelled, seen = [], Counter()
    for given, item in items:
        if isinstance(item, str):
            solver, label = load_solver(item), Path(item).stem if item.endswith(".toml") else item
        elif isinstance(item, Solver):
            solver, label = item, item.name
        else:
            raise spec_error("solvers", item, "entries must be preset names or solver objects")
        label = label if given is None else str(given)
        seen[label] += 1
        labelled.append((label if seen[label] == 1 else f"{label}#{seen[label]}", solver))
    return labelled


def _clock(result: Result) -> np.ndarray:
    """Seconds from the run's first logged iterate to each logged iterate: the comparison's clock.

    What comes before the first iterate (binding the engine, compiling its CasADi Functions) is
    paid by the first solve of a process only, the compiled code being cached, and would otherwise
    rank the same solver by its place in the list; it is the table's ``setup_time``.
    """
    times = np.array([h["time"] for h in result.history], dtype=float)
    return times - times[0] if times.size else times


def _run_values(problem: TrainingProblem, result: Result, target: float | None) -> dict[str, Any]:
    """The per-run numbers of one Result."""
    setup = float(result.history[0]["time"]) if result.history else 0.0
    reached = None
    if target is not None:
        clock = _clock(result)
        reached = next((float(t) for t, h in zip(clock, result.history, strict=True) if h["loss"] <= target), None)
    residual = pmp_residual(problem, result).residual if np.all(np.isfinite(result.w)) else None
    return {
        "objective": result.objective,
        "loss": result.loss,
        "accuracy": result.accuracy,
        "test_accuracy": result.test_accuracy,
        "iterations": result.iterations,
        "setup_time": setup,
        "wall_time": result.wall_time - setup,
        "time_to_target": reached,
        "pmp_residual": residual,
    }


def _aggregate(label: str, runs: list[dict[str, Any]], target: float | None) -> dict[str, Any]:
    """Mean and std over the seeds of one solver (None where no seed has a value)."""
    statuses = Counter(r["status"] for r in runs)
    status = next(iter(statuses)) if len(statuses) == 1 else ", ".join(f"{s}×{n}" for s, n in statuses.items())
    row: dict[str, Any] = {"solver": label, "status": status, "n_seeds": len(runs)}
    row["target_reached"] = None if target is None else sum(r["time_to_target"] is not None for r in runs)
    for key in METRICS:
        values = np.array([r[key] for r in runs if r[key] is not None], dtype=float)
        row[key] = float(np.mean(values)) if values.size else None
        row[f"{key}_std"] = float(np.std(values)) if values.size else None
    return row


def _format_cell(mean: float | None, std: float | None, n_seeds: int, key: str) -> str:
    if mean is None:
        return "—"
    if key == "iterations":
        text = f"{mean:.0f}" if n_seeds == 1 else f"{mean:.1f}"
        return text if n_seeds == 1 else f"{text} ± {std:.1f}"
    fmt = ".3f" if key in ("accuracy", "test_accuracy") or key.endswith("time") or key == "time_to_target" else ".3e"
    return f"{mean:{fmt}}" if n_seeds == 1 else f"{mean:{fmt}} ± {std:{fmt}}"


def _finite(value: Any) -> Any:
    """Replace NaN/inf by None recursively (strict JSON)."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    return value
