"""The results store of a sweep: one Result file per run plus a SQLite index.

Layout of a sweep folder ``DIR``::

    DIR/index.sqlite        one row per run (WAL mode; written only by the sweep's parent process)
    DIR/runs/<run_id>.npz   the run's Result (written atomically by the worker: temp file + rename)
    DIR/.lock               held (flock) while a sweep writes to DIR

A row is committed only after its Result file is complete, and each commit is one SQLite
transaction, so a sweep killed at any moment leaves complete files and a consistent index.
"""

from __future__ import annotations

import json
import math
import os
import sqlite3
import time
from pathlib import Path
from typing import Any

from .._errors import SpecError, spec_error
from ..result import STATUSES
from .sweep import COLUMNS, METRICS, Run, flat_params

_SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
    run_id TEXT PRIMARY KEY,
    status TEXT NOT NULL,
    objective REAL, loss REAL, accuracy REAL, test_accuracy REAL, wall_time REAL, iterations INTEGER,
    message TEXT, error TEXT, result_path TEXT,
    params TEXT NOT NULL, point TEXT NOT NULL,
    finished_at REAL NOT NULL
)
"""
#: the columns a sweep's runs table has at least (another program's ``runs`` table lacks them)
_SWEEP_COLUMNS = frozenset({"run_id", "status", "params", "point", "result_path"})


class RunStore:
    """Read and write the index and result files of one sweep folder.

    Parameters
    ----------
    root : str or Path
        The sweep folder (created if missing when ``writable``).
    writable : bool
        Take the folder's lock and allow :meth:`record`; only one writer may hold it.

    Raises
    ------
    SpecError
        If ``writable`` and another process holds the lock or the folder cannot hold a sweep's
        files (``runs`` or ``.lock`` of the wrong kind, a place the system refuses: named ``out``),
        if not ``writable`` and there is no index, or if ``index.sqlite`` is not a sweep's index
        (damaged, not SQLite, or another program's database: refused before anything is written).
    """

    def __init__(self, root: str | Path, writable: bool = False) -> None:
        self.root = Path(root)
        self.index = self.root / "index.sqlite"
        self.db: sqlite3.Connection | None = None
        self._lock = None
        self._absolute_root = Path(os.path.abspath(self.root))
        field = "out" if writable else "runs"
        if writable:
            if os.path.lexists(self.index):  # refuse another program's file before writing anything
                self._open_index(field, write=False, empty_ok=True, probe=True)
                self.close()
            try:
                (self.root / "runs").mkdir(parents=True, exist_ok=True)
                self._lock = _take_lock(self.root / ".lock")
            except OSError as exc:
                raise spec_error(
                    field, str(self.root), f"cannot hold a sweep's results ({exc.filename}: {exc.strerror or exc})"
                ) from None
        elif not self.index.is_file():
            raise spec_error("runs", str(self.root), "no index.sqlite here: not a sweep folder")
        self._open_index(field, write=writable, empty_ok=writable)

    def _open_index(self, field: str, write: bool, empty_ok: bool, probe: bool = False) -> None:
        """Connect to the index and check that it is a sweep's; set up a new one if ``write``.

        Parameters
        ----------
        field : str
            ``out`` or ``runs``: what the SpecError names.
        write : bool
            Set up WAL mode and the runs table (after the checks).
        empty_ok : bool
            Accept a database with no tables at all (a new index).
        probe : bool
            Open the file read-only (SQLite's ``mode=ro``): a check that changes nothing in it.

        Raises
        ------
        SpecError
            The file is no SQLite database (or a directory), its ``runs`` table is not a sweep's, or
            it has tables but no ``runs`` table (another program's database).
        """
        try:  # a directory, a damaged file, or no SQLite file at all: sqlite3 says so at the first statement
            if probe:
                self.db = sqlite3.connect(f"{(self._absolute_root / self.index.name).as_uri()}?mode=ro", uri=True)
            else:
                self.db = sqlite3.connect(self.index, timeout=30.0)
            self.db.row_factory = sqlite3.Row
            tables = sorted(row["name"] for row in self.db.execute("SELECT name FROM sqlite_master WHERE type='table'"))
            columns = {row["name"] for row in self.db.execute("PRAGMA table_info(runs)")}
            why = None
            if "runs" in tables and not _SWEEP_COLUMNS <= columns:
                why = "is an SQLite file without a sweep's runs table (its runs table lacks a sweep's columns)"
            elif tables and "runs" not in tables:
                why = (
                    f"is an SQLite file without a sweep's runs table: another program's database? "
                    f"(its tables: {', '.join(tables)}); give a new folder"
                )
            elif not tables and not empty_ok:
                why = "is an SQLite file without a sweep's runs table (an empty database)"
            if why is None and write:
                self.db.execute("PRAGMA journal_mode=WAL")
                self.db.execute(_SCHEMA)
                self.db.commit()
        except sqlite3.Error as exc:
            self.close()
            raise spec_error(field, str(self.index), f"is not a sweep's index ({exc})") from None
        if why is not None:
            self.close()
            raise spec_error(field, str(self.index), why)

    def __enter__(self) -> RunStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the database (if it was opened) and release the lock."""
        if getattr(self, "db", None) is not None:
            self.db.close()
            self.db = None
        if self._lock is not None:
            self._lock.close()
            self._lock = None

    @staticmethod
    def result_file(rid: str) -> str:
        """Where the Result of run ``rid`` lives, relative to the sweep folder (as the index stores it).

        Parameters
        ----------
        rid : str
            Run id.

        Returns
        -------
        str
            ``runs/<rid>.npz``.
        """
        return f"runs/{rid}.npz"

    def finished(self) -> set[str]:
        """Ids of runs that need not run again: indexed and with their Result file on disk.

        Returns
        -------
        set of str
            Run ids.
        """
        rows = self.db.execute("SELECT run_id, result_path FROM runs WHERE result_path IS NOT NULL")
        return {r["run_id"] for r in rows if (self.root / r["result_path"]).is_file()}

    def remove_temporaries(self) -> list[Path]:
        """Delete temporary files left by an interrupted atomic write (call only while holding the lock).

        Returns
        -------
        list of Path
            Files removed.
        """
        stale = list((self.root / "runs").glob(".*.tmp"))
        for path in stale:
            path.unlink(missing_ok=True)
        return stale

    def record(self, run: Run, outcome: dict[str, Any]) -> None:
        """Insert or replace the row of ``run`` in one transaction.

        Parameters
        ----------
        run : Run
            The run.
        outcome : dict
            ``status``, the metrics, ``message``, ``error`` and ``result_path`` (relative to DIR
            or None), as the worker reports them.

        Raises
        ------
        SpecError
            The store was opened read-only (``writable=False``).
        """
        if self._lock is None:
            raise SpecError("this RunStore was opened read-only")
        values = {k: outcome.get(k) for k in ("status", *METRICS, "message", "error", "result_path")}
        for key in METRICS:
            if isinstance(values[key], float) and not math.isfinite(values[key]):
                values[key] = None
        values.update(
            run_id=run.run_id, params=json.dumps(run.params), point=json.dumps(run.point), finished_at=time.time()
        )
        names = ", ".join(values)
        with self.db:
            self.db.execute(
                f"INSERT OR REPLACE INTO runs ({names}) VALUES ({', '.join('?' * len(values))})", list(values.values())
            )

    def grid_keys(self) -> list[str]:
        """The grid keys of every run's ``point``, in the order they first appear (oldest run first).

        Returns
        -------
        list of str
            The runs table's grid columns, also when a filter leaves no row to show them.
        """
        keys: list[str] = []
        for (point,) in self.db.execute("SELECT point FROM runs ORDER BY finished_at, run_id"):
            keys += [k for k in json.loads(point) if k not in keys]
        return keys

    def rows(self, where: dict[str, Any] | None = None, status: str | None = None) -> list[dict[str, Any]]:
        """Rows of the index as dicts, oldest first, optionally filtered.

        Parameters
        ----------
        where : dict, optional
            Key → value that each row must match. Keys: the grid keys of the run's ``point`` (as the
            runs table shows them; ``seed`` is the run seed, a grid ``solver`` / ``problem`` the
            preset / problem as the sweep named it), and every parameter as in :func:`flat_params`
            (``dim``, ``max_iter``, ``problem.seed``, ``solver.tol``, ...). Numbers match numerically
            (``1e-3`` matches ``0.001``).
        status : str, optional
            Keep only rows with this status, one of :data:`control_dl.result.STATUSES`.

        Returns
        -------
        list of dict
            Each row: ``run_id``, ``status``, metrics, ``message``, ``error``, ``result_path``
            (absolute), ``params`` (dict), ``point`` (dict of grid values) and the point's keys.

        Raises
        ------
        SpecError
            A status runs cannot have; ``where`` not a table of names; a ``where`` key no run has;
            a value of a type that key's values never have (``n_steps="ten"``), which could
            match nothing.
        """
        if status is not None and status not in STATUSES:
            raise spec_error("status", status, f"must be one of {list(STATUSES)}")
        if where is not None and (not isinstance(where, dict) or not all(isinstance(k, str) for k in where)):
            raise spec_error("where", where, "must be a dict of parameter name -> value")
        rows: list[tuple[dict[str, Any], dict[str, Any]]] = []  # (row, the keys a filter sees)
        kinds: dict[str, set[str]] = {}
        for record in self.db.execute("SELECT * FROM runs ORDER BY finished_at, run_id"):
            row = dict(record)
            row["params"], row["point"] = json.loads(row["params"]), json.loads(row["point"])
            keys = {**flat_params(row["params"]), **row["point"]}
            for key, value in keys.items():
                kinds.setdefault(key, set()).add(_kind(value))
            rows.append((row, keys))
        _check_where(where or {}, kinds)
        out = []
        for row, keys in rows:
            if (status is not None and row["status"] != status) or not _matches(keys, where or {}):
                continue
            if row["result_path"]:
                row["result_path"] = str(self._absolute_root / row["result_path"])
            out.append({**row, **{k: v for k, v in row["point"].items() if k not in row}})
        return out


def _kind(value: Any) -> str:
    """The JSON type of a parameter value, as filters compare them (int and float are both numbers)."""
    if value is None:
        return "null"
    for kind, types in (("boolean", bool), ("number", (int, float)), ("string", str), ("list", list)):
        if isinstance(value, types):
            return kind
    return "table"


def _check_where(where: dict[str, Any], kinds: dict[str, set[str]]) -> None:
    """Refuse a filter that can match nothing because of its key or its value's type.

    Parameters
    ----------
    where : dict
        The filter.
    kinds : dict
        Every key the runs have → the :func:`_kind` of its values (empty when the index is empty:
        then nothing can be checked).

    Raises
    ------
    SpecError
        A key no run has, or a value whose type none of the key's (non-null) values have.
    """
    if not kinds:
        return
    for key, wanted in where.items():
        if key not in kinds:
            raise spec_error(f"where {key}", wanted, f"no run has this parameter; known: {sorted(kinds)}")
        have = kinds[key] - {"null"}
        if have and _kind(wanted) not in have:
            raise spec_error(
                f"where {key}", wanted, f"a {_kind(wanted)} never equals its values ({' or '.join(sorted(have))})"
            )


def _matches(keys: dict[str, Any], where: dict[str, Any]) -> bool:
    return all(key in keys and _kind(keys[key]) == _kind(v) and keys[key] == v for key, v in where.items())


def _take_lock(path: Path) -> Any:
    try:
        import fcntl
    except ImportError:  # pragma: no cover - no advisory locks (Windows): one sweep per folder by convention
        return open(path, "a")  # noqa: SIM115
    handle = open(path, "a")  # noqa: SIM115
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        handle.close()
        raise SpecError(f"{path.parent}: another sweep is writing to this folder") from None
    return handle


def load_runs(root: str | Path, where: dict[str, Any] | None = None, status: str | None = None) -> list[dict[str, Any]]:
    """Rows of a sweep folder's index, for analysis (e.g. ``pandas.DataFrame(load_runs(d))``).

    Parameters
    ----------
    root : str or Path
        The sweep folder (``--out`` of ``control-dl sweep``).
    where : dict, optional
        Parameter filter, e.g. ``{"dim": 3, "seed": 0}`` (keys and matching: :meth:`RunStore.rows`).
    status : str, optional
        Keep only rows with this status: ``"converged"``, ``"max_iter"``, ``"failed"`` or ``"diverged"``.

    Returns
    -------
    list of dict
        See :meth:`RunStore.rows`.

    Raises
    ------
    SpecError
        Not a sweep folder, or a filter that can match nothing (see :meth:`RunStore.rows`).
    """
    with RunStore(root) as store:
        return store.rows(where, status)


def runs_table(rows: list[dict[str, Any]], max_width: int = 40, grid_keys: list[str] | None = None) -> str:
    """A plain-text table of rows: id, status, grid values, metrics and message.

    Parameters
    ----------
    rows : list of dict
        Output of :func:`load_runs`.
    max_width : int
        Cells are cut to this many characters.
    grid_keys : list of str, optional
        Grid columns to show first (:meth:`RunStore.grid_keys`: the header keeps them when a filter
        leaves no row); the rows' own grid keys follow.

    Returns
    -------
    str
        The table (a header line and one line per row).
    """
    point_keys: list[str] = list(grid_keys or [])
    for row in rows:
        point_keys += [k for k in row["point"] if k not in point_keys]
    columns = ["run_id", "status", *point_keys, *METRICS, "message"]
    cells = [columns] + [
        [_cell(row.get(c) if c in COLUMNS else row["point"].get(c), max_width) for c in columns] for row in rows
    ]
    widths = [max(len(line[i]) for line in cells) for i in range(len(columns))]
    return "\n".join("  ".join(v.ljust(w) for v, w in zip(line, widths, strict=True)).rstrip() for line in cells)


def _cell(value: Any, max_width: int) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):  # as --where takes it (TOML): standardize=false, not Python's False
        return "true" if value else "false"
    if isinstance(value, float):
        return f"{value:.4g}"
    text = str(value).strip().splitlines()[-1] if isinstance(value, str) and value.strip() else str(value)
    return text if len(text) <= max_width else text[: max_width - 1] + "…"
