"""TOML documents: reading with a clear error (tomllib on 3.11+, tomli before), and the same plain
data from a document built in Python."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import numpy as np

from ._errors import SpecError

__all__ = ["plain_document", "read_toml", "tomllib"]

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib


def read_toml(path: Path) -> dict[str, Any]:
    """Parse a TOML file.

    Parameters
    ----------
    path : Path
        File to read.

    Returns
    -------
    dict
        The document.

    Raises
    ------
    SpecError
        If the file is not valid TOML (or not UTF-8 text, or nested too deeply to parse).
    """
    try:
        with open(path, "rb") as fh:
            return tomllib.load(fh)
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise SpecError(f"{path}: invalid TOML: {exc}") from None
    except RecursionError:
        raise SpecError(f"{path}: invalid spec: arrays or tables nested too deeply") from None


def plain_document(value: Any) -> Any:
    """A document built in Python as TOML would give it: numpy scalars as Python numbers, arrays and
    tuples as lists (recursively through tables and lists).

    Specs and sweeps given as dicts often carry values from numpy (``np.arange`` for a grid, an
    ``np.int64`` from an index); stored raw they fail later, in the JSON of an index or a result.

    Parameters
    ----------
    value : object
        A dict, list, tuple, numpy array or scalar, or any other value (returned as is).

    Returns
    -------
    object
        The same data with dicts, lists and Python scalars only where numpy types or tuples were.
    """
    if isinstance(value, dict):
        return {key: plain_document(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain_document(item) for item in value]
    if isinstance(value, np.ndarray):
        return plain_document(value.tolist())
    return value.item() if isinstance(value, np.generic) else value
