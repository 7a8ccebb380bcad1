"""Checkpoints of long solves: the current w every K iterations, written atomically.

A checkpoint is a small ``.npz`` file: w, the iteration that reached it, and the
:func:`~control_dl.problems.training.problem_fingerprint` of the problem (network, cost, data). Any solver
gets it through :class:`~control_dl.solvers.base.Recorder` (``checkpoint=path,
checkpoint_every=K``); a solve resumes with ``solve(problem, solver, w0=load_checkpoint(path, problem))``
(or ``control-dl solve ... --resume``). Resuming restarts the solver's own state (IPOPT's
multipliers, L-BFGS memory, Adam moments) from w alone.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from .._errors import is_integer, spec_error
from .._files import check_destination, npz_arrays
from ..problems.training import describe_difference, fingerprint_difference, problem_fingerprint
from ..result import atomic_write_bytes

if TYPE_CHECKING:
    from ..problems.training import TrainingProblem


def check_checkpoint(checkpoint: object, checkpoint_every: object) -> str | None:
    """Validate the two checkpoint options of a solver; return the file as a string.

    Parameters
    ----------
    checkpoint : str, Path or None
        Checkpoint file (any ``os.PathLike``, as :meth:`Result.save <control_dl.Result.save>` takes).
    checkpoint_every : int
        Interval K ≥ 0 (0: never); K > 0 needs a file, and a file needs K > 0.

    Returns
    -------
    str or None
        ``checkpoint`` as a string (what the solver stores: its options are saved as JSON).

    Raises
    ------
    SpecError
        ``checkpoint_every`` is not an integer >= 0, ``checkpoint`` is not a non-empty path, or one
        is given without the other (a file with K = 0 would never be written).
    """
    if not is_integer(checkpoint_every) or checkpoint_every < 0:
        raise spec_error("checkpoint_every", checkpoint_every, "must be an integer >= 0")
    if isinstance(checkpoint, os.PathLike):
        checkpoint = os.fspath(checkpoint)
    if checkpoint is not None and (not isinstance(checkpoint, str) or not checkpoint):
        raise spec_error("checkpoint", checkpoint, "must be a file path (a string or pathlib.Path)")
    if checkpoint_every > 0 and checkpoint is None:
        raise spec_error("checkpoint_every", checkpoint_every, "needs checkpoint = 'path/to/file.npz'")
    if checkpoint is not None and checkpoint_every == 0:
        raise spec_error(
            "checkpoint",
            checkpoint,
            "needs checkpoint_every = K >= 1 (write w every K iterations); none would be written",
        )
    return checkpoint


def save_checkpoint(path: str | Path, w: np.ndarray, iteration: int, fingerprint: dict[str, Any]) -> None:
    """Write a checkpoint atomically (a crash leaves the previous checkpoint intact).

    Parameters
    ----------
    path : str or Path
        Destination ``.npz``.
    w : ndarray
        Current decision vector.
    iteration : int
        Iteration at which w was reached.
    fingerprint : dict
        :func:`~control_dl.problems.training.problem_fingerprint` of the problem (stored as JSON).
    """
    buffer = io.BytesIO()
    text = np.array(json.dumps(fingerprint))
    np.savez(buffer, w=np.asarray(w, dtype=float), iteration=int(iteration), fingerprint=text)
    atomic_write_bytes(path, buffer.getvalue())


def load_checkpoint(path: str | Path, problem: TrainingProblem) -> np.ndarray:
    """Read the w of a checkpoint written for ``problem``.

    The checkpoint records the :func:`~control_dl.problems.training.problem_fingerprint` of the
    problem it was written for (network, cost and data); any difference refuses it, whether the
    problem came from a spec or was built in Python.

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
        written for another problem (the message names the first entry that differs, e.g.
        ``cost.cost.loss``, ``data.x_train`` or ``network.model.field.activation``).
    """
    data = _read(path)
    stored = str(data["fingerprint"])
    try:
        saved = json.loads(stored)
    except ValueError:  # an older checkpoint: a 16-hex hash of the spec (only n_params without one)
        saved = None
    if not isinstance(saved, dict):
        if problem.spec is None or stored != _spec_hash(problem):
            why = "was written for a different problem, or by an older control_dl that did not record the problem"
            raise spec_error("checkpoint", str(path), why)
    else:
        difference = fingerprint_difference(saved, problem_fingerprint(problem))
        if difference is not None:
            where = describe_difference(difference, "in the checkpoint", "in this problem")
            raise spec_error("checkpoint", str(path), f"was written for a different problem: {where}")
    if data["w"].shape != (problem.n_params,):
        raise spec_error("checkpoint", str(path), f"was written for a different problem (w {data['w'].shape})")
    return data["w"]


def _spec_hash(problem: TrainingProblem) -> str:
    """The fingerprint older checkpoints hold: 16 hex digits of the spec and n_params."""
    text = json.dumps({"spec": problem.spec, "n_params": problem.n_params}, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def checkpoint_iteration(path: str | Path) -> int:
    """The iteration stored in a checkpoint: the one at which the run reached its w.

    Parameters
    ----------
    path : str or Path
        Checkpoint file.

    Returns
    -------
    int
        Iteration of the stored w (for a failed solve's returned best iterate, the iteration it
        was reached at, not the last one run).

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


def _digest(w: np.ndarray) -> bytes:
    """16 bytes that tell decision vectors apart (for the iteration of a w saved after the run)."""
    return hashlib.blake2b(np.ascontiguousarray(w, dtype=float).tobytes(), digest_size=16).digest()


class Checkpointer:
    """Saves w every ``every`` iterations (called by the Recorder), and a failed solve's returned w.

    Each checkpoint holds the iteration at which the run reached its w: a failed solve returns
    its best iterate, maybe from long before its last iteration, and ``--resume`` says which.

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
        #: digest of every w logged → the first iteration that reached it
        self.reached: dict[bytes, int] = {}

    def __call__(self, iteration: int, w: np.ndarray) -> None:
        """Note w's iteration; write it if ``iteration`` is a positive multiple of K (called every iteration).

        Parameters
        ----------
        iteration : int
            Iterations done.
        w : ndarray
            The current decision vector, shape ``(n_params,)``.
        """
        self.reached.setdefault(_digest(w), int(iteration))
        if iteration > 0 and iteration % self.every == 0:
            self._write(iteration, w)

    def save(self, iteration: int, w: np.ndarray) -> None:
        """Save w now if it is finite (a failed solve's returned w), labelled with the iteration it was reached at.

        Parameters
        ----------
        iteration : int
            Iterations done: the label of a w the run never logged (e.g. restored after its last
            iteration); a logged w keeps the first iteration that reached it.
        w : ndarray
            The decision vector to resume from.
        """
        self._write(self.reached.get(_digest(w), iteration), w)

    def _write(self, iteration: int, w: np.ndarray) -> None:
        if np.all(np.isfinite(w)):
            save_checkpoint(self.path, w, iteration, self.fingerprint)
