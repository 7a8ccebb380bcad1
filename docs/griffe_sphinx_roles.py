"""Griffe extension for the API reference: Sphinx cross-reference roles in docstrings as code spans.

The docstrings name other objects the Sphinx way (:func:`solve`, :class:`~control_dl.Result`), which
Markdown would print literally. This writes each role as inline code (``solve``, ``Result``) before
mkdocstrings renders the docstring. Loaded from ``mkdocs.yml`` (handler option ``extensions``).
"""

from __future__ import annotations

import re
from typing import Any

import griffe

ROLE = re.compile(r":(?:py:)?(?:attr|class|data|exc|func|meth|mod|obj):`~?([^`]+)`")


class SphinxRoles(griffe.Extension):
    """Rewrite ``:role:`target``` in every docstring as ```target``` (``~`` keeps the last name)."""

    def on_instance(self, *, obj: griffe.Object, **kwargs: Any) -> None:
        """Rewrite the docstring of each object griffe loads.

        Parameters
        ----------
        obj : griffe.Object
            A module, class, function or attribute with its docstring.
        **kwargs : Any
            Other hook arguments (unused).
        """
        if obj.docstring is not None:
            obj.docstring.value = ROLE.sub(_code, obj.docstring.value)


def _code(match: re.Match[str]) -> str:
    target = match[1]
    if match[0].split("`")[1].startswith("~"):
        target = target.rsplit(".", 1)[-1]
    return f"`{target}`"
