"""Reading ``.npz`` archives: every way a file can fail to be one becomes one SpecError."""

from __future__ import annotations

import zipfile
import zlib
from pathlib import Path

import numpy as np

from ._errors import spec_error

#: the first bytes of a zip archive (a non-empty one, an empty one) and of an ``.npy`` array
_ZIP_MAGIC = (b"PK\x03\x04", b"PK\x05\x06")
_NPY_MAGIC = b"\x93NUMPY"


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
        Array name → ndarray (a copy, the file is closed).

    Raises
    ------
    SpecError
        The file is missing, a directory, not an ``.npz`` archive, damaged, or holds object arrays.
    """
    path = Path(path)
    if path.is_dir():
        raise spec_error(field, str(path), f"is a directory, not a file; expected {what}")
    if not path.is_file():
        raise spec_error(field, str(path), f"no such file; expected {what}")
    try:
        with open(path, "rb") as fh:
            head = fh.read(len(_NPY_MAGIC))
    except OSError as exc:
        raise spec_error(field, str(path), f"cannot be read ({exc.strerror or exc})") from None
    if head.startswith(_NPY_MAGIC):
        raise spec_error(field, str(path), f"is a single .npy array, not an .npz archive; expected {what}")
    if not head.startswith(_ZIP_MAGIC):
        kind = "is empty" if not head else "is not an .npz archive (no zip header)"
        raise spec_error(field, str(path), f"{kind}; expected {what}")
    try:
        with np.load(path, allow_pickle=False) as stored:
            return {key: stored[key] for key in stored.files}
    except ValueError as exc:
        if "allow_pickle" in str(exc):  # numpy's refusal of object arrays
            why = "holds object (pickled) arrays, which are never loaded"
        else:
            why = f"is a damaged .npz archive (ValueError: {exc})"
        raise spec_error(field, str(path), f"{why}; expected {what}") from None
    except (OSError, EOFError, KeyError, zipfile.BadZipFile, zlib.error) as exc:
        why = f"is a damaged or truncated .npz archive ({type(exc).__name__}: {exc})"
        raise spec_error(field, str(path), f"{why}; expected {what}") from None
