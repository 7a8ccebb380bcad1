"""The one output type of every solver: exact save/load with its data, predictions, export."""

from __future__ import annotations

import io
import json
import logging
import os
import secrets
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ._errors import SpecError, check_bool, is_number, spec_error
from ._files import as_path, check_destination, npz_arrays
from ._toml import plain_document

if TYPE_CHECKING:
    from .problems.datasets import Dataset
    from .problems.training import TrainingProblem

STATUSES = ("converged", "max_iter", "failed", "diverged")

#: what :meth:`Result.load` expects, for its error messages
_WHAT = "a result written by Result.save (e.g. result.npz of `control-dl solve`)"


logger = logging.getLogger("control_dl")


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


def temporary_sibling(path: str | Path, suffix: str = ".tmp") -> Path:
    """A new empty file next to ``path``, to be written and then renamed over it (an atomic write).

    Created like any new file, with mode 0o666 less the umask (``tempfile.mkstemp`` would give
    0o600: results written for others on a shared folder were unreadable to them).

    Parameters
    ----------
    path : str or Path
        The destination; its folder is created if missing.
    suffix : str
        End of the temporary file's name (a writer may pick its format by it, e.g. ``".gif"``).

    Returns
    -------
    Path
        The temporary file, named ``.<name>.<random><suffix>`` in the destination's folder.

    Raises
    ------
    SpecError
        The folder cannot be created or written (read-only, virtual like ``/proc``, a file in the way).
    """
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:  # a file on the way, no permission
        raise spec_error("path", str(path), f"cannot be written there: {exc.strerror or exc}") from None
    while True:
        tmp = path.parent / f".{path.name}.{secrets.token_hex(6)}{suffix}"
        try:
            os.close(os.open(tmp, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o666))
        except FileExistsError:  # 48 random bits taken: draw again
            continue
        except OSError as exc:  # a read-only or virtual folder (/proc), a full disk
            raise spec_error("path", str(path), f"cannot be written there: {exc.strerror or exc}") from None
        return tmp


def atomic_write_bytes(path: str | Path, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically (:func:`temporary_sibling`, then rename).

    Parameters
    ----------
    path : str or Path
        Destination.
    data : bytes
        Content.
    """
    tmp = temporary_sibling(path)
    try:
        with open(tmp, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
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
    engine : dict
        The engine that evaluated J (:mod:`control_dl.engines`): ``name`` and, where they apply,
        ``device``, ``compile`` and ``auto`` (timings, skipped engines and the reason of the choice).
    problem : TrainingProblem or None
        The problem (not saved; rebuilt from ``problem_spec`` on load when possible).
    data_source : dict or None
        Where the data of a loaded result came from (the dataset's ``source`` with the data file's
        SHA-256, or ``{"dataset": "arrays", ...}``); a result from a solve reads it off ``problem``.
    fingerprint : dict or None
        What a loaded result was solved on: the
        :func:`~control_dl.problems.training.problem_fingerprint` its file records (network, cost,
        data; None for a file written before it was recorded); a result from a solve reads it off
        ``problem`` when saved.

    Raises
    ------
    SpecError
        ``status`` is not one of "converged", "max_iter", "failed", "diverged".
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
    engine: dict[str, Any] = field(default_factory=dict)
    problem: TrainingProblem | None = field(default=None, repr=False)
    data_source: dict[str, Any] | None = field(default=None, repr=False)
    fingerprint: dict[str, Any] | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        if self.status not in STATUSES:
            raise spec_error("status", self.status, f"must be one of {list(STATUSES)}")
        w = np.asarray(self.w)
        if w.ndim != 1 or w.dtype.kind not in "iuf":
            raise spec_error("w", f"{w.dtype} {w.shape}", "must be a 1-D array of real numbers (the decision vector)")
        self.w = w.astype(np.float64, copy=False)
        for name in ("objective", "loss"):
            if not is_number(getattr(self, name)):
                raise spec_error(name, getattr(self, name), "must be a number (NaN for a solve that left none)")

    @property
    def success(self) -> bool:
        """True when the solver reports convergence."""
        return self.status == "converged"

    def _need_problem(self) -> TrainingProblem:
        """The attached problem, or a SpecError saying why there is none and how to attach one.

        States, θ(t), predictions and exports need the problem; a loaded Result lacks it when the
        problem had no spec (built in Python), when its data were arrays saved with ``data=False``,
        or when it was loaded with ``rebuild=False``.
        """
        if self.problem is not None:
            return self.problem
        attach = "pass the TrainingProblem it was solved on: Result.load(path, problem=problem)"
        source = self.data_source or {}
        if self.problem_spec is None:
            why = f"the problem was built in Python and has no spec to rebuild it from; {attach}"
        elif source.get("dataset") == "arrays" and not source.get("stored", True):
            why = (
                f"its data were arrays and the result was saved with data=False, so they are not in the file; "
                f"{attach}, or save the result with data=True (the default)"
            )
        else:
            why = f"it was not rebuilt (loaded with rebuild=False?): load it with Result.load(path), or {attach}"
        raise spec_error("problem", None, f"this Result has no problem attached: {why}")

    def _usable_w(self) -> np.ndarray:
        """w, or a SpecError naming the status when a failed or diverged solve left no finite w."""
        if not np.all(np.isfinite(self.w)):
            why = f"the solve ended {self.status!r} with NaN/inf in w, so there is no network to evaluate"
            raise spec_error("result", self.status, f"{why} ({self.message})" if self.message else why)
        return self.w

    @property
    def states(self) -> np.ndarray:
        """Training-data states x_0..x_N, shape ``(N + 1, d, S)``."""
        return self._need_problem().forward(self._usable_w())

    @property
    def times(self) -> np.ndarray:
        """Grid t_0..t_N."""
        return self._need_problem().times

    def theta(self, t: Any) -> np.ndarray:
        """θ(t) as flat vectors, shape ``(len(t), p)``.

        Parameters
        ----------
        t : array_like
            Times in [0, T], a number or shape ``(M,)``.

        Returns
        -------
        ndarray
            θ at each time, shape ``(M, p)`` (``(1, p)`` for a number); p is the size of θ.
        """
        return self._need_problem().theta(self._usable_w(), t)

    def predict(self, X: Any, layout: str = "features") -> np.ndarray:
        """Readout λ2(x(T)) for raw inputs X (the network's output: logits for classification losses).

        When the problem's data were standardised, (X − mean) / scale (fitted on the training split)
        is applied first, so X is in the units of the data file; model-space inputs such as
        ``problem.data.x_test`` go through ``problem.predict(result.w, x)`` instead.

        Parameters
        ----------
        X : array_like
            Inputs: ``n_in × S`` with ``layout="features"`` (one column per sample, the package's
            convention), ``S × n_in`` with ``layout="samples"`` (numpy / scikit-learn / torch's).
        layout : {"features", "samples"}
            Layout of X and of the returned predictions.

        Returns
        -------
        ndarray
            ``n_out × S`` predictions (``S × n_out`` for ``layout="samples"``).

        Raises
        ------
        SpecError
            If X does not fit ``layout`` (the message names the expected shape and says when the other
            layout fits), or no problem is attached (the message says why and how to attach one, e.g.
            ``Result.load(path, problem=problem)`` for a result saved with ``data=False``).
        """
        from .problems.datasets import as_features

        problem = self._need_problem()
        x = as_features(X, problem.data.n_in, layout)
        yhat = problem.predict(self._usable_w(), problem.data.transform(x))
        return yhat if layout == "features" else yhat.T

    def to_torch(self) -> Any:
        """The trained network as a ``torch.nn.Module`` (float64): see :func:`control_dl.export.to_torch`.

        Returns
        -------
        torch.nn.Module
            ``forward(X)`` maps raw sample-major inputs ``S × n_in`` to ``S × n_out`` predictions,
            equal to ``predict(X, layout="samples")``.

        Raises
        ------
        SpecError
            If no problem is attached (as :meth:`predict`) or torch is missing.
        """
        from .export import to_torch

        return to_torch(self._need_problem(), self._usable_w())

    def to_casadi(self) -> Any:
        """The input-output map Φ(x) = λ2(x(T)) as a ``casadi.Function``: see :func:`control_dl.export.to_casadi`.

        Returns
        -------
        casadi.Function
            ``phi: x (n_in × 1, raw units) -> y (n_out × 1)``, exact derivatives by CasADi's AD.

        Raises
        ------
        SpecError
            If no problem is attached (as :meth:`predict`).
        """
        from .export import to_casadi

        return to_casadi(self._need_problem(), self._usable_w())

    def to_onnx(self, path: str | Path) -> Path:
        """Write the trained network as an ONNX model: see :func:`control_dl.export.to_onnx`.

        Parameters
        ----------
        path : str or Path
            Destination ``.onnx`` file (written atomically).

        Returns
        -------
        Path
            The file; input ``X`` (``S × n_in``, float64, raw units), output ``y`` (``S × n_out``).

        Raises
        ------
        SpecError
            If no problem is attached (as :meth:`predict`), ``path`` cannot be written (e.g. it is a
            directory), or the optional extras are missing.
        """
        from .export import to_onnx

        return to_onnx(self._need_problem(), self._usable_w(), path)

    def export(self, fmt: str, path: str | Path) -> Path:
        """Write the trained network to a file another program loads without control_dl.

        What ``control-dl export`` does: see :func:`control_dl.export.write_export` for the formats
        (``torch``: a ``torch.export`` program; ``casadi``: ``casadi.Function.load``; ``onnx``:
        :meth:`to_onnx`).

        Parameters
        ----------
        fmt : {"torch", "casadi", "onnx"}
            Format.
        path : str or Path
            Destination (written atomically).

        Returns
        -------
        Path
            The file.

        Raises
        ------
        SpecError
            If no problem is attached (as :meth:`predict`), w is not finite (a failed solve), on an
            unknown format, a ``path`` that cannot be written, or a missing optional extra.
        """
        from .export import write_export

        return write_export(self._need_problem(), self._usable_w(), fmt, path)

    def summary(self) -> str:
        """One line: solver, status, loss, accuracies, time, constraints, and the engine (with ``auto``'s reason).

        A constrained problem adds its constraints and the violation max(0, h·Lip − c, |θ| − M) of
        the returned w (:func:`control_dl.solvers.base.constraint_violation`), so a certified run
        reads differently from an unconstrained one. A run that ended neither ``converged`` nor
        ``max_iter`` ends the line with its ``message`` (why it failed, diverged or is infeasible).

        Returns
        -------
        str
            Human-readable summary.
        """
        acc = "" if self.accuracy is None else f" train_acc={self.accuracy:.3f} test_acc={self.test_accuracy:.3f}"
        engine = f" engine={self.engine['name']}" if self.engine.get("name") else ""
        local = self.engine.get("local_info") or {}  # engines.Dask: the engine each shard runs
        if local.get("name"):
            transport = f", {self.engine['transport']} calls" if self.engine.get("transport") else ""
            engine += f" (local {local['name']}{transport})"
        for chooser in (self.engine, local):
            if "auto" in chooser:
                engine += f" (auto: {chooser['auto'].get('reason', '')})"
        reason = "" if self.status in ("converged", "max_iter") or not self.message else f" | {self.message}"
        return (
            f"{self.solver}: {self.status} objective={self.objective:.4g} loss={self.loss:.4g}{acc} "
            f"iters={self.iterations} time={self.wall_time:.2f}s{self._constraint_summary()}{engine}{reason}"
        )

    def _constraint_summary(self) -> str:
        """`` constraints: lipschitz<=c, |theta|<=M, violation=v`` for a constrained problem, else ``""``."""
        constraints = self.problem.constraints if self.problem is not None else None
        if constraints is None or (constraints.lipschitz is None and constraints.theta_max is None):
            return ""
        parts = []
        if constraints.lipschitz is not None:
            parts.append(f"lipschitz<={constraints.lipschitz:g} ({constraints.lipschitz_norm})")
        if constraints.theta_max is not None:
            parts.append(f"|theta|<={constraints.theta_max:g}")
        if self.w.size == self.problem.n_params and np.all(np.isfinite(self.w)):
            from .solvers.base import constraint_violation  # lazily: solvers import result

            # of the returned w: the certified route restores feasibility after its last iterate
            parts.append(f"violation={constraint_violation(self.problem, self.w):.2g}")
        return " constraints: " + ", ".join(parts)

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
            "engine": self.engine,
        }

    def _data_record(self, store_data: bool) -> tuple[dict[str, Any] | None, dict[str, np.ndarray]]:
        """The data source to record, and the arrays to store (data given as arrays only)."""
        if self.problem is None:
            return self.data_source, {}
        data = self.problem.data
        if data.source is not None:
            return dict(data.source), {}
        record = {"dataset": "arrays", "stored": store_data, "task": data.task, "name": data.name}
        record["class_names"] = list(data.class_names) if data.class_names is not None else None
        if not store_data:
            return record, {}
        arrays = {f"data_{k}": getattr(data, k) for k in ("x_train", "y_train", "x_test", "y_test")}
        if data.mean is not None:
            arrays.update(data_mean=data.mean, data_scale=data.scale)
        return record, arrays

    def save(self, path: str | Path, data: bool = True) -> Path:
        """Write the result to one ``.npz`` file (arrays + JSON metadata), atomically.

        Besides w, the history and the snapshots, the file records where the data came from: a
        generator and its arguments, a scikit-learn set, or a data file's absolute path and SHA-256;
        data given as arrays in Python are stored in the file itself (unless ``data=False``). The
        problem's spec is the one it was loaded from, or :func:`control_dl.problems.spec.describe`
        of a problem built in Python; its
        :func:`~control_dl.problems.training.problem_fingerprint` is recorded for every problem,
        so :meth:`load` refuses a problem with another network.

        Parameters
        ----------
        path : str or Path
            Destination; ``.npz`` is appended if missing (:meth:`load` accepts the same path).
        data : bool
            Store data given as arrays (ignored for data a spec can rebuild).

        Returns
        -------
        Path
            The file written.

        Raises
        ------
        SpecError
            If ``path`` cannot be written: it is a directory, or under a file
            (:func:`~control_dl._files.check_destination`).
        """
        from .problems.spec import describe
        from .problems.training import problem_fingerprint

        check_bool("data", data)
        if as_path(path).is_dir():
            raise spec_error("path", str(path), "is a directory; give the file to write, e.g. <folder>/result.npz")
        path = check_destination(result_path(path))
        snaps = np.array([s[2] for s in self.snapshots]) if self.snapshots else np.zeros((0, self.w.size))
        spec = self.problem_spec
        if spec is None and self.problem is not None:
            spec = describe(self.problem)
        source, arrays = self._data_record(data)
        fingerprint = problem_fingerprint(self.problem) if self.problem is not None else self.fingerprint
        meta = {**self._metadata(), "problem_spec": spec, "data_source": source, "fingerprint": fingerprint}
        buffer = io.BytesIO()
        np.savez(buffer, w=self.w, snapshots=snaps, metadata=np.array(json.dumps(plain_document(meta))), **arrays)
        atomic_write_bytes(path, buffer.getvalue())
        return path

    @classmethod
    def load(cls, path: str | Path, problem: TrainingProblem | None = None, rebuild: bool = True) -> Result:
        """Read a result written by :meth:`save`, and rebuild its problem.

        Parameters
        ----------
        path : str or Path
            The file, or the path given to :meth:`save` (``.npz`` appended as there).
        problem : TrainingProblem, optional
            Attach this problem instead of rebuilding one.
        rebuild : bool
            Rebuild the problem from the stored spec and data source (default); False loads the
            result alone (``problem`` None), e.g. when its data file is gone.

        Returns
        -------
        Result
            The result, arrays bit-identical to the saved ones; the rebuilt problem's data are
            bit-identical to the saved problem's.

        Raises
        ------
        SpecError
            When there is no result at ``path`` (the file is missing, not an ``.npz`` archive,
            damaged, or an archive that Result.save did not write: the message says which), when
            the problem cannot be rebuilt: its data file is missing or changed since the save
            (the message names the file and how to load anyway), or when ``problem`` (or the
            rebuilt one) has another network than the one the result was solved on: what the
            file's :func:`~control_dl.problems.training.problem_fingerprint` calls ``network``
            (vector field and activation, d, lift, control and N, T, integrator, feed-forward
            widths, n_in, the standardisation of the inputs, n_out and the readout), for a problem
            from a spec or built in Python alike; the message names the entry that differs. A file
            written before fingerprints were recorded is checked on the network model its spec
            describes (:func:`~control_dl.problems.training.check_same_network`).
        """
        path = as_path(path)
        check_bool("rebuild", rebuild)
        if problem is not None:
            from .problems.training import check_problem

            check_problem(problem)
        if not path.is_file() and result_path(path).is_file():
            path = result_path(path)
        elif not path.exists() and path != result_path(path):
            raise spec_error("path", str(path), f"no such file, nor {result_path(path)}; expected {_WHAT}")
        result, data = cls._from_arrays(path, npz_arrays(path, "path", _WHAT))
        if problem is None and rebuild and result.problem_spec:
            problem = _rebuild_problem(path, result.problem_spec, result.data_source, data)
        elif problem is None and rebuild:
            logger.warning(
                "%s: loaded without its problem (it was built in Python, e.g. with a user-defined field or "
                "dynamics, and has no spec): pass problem= to Result.load for states, predictions and figures",
                path,
            )
        if problem is not None and result.w.size != problem.n_params:
            raise spec_error(
                "problem",
                problem.data.name,
                f"has n_params={problem.n_params} but the saved w has {result.w.size} entries: "
                "not the problem this result was solved on",
            )
        if problem is not None:
            _check_solved_on(result, problem)
        result.problem = problem
        return result

    @classmethod
    def _from_arrays(cls, path: Path, stored: dict[str, np.ndarray]) -> tuple[Result, dict[str, np.ndarray]]:
        """The Result (no problem yet) and the stored data arrays held by a file :meth:`save` wrote."""
        missing = [key for key in ("metadata", "w", "snapshots") if key not in stored]
        if missing:
            hint = "written by Result.save?"
            if {"w", "iteration", "fingerprint"} <= set(stored):
                hint = "it is a solve checkpoint: resume with solve(..., w0=load_checkpoint(path, problem))"
            raise spec_error(
                "path", str(path), f"not a control_dl result: arrays {sorted(stored)}, no {missing} ({hint})"
            )
        try:
            meta = json.loads(str(stored["metadata"]))
            if not isinstance(meta, dict):
                raise TypeError(f"metadata is a JSON {type(meta).__name__}, not an object")
            w, snaps = stored["w"], stored["snapshots"]
            if w.ndim != 1 or w.dtype.kind != "f" or snaps.ndim != 2:
                raise ValueError(
                    f"w {w.dtype} {w.shape} and snapshots {snaps.shape} are not a decision vector and its copies"
                )
            snapshots = [(i, t, snaps[k]) for k, (i, t) in enumerate(meta.pop("snapshot_info"))]
            meta.setdefault("data_source", None)
            meta.setdefault("fingerprint", None)
            result = cls(w=w, snapshots=snapshots, **meta)
        except (ValueError, TypeError, KeyError, IndexError) as exc:
            why = f"not a control_dl result: its metadata do not fit Result ({type(exc).__name__}: {exc})"
            raise spec_error("path", str(path), why) from None
        return result, {k[5:]: v for k, v in stored.items() if k.startswith("data_")}


def _check_solved_on(result: Result, problem: TrainingProblem) -> None:
    """SpecError unless ``problem`` has the network ``result`` was solved on (its recorded fingerprint)."""
    from .problems.training import (
        check_same_network,
        describe_difference,
        fingerprint_difference,
        network_fingerprint,
    )

    saved = (result.fingerprint or {}).get("network")
    if not isinstance(saved, dict):  # a file from before fingerprints: its spec's model
        check_same_network(problem, result.problem_spec, "problem")
        return
    difference = fingerprint_difference(saved, network_fingerprint(problem), "network")
    if difference is not None:
        where = describe_difference(difference, "in the result", "in this problem")
        raise spec_error(
            "problem", problem.data.name, f"has another network than the one this result was solved on: {where}"
        )


def result_path(path: str | Path) -> Path:
    """The file :meth:`Result.save` writes for ``path``: ``.npz`` appended when missing.

    Parameters
    ----------
    path : str or Path
        A path as given to :meth:`Result.save`.

    Returns
    -------
    Path
        The ``.npz`` path.
    """
    path = Path(path)
    return path if path.suffix == ".npz" else path.with_name(path.name + ".npz")


def _rebuild_problem(
    path: Path, spec: dict[str, Any], source: dict[str, Any] | None, arrays: dict[str, np.ndarray]
) -> TrainingProblem | None:
    """The saved problem from its spec: stored arrays, or a data file checked against its SHA-256."""
    from .problems.datafiles import file_sha256
    from .problems.spec import build_problem

    kind = (source or {}).get("dataset")
    if kind == "arrays":
        return build_problem(spec, data=_stored_dataset(source, arrays)) if arrays else None
    if kind == "file":
        file = Path(source["path"])
        hint = "restore it, pass problem=, or load with rebuild=False"
        if not file.is_file():
            raise SpecError(f"{path}: its data file {file} is missing; {hint}")
        digest = file_sha256(file)
        if digest != source.get("sha256"):
            raise SpecError(
                f"{path}: its data file {file} changed since the result was saved "
                f"(SHA-256 {str(source.get('sha256'))[:12]}…, now {digest[:12]}…); {hint}"
            )
    return build_problem(spec)


def _stored_dataset(source: dict[str, Any], arrays: dict[str, np.ndarray]) -> Dataset:
    from .problems.datasets import Dataset

    names = source.get("class_names")
    return Dataset(
        arrays["x_train"],
        arrays["y_train"],
        arrays["x_test"],
        arrays["y_test"],
        task=source["task"],
        name=source["name"],
        class_names=tuple(names) if names is not None else None,
        mean=arrays.get("mean"),
        scale=arrays.get("scale"),
    )
