"""Sweep specifications: a base problem and solver, a grid of values and seeds → a list of runs.

A sweep spec is a TOML document::

    name = "ring-depth"
    seeds = [0, 1, 2]                 # solve(seed=...): the initial guess (and unset solver seeds);
                                      # distinct integers >= 0, a list even for one seed

    [problem]
    name = "ring"                     # catalog name, or path = "my_problem.toml"
    n_samples = 200                   # overrides by leaf key, as in load_problem

    [solver]
    preset = "ipopt-lbfgs"            # catalog name or path
    max_iter = 100                    # options by name, as in load_solver

    [grid]                            # cartesian product of these lists
    n_steps = [5, 10, 20]             # a problem key
    hessian = ["lbfgs", "exact"]      # a solver option
    problem.seed = [0, 1]             # the data seed: a bare ``seed`` is refused (see below)

``grid.problem = [...]`` and ``grid.solver = [...]`` sweep over catalog problems and presets.
A bare grid key must name exactly one thing: a key that is a problem key and a solver option,
or that a run's record already uses for something else (``seed``: the run seed; ``loss``: the
loss metric), is a SpecError asking for its ``problem.`` / ``solver.`` prefix. So a run's
``point`` says exactly what was varied, under the name the table shows and filters take; two grid
keys for one parameter (``n_steps`` and ``problem.n_steps``) are a SpecError naming both.
Each run's parameters are the *full* normalised problem spec, the full solver options and the
seed, and for a problem read from a data file that file's SHA-256 (``data_sha256``); its id is a
hash of them, so the same run always has the same id (resume, deduplication) and a run on an
edited data file is a new run.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import itertools
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .._catalog import resolve
from .._errors import SpecError, is_integer, spec_error
from .._toml import plain_document, read_toml
from ..problems.spec import SCHEMA, SECTIONS, normalise, read_problem_doc
from ..solvers.base import solver_spec
from ..solvers.catalog import SOLVER_KINDS, solver_from_options

TOP_KEYS = ("name", "description", "seeds", "problem", "solver", "grid")
#: the metrics of a run, as its index row and the runs table show them
METRICS = ("objective", "loss", "accuracy", "test_accuracy", "wall_time", "iterations")
#: the fields of a run's index row besides its grid point (a bare grid key may not be one of them)
COLUMNS = ("run_id", "status", *METRICS, "message", "error", "result_path", "params", "point", "finished_at")


@dataclass(frozen=True)
class Run:
    """One point of a sweep.

    Attributes
    ----------
    run_id : str
        16 hex digits of the SHA-256 of ``params`` (canonical JSON).
    params : dict
        ``{"problem": normalised spec, "solver": {"solver": kind, **options}, "seed": int}``: all a
        worker needs to rebuild and solve the run, with no catalog lookups; a problem read from a
        data file adds ``"data_sha256"``, the file's SHA-256, so a changed file is a new run.
    point : dict
        The grid values of this run under their grid keys (and ``seed``, the run seed), for
        tables and filters.
    """

    run_id: str
    params: dict[str, Any]
    point: dict[str, Any]


def canonical_json(value: Any) -> str:
    """JSON with sorted keys and no whitespace (the form that is hashed).

    Parameters
    ----------
    value : object
        JSON-serialisable data.

    Returns
    -------
    str
        Canonical text.

    Raises
    ------
    SpecError
        If a value cannot be written as JSON (e.g. a TOML date).
    """
    try:
        return json.dumps(value, sort_keys=True, separators=(",", ":"), allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise SpecError(f"sweep parameters must be JSON numbers, strings, lists or tables: {exc}") from None


def run_id(params: dict[str, Any]) -> str:
    """Stable id of a run: the first 16 hex digits of SHA-256(canonical JSON of params).

    Parameters
    ----------
    params : dict
        Full parameters of the run.

    Returns
    -------
    str
        The id.
    """
    return hashlib.sha256(canonical_json(params).encode()).hexdigest()[:16]


def _check_seeds(value: Any) -> tuple[int, ...]:
    """``seeds`` as given (a list, tuple or 1-D array) → a tuple of distinct ints in [0, 2**32).

    A lone integer is refused rather than taken as one seed: ``seeds = 3`` reads as well as "three
    seeds". A repeated seed would run once while the spec asks for more runs, so it is refused too.
    """
    shown = value.tolist() if isinstance(value, np.ndarray) else value
    why = "must be a non-empty list of distinct integers in [0, 2**32), e.g. seeds = [0, 1, 2]"
    if isinstance(value, np.ndarray) and value.ndim != 1:
        raise spec_error("seeds", shown, why)
    if not isinstance(value, (list, tuple, np.ndarray)) or len(value) == 0:
        raise spec_error("seeds", shown, why)
    if not all(is_integer(seed) and 0 <= seed < 2**32 for seed in value):
        raise spec_error("seeds", shown, why)
    seeds = tuple(int(seed) for seed in value)
    repeated = [seed for i, seed in enumerate(seeds) if seed in seeds[:i]]
    if repeated:
        raise spec_error("seeds", shown, f"repeats {repeated[0]}: each seed runs once, so give distinct seeds")
    return seeds


def _flatten_grid(grid: Any) -> dict[str, list[Any]]:
    """``[grid]`` table → {key: values}; nested ``problem.x`` / ``solver.x`` tables become dotted keys."""
    if not isinstance(grid, dict):
        raise spec_error("grid", grid, "must be a table of key = [values]")
    flat: dict[str, list[Any]] = {}
    for key, values in grid.items():
        if key in ("problem", "solver") and isinstance(values, dict):
            for sub, sub_values in values.items():
                if f"{key}.{sub}" in flat:  # "problem.x" = [...] next to [grid.problem] x = [...]
                    raise spec_error(f"grid.{key}.{sub}", sub_values, "is given twice; give each grid key once")
                flat[f"{key}.{sub}"] = sub_values
        else:
            if key in flat:
                raise spec_error(f"grid.{key}", values, "is given twice; give each grid key once")
            flat[key] = values
    for key, values in flat.items():
        if not isinstance(values, list) or not values:
            raise spec_error(f"grid.{key}", values, "must be a non-empty list of values")
    return flat


@dataclass(frozen=True)
class SweepSpec:
    """A sweep: base problem and solver, a grid and seeds.

    Parameters
    ----------
    problem : str
        Catalog name or TOML path of the base problem.
    solver : str
        Catalog name or TOML path of the base solver preset.
    problem_overrides : dict
        Leaf keys applied to the base problem.
    solver_options : dict
        Options applied to the base solver.
    grid : dict
        Key → list of values; the runs are the cartesian product. Keys are problem leaf keys,
        solver options, ``problem.<key>`` / ``solver.<key>`` to disambiguate, or ``problem`` /
        ``solver`` (lists of catalog names or paths).
    seeds : list or tuple of int
        Seeds of the initial guess, distinct integers in [0, 2**32); every grid point runs once
        per seed. A lone integer is refused (``seeds = 3`` might mean three seeds).
    name : str
        Label of the sweep.

    Raises
    ------
    SpecError
        A field of the wrong type, or ``seeds`` not a non-empty list of distinct integers in
        [0, 2**32).
    """

    problem: str
    solver: str
    problem_overrides: dict[str, Any] = field(default_factory=dict)
    solver_options: dict[str, Any] = field(default_factory=dict)
    grid: dict[str, list[Any]] = field(default_factory=dict)
    seeds: tuple[int, ...] = (0,)
    name: str = "sweep"

    def __post_init__(self) -> None:
        for key in ("problem", "solver", "name"):
            if not isinstance(getattr(self, key), str):
                raise spec_error(key, getattr(self, key), "must be a string")
        object.__setattr__(self, "grid", _flatten_grid(self.grid))
        object.__setattr__(self, "seeds", _check_seeds(self.seeds))

    def runs(self) -> list[Run]:
        """Expand the grid: one :class:`Run` per grid point and seed, validated up front.

        Keys and value types are checked here (an unknown key or a bad option is a SpecError
        before anything runs); errors that need the data (e.g. ``dim`` below the input
        dimension) surface when the run is built and are recorded as a failed run.

        Returns
        -------
        list of Run
            In grid order (last key fastest), seeds innermost; duplicates removed.
        """
        keys = list(self.grid)
        runs: dict[str, Run] = {}
        read = functools.cache(lambda kind, name: read_toml(resolve(kind, name)))
        digest = functools.cache(_data_sha256)
        for values in itertools.product(*(self.grid[k] for k in keys)):
            point = dict(zip(keys, values, strict=True))
            problem_spec, solver = self._resolve(point, read)
            data = problem_spec["data"]
            file = {"data_sha256": digest(data["path"])} if data.get("dataset") == "file" and "path" in data else {}
            for seed in self.seeds:
                params = {"problem": problem_spec, "solver": solver, "seed": seed, **file}
                params = json.loads(canonical_json(params))
                rid = run_id(params)
                runs.setdefault(rid, Run(rid, params, {**point, "seed": seed}))
        _check_checkpoints(list(runs.values()))
        return list(runs.values())

    def _resolve(self, point: dict[str, Any], read: Any) -> tuple[dict[str, Any], dict[str, Any]]:
        preset = _as_name("solver", point.get("solver", self.solver))
        problem_doc = read_problem_doc(_as_name("problem", point.get("problem", self.problem)))
        solver_doc = dict(read("solvers", preset))
        solver_doc.pop("description", None)
        kind = solver_doc.pop("solver", None)
        if kind not in SOLVER_KINDS:
            raise spec_error("solver", kind, f"preset {preset!r} must name a kind in {sorted(SOLVER_KINDS)}")
        option_names = {f.name for f in dataclasses.fields(SOLVER_KINDS[kind])}
        overrides, options = dict(self.problem_overrides), {**solver_doc, **self.solver_options}
        set_by: dict[tuple[str, str], str] = {}  # (problem or solver, leaf key) -> the grid key that set it
        for key, value in point.items():
            if key in ("problem", "solver"):
                continue
            target, leaf = _route(key, self.grid[key], option_names), key.split(".", 1)[-1]
            other = set_by.setdefault((target, leaf), key)
            if other != key:
                raise spec_error(
                    f"grid.{key}",
                    self.grid[key],
                    f"names the {target} key {target}.{leaf}, as grid.{other} = {self.grid[other]!r} does: "
                    "one run would take one value and record both; give it once",
                )
            (overrides if target == "problem" else options)[leaf] = value
        spec = normalise(problem_doc, overrides)
        return spec, solver_spec(solver_from_options(kind, options))


def _check_checkpoints(runs: list[Run]) -> None:
    """Refuse a sweep in which two runs would write the same checkpoint file.

    Parameters
    ----------
    runs : list of Run
        The expanded runs.

    Raises
    ------
    SpecError
        Naming ``checkpoint``, the file and two of the runs (their grid points): runs in flight at
        once would overwrite each other's checkpoint, and a resumed solve could start from another
        run's w.
    """
    writers: dict[str, Run] = {}
    for run in runs:
        checkpoint = run.params["solver"].get("checkpoint")
        if not isinstance(checkpoint, str) or not run.params["solver"].get("checkpoint_every"):
            continue
        first = writers.setdefault(os.path.abspath(os.path.expanduser(checkpoint)), run)
        if first is not run:
            raise spec_error(
                "checkpoint",
                checkpoint,
                f"more than one run of this sweep would write this file (the runs at {first.point} and "
                f"{run.point}), each overwriting the other's checkpoint; leave checkpoint out of a sweep "
                "(every run's Result is saved in the sweep folder), or give each run its own file: a grid "
                "over checkpoint with one file per grid point, and one seed",
            )


def _data_sha256(path: str) -> str:
    """SHA-256 of a run's data file (part of its parameters: a changed file is a new run).

    Parameters
    ----------
    path : str
        The absolute path of the problem's data file (as :func:`normalise` leaves it).

    Returns
    -------
    str
        64 hex digits.

    Raises
    ------
    SpecError
        Naming ``path`` when the file cannot be read (missing, a directory, no permission).
    """
    from ..problems.datafiles import file_sha256

    try:
        return file_sha256(path)
    except OSError as exc:
        raise spec_error("path", path, f"cannot read the data file ({exc.strerror or exc})") from None


def _as_name(key: str, value: Any) -> str:
    if not isinstance(value, str):
        raise spec_error(key, value, "must be a catalog name or a TOML path")
    return value


def _route(key: str, values: list[Any], option_names: set[str]) -> str:
    """Whether a grid key addresses the problem or the solver.

    Parameters
    ----------
    key : str
        The grid key, bare (``n_steps``) or prefixed (``problem.seed``, ``solver.tol``).
    values : list
        Its grid values (for the error message).
    option_names : set of str
        The options of the point's solver kind.

    Returns
    -------
    str
        ``"problem"`` or ``"solver"``.

    Raises
    ------
    SpecError
        An unknown key, or a bare key that names more than one thing: a problem key and a solver
        option, or a name the run's record uses itself (``seed``, the run seed; a column of
        :data:`COLUMNS` such as the ``loss`` metric), which would record the value under a name
        that means something else.
    """
    prefix, _, leaf = key.partition(".")
    if leaf and prefix in ("problem", "solver"):
        return prefix
    in_problem, in_solver = key in SCHEMA, key in option_names
    if not (in_problem or in_solver):
        raise spec_error(
            f"grid.{key}", values, f"unknown key; problem keys: {sorted(SCHEMA)}; options: {sorted(option_names)}"
        )
    meanings = [f"the problem key problem.{key}"] * in_problem + [f"the solver option solver.{key}"] * in_solver
    if key == "seed":
        meanings.append("the run seed (the initial guess's, set by seeds = [...])")
    elif key in COLUMNS:
        meanings.append(f"the {key!r} column of each run's record")
    if len(meanings) > 1:
        prefixed = " or ".join(
            f"{section}.{key}" for section, given in (("problem", in_problem), ("solver", in_solver)) if given
        )
        raise spec_error(
            f"grid.{key}", values, f"ambiguous: names {', '.join(meanings[:-1])} and {meanings[-1]}; write {prefixed}"
        )
    return "problem" if in_problem else "solver"


def load_sweep(source: str | Path | dict[str, Any]) -> SweepSpec:
    """Read a sweep spec from a TOML file or a dict.

    The input files it names are relative to the TOML file (to the working directory for a dict):
    ``[problem] path``, ``[solver] path``, grid ``problem`` / ``solver`` TOML paths and grid values
    of the data ``path``.

    Parameters
    ----------
    source : str, Path or dict
        TOML path, or the document itself.

    Returns
    -------
    SweepSpec
        The validated spec.

    Raises
    ------
    SpecError
        On unknown keys, missing sections or values of the wrong type.
    """
    if isinstance(source, dict):
        doc, base = plain_document(source), Path.cwd()
    else:
        path = Path(source)
        if not path.is_file():
            raise spec_error("sweep", str(source), "no such file")
        doc, base = read_toml(path), path.parent
    unknown = sorted(set(doc) - set(TOP_KEYS))
    if unknown:
        raise spec_error(unknown[0], doc[unknown[0]], f"unknown sweep key; valid: {list(TOP_KEYS)}")
    problem = _table(doc, "problem", ("name", "path"))
    solver = _table(doc, "solver", ("preset", "path"))
    grid = doc.get("grid", {})
    if not isinstance(grid, dict):
        raise spec_error("grid", grid, "must be a table of key = [values]")
    grid = {key: _grid_paths(key, values, base) for key, values in grid.items()}
    seeds = doc.get("seeds", [0])
    if "seeds" in grid:
        if "seeds" in doc:
            raise spec_error("grid.seeds", grid["seeds"], "seeds are given twice (top level and [grid])")
        seeds = grid.pop("seeds")
    return SweepSpec(
        problem=_relative(problem.pop("_source"), base),
        solver=_relative(solver.pop("_source"), base),
        problem_overrides=problem,
        solver_options=solver,
        grid=grid,
        seeds=seeds,
        name=doc.get("name", "sweep"),
    )


def _table(doc: dict[str, Any], section: str, source_keys: tuple[str, str]) -> dict[str, Any]:
    table = doc.get(section)
    if not isinstance(table, dict):
        raise spec_error(section, table, f"must be a table with {source_keys[0]} = ... or {source_keys[1]} = ...")
    table = dict(table)
    given = [k for k in source_keys if k in table]
    if len(given) != 1:
        raise spec_error(section, table, f"needs exactly one of {list(source_keys)}")
    table["_source"] = table.pop(given[0])
    return table


def _grid_paths(key: str, values: Any, base: Path) -> Any:
    """Grid values that are paths, relative to the sweep file: problem and preset files, data files.

    Parameters
    ----------
    key : str
        The grid key: ``problem`` / ``solver`` (catalog names or TOML paths), the data ``path``
        (bare, ``problem.path``, or in a ``[grid.problem]`` table).
    values : object
        Its values as written (not checked here).
    base : Path
        The sweep file's folder.

    Returns
    -------
    object
        The values, relative paths joined to ``base``.
    """
    if key in ("problem", "solver") and isinstance(values, list):
        return [_relative(value, base) for value in values]
    if key == "problem" and isinstance(values, dict):
        return {sub: _grid_paths(f"problem.{sub}", sub_values, base) for sub, sub_values in values.items()}
    if key in ("path", "problem.path") and isinstance(values, list):
        return [_relative_file(value, base) for value in values]
    return values


def _relative_file(value: Any, base: Path) -> Any:
    """A data file path relative to the sweep file (``~`` expanded); absolute paths and non-strings unchanged."""
    if isinstance(value, str) and value and not Path(value).expanduser().is_absolute():
        return str(base / value)
    return value


def _relative(value: Any, base: Path) -> Any:
    """A path-like name (ending in .toml) relative to the sweep file; catalog names unchanged."""
    if isinstance(value, str) and value.endswith(".toml") and not Path(value).is_absolute():
        return str(base / value)
    return value


def flat_params(params: dict[str, Any]) -> dict[str, Any]:
    """Flatten a run's parameters for filtering: ``seed``, ``solver`` (kind), problem leaf keys and
    solver options by name, plus ``problem.<key>`` / ``solver.<key>`` for every key, and
    ``data_sha256`` for a run on a data file.

    Parameters
    ----------
    params : dict
        ``Run.params``.

    Returns
    -------
    dict
        Flat key → value (the run seed wins over the data ``seed``, which stays ``problem.seed``).
    """
    flat: dict[str, Any] = {"seed": params.get("seed"), "solver": params["solver"].get("solver")}
    if "data_sha256" in params:  # which version of its data file a run read
        flat["data_sha256"] = params["data_sha256"]
    spec = params["problem"]
    flat["problem"] = spec.get("name")
    for section in SECTIONS:
        for key, value in spec.get(section, {}).items():
            flat[f"problem.{key}"] = value
            flat.setdefault(key, value)
    for key, value in params["solver"].items():
        flat[f"solver.{key}"] = value
        flat.setdefault(key, value)
    return flat
