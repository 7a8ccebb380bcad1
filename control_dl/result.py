"""The one output type of every solver, with exact save/load."""

from __future__ import annotations

import io
import json
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from .problems.training import TrainingProblem

STATUSES = ("converged", "max_iter", "failed", "diverged")


def package_versions() -> dict[str, str]:
    """Versions of the packages a result depends on (torch only if already imported).

    Returns
    -------
    dict
        Package name → version string.
    """
    import sys

    import casadi
    import scipy

    from . import __version__

    versions = {
        "control_dl": __version__,
        "numpy": np.__version__,
        "scipy": scipy.__version__,
        "casadi": casadi.__version__,
    }
    versions["python"] = sys.version.split()[0]
    torch = sys.modules.get("torch")
    if torch is not None:
        versions["torch"] = torch.__version__
    return versions


def atomic_write_bytes(path: str | Path, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically (temporary file in the same folder, then rename).

    Parameters
    ----------
    path : str or Path
        Destination.
    data : bytes
        Content.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


@dataclass(eq=False)
class Result:
    """Outcome of :func:`control_dl.solve`.

    Attributes
    ----------
    status : {"converged", "max_iter", "failed", "diverged"}
        How the solve ended; ``message`` says why.
    w : ndarray
        Final decision vector (the best iterate the solver returned).
    objective, loss : float
        J(w) and the mean terminal training loss.
    accuracy, test_accuracy : float or None
        Classification accuracy on train and test data (None for regression).
    test_loss : float
        Mean loss on the test data.
    wall_time : float
        Seconds spent in the solver.
    iterations : int
        Iterations taken.
    history : list of dict
        One dict per iteration: ``iter``, ``time``, ``objective``, ``loss``, and where available
        ``accuracy``, ``grad_norm``, ``pmp_residual``.
    snapshots : list of tuple
        ``(iter, time, w)`` every ``record_every`` iterations (training time τ).
    solver : str
        Solver name; ``solver_spec`` and ``problem_spec`` hold their specifications.
    versions : dict
        Package versions at solve time.
    seed : int or None
        Seed of the initial guess.
    problem : TrainingProblem or None
        The problem (not saved; rebuilt from ``problem_spec`` on load when possible).
    """

    status: str
    message: str
    w: np.ndarray
    objective: float
    loss: float
    accuracy: float | None = None
    test_accuracy: float | None = None
    test_loss: float | None = None
    wall_time: float = 0.0
    iterations: int = 0
    history: list[dict[str, Any]] = field(default_factory=list)
    snapshots: list[tuple[int, float, np.ndarray]] = field(default_factory=list)
    solver: str = ""
    solver_spec: dict[str, Any] = field(default_factory=dict)
    problem_spec: dict[str, Any] | None = None
    versions: dict[str, str] = field(default_factory=dict)
    seed: int | None = None
    problem: TrainingProblem | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        if self.status not in STATUSES:
            raise ValueError(f"status={self.status!r} must be one of {STATUSES}")

    @property
    def success(self) -> bool:
        """True when the solver reports convergence."""
        return self.status == "converged"

    def _need_problem(self) -> TrainingProblem:
        if self.problem is None:
            raise ValueError("this Result has no problem attached; pass problem= to Result.load")
        return self.problem

    @property
    def states(self) -> np.ndarray:
        """Training-data states x_0..x_N, shape ``(N + 1, d, S)``."""
        return self._need_problem().forward(self.w)

    @property
    def times(self) -> np.ndarray:
        """Grid t_0..t_N."""
        return self._need_problem().times

    def theta(self, t: Any) -> np.ndarray:
        """θ(t) as flat vectors, shape ``(len(t), p)``.

        Parameters
        ----------
        t : array_like
            Times in [0, T].

        Returns
        -------
        ndarray
            θ at each time.
        """
        return self._need_problem().theta(self.w, t)

    def predict(self, X: np.ndarray) -> np.ndarray:
        """Readout λ2(x(T)) for inputs X (``n_in × S``).

        Parameters
        ----------
        X : ndarray
            Inputs.

        Returns
        -------
        ndarray
            ``n_out × S`` predictions.
        """
        return self._need_problem().predict(self.w, X)

    def summary(self) -> str:
        """One line: solver, status, loss, accuracies, time.

        Returns
        -------
        str
            Human-readable summary.
        """
        acc = "" if self.accuracy is None else f" train_acc={self.accuracy:.3f} test_acc={self.test_accuracy:.3f}"
        return (
            f"{self.solver}: {self.status} objective={self.objective:.4g} loss={self.loss:.4g}{acc} "
            f"iters={self.iterations} time={self.wall_time:.2f}s"
        )

    # ---------------------------------------------------------------------------- persistence
    def _metadata(self) -> dict[str, Any]:
        return {
            "status": self.status,
            "message": self.message,
            "objective": self.objective,
            "loss": self.loss,
            "accuracy": self.accuracy,
            "test_accuracy": self.test_accuracy,
            "test_loss": self.test_loss,
            "wall_time": self.wall_time,
            "iterations": self.iterations,
            "history": self.history,
            "snapshot_info": [[int(i), float(t)] for i, t, _ in self.snapshots],
            "solver": self.solver,
            "solver_spec": self.solver_spec,
            "problem_spec": self.problem_spec,
            "versions": self.versions,
            "seed": self.seed,
        }

    def save(self, path: str | Path) -> Path:
        """Write the result to one ``.npz`` file (arrays + JSON metadata), atomically.

        Parameters
        ----------
        path : str or Path
            Destination; ``.npz`` is appended if missing.

        Returns
        -------
        Path
            The file written.
        """
        path = Path(path)
        if path.suffix != ".npz":
            path = path.with_name(path.name + ".npz")
        snaps = np.array([s[2] for s in self.snapshots]) if self.snapshots else np.zeros((0, self.w.size))
        buffer = io.BytesIO()
        np.savez(buffer, w=self.w, snapshots=snaps, metadata=np.array(json.dumps(self._metadata())))
        atomic_write_bytes(path, buffer.getvalue())
        return path

    @classmethod
    def load(cls, path: str | Path, problem: TrainingProblem | None = None) -> Result:
        """Read a result written by :meth:`save`.

        Parameters
        ----------
        path : str or Path
            The ``.npz`` file.
        problem : TrainingProblem, optional
            Attach this problem; by default it is rebuilt from the stored spec when there is one.

        Returns
        -------
        Result
            The result, arrays bit-identical to the saved ones.
        """
        with np.load(path, allow_pickle=False) as data:
            meta = json.loads(str(data["metadata"]))
            w = data["w"].copy()
            snaps = data["snapshots"].copy()
        info = meta.pop("snapshot_info")
        snapshots = [(i, t, snaps[k]) for k, (i, t) in enumerate(info)]
        if problem is None and meta.get("problem_spec"):
            from .problems.spec import build_problem

            problem = build_problem(meta["problem_spec"])
        return cls(w=w, snapshots=snapshots, problem=problem, **meta)
