"""Checkpoints of long solves: the current w every K iterations, written atomically.

A checkpoint is a small ``.npz`` file (w, iteration, a fingerprint of the problem). Any solver
gets it through :class:`~control_dl.solvers.base.Recorder` (``checkpoint=path,
checkpoint_every=K``); a solve resumes with ``solve(problem, solver, w0=load_checkpoint(path, problem))``
(or ``control-dl solve ... --resume``). Resuming restarts the solver's own state (IPOPT's
multipliers, L-BFGS memory, Adam moments) from w alone.
"""

from __future__ import annotations

import hashlib
import io
import json
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from .._errors import is_integer, spec_error
from .._files import check_destination, npz_arrays
from ..result import atomic_write_bytes

if TYPE_CHECKING:
    from ..problems.training import TrainingProblem


def check_checkpoint(checkpoint: object, checkpoint_every: object) -> None:
    """Validate the two checkpoint options of a solver.

    Parameters
    ----------
    checkpoint : str or None
        Checkpoint file.
    checkpoint_every : int
        Interval K ≥ 0 (0: never); K > 0 needs a file.

    Raises
    ------
    SpecError
        ``checkpoint_every`` is not an integer >= 0, ``checkpoint`` is not a string, or
        ``checkpoint_every > 0`` without ``checkpoint``.
    """
    if not is_integer(checkpoint_every) or checkpoint_every < 0:
        raise spec_error("checkpoint_every", checkpoint_every, "must be an integer >= 0")
    if checkpoint is not None and not isinstance(checkpoint, str):
        raise spec_error("checkpoint", checkpoint, "must be a file path (string)")
    if checkpoint_every > 0 and not checkpoint:
        raise spec_error("checkpoint_every", checkpoint_every, "needs checkpoint = 'path/to/file.npz'")


def problem_fingerprint(problem: TrainingProblem) -> str:
    """A short hash of the problem's spec and size, to refuse resuming a different problem.

    Parameters
    ----------
    problem : TrainingProblem
        The problem.

    Returns
    -------
    str
        16 hex digits (the spec is hashed when the problem has one, else only n_params).
    """
    text = json.dumps({"spec": problem.spec, "n_params": problem.n_params}, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def save_checkpoint(path: str | Path, w: np.ndarray, iteration: int, fingerprint: str) -> None:
    """Write a checkpoint atomically (a crash leaves the previous checkpoint intact).

    Parameters
    ----------
    path : str or Path
        Destination ``.npz``.
    w : ndarray
        Current decision vector.
    iteration : int
        Iteration at which w was reached.
    fingerprint : str
        :func:`problem_fingerprint` of the problem.
    """
    buffer = io.BytesIO()
    np.savez(buffer, w=np.asarray(w, dtype=float), iteration=int(iteration), fingerprint=np.array(fingerprint))
    atomic_write_bytes(path, buffer.getvalue())


def load_checkpoint(path: str | Path, problem: TrainingProblem) -> np.ndarray:
    """Read the w of a checkpoint written for ``problem``.

    Parameters
    ----------
    path : str or Path
        Checkpoint file.
    problem : TrainingProblem
        The problem being resumed.

    Returns
    -------
    ndarray
        The checkpointed w, shape ``(n_params,)``.

    Raises
    ------
    SpecError
        If the file is missing, not a checkpoint (any other file, or a damaged one), or was
        written for another problem.
    """
    data = _read(path)
    if str(data["fingerprint"]) != problem_fingerprint(problem) or data["w"].shape != (problem.n_params,):
        raise spec_error("checkpoint", str(path), "was written for a different problem")
    return data["w"]


def checkpoint_iteration(path: str | Path) -> int:
    """The iteration stored in a checkpoint.

    Parameters
    ----------
    path : str or Path
        Checkpoint file.

    Returns
    -------
    int
        Iteration count at which it was written.

    Raises
    ------
    SpecError
        If the file is missing or not a checkpoint.
    """
    return int(_read(path)["iteration"])


def _read(path: str | Path) -> dict[str, np.ndarray]:
    """The arrays of a checkpoint file, or a SpecError naming the file and what is wrong."""
    what = "a checkpoint written by a solve with checkpoint_every > 0"
    data = npz_arrays(path, "checkpoint", what)
    missing = [key for key in ("w", "iteration", "fingerprint") if key not in data]
    if missing:
        hint = (
            "it is a result: start from its w with w0=Result.load(path).w" if "metadata" in data else f"expected {what}"
        )
        raise spec_error("checkpoint", str(path), f"not a checkpoint: arrays {sorted(data)}, no {missing}; {hint}")
    return data


class Checkpointer:
    """Saves w every ``every`` iterations (called by the Recorder), and a failed solve's returned w.

    Parameters
    ----------
    path : str or Path
        Checkpoint file.
    every : int
        Interval K ≥ 1 in iterations.
    problem : TrainingProblem
        The problem (for the fingerprint).

    Raises
    ------
    SpecError
        If ``path`` cannot be written (a directory, under a file): at the start of the solve, not
        at its first checkpoint.
    """

    def __init__(self, path: str | Path, every: int, problem: TrainingProblem) -> None:
        self.path, self.every = check_destination(path, "checkpoint"), every
        self.fingerprint = problem_fingerprint(problem)

    def __call__(self, iteration: int, w: np.ndarray) -> None:
        """:meth:`save` w if ``iteration`` is a positive multiple of K (called every iteration).

        Parameters
        ----------
        iteration : int
            Iterations done.
        w : ndarray
            The current decision vector, shape ``(n_params,)``.
        """
        if iteration > 0 and iteration % self.every == 0:
            self.save(iteration, w)

    def save(self, iteration: int, w: np.ndarray) -> None:
        """Save w now if it is finite (every K iterations, and a failed solve's returned w).

        Parameters
        ----------
        iteration : int
            Iterations done.
        w : ndarray
            The decision vector to resume from.
        """
        if np.all(np.isfinite(w)):
            save_checkpoint(self.path, w, iteration, self.fingerprint)
