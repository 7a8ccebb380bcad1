"""Exceptions raised on bad input."""

from __future__ import annotations


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


def main_guard_error(field: str, value: object, what: str) -> SpecError:
    """The error for worker processes that did not start because the script has no main guard.

    Process pools and Dask's local workers start with multiprocessing's *spawn*, which imports the
    main script again in every child; without ``if __name__ == "__main__":`` the children re-run the
    script's top level (and fail), and the parent sees only a broken pool or "Nanny failed to start".

    Parameters
    ----------
    field : str
        The option that asked for worker processes (e.g. ``"engine"``, ``"workers"``).
    value : object
        Its value.
    what : str
        Which processes failed to start, e.g. "the local Dask worker processes".

    Returns
    -------
    SpecError
        The error, ready to raise (``from`` the library's own exception).
    """
    return spec_error(
        field,
        value,
        f"could not start {what}. They start with multiprocessing's 'spawn', which re-runs the main "
        'script: in a script, put the call under `if __name__ == "__main__":`',
    )
