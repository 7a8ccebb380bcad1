"""Files a user names: NumPy files read safely, output files checked before any work; each failure one SpecError.

Every way a file can fail to be an ``.npz`` archive or an ``.npy`` array, and every way a path can fail to
become a written file, is one SpecError naming the field, the path and what is wrong (never a traceback
from numpy, zipfile or ``os.replace`` after the work is done).
"""

from __future__ import annotations

import os
import tempfile
import zipfile
import zlib
from pathlib import Path

import numpy as np

from ._errors import SpecError, spec_error

#: the first bytes of a zip archive (a non-empty one, an empty one) and of an ``.npy`` array
_ZIP_MAGIC = (b"PK\x03\x04", b"PK\x05\x06")
_NPY_MAGIC = b"\x93NUMPY"

#: what ``np.load`` raises on a damaged file: the message comes from the exception
_DAMAGED = (ValueError, OSError, EOFError, KeyError, zipfile.BadZipFile, zlib.error)


def _check_kind(path: Path, field: str, what: str, npz: bool) -> None:
    """Fail unless ``path`` is a file that starts like an ``.npz`` archive (``npz``) or an ``.npy`` array."""
    if path.is_dir():
        raise spec_error(field, str(path), f"is a directory, not a file; expected {what}")
    if not path.is_file():
        raise spec_error(field, str(path), f"no such file; expected {what}")
    try:
        with open(path, "rb") as fh:
            head = fh.read(len(_NPY_MAGIC))
    except OSError as exc:
        raise spec_error(field, str(path), f"cannot be read ({exc.strerror or exc})") from None
    if not head:
        raise spec_error(field, str(path), f"is empty; expected {what}")
    if npz and head.startswith(_NPY_MAGIC):
        raise spec_error(field, str(path), f"is a single .npy array, not an .npz archive; expected {what}")
    if not npz and head.startswith(_ZIP_MAGIC):
        raise spec_error(field, str(path), f"is an .npz archive, not a single .npy array; expected {what}")
    if not head.startswith(_ZIP_MAGIC if npz else _NPY_MAGIC):
        kind = "an .npz archive (no zip header)" if npz else "an .npy array (no NumPy header)"
        raise spec_error(field, str(path), f"is not {kind}; expected {what}")


def _damaged(field: str, path: Path, what: str, exc: Exception, kind: str) -> Exception:
    """The SpecError for ``np.load``'s exception ``exc`` on a file that looked like ``kind``."""
    if isinstance(exc, ValueError) and "allow_pickle" in str(exc):  # numpy's refusal of object arrays
        why = "holds object (pickled) arrays, which are never loaded"
    else:
        why = f"is a damaged or truncated {kind} ({type(exc).__name__}: {exc})"
    return spec_error(field, str(path), f"{why}; expected {what}")


def npz_arrays(path: str | Path, field: str, what: str) -> dict[str, np.ndarray]:
    """Every array of an ``.npz`` archive, read in full, without unpickling anything.

    ``np.load`` fails in many ways on a file that is not a sound archive: FileNotFoundError,
    IsADirectoryError, ``zipfile.BadZipFile`` (truncated, or a damaged member's CRC),
    ``EOFError`` (empty), a ValueError about pickled data (any other file, e.g. a text file), or
    an ``ndarray`` instead of an archive (an ``.npy`` file). Each becomes one SpecError that names
    the path and says which it is.

    Parameters
    ----------
    path : str or Path
        The file.
    field : str
        The argument or option that named the file, for the message (e.g. ``"path"``, ``"checkpoint"``).
    what : str
        What the file should be, for the message (e.g. ``"a result written by Result.save"``).

    Returns
    -------
    dict
        Array name → ndarray (read into memory; the file is closed).

    Raises
    ------
    SpecError
        The file is missing, a directory, empty, not an ``.npz`` archive, damaged, or holds object arrays.
    """
    path = Path(path)
    _check_kind(path, field, what, npz=True)
    try:
        with np.load(path, allow_pickle=False) as stored:
            return {key: stored[key] for key in stored.files}
    except _DAMAGED as exc:
        raise _damaged(field, path, what, exc, ".npz archive") from None


def npy_array(path: str | Path, field: str, what: str) -> np.ndarray:
    """The array of an ``.npy`` file, without unpickling anything.

    Parameters
    ----------
    path : str or Path
        The file.
    field, what : str
        As for :func:`npz_arrays`.

    Returns
    -------
    ndarray
        The array.

    Raises
    ------
    SpecError
        The file is missing, a directory, empty, not an ``.npy`` array (an ``.npz`` archive is
        named as one), truncated, or holds objects.
    """
    path = Path(path)
    _check_kind(path, field, what, npz=False)
    try:
        return np.load(path, allow_pickle=False)
    except _DAMAGED as exc:
        raise _damaged(field, path, what, exc, ".npy array") from None


def as_path(value: object, field: str = "path") -> Path:
    """``value`` as a Path, or a SpecError naming ``field`` when it is not a path (None, a number, …).

    Parameters
    ----------
    value : object
        A ``str`` or ``os.PathLike``.
    field : str
        The argument that named it, for the message.

    Returns
    -------
    Path
        The path (not checked for existence).

    Raises
    ------
    SpecError
        ``value`` is neither a string nor path-like, or is the empty string.
    """
    if not isinstance(value, (str, os.PathLike)) or str(value) == "":
        raise spec_error(field, value, "must be a file path (a str or pathlib.Path)")
    return Path(value)


def check_destination(path: str | Path, field: str = "path") -> Path:
    """Fail before any work (an export, a solve, an animation) if ``path`` cannot become the file it writes.

    Without this check the work runs to the end and only the final ``os.replace`` fails (with
    IsADirectoryError or FileExistsError), its output lost.

    Parameters
    ----------
    path : str or Path
        The file to be written (missing folders are created on writing).
    field : str
        The argument or option that named it, for the message (e.g. ``"out"``).

    Returns
    -------
    Path
        ``path`` as a Path.

    Raises
    ------
    SpecError
        ``path`` is a directory, one of its folders is a file, or its nearest existing folder is
        not writable (by its permission bits, or by a trial file created there and removed at once:
        root may write anywhere by the bits, yet ``/proc`` or a read-only mount refuse files).
    """
    path = as_path(path, field)
    if path.is_dir():
        raise spec_error(field, str(path), "is a directory; give the path of the file to write (in it, or elsewhere)")
    folder = path.parent
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    if not folder.is_dir():
        raise spec_error(field, str(path), f"cannot be created: {folder} is a file, not a folder")
    refusal = _refusal(folder)
    if refusal is not None:
        raise spec_error(field, str(path), f"cannot be written: {refusal}")
    return path


def _refusal(folder: Path) -> str | None:
    """Why the existing ``folder`` cannot take new files, or None when it can.

    The permission bits first, then a trial file created there and removed at once: root may write
    anywhere by the bits, yet ``/proc`` or a read-only mount refuse files.
    """
    if not os.access(folder, os.W_OK | os.X_OK):
        return f"no write permission in the folder {folder}"
    try:
        handle, probe = tempfile.mkstemp(prefix=".control-dl.", suffix=".probe", dir=folder)
    except OSError as exc:
        return f"{folder} refuses new files ({exc.strerror or exc})"
    os.close(handle)
    os.unlink(probe)
    return None


def output_folder(path: str | Path, option: str) -> Path:
    """The output folder named by ``option``, created now, before any work that would write there.

    The folder counterpart of :func:`check_destination`: a path that is a file, or a folder that
    cannot be created or written to, used to fail only when the first result was saved, after the
    whole solve (its result lost).

    Parameters
    ----------
    path : str or Path
        The folder.
    option : str
        The flag or argument that named the folder (in the error), e.g. ``"--out"``.

    Returns
    -------
    Path
        The folder, existing and writable.

    Raises
    ------
    SpecError
        ``path`` exists and is not a folder, or cannot be created, or is not writable.
    """
    folder = Path(path)
    if folder.exists() and not folder.is_dir():
        raise SpecError(f"{option} {str(path)!r}: exists and is not a folder")
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise SpecError(f"{option} {str(path)!r}: cannot create the folder ({exc.strerror or exc})") from None
    refusal = _refusal(folder)
    if refusal is not None:
        raise SpecError(f"{option} {str(path)!r}: the folder is not writable ({refusal})")
    return folder
