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
