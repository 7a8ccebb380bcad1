"""TOML reading with a clear error (tomllib on 3.11+, tomli before)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from ._errors import SpecError

__all__ = ["read_toml", "tomllib"]

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
