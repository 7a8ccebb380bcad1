"""What every seed example shares: command line, CI-sized mode, the solver, saving figures.

Run an example as ``python examples/<name>.py [--small] [--out DIR]``. ``--small`` (or the
environment variable ``CONTROL_DL_SMALL=1``) shrinks data, depth and iterations so that the
script only checks that it still runs (the figures are then not meaningful).
"""

from __future__ import annotations

import argparse
import io
import os
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")

import control_dl as cdl  # noqa: E402
from control_dl.result import atomic_write_bytes  # noqa: E402


def setup(name: str, doc: str | None, default: str | None = None) -> tuple[bool, Path]:
    """Parse ``--small`` / ``--out`` and create the output folder.

    Parameters
    ----------
    name : str
        Example name: figures go to ``runs/examples/<name>/`` by default.
    doc : str
        The example's docstring (shown by ``--help``).
    default : str, optional
        Output folder when ``--out`` is not given (default ``runs/examples/<name>``).

    Returns
    -------
    tuple
        ``(small, out)``: whether to run CI-sized, and the output folder.
    """
    parser = argparse.ArgumentParser(description=doc)
    parser.add_argument("--small", action="store_true", help="tiny sizes (also CONTROL_DL_SMALL=1)")
    default = default or str(Path("runs") / "examples" / name)
    parser.add_argument("--out", default=None, help=f"output folder (default {default})")
    args = parser.parse_args()
    small = args.small or os.environ.get("CONTROL_DL_SMALL", "") not in ("", "0")
    out = Path(args.out or default)
    out.mkdir(parents=True, exist_ok=True)
    return small, out


def direct_solver(max_iter: int) -> Any:
    """The direct method with a quasi-Newton Hessian: scipy L-BFGS-B when this build has it, else IPOPT.

    Parameters
    ----------
    max_iter : int
        Iteration limit.

    Returns
    -------
    Direct
        The solver.
    """
    try:
        return cdl.Direct(nlp="lbfgsb", max_iter=max_iter)
    except cdl.SpecError:
        return cdl.Direct(hessian="lbfgs", max_iter=max_iter)


def save(fig: Any, path: Path, dpi: int = 100) -> Path:
    """Write a figure as PNG atomically and close it.

    Parameters
    ----------
    fig : matplotlib Figure
        The figure.
    path : Path
        Destination.
    dpi : int
        Resolution.

    Returns
    -------
    Path
        The file written.
    """
    import matplotlib.pyplot as plt

    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=dpi, bbox_inches="tight")
    plt.close(fig)
    atomic_write_bytes(path, buffer.getvalue())
    print(f"wrote {path}")
    return path
