"""Where the named problem and solver specs live (source tree or installed wheel)."""

from __future__ import annotations

import os
from pathlib import Path

from ._errors import SpecError, spec_error

_PACKAGE = Path(__file__).resolve().parent


def catalog_dir(kind: str) -> Path:
    """Directory of the ``kind`` catalog ("problems" or "solvers").

    In a source checkout (or editable install) this is the top-level folder of the repository;
    in an installed wheel, the copy shipped as package data under ``control_dl/_catalog/``.

    Parameters
    ----------
    kind : {"problems", "solvers"}
        Which catalog.

    Returns
    -------
    Path
        The folder holding ``*.toml`` specs.
    """
    for folder in (_PACKAGE.parent / kind, _PACKAGE / "_catalog" / kind):
        if folder.is_dir() and any(folder.glob("*.toml")):
            return folder
    raise FileNotFoundError(f"no {kind} catalog found next to {_PACKAGE}")


def list_names(kind: str) -> list[str]:
    """Sorted names of the specs in a catalog.

    Parameters
    ----------
    kind : {"problems", "solvers"}
        Which catalog.

    Returns
    -------
    list of str
        File stems.
    """
    return sorted(p.stem for p in catalog_dir(kind).glob("*.toml"))


def resolve(kind: str, name_or_path: str | Path) -> Path:
    """Path of a spec given a catalog name or a file path.

    Parameters
    ----------
    kind : {"problems", "solvers"}
        Which catalog.
    name_or_path : str or Path
        A catalog name (``"ring"``) or a path to a TOML file.

    Returns
    -------
    Path
        Existing TOML file.

    Raises
    ------
    SpecError
        If neither a file nor a catalog entry of that name exists.

    Notes
    -----
    A bare catalog name (no ``.toml`` suffix, no directory part) always means the catalog entry,
    whatever the current directory holds (a run folder ``ring/`` must not hide ``"ring"``); a local
    file of that name is reached as ``"./ring"``.
    """
    if not isinstance(name_or_path, (str, os.PathLike)):
        names = list_names(kind)
        raise spec_error(kind.rstrip("s"), name_or_path, f"must be a catalog name {names} or a path to a .toml file")
    text = str(name_or_path)
    path = Path(name_or_path)
    candidate = catalog_dir(kind) / f"{text}.toml"
    bare = path.suffix != ".toml" and "/" not in text and os.sep not in text
    if bare and candidate.is_file():
        return candidate
    if path.suffix == ".toml" or path.exists():
        if not path.is_file():
            why = "is a directory, not a TOML file" if path.is_dir() else "no such file"
            raise SpecError(f"{kind[:-1]}={text!r}: {why}")
        return path
    if not candidate.is_file():
        raise SpecError(f"{kind[:-1]}={str(name_or_path)!r}: unknown; available: {', '.join(list_names(kind))}")
    return candidate
