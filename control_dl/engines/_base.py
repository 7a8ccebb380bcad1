r"""The engine seam: HOW J and its derivatives are evaluated, separate from WHAT is solved.

An *engine spec* (a small frozen dataclass of options: :class:`~control_dl.engines.Casadi`,
:class:`~control_dl.engines.Torch`, ``"auto"``, :class:`~control_dl.engines.Dask`) is bound to a
problem and a batch of samples, giving an :class:`Engine`. Every single-shooting NLP driver and
MSA/E-MSA talk to the model only through this interface, so each runs on every engine.

Conventions (symbols as in docs/math/ocp.md). The batch is x ∈ R^{n_in × S} (one column per sample) with
encoded targets y ∈ R^{n_out × S}. The engine's objective is

    J_batch(w) = (1/n) Σ_{i ∈ batch} [ ℓ(λ2(x_{N,i}), y_i) + h Σ_{k=1}^{N} r(x_{k,i}) ] + [R(θ)],

with n = ``normaliser`` (default: the batch size S) and R included when ``regulariser`` is true.
A data-parallel engine binds one local engine per shard with ``normaliser`` = the total S and the
regulariser on one shard only, so the shards' values and gradients simply add up.

Costates follow the minimisation-free sign of Pontryagin's principle used by MSA:
p_k = −∂J_batch/∂x_k (a ``d_k × S`` matrix), so p_N = −(1/n) ∇Φ(x_N) − (h/n) ∇r(x_N) and
p_k = J_{F,x}(x_k, Θ_k)ᵀ p_{k+1} − (h/n) ∇r(x_k) (no r at k = 0); q_k = J_{F,x}(x_k, Θ_k)ᵀ p_{k+1}.
Θ_k is θ at the integrator nodes of step k, stacked (``problem.stage_thetas``), x_{k+1} = F_k(x_k, Θ_k).

Inputs are checked here, once for every engine (:class:`Engine`): the batch, ``normaliser`` and
``regulariser`` when an engine is bound (:func:`check_batch`), and w, v, ``gradient``, ρ and
``hessian`` on every call of an engine method (:func:`as_vector`; the subclasses' methods are
wrapped by ``Engine.__init_subclass__``, so an engine of your own gets the same checks). A bad
value is one :class:`~control_dl.SpecError` naming it, not a CasADi or torch traceback, or a J
computed from mismatched columns.
"""

from __future__ import annotations

import functools
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .._errors import check_bool, check_positive_float, spec_error
from ..problems.costs import predict_labels

#: numpy dtype kinds of real numbers (bools and complex numbers are refused)
_REAL_KINDS = "iuf"


def _real_array(field: str, value: Any, what: str) -> np.ndarray:
    """``value`` as a float64 array, or a SpecError naming ``field`` (strings, objects, complex, bools)."""
    try:
        array = np.asarray(value)
    except (TypeError, ValueError, RuntimeError) as exc:  # ragged lists; a torch tensor that requires grad
        raise spec_error(field, type(value).__name__, f"must be {what} ({exc})") from None
    if array.dtype.kind not in _REAL_KINDS:
        raise spec_error(field, f"{array.dtype} array", f"must be {what}")
    return array.astype(np.float64, copy=False)


def as_vector(field: str, value: Any, size: int) -> np.ndarray:
    """``value`` as a 1-D float64 array of ``size`` entries, or a SpecError naming ``field``.

    Anything numpy turns into such an array is accepted: a numpy array of any real dtype, a list,
    a torch tensor on the cpu (one that requires grad or lives on a GPU is refused: ``.detach().cpu()``
    it first). Non-finite entries are kept: an engine answers NaN there, and a solver that
    diverged says so in its status.

    Parameters
    ----------
    field : str
        The argument's name (``w``, ``v``).
    value : array_like
        Candidate vector.
    size : int
        Required length (``problem.n_params``).

    Returns
    -------
    ndarray
        The vector (``value`` itself when it is already a float64 vector of that length).

    Raises
    ------
    SpecError
        Not an array of real numbers, or not of shape ``(size,)``.
    """
    if isinstance(value, np.ndarray) and value.dtype == np.float64 and value.shape == (size,):
        return value
    what = f"a 1-D array of n_params={size} real numbers"
    array = _real_array(field, value, what)
    if array.shape != (size,):
        raise spec_error(field, f"array of shape {array.shape}", f"must be {what}")
    return array


def check_batch(
    problem: Any, x: Any, y: Any, normaliser: Any = None, regulariser: Any = True
) -> tuple[np.ndarray, np.ndarray, float, bool]:
    """The batch and options an engine is bound to, checked against the problem.

    Parameters
    ----------
    problem : TrainingProblem
        Gives ``n_in`` and ``n_out`` (``problem.layout``).
    x : array_like
        Inputs, ``n_in × S`` (one column per sample), finite.
    y : array_like
        Encoded targets, ``n_out × S`` with the same S (e.g. ``problem.targets``), finite.
    normaliser : float, optional
        n in J's (1/n) Σ_i: a finite number > 0 (default S).
    regulariser : bool
        Include R(θ).

    Returns
    -------
    tuple
        ``(x, y, normaliser, regulariser)``: float64 arrays, a float, a bool.

    Raises
    ------
    SpecError
        Naming ``x``, ``y``, ``normaliser`` or ``regulariser``: x or y not real, of another shape
        (x transposed, class labels instead of encoded targets, another number of columns than
        x), holding NaN or inf; ``normaliser`` not a finite number > 0; ``regulariser`` not a bool.
    """
    n_in, n_out = problem.layout.n_in, problem.layout.n_out
    x = _real_array("x", x, f"the inputs, an n_in × S = {n_in} × S array of real numbers")
    if x.ndim != 2 or x.shape[0] != n_in or x.shape[1] == 0:
        hint = " (transposed? one column per sample)" if x.ndim == 2 and x.shape[1] == n_in else ""
        raise spec_error("x", f"array of shape {x.shape}", f"must be the inputs, n_in × S = {n_in} × S, S ≥ 1{hint}")
    s = x.shape[1]
    y = _real_array("y", y, f"the encoded targets, an n_out × S = {n_out} × {s} array of real numbers")
    if y.shape != (n_out, s):
        hint = " (transposed? one column per sample)" if y.shape == (s, n_out) else ""
        if y.ndim == 1:
            hint = " (class labels? pass the encoded targets, e.g. problem.targets)"
        raise spec_error(
            "y", f"array of shape {y.shape}", f"must be the encoded targets, n_out × S = {n_out} × {s} like x{hint}"
        )
    for name, array in (("x", x), ("y", y)):
        if not np.all(np.isfinite(array)):
            bad = int(np.argmax(~np.all(np.isfinite(array), axis=0)))
            raise spec_error(name, "NaN or inf", f"must be finite (first bad sample: column {bad})")
    if normaliser is None:
        normaliser = float(s)
    else:
        check_positive_float("normaliser", normaliser)
    check_bool("regulariser", regulariser)
    return x, y, float(normaliser), bool(regulariser)


def _checked(name: str, method: Callable[..., Any]) -> Callable[..., Any]:
    """``method`` (an :class:`Engine` method named ``name``) with its arguments checked first."""

    if name == "evaluate":

        def checked(self: Engine, w: Any, gradient: Any = True) -> Any:
            check_bool("gradient", gradient)
            return method(self, as_vector("w", w, self.problem.n_params), gradient)

    elif name == "gauss_newton_product":

        def checked(self: Engine, w: Any, v: Any) -> Any:
            n = self.problem.n_params
            return method(self, as_vector("w", w, n), as_vector("v", v, n))

    elif name in ("states", "sweep"):

        def checked(self: Engine, w: Any) -> Any:
            return method(self, as_vector("w", w, self.problem.n_params))

    else:  # augmented_hamiltonian

        def checked(self: Engine, sweep: Sweep, thetas: Any, rho: Any, hessian: Any = False) -> Any:
            if not isinstance(sweep, Sweep):
                raise spec_error("sweep", type(sweep).__name__, "must be a Sweep from this engine's sweep(w)")
            n_steps = self.problem.n_steps
            if not hasattr(thetas, "__len__") or len(thetas) != n_steps:
                shown = len(thetas) if hasattr(thetas, "__len__") else type(thetas).__name__
                raise spec_error("thetas", shown, f"must hold one Θ_k per step, N={n_steps} of them")
            check_positive_float("rho", rho, allow_zero=True)
            check_bool("hessian", hessian)
            return method(self, sweep, thetas, rho, hessian)

    return functools.wraps(method)(checked)


#: Engine methods whose arguments every engine checks the same way (see :func:`_checked`).
CHECKED_METHODS = ("evaluate", "gauss_newton_product", "states", "sweep", "augmented_hamiltonian")


@dataclass(frozen=True)
class Evaluation:
    """J, the training loss, ∇_w J and the predictions at one w on the engine's batch.

    Attributes
    ----------
    objective : float
        J_batch(w) (see the module docstring for its normalisation).
    loss : float
        Terminal loss part (1/n) Σ_i ℓ(λ2(x_{N,i}), y_i).
    gradient : ndarray or None
        ∇_w J_batch, shape ``(n_params,)`` (None when not requested).
    predictions : ndarray or None
        λ2(x_N), shape ``(n_out, S)`` (for accuracies without a second forward pass); None when
        the engine did not send them (the Dask engine by default: it counts ``n_correct`` instead).
    n_samples : int
        Samples that contributed (a data-parallel engine checks every shard answered).
    n_correct : int or None
        Classification: samples whose predicted class (``predict_labels`` of λ2(x_N)) is the class
        of their target, when the engine counted them (the Dask engine); None otherwise.
    """

    objective: float
    loss: float
    gradient: np.ndarray | None
    predictions: np.ndarray | None
    n_samples: int
    n_correct: int | None = None

    def accuracy(self, task: str, loss: Any, labels: np.ndarray) -> float:
        """Fraction of the batch classified correctly.

        Parameters
        ----------
        task : str
            ``problem.data.task`` (a classification task).
        loss : str or callable
            ``problem.cost.loss`` (fixes the decision threshold of a single output).
        labels : ndarray
            Class labels of the batch, ``(S,)``.

        Returns
        -------
        float
            ``n_correct / n_samples`` when the engine counted, else the mean of
            ``predict_labels(task, loss, predictions) == labels``.
        """
        if self.n_correct is not None:
            return self.n_correct / self.n_samples
        return float(np.mean(predict_labels(task, loss, self.predictions) == labels))


@dataclass
class Sweep:
    """Forward states and backward costates at one w (one Pontryagin sweep).

    Attributes
    ----------
    w : ndarray
        The decision vector of the sweep.
    states : list of ndarray
        x_0, …, x_N, each ``d_k × S``.
    costates : list of ndarray
        p_0, …, p_N = −∂J_batch/∂x_k, each ``d_k × S``.
    q : list of ndarray
        q_k = J_{F,x}(x_k, Θ_k)ᵀ p_{k+1}, k = 0..N−1.
    handle : object
        Engine-private data (e.g. futures of a data-parallel engine whose arrays stay on workers;
        then the lists above may be empty).
    """

    w: np.ndarray
    states: list[np.ndarray] = field(default_factory=list)
    costates: list[np.ndarray] = field(default_factory=list)
    q: list[np.ndarray] = field(default_factory=list)
    handle: Any = None


@dataclass(frozen=True)
class StageValues:
    r"""Per-step terms a_k of the augmented Hamiltonian, their Θ-gradients and (optionally) Hessians.

    a_k(Θ) = Σ_i [ p̂_{k+1,i}·F_k(x_{k,i}, Θ) − ρ/2 ‖x_{k+1,i} − F_k(x_{k,i}, Θ)‖²
                   − ρ/2 ‖q̂_{k,i} − J_{F,x}(x_{k,i}, Θ)ᵀ p̂_{k+1,i}‖² ],   p̂ = n p, q̂ = n q

    (Li, Chen, Tai & E 2018, eq. for the extended MSA; summed, not averaged, over the batch).

    Attributes
    ----------
    values : ndarray
        a_k, shape ``(N,)``.
    gradients : list of ndarray
        ∂a_k/∂Θ_k, one vector per step.
    hessians : list of ndarray or None
        ∂²a_k/∂Θ_k², one matrix per step, when requested.
    """

    values: np.ndarray
    gradients: list[np.ndarray]
    hessians: list[np.ndarray] | None = None


class Engine(ABC):
    """An evaluator of one problem on one batch: J, ∇J, G·v, states, costates, stage Hamiltonians.

    Parameters
    ----------
    problem : TrainingProblem
        What is evaluated.
    x : ndarray
        Inputs, ``n_in × S``.
    y : ndarray
        Encoded targets, ``n_out × S``.
    normaliser : float, optional
        n in (1/n) Σ_i (default S).
    regulariser : bool
        Include R(θ) in J (and its derivatives).

    Attributes
    ----------
    info : dict
        What a solver records in ``Result.engine``: ``name`` and, where it applies, set-up timings,
        the device, the reason ``auto`` chose this engine.

    Raises
    ------
    SpecError
        A bad batch or option (:func:`check_batch`); from the methods, a w or v that is not a 1-D
        array of ``n_params`` real numbers, or a ``gradient``/``hessian`` flag that is not a bool
        (every subclass's methods are wrapped with these checks when the subclass is defined).
    """

    name: str = "abstract"

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        for name in CHECKED_METHODS:
            method = cls.__dict__.get(name)
            if callable(method) and not getattr(method, "__isabstractmethod__", False):
                setattr(cls, name, _checked(name, method))

    def __init__(
        self, problem: Any, x: np.ndarray, y: np.ndarray, normaliser: float | None = None, regulariser: bool = True
    ) -> None:
        self.problem = problem
        self.x, self.y, self.normaliser, self.regulariser = check_batch(problem, x, y, normaliser, regulariser)
        self.info: dict[str, Any] = {"name": self.name}

    @property
    def n_samples(self) -> int:
        """Number S of samples in the batch."""
        return int(self.x.shape[1])

    def close(self) -> None:  # noqa: B027 (an optional hook: most engines hold nothing to release)
        """Release what the engine holds outside this process (nothing, except for the Dask engine).

        :func:`~control_dl.solve` closes every engine made while its solver runs
        (:func:`~control_dl.engines.closing_engines`), also when the solve fails.
        """

    def __enter__(self) -> Engine:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def batch_spec(self) -> Any:
        """Options that bind an engine like this one on another batch (``spec.bind(problem, x, y)``).

        Mini-batch MSA binds one engine per batch from it. By default the engine's own spec (so
        the kind ``"auto"`` chose is not timed again per batch); None for an engine without one.

        Returns
        -------
        EngineSpec or None
            The options, or None.
        """
        return getattr(self, "spec", None)

    @abstractmethod
    def evaluate(self, w: np.ndarray, gradient: bool = True) -> Evaluation:
        """J, the loss, (∇J) and the predictions at w.

        Parameters
        ----------
        w : ndarray
            Decision vector, shape ``(n_params,)``.
        gradient : bool
            Also compute ∇_w J_batch.

        Returns
        -------
        Evaluation
            Values on the engine's batch.
        """

    @abstractmethod
    def gauss_newton_product(self, w: np.ndarray, v: np.ndarray) -> np.ndarray:
        """G(w) v: generalised Gauss-Newton matrix of J_batch times v (exact Hessian on R and running terms).

        G = (1/S) Σ_i J_iᵀ ∇²ℓ_i J_i with J_i = ∂ŷ_i/∂w, the Hessian of the loss with its curvature
        through the network dropped (Schraudolph, Neural Computation 14, 2002; Martens 2010), plus
        ∇²R and the running terms' exact Hessian (the Gauss-Newton part is positive semi-definite for
        convex ℓ).

        Parameters
        ----------
        w : ndarray
            Decision vector, shape ``(n_params,)``.
        v : ndarray
            Direction, shape ``(n_params,)``.

        Returns
        -------
        ndarray
            G(w) v, shape ``(n_params,)``.
        """

    @abstractmethod
    def states(self, w: np.ndarray) -> list[np.ndarray]:
        """x_0, …, x_N for the batch.

        Parameters
        ----------
        w : ndarray
            Decision vector.

        Returns
        -------
        list of ndarray
            States, each ``d_k × S``.
        """

    @abstractmethod
    def sweep(self, w: np.ndarray) -> Sweep:
        """Forward states and backward costates at w (see the module docstring).

        Parameters
        ----------
        w : ndarray
            Decision vector.

        Returns
        -------
        Sweep
            x_k, p_k = −∂J_batch/∂x_k and q_k.
        """

    @abstractmethod
    def augmented_hamiltonian(
        self, sweep: Sweep, thetas: list[np.ndarray], rho: float, hessian: bool = False
    ) -> StageValues:
        """a_k(Θ_k) for every step k at the given Θ_k, with gradients (and Hessians), see :class:`StageValues`.

        Parameters
        ----------
        sweep : Sweep
            States and costates from :meth:`sweep` (held fixed).
        thetas : list of ndarray
            Θ_k per step (θ at the step's integrator nodes, stacked).
        rho : float
            Penalty ρ ≥ 0 (ρ = 0: the plain Hamiltonian of MSA).
        hessian : bool
            Also return ∂²a_k/∂Θ_k².

        Returns
        -------
        StageValues
            Values, gradients and (optionally) Hessians per step.
        """


class EngineSpec(ABC):
    """Options of one kind of engine (a frozen dataclass in each implementation), bound per batch.

    Solvers take ``engine: str | EngineSpec``; a string names a registered spec with its defaults
    (see :func:`control_dl.engines.make_engine`).
    """

    name: str = "abstract"

    @abstractmethod
    def bind(
        self, problem: Any, x: np.ndarray, y: np.ndarray, normaliser: float | None = None, regulariser: bool = True
    ) -> Engine:
        """An :class:`Engine` for ``problem`` on the batch (x, y).

        Parameters
        ----------
        problem : TrainingProblem
            What to evaluate.
        x, y : ndarray
            Inputs ``n_in × S`` and encoded targets ``n_out × S``.
        normaliser : float, optional
            n in J's (1/n) Σ_i (default S).
        regulariser : bool
            Include R(θ).

        Returns
        -------
        Engine
            The bound engine.
        """
