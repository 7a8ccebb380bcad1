"""Exceptions raised on bad input."""

from __future__ import annotations

import dataclasses
import math
import numbers
import os
import re
import sys
from typing import Any

import numpy as np


class SpecError(ValueError):
    """A problem or solver specification is invalid.

    The message names the offending field and value, e.g.
    ``SpecError: n_steps=0: must be an integer >= 1``.
    """


def spec_error(field: str, value: object, why: str) -> SpecError:
    """Build a :class:`SpecError` that names ``field`` and ``value``.

    Parameters
    ----------
    field : str
        The spec field (leaf key) at fault.
    value : object
        The bad value.
    why : str
        What a valid value looks like.

    Returns
    -------
    SpecError
        The error, ready to raise.
    """
    return SpecError(f"{field}={value!r}: {why}")


def is_integer(value: Any) -> bool:
    """Whether ``value`` is an integer: a Python ``int`` or a numpy integer, never a bool.

    Parameters
    ----------
    value : object
        Value to test.

    Returns
    -------
    bool
        True for ``3``, ``np.int64(3)``; False for ``True``, ``np.bool_(True)``, ``3.0``, ``"3"``.
    """
    return isinstance(value, numbers.Integral) and not isinstance(value, (bool, np.bool_))


def is_number(value: Any) -> bool:
    """Whether ``value`` is a real number: ``int``, ``float`` or a numpy integer/float, never a bool.

    Parameters
    ----------
    value : object
        Value to test (NaN and inf count as numbers; check finiteness separately).

    Returns
    -------
    bool
        True for ``2``, ``0.5``, ``np.float32(0.5)``; False for ``True``, ``"0.5"``, ``None``, ``1j``.
    """
    return isinstance(value, numbers.Real) and not isinstance(value, (bool, np.bool_))


def check_bool(field: str, value: Any) -> None:
    """Raise SpecError unless ``value`` is ``True`` or ``False`` (a Python or numpy bool).

    A flag given as a string (``"no"``) or a number is truthy or falsy by accident, so it is refused.

    Parameters
    ----------
    field : str
        Option name.
    value : object
        Value to check.

    Raises
    ------
    SpecError
        Naming ``field`` and ``value``.
    """
    if not isinstance(value, (bool, np.bool_)):
        raise spec_error(field, value, "must be True or False")


def python_scalars(instance: Any) -> None:
    """Replace the numpy scalars among a dataclass's fields by Python ones, in place (frozen too).

    Validators accept ``np.int64`` / ``np.float32`` wherever an int / float goes (they come from
    ``np.arange``, array indexing, tensors); stored raw they broke later consumers: ``json.dumps``
    of a saved result, ``torch.manual_seed(np.int64(1))``, torch's ``split`` with an np.int64 batch.
    Each options or spec dataclass calls this first in ``__post_init__``.

    Parameters
    ----------
    instance : dataclass instance
        Its fields holding an ``np.generic`` (np.int64, np.float32, np.bool_, np.str_) become
        ``int``, ``float``, ``bool`` or ``str`` (``.item()``); other values are left alone.
    """
    for field in dataclasses.fields(instance):
        value = getattr(instance, field.name)
        if isinstance(value, np.generic):
            object.__setattr__(instance, field.name, value.item())


def as_list(field: str, value: Any, what: str) -> list[Any]:
    """``value`` as a list, or a SpecError when one item was given where a sequence of them goes.

    A number, a string, a dict or any other object without iteration (a Result, a problem) is
    refused: ``layers=2`` or ``horizons=2.0`` is one item, not a list of one, and iterating a string
    gives its characters.

    Parameters
    ----------
    field : str
        Argument name.
    value : object
        The candidate sequence (a list, tuple, numpy array, generator, ...).
    what : str
        What a valid value is, e.g. ``"a list of layer indices, e.g. [0, 5, -1]"``.

    Returns
    -------
    list
        The items, in order (possibly empty: the caller decides whether that is allowed).

    Raises
    ------
    SpecError
        Naming ``field`` (with the value, or its type for an object) and ``what``.
    """
    if isinstance(value, (str, bytes, dict)) or not hasattr(value, "__iter__"):
        shown = value if value is None or isinstance(value, (str, bytes, numbers.Number)) else type(value).__name__
        raise spec_error(field, shown, f"must be {what}")
    return list(value)


def check_positive_int(field: str, value: Any, minimum: int = 1) -> None:
    """Raise SpecError unless ``value`` is an integer ≥ ``minimum`` (bools are not integers here).

    Parameters
    ----------
    field : str
        Option name.
    value : object
        Value to check.
    minimum : int
        Smallest allowed value.

    Raises
    ------
    SpecError
        Naming ``field`` and ``value``.
    """
    if not is_integer(value) or value < minimum:
        raise spec_error(field, value, f"must be an integer >= {minimum}")


def check_positive_float(field: str, value: Any, allow_zero: bool = False) -> None:
    """Raise SpecError unless ``value`` is a finite number > 0 (≥ 0 with ``allow_zero``).

    Parameters
    ----------
    field : str
        Option name.
    value : object
        Value to check.
    allow_zero : bool
        Accept 0.

    Raises
    ------
    SpecError
        Naming ``field`` and ``value`` (numpy integer and float scalars are numbers; bools are not).
    """
    ok = is_number(value) and math.isfinite(value)
    if not ok or value < 0 or (value == 0 and not allow_zero):
        raise spec_error(field, value, "must be a finite number " + (">= 0" if allow_zero else "> 0"))


def check_choice(field: str, value: Any, choices: tuple[str, ...]) -> None:
    """Raise SpecError unless ``value`` is one of ``choices``.

    Parameters
    ----------
    field : str
        Option name.
    value : object
        Value to check.
    choices : tuple of str
        Allowed values.

    Raises
    ------
    SpecError
        Naming ``field`` and ``value`` and listing ``choices``.
    """
    if not isinstance(value, str) or value not in choices:
        raise spec_error(field, value, f"must be one of {list(choices)}")


def _main_script_lacks_guard() -> str | None:
    """Why spawn-started children cannot re-run the main script, or None if it has a main guard.

    Returns
    -------
    str or None
        ``"stdin"`` (the script was read from standard input: a child cannot read it again),
        ``"no guard"`` (a script file without ``if __name__ == "__main__":``), or None (no script
        file, as in ``python -c`` or a notebook, which spawn does not re-run; or a guarded script).
    """
    path = getattr(sys.modules.get("__main__"), "__file__", None)
    if path is None:
        return None
    if path == "<stdin>" or not os.path.isfile(path):
        return "stdin"
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            source = f.read()
    except OSError:
        return None
    return None if re.search(r"""__name__\s*==\s*['"]__main__['"]""", source) else "no guard"


def _spawn_error(field: str, value: object, what: str, reason: str) -> SpecError:
    """The SpecError for a main script that spawn-started children cannot re-run (``reason``)."""
    spawn = f"could not start {what}. They start with multiprocessing's 'spawn', which re-runs the main script"
    if reason == "stdin":
        return spec_error(
            field, value, f"{spawn}, and a script read from standard input cannot be re-run: save it to a file"
        )
    return spec_error(field, value, f'{spawn}: in a script, put the call under `if __name__ == "__main__":`')


def require_rerunnable_main(field: str, value: object, what: str) -> None:
    """Fail before any spawn-started process exists if the main script cannot be re-run by one.

    Without this check the children start, fail while re-running the script (each printing its
    own traceback: 264 lines of them for one Dask worker), and only then does the parent learn why
    (:func:`worker_start_error`).

    Parameters
    ----------
    field, value, what : str, object, str
        As for :func:`worker_start_error` (``what``: the processes that would start).

    Raises
    ------
    SpecError
        The main script is a file without ``if __name__ == "__main__":``, or was read from
        standard input.
    """
    reason = _main_script_lacks_guard()
    if reason is not None:
        raise _spawn_error(field, value, what, reason)


def worker_start_error(field: str, value: object, what: str, cause: BaseException) -> SpecError:
    """The error for worker processes that did not start, with the reason when it is the main script.

    Process pools and Dask's local workers start with multiprocessing's *spawn*, which imports the
    main script again in every child; without ``if __name__ == "__main__":`` the children re-run the
    script's top level (and fail), and the parent sees only a broken pool or "Nanny failed to start".
    A script read from standard input (``python - < train.py``) cannot be re-read by the children
    at all. Otherwise the children failed for another reason, given by ``cause``. Callers check
    :func:`require_rerunnable_main` first where they can; this is the diagnosis after the fact.

    Parameters
    ----------
    field : str
        The option that asked for worker processes (e.g. ``"engine"``, ``"workers"``).
    value : object
        Its value.
    what : str
        Which processes failed to start, e.g. "the local Dask worker processes".
    cause : BaseException
        What the pool or cluster raised.

    Returns
    -------
    SpecError
        The error, ready to raise (``from cause``).
    """
    reason = _main_script_lacks_guard()
    if reason is not None:
        return _spawn_error(field, value, what, reason)
    hint = ""
    if "Nanny failed to start" in str(cause) or "bootstrapping phase" in str(cause):
        # the children re-ran the script's top level: a guard exists, but the solve sits outside it
        hint = (
            '; the children re-import the main script: if it solves outside `if __name__ == "__main__":` '
            "(the guard exists but does not hold the solve), move the solve into it"
        )
    return spec_error(field, value, f"could not start {what}: {type(cause).__name__}: {cause}{hint}")
