"""The ``control-dl`` command line."""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from ._errors import SpecError
from ._files import output_folder
from ._toml import tomllib

#: the preset ``solve`` uses when neither --solver nor the problem's ``solver`` key names one
DEFAULT_SOLVER = "lbfgsb"  # the fastest to a target on the catalog and on digits (docs/guide/choosing.md)
TURNPIKE_SOLVER = "ipopt-lbfgs"  # turnpike's default: IPOPT's interior point on every horizon
#: statuses of a solve that succeeded (exit code 0); "failed" and "diverged" make a command exit 1
SUCCEEDED = ("converged", "max_iter")


def exit_code(statuses: list[str]) -> int:
    """0 when every solve of a command succeeded (:data:`SUCCEEDED`), else 1 (failed or diverged)."""
    return 0 if all(status in SUCCEEDED for status in statuses) else 1


def parse_assignment(text: str, flag: str = "--set") -> tuple[str, Any]:
    """Parse ``key=value``; the value is read as a TOML value (numbers, booleans, strings, lists).

    Parameters
    ----------
    text : str
        One ``--set`` (or ``--option``) argument.
    flag : str
        The flag it came with (named in the error).

    Returns
    -------
    tuple
        ``(key, value)``; a value that is not valid TOML is kept as a string.

    Raises
    ------
    SpecError
        No ``=``, or nothing before it.
    """
    key, sign, raw = (part.strip() for part in text.partition("="))
    if not sign or not key:
        raise SpecError(f"{flag} {text!r}: expected key=value")
    try:
        value = tomllib.loads(f"v = {raw}")["v"]
    except tomllib.TOMLDecodeError:
        value = raw
    return key, value


def comma_list(text: str, flag: str, convert: Callable[[str], Any], expected: str) -> list[Any]:
    """The entries of a comma-separated flag value, each converted; an empty or bad entry is an error.

    Parameters
    ----------
    text : str
        The flag's value, e.g. ``"1,2,4"``.
    flag : str
        The flag, named in the error (``"--horizons"``).
    convert : callable
        ``float``, ``int`` or ``str`` (entries are stripped of spaces first).
    expected : str
        What the entries should be, for the error (``"numbers, e.g. 1,2,4"``).

    Returns
    -------
    list
        The converted entries, in order.

    Raises
    ------
    SpecError
        An entry is empty (``"1,,2"``, ``"1,2,"``: it was silently skipped) or does not convert.
    """
    entries = []
    for entry in text.split(","):
        try:
            if not entry.strip():
                raise ValueError
            entries.append(convert(entry.strip()))
        except ValueError:
            raise SpecError(
                f"{flag} {text!r}: expected comma-separated {expected} (entry {entry!r} is not one)"
            ) from None
    return entries


def parse_assignments(texts: list[str], flag: str) -> dict[str, Any]:
    """Every ``key=value`` of a repeated flag, as a dict (:func:`parse_assignment` each).

    Parameters
    ----------
    texts : list of str
        The flag's arguments, in order.
    flag : str
        The flag (``--set``, ``--option``), named in the errors.

    Returns
    -------
    dict
        Key -> value.

    Raises
    ------
    SpecError
        An argument is not ``key=value``, or a key is given twice (the last one used to win
        without a word).
    """
    assigned: dict[str, Any] = {}
    for text in texts:
        key, value = parse_assignment(text, flag)
        if key in assigned:
            raise SpecError(f"{flag} {key}: given twice ({assigned[key]!r} and {value!r})")
        assigned[key] = value
    return assigned


def _positive_int(text: str) -> int:
    """An argparse ``type`` for counts: the integer in ``text``, which must be >= 1.

    Parameters
    ----------
    text : str
        The flag's value as typed.

    Returns
    -------
    int
        The count.

    Raises
    ------
    argparse.ArgumentTypeError
        Not an integer >= 1 (argparse names the flag and exits with status 2).
    """
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r}: must be an integer >= 1")
    return value


def _cmd_list(args: argparse.Namespace) -> int:
    from .problems.spec import list_problems
    from .solvers import list_solvers

    print("problems:", ", ".join(list_problems()))
    print("solvers: ", ", ".join(list_solvers()))
    return 0


#: The standard figures of ``solve`` (PNG stems), each drawn where it applies.
STANDARD_FIGURES = ("convergence", "theta_heatmap", "decision_boundary", "trajectories", "grid_deformation")


def write_standard_figures(problem: Any, result: Any, out: Path) -> list[Path]:
    """Write the standard PNGs: convergence, θ(t) heat map, decision boundary (2-D classification),
    trajectories (d ≥ 2) and grid deformation (2-D inputs, d ≥ 2); remove those of an earlier run
    in ``out`` that this problem does not draw.

    Parameters
    ----------
    problem : TrainingProblem
        The problem.
    result : Result
        Its solve.
    out : Path
        Folder for the PNGs.

    Returns
    -------
    list of Path
        Files written.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from . import plotting

    figures = {
        "convergence": lambda ax: plotting.convergence([result], ax=ax),
        "theta_heatmap": lambda ax: plotting.theta_heatmap(problem, result, ax=ax),
    }
    if problem.data.n_in == 2 and problem.data.task != "regression":
        figures["decision_boundary"] = lambda ax: plotting.decision_boundary(problem, result, ax=ax)
    written = []
    for name, draw in figures.items():
        fig, ax = plt.subplots(figsize=(6, 4.8))
        draw(ax)
        written.append(_save(fig, out / f"{name}.png"))
    if problem.dim >= 2:
        fig = plt.figure(figsize=(6, 5))
        plotting.trajectories(problem, result, ax=fig.add_subplot(111, projection="3d" if problem.dim >= 3 else None))
        written.append(_save(fig, out / "trajectories.png"))
    if problem.dim >= 2 and problem.data.n_in == 2:
        fig = plt.figure(figsize=(6, 5))
        plotting.grid_deformation(
            problem, result, ax=fig.add_subplot(111, projection="3d" if problem.dim >= 3 else None)
        )
        written.append(_save(fig, out / "grid_deformation.png"))
    for name in STANDARD_FIGURES:  # an earlier run's figure that this problem does not draw would pass for this run's
        stale = out / f"{name}.png"
        if stale not in written:
            stale.unlink(missing_ok=True)
    return written


def _save(fig: Any, path: Path) -> Path:
    import io

    import matplotlib.pyplot as plt

    from .result import atomic_write_bytes

    buffer = io.BytesIO()
    fig.tight_layout()
    fig.savefig(buffer, format="png", dpi=110)
    plt.close(fig)
    atomic_write_bytes(path, buffer.getvalue())
    return path


def _cmd_solve(args: argparse.Namespace) -> int:
    from .problems.spec import load_problem

    problem = load_problem(args.problem, **parse_assignments(args.set, "--set"))
    options = parse_assignments(args.option, "--option")
    out = output_folder(args.out, "--out")
    checkpoint = out / "checkpoint.npz"
    if args.checkpoint_every:
        options.update(checkpoint=str(checkpoint), checkpoint_every=args.checkpoint_every)
    if any(v is not None for v in (args.engine, args.workers, args.scheduler, args.transport)):
        if args.engine is not None and "engine" in options:  # one would silently win over the other
            raise SpecError(f"--option engine={options['engine']!r} and --engine {args.engine}: give the engine once")
        name = args.engine if args.engine is not None else options.get("engine")
        options["engine"] = engine_option(name, args.workers, args.scheduler, args.transport)
    with _scheduler_client(args.scheduler) as client:
        if client is not None:
            options["engine"] = dataclasses.replace(options["engine"], client=client)
        return _solve_and_write(args, problem, options, out, checkpoint)


@contextlib.contextmanager
def _scheduler_client(scheduler: str | None) -> Iterator[Any]:
    """``--scheduler`` of ``solve`` and ``sweep``: a client connected before any work, or None.

    Connecting here, not at the first evaluation or run, reports an address that does not parse or
    where no scheduler answers (30 s at most; 120 s for a first worker) as ``--scheduler=...``
    before anything is solved. The client is closed on exit.
    """
    if scheduler is None:
        yield None
        return
    from .engines.dask import scheduler_client

    client = scheduler_client("--scheduler", scheduler, 30, workers_timeout=120, direct_to_workers=True)
    try:
        yield client
    finally:
        client.close()


def _solve_and_write(
    args: argparse.Namespace, problem: Any, options: dict[str, Any], out: Path, checkpoint: Path
) -> int:
    """The rest of ``control-dl solve``: solve (or resume), save the result, figures and summary."""
    from .result import atomic_write_bytes
    from .solvers import load_solver, solve

    solver = load_solver(args.solver or problem.spec.get("solver") or DEFAULT_SOLVER, **options)
    w0 = None
    if args.resume and checkpoint.is_file():
        from .solvers.checkpoint import checkpoint_iteration, load_checkpoint

        w0 = load_checkpoint(checkpoint, problem)
        print(f"resuming from {checkpoint} (iteration {checkpoint_iteration(checkpoint)})")
    elif args.resume:
        print(f"no checkpoint at {checkpoint}: starting from the initial guess")
    result = solve(problem, solver, w0=w0, seed=args.seed, progress=not args.no_progress)
    for stale in (out / "summary.json", *(out / f"{name}.png" for name in STANDARD_FIGURES)):
        stale.unlink(missing_ok=True)  # a write interrupted below leaves this run's files alone, never a mix
    result.save(out / "result.npz")
    write_standard_figures(problem, result, out)
    summary = {
        k: getattr(result, k)
        for k in (
            "solver",
            "status",
            "message",
            "objective",
            "loss",
            "accuracy",
            "test_accuracy",
            "iterations",
            "wall_time",
            "engine",
        )
    }
    summary["problem"] = args.problem  # the name or path it was loaded from (the full spec is in result.npz)
    atomic_write_bytes(out / "summary.json", json.dumps(summary, indent=2).encode())
    print(result.summary())
    return exit_code([result.status])


def engine_option(name: str | None, workers: int | None, scheduler: str | None, transport: str | None = None) -> Any:
    """The solver's ``engine`` from ``--engine``, ``--workers``, ``--scheduler`` and ``--transport``.

    Parameters
    ----------
    name : str, optional
        Engine name (``auto``, ``casadi``, ``torch``, ``dask``).
    workers : int, optional
        Local Dask cluster size (``--engine dask`` only).
    scheduler : str, optional
        Address of a running Dask scheduler (``--engine dask`` only).
    transport : str, optional
        How the Dask engine's calls travel, ``Dask.transport`` (``--engine dask`` only; default
        ``"auto"``).

    Returns
    -------
    str or Dask
        The engine name, or a :class:`~control_dl.engines.Dask` spec.

    Raises
    ------
    SpecError
        ``--workers``/``--scheduler``/``--transport`` without ``--engine dask``, or ``--workers``
        with ``--scheduler``.
    """
    if name != "dask":
        for flag, value in (("--workers", workers), ("--scheduler", scheduler), ("--transport", transport)):
            if value is not None:
                raise SpecError(f"{flag}={value!r}: only with --engine dask")
        return name
    from .engines import Dask
    from .engines.dask import check_scheduler_address

    check_workers_flags(workers, scheduler)
    if scheduler is not None:
        check_scheduler_address("--scheduler", scheduler)
    return Dask(client=scheduler, workers=workers, transport=transport or "auto")


def check_workers_flags(workers: int | None, scheduler: str | None) -> None:
    """Refuse ``--workers`` next to ``--scheduler`` (``solve`` and ``sweep``): it would be ignored.

    Parameters
    ----------
    workers : int, optional
        ``--workers`` (None when not given).
    scheduler : str, optional
        ``--scheduler`` (None when not given).

    Raises
    ------
    SpecError
        Both given.
    """
    if scheduler is not None and workers is not None:
        raise SpecError(f"--workers={workers!r}: a running --scheduler brings its own workers")


def _cmd_turnpike(args: argparse.Namespace) -> int:
    from .diagnostics.turnpike import turnpike_sweep
    from .problems.spec import load_problem
    from .solvers import load_solver

    horizons = comma_list(args.horizons, "--horizons", float, "numbers, e.g. 1,2,4")
    problem = load_problem(args.problem, **parse_assignments(args.set, "--set"))
    solver = load_solver(
        args.solver or problem.spec.get("solver") or TURNPIKE_SOLVER, **parse_assignments(args.option, "--option")
    )
    out = output_folder(args.out, "--out")
    sweep = turnpike_sweep(
        problem, solver, horizons, seed=args.seed, progress=not args.no_progress, keep_step=not args.keep_n
    )
    print(sweep.table())
    write_turnpike_outputs(sweep, out)
    return exit_code(sweep.statuses)


def write_turnpike_outputs(sweep: Any, out: Path) -> list[Path]:
    """Write ``turnpike.json`` (summary and profiles) and ``turnpike.png`` (‖θ(t)‖ per horizon).

    Parameters
    ----------
    sweep : TurnpikeSweep
        Output of :func:`control_dl.diagnostics.turnpike_sweep`.
    out : Path
        Folder.

    Returns
    -------
    list of Path
        Files written.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from .plotting import turnpike as plot_turnpike
    from .result import atomic_write_bytes

    atomic_write_bytes(out / "turnpike.json", json.dumps(sweep.to_dict(), indent=2).encode())
    fig, ax = plt.subplots(figsize=(6, 4.8))
    plot_turnpike(sweep, "theta", ax=ax)
    return [out / "turnpike.json", _save(fig, out / "turnpike.png")]


def _cmd_sweep(args: argparse.Namespace) -> int:
    from .experiments import run_sweep
    from .experiments.store import runs_table

    check_workers_flags(args.workers, args.scheduler)
    output_folder(args.out, "--out")
    with _scheduler_client(args.scheduler) as client:
        scheduler = "local" if args.dask else client
        rows = run_sweep(args.spec, args.out, args.workers, scheduler, args.timeout, progress=not args.no_progress)
    print(runs_table(rows))
    failed = sum(row["status"] not in SUCCEEDED for row in rows)
    print(f"{len(rows)} runs in {args.out}, {failed} failed or diverged")
    return exit_code([row["status"] for row in rows])


def _cmd_runs(args: argparse.Namespace) -> int:
    from .experiments.store import RunStore, runs_table

    with RunStore(args.dir) as store:
        rows = store.rows(parse_assignments(args.where, "--where"), args.status)
        print(runs_table(rows, grid_keys=store.grid_keys()))
    return 0


def _cmd_compare(args: argparse.Namespace) -> int:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from .experiments import compare
    from .plotting import compare_curves
    from .problems.spec import load_problem
    from .result import atomic_write_bytes

    problem = load_problem(args.problem, **parse_assignments(args.set, "--set"))
    solvers = comma_list(args.solvers, "--solvers", str, "solver presets, e.g. ipopt-lbfgs,adam")
    seeds = comma_list(args.seeds, "--seeds", int, "integers, e.g. 0,1,2")
    out = output_folder(args.out, "--out")
    table = compare(problem, solvers, seeds=seeds, target=args.target, progress=not args.no_progress)
    atomic_write_bytes(out / "compare.json", table.to_json().encode())
    atomic_write_bytes(out / "compare.csv", table.to_csv().encode())
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2))
    compare_curves(table, axes=axes)
    fig.suptitle(f"{args.problem}: solvers compared")
    _save(fig, out / "compare.png")
    print(table.to_markdown())
    print(f"wrote {out / 'compare.json'}, compare.csv, compare.png")
    return exit_code([result.status for results in table.results.values() for result in results])


def _cmd_export(args: argparse.Namespace) -> int:
    from ._files import check_destination
    from .export import FORMATS
    from .result import Result, result_path

    source = Path(args.result)
    if not source.is_file() and result_path(source).is_file():
        source = result_path(source)
    out = check_destination(args.out, "--out") if args.out else None  # before the work of loading
    result = Result.load(source)
    out = out or check_destination(source.with_suffix(FORMATS[args.format]), "--out")
    written = result.export(args.format, out)
    print(f"wrote {written}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``control-dl``.

    Returns
    -------
    argparse.ArgumentParser
        Parser with the sub-commands.
    """
    from . import __version__
    from .result import STATUSES

    parser = argparse.ArgumentParser(prog="control-dl", description="Train neural networks by optimal control.")
    parser.add_argument("--version", action="version", version=f"control-dl {__version__}")
    sub = parser.add_subparsers(dest="command")
    sub.add_parser("list", help="list named problems and solver presets").set_defaults(func=_cmd_list)
    solve = sub.add_parser("solve", help="solve one problem, write result.npz, summary.json and figures")
    solve.add_argument("problem", help="problem name or TOML path")
    solve.add_argument(
        "--solver", default=None, help=f"solver preset or TOML path (default: the problem's, else {DEFAULT_SOLVER})"
    )
    solve.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override a problem key")
    solve.add_argument("--option", action="append", default=[], metavar="KEY=VALUE", help="override a solver option")
    solve.add_argument("--seed", type=int, default=0, help="seed of the initial guess")
    solve.add_argument("--out", default="runs/solve", help="output folder (default: %(default)s)")
    solve.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    solve.add_argument(
        "--checkpoint-every", type=int, default=0, metavar="K", help="save w to OUT/checkpoint.npz every K iterations"
    )
    solve.add_argument("--resume", action="store_true", help="start from OUT/checkpoint.npz if it exists")
    solve.add_argument("--engine", default=None, choices=["auto", "casadi", "torch", "dask"], help="evaluation engine")
    solve.add_argument(
        "--workers", type=_positive_int, default=None, metavar="K", help="--engine dask: local cluster of K workers"
    )
    solve.add_argument(
        "--scheduler", default=None, metavar="ADDRESS", help="--engine dask: a running scheduler, e.g. tcp://host:8786"
    )
    solve.add_argument(
        "--transport",
        default=None,
        choices=["auto", "socket", "actor"],
        help="--engine dask: how calls reach the shards (default auto: direct connections on tcp://, else actor calls)",
    )
    solve.set_defaults(func=_cmd_solve)
    turn = sub.add_parser("turnpike", help="solve for several horizons T, print the turnpike table, write JSON + PNG")
    turn.add_argument("problem", help="problem name or TOML path")
    turn.add_argument("--horizons", default="1,2,4,8,16", help="comma-separated horizons T (default: %(default)s)")
    turn.add_argument(
        "--solver",
        default=None,
        help=f"solver preset name or TOML path (default: the problem TOML's solver, else {TURNPIKE_SOLVER})",
    )
    turn.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override a problem key")
    turn.add_argument("--option", action="append", default=[], metavar="KEY=VALUE", help="override a solver option")
    turn.add_argument("--seed", type=int, default=0, help="seed of the initial guesses")
    turn.add_argument("--keep-n", action="store_true", help="keep N steps for every T (default: keep h)")
    turn.add_argument("--out", default="runs/turnpike", help="output folder (default: %(default)s)")
    turn.add_argument("--no-progress", action="store_true", help="hide the progress bars")
    turn.set_defaults(func=_cmd_turnpike)
    sweep = sub.add_parser("sweep", help="run a sweep (grid × seeds) into a results folder; resumes")
    sweep.add_argument("spec", help="sweep TOML file")
    sweep.add_argument("--out", required=True, help="results folder (index.sqlite + runs/)")
    sweep.add_argument(
        "--workers",
        type=_positive_int,
        default=None,
        help="worker processes of the local pool or --dask cluster (default 1; not with --scheduler)",
    )
    where = sweep.add_mutually_exclusive_group()
    where.add_argument("--scheduler", default=None, metavar="ADDRESS", help="Dask scheduler, e.g. tcp://host:8786")
    where.add_argument("--dask", action="store_true", help="run on a local Dask cluster of --workers processes")
    sweep.add_argument("--timeout", type=float, default=None, metavar="S", help="seconds per run")
    sweep.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    sweep.set_defaults(func=_cmd_sweep)
    runs = sub.add_parser("runs", help="list the runs of a results folder")
    runs.add_argument("dir", help="results folder of a sweep")
    runs.add_argument("--where", action="append", default=[], metavar="KEY=VALUE", help="filter on a parameter")
    runs.add_argument("--status", default=None, help=f"keep runs with this status: {', '.join(STATUSES)}")
    runs.set_defaults(func=_cmd_runs)
    comp = sub.add_parser("compare", help="run several solvers from the same starts; table, JSON, CSV, figure")
    comp.add_argument("problem", help="problem name or TOML path")
    comp.add_argument("--solvers", required=True, help="comma-separated solver presets, e.g. ipopt-lbfgs,adam")
    comp.add_argument("--seeds", default="0", help="comma-separated seeds of the initial guesses")
    comp.add_argument("--target", type=float, default=None, help="training-loss target for time-to-target")
    comp.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override a problem key")
    comp.add_argument("--out", default="runs/compare", help="output folder")
    comp.add_argument("--no-progress", action="store_true", help="hide the progress bars")
    comp.set_defaults(func=_cmd_compare)
    export = sub.add_parser("export", help="write a saved result's network as torch / CasADi / ONNX")
    export.add_argument("result", help="result file (result.npz of `control-dl solve`)")
    export.add_argument("--format", required=True, choices=["torch", "casadi", "onnx"], help="file format")
    export.add_argument("--out", default=None, help="output file (default: next to RESULT, .pt2/.casadi/.onnx)")
    export.set_defaults(func=_cmd_export)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the command line.

    Parameters
    ----------
    argv : list of str, optional
        Arguments (default ``sys.argv[1:]``).

    Returns
    -------
    int
        Exit code: 0 when every solve succeeded (converged or max_iter), 1 when one failed or
        diverged, 2 on bad input (the ``--out`` folders the command created are then removed again
        if nothing was written there), 130 when interrupted (Ctrl-C).
    """
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:  # no sub-command: the help, as `git` does
        parser.print_help()
        return 2
    created = []  # the folders the command will create for --out, innermost first
    folder = Path(args.out) if getattr(args, "out", None) else None
    while folder is not None and not folder.exists() and folder != folder.parent:
        created.append(folder)
        folder = folder.parent
    try:
        return args.func(args)
    except SpecError as exc:
        for made in created:  # made for outputs the bad input never let come
            if made.is_dir() and not any(made.iterdir()):
                made.rmdir()
        print(f"control-dl: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        again = "; run the same command again to resume (finished runs are kept)" if args.command == "sweep" else ""
        print(f"control-dl: interrupted{again}", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
