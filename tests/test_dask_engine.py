"""The Dask data-parallel engine against a local engine on the whole batch (LocalCluster, 2 workers).

Workers are threads of this process (``processes=False``): the shards still go through scatter,
actors and the (in-process) comms; the benchmark ``benchmarks/dask_scaling.py`` runs real processes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import pytest
from scipy.optimize import minimize

import control_dl as cdl
from control_dl.engines import Engine, EngineSpec, Evaluation, StageValues, Sweep, make_engine

distributed = pytest.importorskip("distributed")
torch = pytest.importorskip("torch")

from control_dl.backends import torch_ops  # noqa: E402
from control_dl.engines.dask import Dask, DaskEngineError  # noqa: E402

RTOL = 1e-12


# --------------------------------------------------------------------------- a stand-in local engine
class AutogradEngine(Engine):
    """Torch autograd over the one model (the engine helper's engines replace it once on main)."""

    name = "autograd"

    def _terms(self, w: Any, track_states: bool = False) -> tuple[Any, Any, Any, list[Any]]:
        p, ops = self.problem, torch_ops()
        x, y = torch.tensor(self.x, requires_grad=track_states), torch.as_tensor(self.y)
        readout = p.layout.readout(w, ops)
        states = list(p.trajectory(w, x, ops))
        running = 0.0
        for state in states[1:]:
            if p.cost.has_running_cost:
                running = running + p.step_size * p.running_cost(state, y, readout, ops)
        loss = p.terminal_loss(states[-1], y, readout, ops) / self.normaliser
        j = loss + running / self.normaliser + (p.regulariser(w, ops) if self.regulariser else 0.0)
        return j, loss, p.readout(states[-1], readout, ops), states

    def evaluate(self, w: np.ndarray, gradient: bool = True) -> Evaluation:
        wt = torch.tensor(w, dtype=torch.float64, requires_grad=True)
        j, loss, yhat, _ = self._terms(wt)
        g = torch.autograd.grad(j, wt)[0].numpy() if gradient else None
        return Evaluation(j.item(), loss.item(), g, yhat.detach().numpy(), self.n_samples)

    def gauss_newton_product(self, w: np.ndarray, v: np.ndarray) -> np.ndarray:
        # the exact Hessian stands in for G: additive over samples just the same
        _, hv = torch.autograd.functional.hvp(lambda t: self._terms(t)[0], torch.tensor(w), torch.tensor(v))
        return hv.numpy()

    def states(self, w: np.ndarray) -> list[np.ndarray]:
        return [s.detach().numpy() for s in self._terms(torch.tensor(w))[3]]

    def sweep(self, w: np.ndarray) -> Sweep:
        wt = torch.tensor(w)
        j, _, _, states = self._terms(wt, track_states=True)
        grads = torch.autograd.grad(j, states)
        costates = [-g for g in grads]
        q = []
        for k in range(self.problem.n_steps):
            xk = states[k].detach().requires_grad_(True)
            nxt = self.problem.step(xk, self.problem.stage_thetas(wt, k, torch_ops()), torch_ops(), k)
            q.append(torch.autograd.grad(nxt, xk, grad_outputs=costates[k + 1])[0].numpy())
        return Sweep(w, [s.detach().numpy() for s in states], [c.numpy() for c in costates], q)

    def augmented_hamiltonian(
        self, sweep: Sweep, thetas: list[np.ndarray], rho: float, hessian: bool = False
    ) -> StageValues:
        n, ops = self.normaliser, torch_ops()

        def a_k(k: int, theta: Any) -> Any:
            xk = torch.tensor(sweep.states[k], requires_grad=True)
            f = self.problem.step(xk, [theta], ops, k)
            p_hat = n * torch.tensor(sweep.costates[k + 1])
            jtp = torch.autograd.grad(f, xk, grad_outputs=p_hat, create_graph=True)[0]
            gap = torch.tensor(sweep.states[k + 1]) - f
            mismatch = n * torch.tensor(sweep.q[k]) - jtp
            return (p_hat * f).sum() - rho / 2 * (gap * gap).sum() - rho / 2 * (mismatch * mismatch).sum()

        values, gradients, hessians = [], [], []
        for k, theta in enumerate(thetas):
            t = torch.tensor(theta, requires_grad=True)
            value = a_k(k, t)
            values.append(float(value))
            gradients.append(torch.autograd.grad(value, t)[0].numpy())
            if hessian:
                hessians.append(
                    torch.autograd.functional.hessian(lambda s, k=k: a_k(k, s), torch.tensor(theta)).numpy()
                )
        return StageValues(np.array(values), gradients, hessians if hessian else None)


@dataclass(frozen=True)
class Autograd(EngineSpec):
    name: ClassVar[str] = "autograd"
    drop: int = 0  # answer for `drop` fewer samples than the shard holds (a broken engine)

    def bind(self, problem: Any, x: np.ndarray, y: np.ndarray, normaliser: Any = None, regulariser: bool = True):
        engine = AutogradEngine(problem, x, y, normaliser, regulariser)
        if self.drop:
            engine.x, engine.y = engine.x[:, self.drop :], engine.y[:, self.drop :]
        return engine


LOCAL = Autograd()


# --------------------------------------------------------------------------- fixtures
@pytest.fixture(scope="module")
def client():
    with (
        distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=False, dashboard_address=None) as cluster,
        distributed.Client(cluster) as c,
    ):
        yield c


@pytest.fixture(scope="module")
def ring() -> cdl.TrainingProblem:
    return cdl.load_problem("ring", n_samples=60, dim=3, n_steps=5, l2=1e-2, turnpike=0.1)


def _close(a: np.ndarray, b: np.ndarray) -> bool:
    return bool(np.linalg.norm(np.ravel(a) - np.ravel(b)) <= RTOL * np.linalg.norm(np.ravel(b)))


# --------------------------------------------------------------------------- tests
@pytest.mark.parametrize("n_shards", [2, 3])
def test_sums_equal_the_local_engine(client, ring, n_shards):
    """J, loss, ∇J, predictions, G·v and states through 2 or 3 shards = one local engine, to 1e-12."""
    x, y = ring.data.x_train, ring.targets
    local = make_engine(LOCAL, ring, x, y)
    w = ring.initial_guess(seed=1)
    v = np.random.default_rng(0).normal(size=w.size)
    with make_engine(Dask(client, n_shards=n_shards, local=LOCAL), ring, x, y) as engine:
        assert engine.info["n_shards"] == n_shards and engine.info["local"] == "autograd"
        ev, ref = engine.evaluate(w), local.evaluate(w)
        assert ev.n_samples == x.shape[1]
        for a, b in ((ev.objective, ref.objective), (ev.loss, ref.loss), (ev.gradient, ref.gradient)):
            assert _close(a, b)
        assert _close(ev.predictions, ref.predictions)
        assert _close(engine.gauss_newton_product(w, v), local.gauss_newton_product(w, v))
        assert all(_close(a, b) for a, b in zip(engine.states(w), local.states(w), strict=True))
        assert engine.evaluate(w, gradient=False).gradient is None


def test_sweep_stays_on_workers_and_hamiltonians_add(client, ring):
    """Per-shard augmented Hamiltonians (values, ∇, ∇²) add up to the whole batch's, at a perturbed Θ."""
    x, y = ring.data.x_train, ring.targets
    w = ring.initial_guess(seed=2)
    local = make_engine(LOCAL, ring, x, y)
    thetas = [t + 0.1 for k in range(ring.n_steps) for t in ring.stage_thetas(w, k, cdl.backends.numpy_ops)]
    ref = local.augmented_hamiltonian(local.sweep(w), thetas, rho=0.7, hessian=True)
    with make_engine(Dask(client, local=LOCAL), ring, x, y) as engine:
        sweep = engine.sweep(w)
        assert sweep.states == [] and sweep.costates == []  # nothing gathered
        got = engine.augmented_hamiltonian(sweep, thetas, rho=0.7, hessian=True)
        assert _close(got.values, ref.values)
        assert all(_close(a, b) for a, b in zip(got.gradients, ref.gradients, strict=True))
        assert all(_close(a, b) for a, b in zip(got.hessians, ref.hessians, strict=True))
        with pytest.raises(ValueError, match="not made by this Dask engine"):
            engine.augmented_hamiltonian(local.sweep(w), thetas, rho=0.7)


def _lbfgsb(engine: Engine, w0: np.ndarray, on_eval: Any = None, maxiter: int = 500) -> Any:
    def fun(w: np.ndarray) -> tuple[float, np.ndarray]:
        ev = engine.evaluate(w)
        assert ev.n_samples == engine.n_samples  # every sample counted, every evaluation
        if on_eval is not None:
            on_eval()
        return ev.objective, ev.gradient

    options = {"maxiter": maxiter, "gtol": 1e-6, "ftol": 1e-10}
    return minimize(fun, w0, jac=True, method="L-BFGS-B", options=options)


def test_lbfgsb_on_two_shards_equals_the_serial_solve(client, ring):
    """Same iterates while rounding differences are small; the same optimum to the solver's tolerance."""
    x, y, w0 = ring.data.x_train, ring.targets, ring.initial_guess(seed=0)
    local = make_engine(LOCAL, ring, x, y)
    with make_engine(Dask(client, n_shards=2, local=LOCAL), ring, x, y) as engine:
        early = [_lbfgsb(e, w0, maxiter=10) for e in (local, engine)]
        serial, sharded = (_lbfgsb(e, w0) for e in (local, engine))
    np.testing.assert_allclose(early[1].x, early[0].x, rtol=0, atol=1e-9)
    assert serial.success and sharded.success
    assert abs(sharded.fun - serial.fun) <= 1e-6 * serial.fun


def test_a_worker_killed_mid_solve_is_replaced_and_every_sample_counted(ring):
    """Kill the worker holding shard 1 after the 3rd evaluation: the shard is rebuilt, the solve goes on."""
    x, y, w0 = ring.data.x_train, ring.targets, ring.initial_guess(seed=0)
    serial = _lbfgsb(make_engine(LOCAL, ring, x, y), w0)
    with (
        distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=False, dashboard_address=None) as cluster,
        distributed.Client(cluster) as c,
    ):
        engine = make_engine(Dask(c, n_shards=2, local=LOCAL), ring, x, y)
        calls = {"n": 0}

        def kill_after_three() -> None:
            calls["n"] += 1
            if calls["n"] == 3:
                victim = engine._shards[1].worker
                c.sync(next(wk for wk in cluster.workers.values() if wk.address == victim).close)

        sharded = _lbfgsb(engine, w0, kill_after_three)
        assert engine.info["rebuilt_shards"] == 1
        assert len(c.scheduler_info()["workers"]) == 1
        engine.close()
    assert sharded.success
    assert abs(sharded.fun - serial.fun) <= 1e-6 * serial.fun


def test_no_worker_left_fails_loudly(ring):
    x, y = ring.data.x_train, ring.targets
    w = ring.initial_guess()
    with (
        distributed.LocalCluster(n_workers=1, threads_per_worker=1, processes=False, dashboard_address=None) as cluster,
        distributed.Client(cluster) as c,
    ):
        engine = make_engine(Dask(c, n_shards=2, local=LOCAL, timeout=5), ring, x, y)
        engine.evaluate(w)
        c.sync(next(iter(cluster.workers.values())).close)
        with pytest.raises(DaskEngineError):
            engine.evaluate(w)
        engine.close()


def test_a_shard_answering_for_fewer_samples_is_an_error(client, ring):
    with make_engine(Dask(client, local=Autograd(drop=1)), ring, ring.data.x_train, ring.targets) as engine:
        with pytest.raises(DaskEngineError, match="answered for 29 samples, it holds 30"):
            engine.evaluate(ring.initial_guess())


@pytest.mark.parametrize(
    ("options", "field"),
    [
        ({"n_shards": 0}, "n_shards"),
        ({"client": "tcp://x:1", "workers": 2}, "workers"),
        ({"local": "dask"}, "local"),
        ({"local": 3}, "local"),
        ({"timeout": -1.0}, "timeout"),
        ({"retries": -1}, "retries"),
        ({"client": 3.5}, "client"),
    ],
)
def test_bad_options_name_the_field(options, field):
    with pytest.raises(cdl.SpecError, match=field):
        Dask(**options)


def test_more_shards_than_samples_and_unpicklable_problems_are_spec_errors(client, ring):
    small = cdl.load_problem("ring", n_samples=4, dim=3, n_steps=2)
    with pytest.raises(cdl.SpecError, match="n_shards"):
        make_engine(Dask(client, n_shards=5, local=LOCAL), small, small.data.x_train, small.targets)

    class Unpicklable(cdl.Inside):
        def __reduce__(self):
            raise TypeError("no pickling")

    bad = cdl.TrainingProblem(data=small.data, field=Unpicklable(), dim=3)
    with pytest.raises(cdl.SpecError, match="must pickle"):
        make_engine(Dask(client, local=LOCAL), bad, bad.data.x_train, bad.targets)
