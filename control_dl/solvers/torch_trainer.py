r"""The baseline a user knows: gradient training in torch, on the same TrainingProblem.

The trainable tensor is the flat decision vector w (float64): J(w) is evaluated by
:meth:`TrainingProblem.objective_terms` over the torch ``ops`` backend, so the network trained here is
exactly the one every other solver optimises (no second copy of the model). ∇_w J comes from
autograd through the forward pass, or (``adjoint=True``) from the costate backward pass of
:mod:`control_dl.solvers.adjoint`.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from .._errors import check_choice, check_positive_float, check_positive_int, python_scalars, spec_error
from ..problems.training import TrainingProblem
from ..result import Result
from .adjoint import adjoint_objective_and_gradient, backprop_objective_and_gradient
from .base import Recorder, make_result
from .checkpoint import check_checkpoint

#: Learning rate when none is given.
DEFAULT_LR = {"adam": 1e-2, "sgd": 1e-2, "lbfgs": 1.0}
#: Most function evaluations in one strong-Wolfe line search (torch's default max_ls).
LINE_SEARCH_EVALS = 25
#: L-BFGS stops as converged when |J_k − J_{k−1}| ≤ this × max(1, |J_k|).
LBFGS_FTOL = 1e-12


logger = logging.getLogger("control_dl.solvers")


@dataclass(frozen=True)
class TorchTrainer:
    r"""Train w with a torch optimizer: SGD (momentum), Adam, or L-BFGS with a strong-Wolfe line search.

    One iteration is one epoch: a pass over the training data in mini-batches of ``batch_size``
    columns (a local generator seeded by ``seed`` shuffles them), or a single full-batch step. Before
    each epoch J, the training loss and ‖∇_w J‖ are evaluated on the whole training set and recorded.

    Parameters
    ----------
    optimizer : {"adam", "sgd", "lbfgs"}
        ``torch.optim.Adam``, ``torch.optim.SGD`` or ``torch.optim.LBFGS(line_search_fn="strong_wolfe")``.
    lr : float, optional
        Learning rate; for L-BFGS the initial step length of the line search. Default: 1e-2 for
        Adam and SGD, 1 for L-BFGS (set in the object, so results record the value used).
    momentum : float
        SGD momentum μ ∈ [0, 1) (optimizer="sgd" only: a nonzero value with another optimizer is a
        SpecError).
    epochs : int
        Maximum number of epochs (iterations).
    batch_size : int, optional
        Columns per mini-batch; None (or ≥ S) trains full-batch. L-BFGS is full-batch only.
    adjoint : bool
        Compute ∇_w J by the costate backward pass instead of autograd through the forward pass.
    threads : int
        torch intra-op threads during the run (the caller's setting is restored afterwards).
    seed : int, optional
        Seed of the mini-batch shuffling (default: the ``seed`` of :func:`~control_dl.solve`, which
        also draws the initial guess; 0 when ``run`` is called directly).
    tol : float
        Converged when ‖∇_w J‖₂ ≤ tol on the training set (L-BFGS also when J stops changing).
    record_every : int
        Snapshot w every this many epochs (0: never).
    checkpoint : str, optional
        File to which w is saved every ``checkpoint_every`` epochs (resume with ``--resume``).
    checkpoint_every : int
        Checkpoint period K (0: never).

    Raises
    ------
    SpecError
        An invalid value (the message names the field), ``momentum`` with an optimizer other
        than SGD, ``batch_size`` with L-BFGS, or ``checkpoint_every`` without ``checkpoint``.
    """

    optimizer: str = "adam"
    lr: float | None = None
    momentum: float = 0.0
    epochs: int = 1000
    batch_size: int | None = None
    adjoint: bool = False
    threads: int = 1
    seed: int | None = None
    tol: float = 1e-6
    record_every: int = 0
    checkpoint: str | None = None
    checkpoint_every: int = 0

    kind = "torch"

    def __post_init__(self) -> None:
        python_scalars(self)
        check_choice("optimizer", self.optimizer, ("adam", "sgd", "lbfgs"))
        if self.lr is None:
            object.__setattr__(self, "lr", DEFAULT_LR[self.optimizer])
        check_positive_float("lr", self.lr)
        check_positive_float("momentum", self.momentum, allow_zero=True)
        if self.momentum >= 1:  # heavy-ball momentum μ ≥ 1 never forgets a step: the iterates diverge
            raise spec_error("momentum", self.momentum, "must be in [0, 1)")
        if self.momentum and self.optimizer != "sgd":
            raise spec_error("momentum", self.momentum, f"is an option of optimizer='sgd', not {self.optimizer!r}")
        check_positive_int("epochs", self.epochs, 0)
        if self.batch_size is not None:
            check_positive_int("batch_size", self.batch_size)
            if self.optimizer == "lbfgs":
                raise spec_error("batch_size", self.batch_size, "L-BFGS trains full-batch only (leave it unset)")
        if not isinstance(self.adjoint, bool):
            raise spec_error("adjoint", self.adjoint, "must be true or false")
        check_positive_int("threads", self.threads)
        if self.seed is not None:
            check_positive_int("seed", self.seed, 0)
        check_positive_float("tol", self.tol, allow_zero=True)
        check_positive_int("record_every", self.record_every, 0)
        object.__setattr__(self, "checkpoint", check_checkpoint(self.checkpoint, self.checkpoint_every))

    @property
    def name(self) -> str:
        """Label used in tables: e.g. ``torch-adam`` or ``torch-lbfgs-adjoint``."""
        return f"torch-{self.optimizer}" + ("-adjoint" if self.adjoint else "")

    def objective_and_gradient(self, problem: TrainingProblem, w: Any) -> tuple[float, np.ndarray]:
        """J(w) and ∇_w J on the training set, computed the way this trainer computes them.

        Parameters
        ----------
        problem : TrainingProblem
            The problem.
        w : array_like
            Decision vector, ``(n_params,)``.

        Returns
        -------
        tuple
            ``(J, gradient)`` as a float and a float64 vector of shape ``(n_params,)``.

        Raises
        ------
        SpecError
            ``w`` does not fit the problem (length, NaN/inf), or torch is not installed (the
            message names the extra ``torch``).
        """
        from ..backends import torch_ops

        ops = torch_ops()
        j, _, grad = self._evaluate(problem, ops.asarray(problem.check_w(w)), self._data(problem, ops), ops)
        return float(j), grad.numpy().copy()

    def run(self, problem: TrainingProblem, w0: np.ndarray, progress: bool) -> Result:
        """Train from w0.

        Parameters
        ----------
        problem : TrainingProblem
            The problem.
        w0 : ndarray
            Initial decision vector.
        progress : bool
            Show a progress bar.

        Returns
        -------
        Result
            "converged" (gradient norm ≤ tol, or L-BFGS stalled at a stationary value), "max_iter"
            (epochs exhausted) or "diverged" (non-finite J or gradient; w is the last finite iterate).
            Constraints are not enforced (a warning is logged at the start); the outcome policy
            judges the end (``failed`` with the best feasible iterate when infeasible).
        """
        import torch

        constraints = problem.constraints
        if constraints.lipschitz is not None or constraints.theta_max is not None:
            logger.warning(
                "%s does not enforce constraints (lipschitz=%s, theta_max=%s): the run is judged at its end; "
                "the preset 'certified' enforces them",
                self.name,
                constraints.lipschitz,
                constraints.theta_max,
            )
        previous = torch.get_num_threads()
        torch.set_num_threads(self.threads)
        try:
            return self._train(problem, np.asarray(w0, dtype=np.float64), progress)
        finally:
            torch.set_num_threads(previous)

    # ----------------------------------------------------------------------------------- internals
    def _data(self, problem: TrainingProblem, ops: Any) -> tuple[Any, Any]:
        return ops.asarray(problem.data.x_train), ops.asarray(problem.targets)

    def _evaluate(self, problem: TrainingProblem, w: Any, batch: tuple[Any, Any], ops: Any) -> tuple:
        gradient = adjoint_objective_and_gradient if self.adjoint else backprop_objective_and_gradient
        return gradient(problem, w, batch[0], batch[1], ops)

    def _make_optimizer(self, params: list[Any]) -> Any:
        import torch

        if self.optimizer == "adam":
            return torch.optim.Adam(params, lr=self.lr)
        if self.optimizer == "sgd":
            return torch.optim.SGD(params, lr=self.lr, momentum=self.momentum)
        # one L-BFGS iteration per step() call (the curvature pairs persist in the optimizer state);
        # max_eval bounds the line search, whose default (5/4 max_iter) would leave it no evaluations
        return torch.optim.LBFGS(
            params,
            lr=self.lr,
            max_iter=1,
            max_eval=1 + LINE_SEARCH_EVALS,
            tolerance_grad=0.0,
            tolerance_change=0.0,
            line_search_fn="strong_wolfe",
        )

    def _train(self, problem: TrainingProblem, w0: np.ndarray, progress: bool) -> Result:
        import torch

        from ..backends import torch_ops

        ops = torch_ops()
        full = self._data(problem, ops)
        n_samples = full[0].shape[1]
        w = torch.tensor(w0, dtype=torch.float64, requires_grad=True)
        opt = self._make_optimizer([w])
        generator = torch.Generator().manual_seed(0 if self.seed is None else self.seed)
        batch = self.batch_size if self.batch_size is not None and self.batch_size < n_samples else None
        recorder = Recorder(
            problem,
            self.epochs,
            progress,
            self.record_every,
            desc=self.name,
            checkpoint=self.checkpoint,
            checkpoint_every=self.checkpoint_every,
        )
        status, message = "max_iter", f"{self.epochs} epochs done"
        last_w, iterations, previous_j = w0.copy(), 0, math.inf
        for epoch in range(self.epochs + 1):
            j, loss, grad = self._evaluate(problem, w, full, ops)
            j_value, grad_norm = float(j), float(torch.linalg.vector_norm(grad))
            if not (math.isfinite(j_value) and math.isfinite(grad_norm)):
                status, message = "diverged", f"non-finite objective or gradient at epoch {epoch}"
                break
            last_w, iterations = w.detach().numpy().copy(), epoch
            recorder.log(epoch, last_w, j_value, float(loss), grad_norm=grad_norm)
            if grad_norm <= self.tol:
                status, message = "converged", f"gradient norm {grad_norm:.2e} <= tol {self.tol:.1e}"
                break
            if self.optimizer == "lbfgs" and abs(previous_j - j_value) <= LBFGS_FTOL * max(1.0, abs(j_value)):
                status, message = "converged", f"L-BFGS: objective change below {LBFGS_FTOL:.0e} (relative)"
                break
            if epoch == self.epochs:
                break
            previous_j = j_value
            if batch is None:
                self._full_step(problem, opt, w, j, grad, full, ops)
            else:
                for idx in torch.randperm(n_samples, generator=generator).split(batch):
                    w.grad = self._evaluate(problem, w, (full[0][:, idx], full[1][:, idx]), ops)[2]
                    opt.step()
        engine = {"name": "torch", "device": "cpu", "threads": self.threads}
        return make_result(problem, self, last_w, status, message, recorder, iterations, engine)

    def _full_step(self, problem: TrainingProblem, opt: Any, w: Any, j: Any, grad: Any, data: tuple, ops: Any) -> None:
        """One full-batch step; L-BFGS reuses (J, ∇J) at w for its first closure call."""
        cached = [(j, grad)]

        def closure() -> Any:
            value, gradient = cached.pop() if cached else self._evaluate(problem, w, data, ops)[::2]
            w.grad = gradient.clone()
            return value

        if self.optimizer == "lbfgs":
            opt.step(closure)
        else:
            w.grad = grad
            opt.step()
