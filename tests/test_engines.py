"""Every engine evaluates the one model: J, loss, ∇J, G·v, costates and stage Hamiltonians agree with
independent references (the numpy model, torch autograd on the torch backend, finite differences)."""

from __future__ import annotations

import numpy as np
import pytest

import control_dl as cdl
from control_dl import engines
from control_dl.backends import get_ops, numpy_ops

torch = pytest.importorskip("torch")

FIELDS = [cdl.Inside("tanh"), cdl.Outside("sigmoid"), cdl.Bottleneck("softplus", width=2)]
CONTROLS = [
    cdl.PiecewiseConstant(n_steps=3),
    cdl.PiecewiseLinear(n_nodes=2, n_steps=3),
    cdl.TimeInvariant(n_steps=3),
    cdl.Spectral(basis="legendre", n_modes=2, n_steps=3),
]
FULL_COST = dict(l2=1e-2, h1=1e-2, l1=1e-2, turnpike=0.3, tracking=0.1, tracking_target=0.2)
#: engines under test, uncompiled where compiling only costs time (the compiled code is the same graph)
SPECS = {"casadi": engines.Casadi(jit=False), "torch": engines.Torch()}
RTOL = 1e-10


@pytest.fixture(autouse=True)
def _jit_cache(tmp_path_factory, monkeypatch):
    """JIT libraries go to a per-session temporary cache."""
    monkeypatch.setenv("CONTROL_DL_CACHE", str(tmp_path_factory.getbasetemp() / "cache"))


def _flow(field, control, integrator, loss="logistic", lift="pad"):
    return cdl.TrainingProblem(
        data=cdl.datasets.ring(7, seed=1),
        field=field,
        dim=3,
        control=control,
        horizon=1.5,
        integrator=integrator,
        cost=cdl.Cost(loss=loss, **FULL_COST),
        lift=lift,
    )


def _mlp(loss="cross_entropy"):
    rng = np.random.default_rng(3)
    x = rng.normal(size=(4, 9))
    y = np.arange(9) % 3
    data = cdl.Dataset(x, y, x[:, :3], y[:3], task="multiclass", name="three")
    return cdl.TrainingProblem(
        data=data, model=cdl.FeedForward((4, 5, 3, 3), activation="tanh"), cost=cdl.Cost(loss=loss, l2=1e-2, l1=1e-3)
    )


PROBLEMS = {
    **{
        f"{type(f).__name__}-{type(c).__name__}-{i}": (lambda f=f, c=c, i=i: _flow(f, c, i))
        for f in FIELDS
        for c in CONTROLS
        for i in ("euler", "rk4")
    },
    "affine-lift-mse": lambda: _flow(cdl.Inside("tanh"), cdl.PiecewiseConstant(n_steps=3), "euler", "mse", "affine"),
    "mlp": _mlp,
    "no-regulariser": lambda: cdl.TrainingProblem(
        data=cdl.datasets.ring(7, seed=1), dim=3, control=cdl.PiecewiseConstant(n_steps=2), cost=cdl.Cost(loss="mse")
    ),
}


def _close(a, b, rtol=RTOL):
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    scale = max(float(np.max(np.abs(b), initial=0.0)), 1e-300)
    assert a.shape == b.shape
    assert float(np.max(np.abs(a - b), initial=0.0)) <= rtol * scale


class TorchReference:
    """Reference derivatives of J_batch (normaliser n) by torch autograd on the torch backend."""

    def __init__(self, problem, normaliser=None, regulariser=True):
        self.problem, self.ops = problem, get_ops("torch")
        self.x = self.ops.asarray(problem.data.x_train)
        self.y = self.ops.asarray(problem.targets)
        self.n = float(self.x.shape[1] if normaliser is None else normaliser)
        self.reg = regulariser

    def parts(self, w, leaf_x0=False):
        """(loss, rest, predictions, states) with the states' graph kept (x_0 a leaf on request)."""
        p, ops = self.problem, self.ops
        readout = p.layout.readout(w, ops)
        states = [p.lift_states(self.x, p.layout.lift(w, ops), ops)]
        if leaf_x0 and not states[0].requires_grad:  # a fixed lift: x_0 gets its costate all the same
            states[0] = states[0].clone().requires_grad_(True)
        for k in range(p.n_steps):
            states.append(p.step(states[-1], p.stage_thetas(w, k, ops), ops, k))
        rest = (p.regulariser(w, ops) if self.reg else 0.0) + 0.0 * w.sum()
        if p.cost.has_running_cost:
            for s in states[1:]:
                rest = rest + p.step_size * p.running_cost(s, self.y, readout, ops) / self.n
        loss = p.terminal_loss(states[-1], self.y, readout, ops) / self.n
        return loss, rest, p.readout(states[-1], readout, ops), states

    def objective_gradient(self, w):
        wt = torch.tensor(w, requires_grad=True)
        loss, rest, _, _ = self.parts(wt)
        (g,) = torch.autograd.grad(loss + rest, wt)
        return float((loss + rest).detach()), float(loss.detach()), g.numpy()

    def costates(self, w):
        loss, rest, _, states = self.parts(torch.tensor(w, requires_grad=True), leaf_x0=True)
        grads = torch.autograd.grad(loss + rest, states)
        return [-g.numpy() for g in grads], states

    def gauss_newton(self, w, v):
        p = self.problem
        wt, vt = torch.tensor(w), torch.tensor(v)

        def predictions(z):
            return self.parts(z)[2]

        yhat, jv = torch.func.jvp(predictions, (wt,), (vt,))
        loss_sum = lambda out: p.terminal_loss(out, self.y, {}, self.ops) / self.n  # noqa: E731
        _, hu = torch.func.jvp(torch.func.grad(loss_sum), (yhat,), (jv,))
        _, vjp = torch.func.vjp(predictions, wt)
        (gv,) = vjp(hu)
        _, hrest = torch.func.jvp(torch.func.grad(lambda z: self.parts(z)[1]), (wt,), (vt,))
        return (gv + hrest).numpy()


@pytest.fixture(params=sorted(PROBLEMS), scope="module")
def problem(request):
    return PROBLEMS[request.param]()


@pytest.mark.filterwarnings("ignore:`torch.jit.script` is deprecated")  # raised inside torch.func.jvp (the reference)
@pytest.mark.parametrize("name", sorted(SPECS))
def test_engine_matches_references(problem, name):
    w = problem.initial_guess(seed=2)
    v = np.random.default_rng(5).normal(size=w.size)
    engine = engines.make_engine(SPECS[name], problem, problem.data.x_train, problem.targets)
    ref = TorchReference(problem)
    ev = engine.evaluate(w)
    j_ref, loss_ref, g_ref = ref.objective_gradient(w)
    j_np, loss_np = problem.objective_terms(w, problem.data.x_train, problem.targets, numpy_ops)
    _close(ev.objective, j_np)
    _close(ev.loss, loss_np)
    _close(ev.objective, j_ref)
    _close(ev.gradient, g_ref)
    _close(ev.predictions, problem.predict(w))
    no_grad = engine.evaluate(w, gradient=False)
    assert no_grad.gradient is None and no_grad.objective == pytest.approx(ev.objective, rel=RTOL)
    _close(engine.gauss_newton_product(w, v), ref.gauss_newton(w, v))
    sweep = engine.sweep(w)
    p_ref, states = ref.costates(w)
    for k, s in enumerate(states):
        _close(sweep.states[k], s.detach().numpy())
        _close(sweep.costates[k], p_ref[k])
    _close(np.concatenate([s.ravel() for s in engine.states(w)]), np.concatenate([s.ravel() for s in sweep.states]))
    ops = get_ops("torch")
    for k in range(problem.n_steps):  # q_k = J_{F,x}(x_k, Θ_k)ᵀ p_{k+1}
        xk = torch.tensor(sweep.states[k], requires_grad=True)
        nxt = problem.step(xk, problem.stage_thetas(ops.asarray(w), k, ops), ops, k)
        (q,) = torch.autograd.grad(nxt, xk, torch.tensor(sweep.costates[k + 1]))
        _close(sweep.q[k], q.numpy())
    after = engine.evaluate(w)  # the torch engine answers from its sweep's J and ∇J: the same values
    _close(after.objective, j_ref)
    _close(after.gradient, g_ref)
    _close(after.predictions, problem.predict(w))
    after.gradient[:] = 0.0  # a caller's in-place change does not reach the next answer
    _close(engine.evaluate(w).gradient, g_ref)
    assert engine.evaluate(w, gradient=False).gradient is None


def test_gradient_matches_finite_differences():
    problem = _flow(cdl.Inside("tanh"), cdl.PiecewiseLinear(n_nodes=2, n_steps=3), "rk4")
    engine = engines.make_engine(engines.Casadi(jit=False), problem, problem.data.x_train, problem.targets)
    w = problem.initial_guess(seed=1)
    d = np.random.default_rng(0).normal(size=w.size)
    eps = 1e-6
    fd = (engine.evaluate(w + eps * d, False).objective - engine.evaluate(w - eps * d, False).objective) / (2 * eps)
    assert engine.evaluate(w).gradient @ d == pytest.approx(fd, rel=1e-7)


@pytest.mark.parametrize("name", sorted(SPECS))
def test_normaliser_and_regulariser_split_the_objective(name):
    """Shards with normaliser = S_total and R on one shard only add up to the full J and ∇J."""
    problem = _flow(cdl.Outside("tanh"), cdl.PiecewiseConstant(n_steps=3), "euler")
    x, y = problem.data.x_train, problem.targets
    w = problem.initial_guess(seed=4)
    full = engines.make_engine(SPECS[name], problem, x, y).evaluate(w)
    a = engines.make_engine(SPECS[name], problem, x[:, :3], y[:, :3], normaliser=7, regulariser=True).evaluate(w)
    b = engines.make_engine(SPECS[name], problem, x[:, 3:], y[:, 3:], normaliser=7, regulariser=False).evaluate(w)
    _close(a.objective + b.objective, full.objective)
    _close(a.loss + b.loss, full.loss)
    _close(a.gradient + b.gradient, full.gradient)


@pytest.mark.parametrize("name", sorted(SPECS))
@pytest.mark.parametrize("which", ["flow", "mlp"])
def test_augmented_hamiltonian(name, which):
    """At the sweep's θ: a_k = n Σ p_{k+1}·x_{k+1}, ∂a_k/∂Θ_k = −n ∂J_data/∂θ_k (Euler, piecewise
    constant, so Θ_k = θ_k), for every ρ; the Hessian matches finite differences of the gradient."""
    if which == "flow":
        problem = _flow(cdl.Inside("tanh"), cdl.PiecewiseConstant(n_steps=3), "euler")
    else:
        problem = _mlp()
    x, y = problem.data.x_train, problem.targets
    w = problem.initial_guess(seed=3)
    engine = engines.make_engine(SPECS[name], problem, x, y, regulariser=False)
    sweep = engine.sweep(w)
    grad = engine.evaluate(w).gradient
    thetas = [np.concatenate(problem.stage_thetas(w, k, numpy_ops)) for k in range(problem.n_steps)]
    lay, n = problem.layout, x.shape[1]
    for rho in (0.0, 0.7):
        stages = engine.augmented_hamiltonian(sweep, thetas, rho)
        assert stages.hessians is None
        for k in range(problem.n_steps):
            expected = n * float(np.sum(sweep.costates[k + 1] * sweep.states[k + 1]))
            assert stages.values[k] == pytest.approx(expected, rel=RTOL, abs=1e-13)
            _close(stages.gradients[k], -n * np.asarray(lay.coefficient(grad, k)))
    rng = np.random.default_rng(1)
    moved = [t + 0.1 * rng.normal(size=t.size) for t in thetas]
    second = engine.augmented_hamiltonian(sweep, moved, 0.7, hessian=True)
    for k in range(problem.n_steps):
        d = rng.normal(size=moved[k].size)
        eps = 1e-6
        plus = [t + (eps * d if i == k else 0) for i, t in enumerate(moved)]
        minus = [t - (eps * d if i == k else 0) for i, t in enumerate(moved)]
        fd = (
            engine.augmented_hamiltonian(sweep, plus, 0.7).gradients[k]
            - engine.augmented_hamiltonian(sweep, minus, 0.7).gradients[k]
        ) / (2 * eps)
        np.testing.assert_allclose(second.hessians[k] @ d, fd, rtol=1e-6, atol=1e-8)
        _close(second.hessians[k], second.hessians[k].T)


def test_compiled_casadi_engine_equals_uncompiled():
    problem = _flow(cdl.Bottleneck("tanh", width=2), cdl.PiecewiseConstant(n_steps=3), "euler")
    x, y = problem.data.x_train, problem.targets
    w = problem.initial_guess(seed=0)
    v = np.ones(w.size)
    plain = engines.make_engine(engines.Casadi(jit=False), problem, x, y)
    compiled = engines.make_engine("casadi", problem, x, y)
    assert compiled.info["name"] == "casadi" and "compile" in compiled.info
    _close(compiled.evaluate(w).gradient, plain.evaluate(w).gradient)
    _close(compiled.gauss_newton_product(w, v), plain.gauss_newton_product(w, v))


@pytest.mark.parametrize(
    ("engine", "message"),
    [
        (3, "engine=3: must be an engine name or an EngineSpec, not int"),
        (None, "engine=None: must be an engine name or an EngineSpec, not NoneType"),
        ("gpu", "engine='gpu': must be one of ['auto', 'casadi', 'dask', 'torch'] or an EngineSpec"),
    ],
)
def test_a_bad_engine_is_one_spec_error_wherever_it_is_given(engine, message):
    problem = _mlp()
    attempts = {
        "make_engine": lambda: engines.make_engine(engine, problem, problem.data.x_train, problem.targets),
        "Direct": lambda: cdl.Direct(nlp="lbfgsb", engine=engine),
        "MSA": lambda: cdl.load_solver("emsa", engine=engine),
        "check_engine": lambda: engines.check_engine(engine),
    }
    for attempt in attempts.values():
        with pytest.raises(cdl.SpecError) as caught:
            attempt()
        assert str(caught.value) == message
    engines.check_engine(engines.Torch())  # a spec object and every registered name pass
    for name in engines.ENGINES:
        engines.check_engine(name)


def test_bad_engine_specs_are_spec_errors():
    problem = _mlp()
    with pytest.raises(cdl.SpecError, match="engine"):
        engines.make_engine("nope", problem, problem.data.x_train, problem.targets)
    with pytest.raises(cdl.SpecError, match="parallelization"):
        engines.Casadi(parallelization="openmp")
    with pytest.raises(cdl.SpecError, match="parallelization=\\['thread'\\]: must be one of"):
        engines.Casadi(parallelization=["thread"])
    with pytest.raises(cdl.SpecError, match="jit='no': must be True or False"):
        engines.Casadi(jit="no")
    assert engines.Casadi(jit=np.bool_(False)).jit is False  # numpy scalars are stored as Python ones
    with pytest.raises(cdl.SpecError, match="engine"):
        cdl.Direct(transcription="multiple_shooting", engine="torch")


def test_casadi_model_is_cached_per_problem():
    problem = _mlp()
    assert engines.casadi_model(problem) is engines.casadi_model(problem)
    assert engines.casadi_model(problem, "thread") is not engines.casadi_model(problem)
    assert not hasattr(problem, "casadi")


def _ring(n_steps=4, samples=30):
    return cdl.TrainingProblem(
        data=cdl.datasets.ring(samples, seed=0),
        dim=3,
        control=cdl.PiecewiseConstant(n_steps=n_steps),
        cost=cdl.Cost(loss="logistic", l2=1e-3),
    )


def test_auto_keeps_the_engine_the_timing_says(monkeypatch):
    from control_dl.engines import _auto

    problem = _ring()
    x, y = problem.data.x_train, problem.targets
    for fast, slow in (("torch", "casadi"), ("casadi", "torch")):
        fake = {fast: 1e-3, slow: 5e-3}
        monkeypatch.setattr(_auto, "time_evaluation", lambda engine, w, fake=fake: fake[engine.name])
        engine = engines.make_engine("auto", problem, x, y)
        assert engine.name == fast
        assert engine.info["auto"]["timings_s"] == fake
        assert engine.info["auto"]["reason"].startswith(f"{fast} J+grad 1 ms vs {slow} 5 ms")


def test_a_solvers_casadi_options_reach_the_names_casadi_and_auto(monkeypatch):
    """make_engine(..., casadi=Casadi(jit=False)): the one place where a solver's jit reaches the engine."""
    from control_dl.engines import _auto

    problem = _ring()
    x, y = problem.data.x_train, problem.targets
    monkeypatch.setattr(_auto, "time_evaluation", lambda engine, w: 1e-3 if engine.name == "casadi" else 5e-3)
    uncompiled = engines.Casadi(jit=False)
    assert engines.make_engine("casadi", problem, x, y, casadi=uncompiled).info["jit"] is False
    assert engines.make_engine("auto", problem, x, y, casadi=uncompiled).info["jit"] is False  # auto kept casadi
    assert engines.make_engine(engines.Casadi(jit=True), problem, x, y, casadi=uncompiled).info["jit"] is True
    assert cdl.MSA(jit=False).bind_engine(problem, x, y).info["jit"] is False
    assert cdl.Direct(jit=False).bind_engine(problem, x, y).info["jit"] is False


def test_auto_prescreen_skips_casadi_on_wide_states_and_says_why(monkeypatch):
    from control_dl.engines import _auto

    problem = _mlp()
    monkeypatch.setattr(_auto, "CASADI_MAX_WIDTH", 5)  # widths (4, 5, 3, 3): the widest is 5
    engine = engines.make_engine("auto", problem, problem.data.x_train, problem.targets)
    assert engine.name == "torch"
    assert "state width 5 >= 5" in engine.info["auto"]["skipped"]["casadi"]
    assert "only torch" in engine.info["auto"]["reason"]
    assert engine.info["auto"]["timings_s"] == {}  # nothing timed, no NaN placeholder in saved results


def test_cuda_engine(problem_name="mlp"):
    problem = _mlp()
    if not torch.cuda.is_available():
        with pytest.raises(cdl.SpecError, match="device"):
            engines.make_engine(engines.Torch(device="cuda"), problem, problem.data.x_train, problem.targets)
        pytest.skip("no CUDA device here: only the SpecError is checked")
    w = problem.initial_guess(seed=1)
    gpu = engines.make_engine(engines.Torch(device="cuda"), problem, problem.data.x_train, problem.targets)
    cpu = engines.make_engine(engines.Torch(), problem, problem.data.x_train, problem.targets)
    _close(gpu.evaluate(w).gradient, cpu.evaluate(w).gradient, 1e-9)
    _close(gpu.sweep(w).costates[0], cpu.sweep(w).costates[0], 1e-9)


def test_torch_spec_errors():
    with pytest.raises(cdl.SpecError, match="device"):
        engines.Torch(device="tpu")
    for bad in (0, "2", 2.0, True):
        with pytest.raises(cdl.SpecError, match=f"threads={bad!r}: must be an integer >= 1"):
            engines.Torch(threads=bad)
    assert type(engines.Torch(threads=np.int64(2)).threads) is int
    with pytest.raises(cdl.SpecError, match="engine"):
        cdl.Direct(hessian="exact", engine="torch")
    with pytest.raises(cdl.SpecError, match="engine"):
        cdl.Direct(nlp="fatrop", transcription="multiple_shooting", engine=engines.Torch())


def test_torch_engine_restores_threads():
    problem = _ring()
    engine = engines.make_engine(engines.Torch(threads=2), problem, problem.data.x_train, problem.targets)
    before = torch.get_num_threads()
    engine.evaluate(problem.initial_guess(0))
    assert torch.get_num_threads() == before


@pytest.mark.parametrize(
    "options",
    [
        dict(nlp="lbfgsb", tol=1e-10, max_iter=300),
        dict(nlp="trust-ncg", tol=1e-8, max_iter=100),
        dict(nlp="ipopt", hessian="lbfgs", tol=1e-10, max_iter=300),
    ],
    ids=["lbfgsb", "trust-ncg", "ipopt-lbfgs"],
)
def test_single_shooting_on_torch_equals_casadi(options, tmp_path):
    """The same NLP solved through either engine reaches the same optimum; the result says which ran."""
    problem = cdl.TrainingProblem(
        data=cdl.datasets.sin(20, seed=0),
        model=cdl.FeedForward((1, 4, 1), activation="tanh"),
        cost=cdl.Cost(loss="mse", l2=0.1),
    )
    results = {}
    for name in ("casadi", "torch"):
        results[name] = cdl.solve(problem, cdl.Direct(engine=name, **options), progress=False)
        assert results[name].engine["name"] == name
        assert results[name].status == "converged"
    assert results["torch"].objective == pytest.approx(results["casadi"].objective, rel=1e-8)
    np.testing.assert_allclose(results["torch"].w, results["casadi"].w, rtol=1e-4, atol=1e-6)
    assert "engine=torch" in results["torch"].summary()
    path = results["torch"].save(tmp_path / "r.npz")
    assert cdl.Result.load(path).engine == results["torch"].engine


def test_auto_solve_records_its_choice():
    result = cdl.solve(_ring(), cdl.Direct(nlp="lbfgsb", max_iter=5), progress=False)
    assert result.engine["name"] in ("casadi", "torch")
    assert set(result.engine["auto"]["timings_s"]) == {"casadi", "torch"}
    assert "auto: " in result.summary()
