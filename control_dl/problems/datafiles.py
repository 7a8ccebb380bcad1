"""Reading user data files (``.csv``, ``.npz``, ``.npy``) into sample-major arrays.

Every defect of a file is one :class:`~control_dl.SpecError` that names the file, and for a CSV the
line (the header is line 1) and the column of the first bad cell. CSV files are read with the
standard library's :mod:`csv` module rather than pandas: pandas pads a short row with NaN, so a
ragged row would be reported as an empty cell, and one parser gives one set of messages whether or
not pandas is installed.
"""

from __future__ import annotations

import csv
import hashlib
import math
from pathlib import Path

import numpy as np

from .._errors import SpecError, is_integer
from .._files import npy_array, npz_arrays

__all__ = ["NPZ_KEYS", "file_sha256", "read_csv", "read_data_file", "read_npy", "read_npz"]

#: arrays an ``.npz`` data file may hold (X and y required)
NPZ_KEYS = ("X", "y", "X_test", "y_test")


def file_sha256(path: str | Path) -> str:
    """SHA-256 of a file's bytes (hex), read in 1 MiB blocks.

    Parameters
    ----------
    path : str or Path
        The file.

    Returns
    -------
    str
        64 hex digits.
    """
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def read_data_file(path: Path, target: str | int | None) -> tuple[np.ndarray, ...]:
    """Read a data file by its suffix.

    Parameters
    ----------
    path : Path
        A ``.csv``, ``.npz`` or ``.npy`` file.
    target : str or int, optional
        Label column (csv: header name, required; npy: column index, default −1; npz: unused).

    Returns
    -------
    tuple of ndarray
        ``(X, y)`` or ``(X, y, X_test, y_test)``, X sample-major ``S × n_in``.

    Raises
    ------
    SpecError
        On a missing file, an unknown suffix, or any defect the readers find.
    """
    if not path.is_file():
        raise SpecError(
            f"path={str(path)!r}: " + ("is a directory, not a data file" if path.is_dir() else "no such data file")
        )
    readers = {".csv": read_csv, ".npz": read_npz, ".npy": read_npy}
    reader = readers.get(path.suffix.lower())
    if reader is None:
        raise SpecError(f"path={str(path)!r}: unknown data file type; use one of {sorted(readers)}")
    return reader(path, target)


def _number(cell: str) -> float | None:
    try:
        value = float(cell)
    except ValueError:
        return None
    return value


def read_csv(path: Path, target: str | int | None) -> tuple[np.ndarray, np.ndarray]:
    """Read a CSV with a header row; ``target`` names the label column, the others are features.

    Parameters
    ----------
    path : Path
        The file (UTF-8, a byte-order mark is allowed).
    target : str or int
        Header name of the label column; an integer is read as the header it spells (a header
        ``2024`` given as ``target = 2024`` in TOML or ``--set target=2024``), not a column index.

    Returns
    -------
    tuple of ndarray
        ``X`` (``S × n_in`` float64, columns in file order without the target) and ``y``: int64 when
        every label is a whole number (``1`` or ``1.0``: classes, as in an .npy), float64 when every
        label is a number, else str.

    Raises
    ------
    SpecError
        Naming the file, the line and the column: an empty file, a missing target column, a row
        with too few or too many fields, an empty, NaN, infinite or non-numeric feature cell, an
        empty label cell.
    """
    if is_integer(target):  # a header such as 2024, read as a number by TOML or --set target=2024
        target = str(target)
    if not isinstance(target, str):
        raise SpecError(f"{path}: target={target!r}: a CSV needs the label column's header name")
    try:
        with open(path, newline="", encoding="utf-8-sig") as fh:
            reader = csv.reader(fh)
            header = next(reader, None)
            if header is None or not any(cell.strip() for cell in header):
                raise SpecError(f"{path}: empty file (expected a header row, then one row per sample)")
            header = [cell.strip() for cell in header]
            if target not in header:
                raise SpecError(f"{path}: target={target!r}: no such column; the header has {header}")
            if len(set(header)) != len(header):
                duplicate = next(name for name in header if header.count(name) > 1)
                raise SpecError(f"{path}, line 1: column {duplicate!r} appears twice in the header")
            label_at = header.index(target)
            features, labels, lines = [], [], []
            for row in reader:
                line = reader.line_num
                if not row or (len(row) == 1 and not row[0].strip()):
                    continue  # a blank line
                if len(row) != len(header):
                    raise SpecError(f"{path}, line {line}: {len(row)} fields, the header has {len(header)}")
                values = []
                for name, cell in zip(header, row, strict=True):
                    cell = cell.strip()
                    if name == target:
                        if not cell:
                            raise SpecError(f"{path}, line {line}, column {name!r}: empty label cell")
                        labels.append(cell)
                        lines.append(line)
                        continue
                    value = _number(cell) if cell else None
                    if value is None or not math.isfinite(value):
                        what = "empty cell" if not cell else f"{cell!r} is not a finite number"
                        raise SpecError(f"{path}, line {line}, column {name!r}: {what}")
                    values.append(value)
                features.append(values)
    except UnicodeDecodeError as exc:
        raise SpecError(f"{path}: not UTF-8 text ({exc})") from None
    except csv.Error as exc:
        raise SpecError(f"{path}, line {reader.line_num}: {exc}") from None
    if not labels:
        raise SpecError(f"{path}: no data rows after the header")
    if len(header) == 1:
        raise SpecError(f"{path}: only the target column {target!r}; no feature columns")
    del header[label_at]
    return np.array(features, dtype=float), _parse_labels(path, target, labels, lines)


def _parse_labels(path: Path, target: str, labels: list[str], lines: list[int]) -> np.ndarray:
    """Integers if every label is a whole number ("1" or "1.0", as in an .npy), else numbers if every
    label is one, else the strings."""
    try:
        return np.array([int(cell) for cell in labels], dtype=np.int64)
    except ValueError:
        pass
    numbers = [_number(cell) for cell in labels]
    if all(value is not None for value in numbers):
        bad = next((k for k, value in enumerate(numbers) if not math.isfinite(value)), None)
        if bad is not None:
            raise SpecError(f"{path}, line {lines[bad]}, column {target!r}: {labels[bad]!r} is not a finite number")
        return _whole_numbers_as_classes(np.array(numbers, dtype=float))
    return np.array(labels, dtype=str)


def read_npz(path: Path, target: str | int | None) -> tuple[np.ndarray, ...]:
    """Read ``X``, ``y`` and optionally ``X_test``, ``y_test`` from an ``.npz`` (no pickled objects).

    Parameters
    ----------
    path : Path
        The file (``np.savez(path, X=X, y=y)``).
    target : None or "y"
        The label array is always ``y``; anything else is an error (options never vanish).

    Returns
    -------
    tuple of ndarray
        ``(X, y)`` or ``(X, y, X_test, y_test)``.

    Raises
    ------
    SpecError
        On an unreadable file, a missing or unknown key, or object arrays.
    """
    if target not in (None, "y"):
        raise SpecError(f"{path}: target={target!r}: an .npz holds its labels in 'y' (keys {list(NPZ_KEYS)})")
    data = npz_arrays(path, "path", "a data file of arrays X and y (np.savez(path, X=X, y=y))")
    keys = set(data)
    missing = [k for k in ("X", "y") if k not in keys]
    unknown = sorted(keys - set(NPZ_KEYS))
    if missing or unknown:
        raise SpecError(
            f"{path}: arrays {sorted(keys)}; needs X and y (optional X_test, y_test), "
            + (f"missing {missing}" if missing else f"unknown {unknown}")
        )
    if ("X_test" in keys) != ("y_test" in keys):
        raise SpecError(f"{path}: has one of X_test / y_test; give both or neither")
    return tuple(data[k] for k in NPZ_KEYS if k in keys)


def read_npy(path: Path, target: str | int | None) -> tuple[np.ndarray, np.ndarray]:
    """Read one ``S × (n_in + 1)`` array; column ``target`` (default the last) holds the labels.

    Parameters
    ----------
    path : Path
        The file.
    target : int, optional
        Index of the label column (negative counts from the end).

    Returns
    -------
    tuple of ndarray
        ``(X, y)``; y is int64 when every label is a whole number, else float64.

    Raises
    ------
    SpecError
        On an unreadable file, a non-matrix, or a bad column index.
    """
    column = -1 if target is None else target
    if isinstance(column, str):
        try:
            column = int(column)
        except ValueError:
            raise SpecError(f"{path}: target={target!r}: an .npy needs the label column's index") from None
    array = npy_array(path, "path", "an S × (n_in + 1) array written by np.save")
    if array.ndim != 2 or array.shape[1] < 2 or array.dtype.kind not in "biuf":
        raise SpecError(f"{path}: shape {array.shape} dtype {array.dtype}: needs a numeric S × (n_in + 1) matrix")
    if not -array.shape[1] <= column < array.shape[1]:
        raise SpecError(f"{path}: target={target!r}: no such column of {array.shape[1]}")
    y = array[:, column]
    X = np.delete(array, column % array.shape[1], axis=1)
    return X, _whole_numbers_as_classes(y)


def _whole_numbers_as_classes(y: np.ndarray) -> np.ndarray:
    """Float labels that are all finite whole numbers (``1.0``) as int64 class labels; others unchanged.

    The one rule of every data file (CSV cells, an .npy column): a label column written as floats
    holds classes when no value has a fraction, else regression targets.
    """
    if y.dtype.kind == "f" and all_whole_numbers(y):
        return y.astype(np.int64)
    return y


def all_whole_numbers(values: np.ndarray) -> bool:
    """Whether ``values`` are all finite whole numbers (``1.0``, not ``1.5``): labels written as floats
    that read as classes (in data files), or that look like classes (arrays: a warning).

    Parameters
    ----------
    values : ndarray
        Numbers, any shape.

    Returns
    -------
    bool
        True when no value is NaN, infinite or fractional.
    """
    return bool(np.all(np.isfinite(values)) and np.all(values == np.round(values)))
