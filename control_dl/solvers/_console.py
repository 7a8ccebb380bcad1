"""CasADi's console output routed to :mod:`logging`, each distinct line once.

CasADi's Python module writes its warnings (e.g. ``nlp_f failed: NaN detected for output f``, once
per failed evaluation: hundreds in a diverging solve) and the plugins' iteration tables through
Python's ``sys.stderr`` / ``sys.stdout``. :func:`casadi_console` replaces those two streams by
buffers for the duration of one solve (``contextlib.redirect_stdout`` / ``redirect_stderr``; the
caller's streams are restored on exit, also on error) and then logs every distinct line once, with
its count, to the logger ``control_dl.solvers``: warnings at WARNING, the rest at DEBUG. With
``verbose`` the solver's own iteration output (stdout) is left on the console.
"""

from __future__ import annotations

import contextlib
import io
import logging
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

#: the logger that receives CasADi's console output
logger = logging.getLogger("control_dl.solvers")


@dataclass
class Console:
    """What one solve printed (filled when the ``with`` block ends).

    Attributes
    ----------
    lines : collections.Counter
        Distinct non-empty lines and how often each was printed.
    """

    lines: Counter = field(default_factory=Counter)

    def summary(self, limit: int = 3) -> str:
        """The ``limit`` most frequent warning lines, for a Result message ('' when none).

        Parameters
        ----------
        limit : int
            Most lines to include.

        Returns
        -------
        str
            ``'"line" (×n); …'``.
        """
        warnings = [(line, n) for line, n in self.lines.most_common() if _is_warning(line)]
        return "; ".join(f"{_short(line)!r} (x{n})" for line, n in warnings[:limit])


def _is_warning(line: str) -> bool:
    return "WARNING" in line or "failed" in line or "Error" in line or "error" in line


def _short(line: str) -> str:
    """A CasADi warning without its time stamp and source location."""
    if 'WARNING("' in line:
        line = line.split('WARNING("', 1)[1].rsplit('")', 1)[0]
    return line.strip()


@contextlib.contextmanager
def casadi_console(verbose: bool = False, expected: Callable[[], bool] | None = None) -> Iterator[Console]:
    """Capture CasADi's console output during a solve and log it once per distinct line.

    Parameters
    ----------
    verbose : bool
        Leave stdout (the solver's iteration table) on the console; stderr is captured anyway.
    expected : callable, optional
        Called at the end: True when the warnings were caused on purpose (fatrop stopped by a NaN
        from its iteration tap); they are then logged at DEBUG.

    Yields
    ------
    Console
        Filled with the captured lines when the block ends.
    """
    console = Console()
    out, err = io.StringIO(), io.StringIO()
    try:
        with contextlib.ExitStack() as stack:
            if not verbose:
                stack.enter_context(contextlib.redirect_stdout(out))
            stack.enter_context(contextlib.redirect_stderr(err))
            yield console
    finally:  # the caller's streams are back: log what was printed
        text = out.getvalue() + err.getvalue()
        console.lines.update(line.rstrip() for line in text.splitlines() if line.strip())
        on_purpose = expected is not None and expected()
        for line, count in console.lines.items():
            level = logging.WARNING if _is_warning(line) and not on_purpose else logging.DEBUG
            logger.log(level, "%s%s", _short(line), f" (x{count})" if count > 1 else "")
