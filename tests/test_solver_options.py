"""Options never vanish: every option of every public solver reaches its back-end or raises.

Modelled on python-control's ``kwargs_test.py``: a table names, for every field of every public
solver and options class, the test that proves the option acts (or is refused); a walk over the
classes fails when a field has no entry. The tests below spy on the back-end calls (``casadi.nlpsol``,
``scipy.optimize.minimize``) to see the options the back-end receives.
"""

from __future__ import annotations

import dataclasses
import itertools
import warnings
from pathlib import Path

import casadi as ca
import numpy as np
import pytest

import control_dl as cdl
from control_dl._catalog import resolve
from control_dl._toml import read_toml
from control_dl.solvers import _lbfgsb
from control_dl.solvers.base import Recorder, make_result, solver_spec
from control_dl.solvers.catalog import SOLVER_KINDS, solver_from_options

OPTIONS_CLASSES = (cdl.IpoptOptions, cdl.LbfgsbOptions, cdl.TrustNcgOptions, cdl.FatropOptions, cdl.SqpmethodOptions)

#: (class, field) -> the test (module:function) that shows the option reaching its back-end or
#: raising a SpecError where it cannot act
REACHES = {
    # Direct: structure and shared options
    (cdl.Direct, "transcription"): "test_direct:test_transcriptions_and_hessians_reach_the_same_optimum",
    (cdl.Direct, "hessian"): "test_direct:test_transcriptions_and_hessians_reach_the_same_optimum",
    (cdl.Direct, "nlp"): "test_solver_options:test_backend_options_reach_their_backend",
    (cdl.Direct, "max_iter"): "test_direct:test_max_iter_is_a_status",
    (cdl.Direct, "tol"): "test_solver_options:test_backend_options_reach_their_backend",
    (cdl.Direct, "verbose"): "test_solver_options:test_options_that_cannot_act_raise",
    (cdl.Direct, "record_every"): "test_solver_options:test_fatrop_records_every_iteration_and_honours_the_target",
    (cdl.Direct, "checkpoint"): "test_checkpoint:test_solvers_checkpoint_the_iterate_every_k_iterations",
    (cdl.Direct, "checkpoint_every"): "test_checkpoint:test_solvers_checkpoint_the_iterate_every_k_iterations",
    (cdl.Direct, "collocation_degree"): "test_solver_options:test_options_that_cannot_act_raise",
    (cdl.Direct, "collocation_scheme"): "test_solver_options:test_options_that_cannot_act_raise",
    (cdl.Direct, "jit"): "test_direct:test_compiled_objective_with_jacobian_gives_ipopt_the_same_iterates",
    (cdl.Direct, "target_loss"): "test_solver_options:test_fatrop_records_every_iteration_and_honours_the_target",
    (cdl.Direct, "subsample"): "test_direct:test_subsample_and_thread_map",
    (cdl.Direct, "parallelization"): "test_solver_options:test_options_that_cannot_act_raise",
    (cdl.Direct, "gauss_newton_damping"): "test_solver_options:test_gauss_newton_damping_reaches_trust_ncg",
    (cdl.Direct, "engine"): "test_solver_options:test_the_engine_option_reaches_the_scipy_backends",
    # Direct: one options object per back-end
    (cdl.Direct, "ipopt_options"): "test_solver_options:test_an_ipopt_option_set_by_the_user_is_the_one_ipopt_used",
    (cdl.Direct, "lbfgsb_options"): "test_solver_options:test_backend_options_reach_their_backend",
    (cdl.Direct, "trust_ncg_options"): "test_solver_options:test_trust_ncg_gets_its_own_options_without_warnings",
    (cdl.Direct, "fatrop_options"): "test_solver_options:test_backend_options_reach_their_backend",
    (cdl.Direct, "sqpmethod_options"): "test_solver_options:test_backend_options_reach_their_backend",
    # MSA
    (cdl.MSA, "rho"): "test_msa:test_step_control_catches_increases_of_plain_msa",
    (cdl.MSA, "inner"): "test_msa:test_other_inner_solvers_descend_and_respect_bounds",
    (cdl.MSA, "inner_iters"): "test_msa:test_presets_and_option_validation",
    (cdl.MSA, "max_iter"): "test_msa:test_mini_batches_run_and_record_the_full_objective",
    (cdl.MSA, "batch_size"): "test_msa:test_mini_batches_run_and_record_the_full_objective",
    (cdl.MSA, "tol"): "test_msa:test_pmp_residual_small_at_the_end",
    (cdl.MSA, "seed"): "test_msa:test_mini_batches_run_and_record_the_full_objective",
    (cdl.MSA, "adapt_rho"): "test_msa:test_step_control_catches_increases_of_plain_msa",
    (cdl.MSA, "rho_factor"): "test_solver_options:test_options_that_cannot_act_raise",
    (cdl.MSA, "rho_min"): "test_solver_options:test_options_that_cannot_act_raise",
    (cdl.MSA, "rho_max"): "test_msa:test_step_control_caps_rho",
    (cdl.MSA, "readout"): "test_msa:test_exact_readout_is_optimal_for_the_states_and_goes_below_the_inexact_one",
    (cdl.MSA, "memory"): "test_msa:test_pmp_residual_small_at_the_end",
    (cdl.MSA, "jit"): "test_msa:test_emsa_decreases_the_objective_monotonically_on_ring",
    (cdl.MSA, "engine"): "test_msa:test_msa_evaluates_through_the_engine_it_is_given",
    (cdl.MSA, "record_every"): "test_checkpoint:test_solvers_checkpoint_the_iterate_every_k_iterations",
    (cdl.MSA, "checkpoint"): "test_checkpoint:test_solvers_checkpoint_the_iterate_every_k_iterations",
    (cdl.MSA, "checkpoint_every"): "test_checkpoint:test_solvers_checkpoint_the_iterate_every_k_iterations",
    # TorchTrainer
    (cdl.TorchTrainer, "optimizer"): "test_torch_trainer:test_presets_load",
    (cdl.TorchTrainer, "lr"): "test_torch_trainer:test_first_sgd_step_uses_the_casadi_gradient",
    (cdl.TorchTrainer, "momentum"): "test_solver_options:test_options_that_cannot_act_raise",
    (cdl.TorchTrainer, "epochs"): "test_torch_trainer:test_presets_load",
    (cdl.TorchTrainer, "batch_size"): "test_torch_trainer:test_lbfgs_decreases_and_minibatch_adam_is_reproducible",
    (cdl.TorchTrainer, "adjoint"): "test_torch_trainer:test_adjoint_gradient_equals_backprop",
    (cdl.TorchTrainer, "threads"): "test_torch_trainer:test_threads_are_restored",
    (cdl.TorchTrainer, "seed"): "test_torch_trainer:test_lbfgs_decreases_and_minibatch_adam_is_reproducible",
    (cdl.TorchTrainer, "tol"): "test_torch_trainer:test_status_converged_and_diverged",
    (cdl.TorchTrainer, "record_every"): "test_checkpoint:test_solvers_checkpoint_the_iterate_every_k_iterations",
    (cdl.TorchTrainer, "checkpoint"): "test_checkpoint:test_solvers_checkpoint_the_iterate_every_k_iterations",
    (cdl.TorchTrainer, "checkpoint_every"): "test_checkpoint:test_solvers_checkpoint_the_iterate_every_k_iterations",
}
for _cls in OPTIONS_CLASSES:  # every field of every options object: seen by the spy at its back-end
    for _field in dataclasses.fields(_cls):
        REACHES[(_cls, _field.name)] = "test_solver_options:test_every_field_of_an_options_object_reaches_its_backend"


@pytest.fixture(autouse=True)
def _jit_cache(tmp_path_factory, monkeypatch):
    """JIT libraries go to a per-session temporary cache, never to the user's cache or the cwd."""
    monkeypatch.setenv("CONTROL_DL_CACHE", str(tmp_path_factory.getbasetemp() / "cache"))


def test_every_option_of_every_public_solver_has_a_test():
    public = [*SOLVER_KINDS.values(), *OPTIONS_CLASSES]
    fields = {(cls, f.name) for cls in public for f in dataclasses.fields(cls)}
    assert fields - set(REACHES) == set(), "options without a test that they act"
    assert set(REACHES) - fields == set(), "the table names options that no longer exist"
    tests = Path(__file__).parent
    for target in set(REACHES.values()):
        module, name = target.split(":")
        assert f"def {name}(" in (tests / f"{module}.py").read_text(), target


class _Spied(Exception):
    """Raised by a spy after it captured the back-end call (stops the solve there)."""


@pytest.fixture
def spy(monkeypatch):
    """Capture the options of the next ``casadi.nlpsol`` / ``scipy.optimize.minimize`` call."""
    calls: dict = {}

    def nlpsol(name, plugin, nlp, options):
        if name.startswith("probe"):  # options objects check their entries with a tiny probe NLP
            return real_nlpsol(name, plugin, nlp, options)
        calls.update(plugin=plugin, options=options)
        raise _Spied

    def minimize(fun, x0, method=None, options=None, **kwargs):
        calls.update(plugin=method, options=options, hessp=kwargs.get("hessp"))
        raise _Spied

    real_nlpsol = ca.nlpsol
    monkeypatch.setattr(ca, "nlpsol", nlpsol)
    monkeypatch.setattr(_lbfgsb, "minimize", minimize)
    return calls


def _run(problem, solver):
    with pytest.raises(_Spied):
        cdl.solve(problem, solver, progress=False)


@pytest.fixture(scope="module")
def tiny():
    return cdl.load_problem("sin", n_samples=6, dim=2, n_steps=3)


BACKENDS = {
    "ipopt": ({}, cdl.IpoptOptions(mu_strategy="adaptive", extra={"bound_relax_factor": 0.0})),
    "lbfgsb": ({}, cdl.LbfgsbOptions(maxcor=7, maxls=9)),
    "trust-ncg": ({}, cdl.TrustNcgOptions(initial_trust_radius=0.5, eta=0.1)),
    "fatrop": ({"transcription": "multiple_shooting"}, cdl.FatropOptions(mu_init=0.5)),
    "sqpmethod": ({}, cdl.SqpmethodOptions(max_iter_ls=5)),
}


def _backend_view(calls: dict) -> dict:
    """The options as the back-end sees them (IPOPT and fatrop nest theirs)."""
    options = calls["options"]
    return options.get(calls["plugin"], options) if calls["plugin"] in ("ipopt", "fatrop") else options


@pytest.mark.parametrize("nlp", list(BACKENDS))
def test_backend_options_reach_their_backend(spy, tiny, nlp):
    structure, options = BACKENDS[nlp]
    field = options.direct_field
    _run(tiny, cdl.Direct(nlp=nlp, max_iter=17, tol=1e-5, **structure, **{field: options}))
    seen = _backend_view(spy)
    for key, value in options.plugin_options().items():
        assert seen[key] == value, key
    max_iter = "maxiter" if nlp in ("lbfgsb", "trust-ncg") else "max_iter"
    assert seen[max_iter] == (16 if nlp == "fatrop" else 17)  # fatrop runs max_iter + 1 iterations (see _fatrop)
    solver = cdl.Direct(nlp=nlp, max_iter=17, tol=1e-5, **structure, **{field: options})
    assert {k: v for k, v in solver.solver_options().items() if k in seen} == {
        k: v for k, v in seen.items() if k in solver.solver_options()
    }  # solver_options() is what the back-end gets, for every nlp (it raised AttributeError but for IPOPT)
    assert seen["gtol" if nlp in ("lbfgsb", "trust-ncg") else "tol" if nlp != "sqpmethod" else "tol_pr"] == 1e-5


@pytest.mark.parametrize("cls", OPTIONS_CLASSES, ids=lambda c: c.__name__)
def test_every_field_of_an_options_object_reaches_its_backend(spy, tiny, cls):
    """Each field set alone (to a valid non-default value) appears in the back-end's options."""
    probes = {
        "mu_strategy": "adaptive",
        "watchdog_shortened_iter_trigger": 0,
        "limited_memory_max_history": 12,
        "limited_memory_initialization": "scalar1",  # the library default is scalar2
        "nlp_scaling_method": "none",
        "acceptable_tol": 1e-4,
        "acceptable_iter": 3,
        "extra": {"max_iter": 4},
        "maxcor": 5,
        "gtol": 1e-3,
        "ftol": 1e-3,
        "maxfun": 77,
        "maxls": 7,
        "initial_trust_radius": 0.5,
        "max_trust_radius": 50.0,
        "eta": 0.1,
        "mu_init": 0.5,
        "bound_push": 0.05,
        "qpsol": "qpoases",
        "max_iter_ls": 2,
        "min_step_size": 1e-8,
    }
    structure = BACKENDS[cls.nlp][0]
    for f in dataclasses.fields(cls):
        options = cls(**{f.name: probes[f.name]})
        _run(tiny, cdl.Direct(nlp=cls.nlp, **structure, **{cls.direct_field: options}))
        seen = _backend_view(spy)
        expected = probes[f.name] if f.name != "extra" else None
        if expected is None:
            assert seen["max_iter"] == 4
        else:
            assert seen[f.name] == expected, f.name


@pytest.mark.parametrize(("nlp", "other"), list(itertools.permutations(BACKENDS, 2)))
def test_options_of_another_backend_are_a_spec_error(nlp, other):
    structure, _ = BACKENDS[nlp]
    options = BACKENDS[other][1]
    with pytest.raises(cdl.SpecError, match=options.direct_field):
        cdl.Direct(nlp=nlp, **structure, **{options.direct_field: options})
    # the same as a TOML table
    with pytest.raises(cdl.SpecError, match=options.direct_field):
        cdl.Direct(nlp=nlp, **structure, **{options.direct_field: options.plugin_options()})


@pytest.mark.parametrize(
    ("options", "field"),
    [
        ({"nlp": "lbfgsb", "ipopt_options": {"mu_strategy": "adaptive"}}, "ipopt_options"),
        ({"nlp": "lbfgsb", "ipopt_options": cdl.IpoptOptions()}, "ipopt_options"),  # empty: was dropped
        ({"nlp": "lbfgsb", "ipopt_options": {}}, "ipopt_options"),
        ({"nlp": "ipopt", "fatrop_options": cdl.FatropOptions()}, "fatrop_options"),
        ({"nlp": "lbfgsb", "fatrop_options": {"mu_init": 1.0}}, "fatrop_options"),
        ({"ipopt_options": {}, "lbfgsb_options": {"maxcor": 5}}, "lbfgsb_options"),
        ({"nlp": "trust-ncg", "lbfgsb_options": {"maxcor": 5}}, "lbfgsb_options"),
        ({"hessian": "exact", "gauss_newton_damping": 1e-2}, "gauss_newton_damping"),
        ({"hessian": "lbfgs", "gauss_newton_damping": 1e-2}, "gauss_newton_damping"),
        ({"collocation_degree": 2}, "collocation_degree"),
        ({"transcription": "multiple_shooting", "collocation_scheme": "radau"}, "collocation_scheme"),
        ({"nlp": "lbfgsb", "verbose": True}, "verbose"),
        ({"nlp": "trust-ncg", "parallelization": "thread"}, "parallelization"),
        ({"nlp": "lbfgsb", "engine": "torch", "jit": False}, "jit"),  # CasADi options on the torch engine
        ({"nlp": "lbfgsb", "engine": cdl.engines.Torch(), "jit": False, "parallelization": "thread"}, "jit"),
        ({"nlp": "lbfgsb", "engine": cdl.engines.Casadi(), "jit": False}, "jit"),  # the spec's own options win
        ({"nlp": "lbfgsb", "engine": cdl.engines.Casadi(parallelization="thread")}, "engine"),  # compiled: serial
        ({"lbfgsb_options": {"maxcorr": 5}, "nlp": "lbfgsb"}, "maxcorr"),
        ({"fatrop_options": {"no_such": 1}, "nlp": "fatrop", "transcription": "multiple_shooting"}, "no_such"),
        ({"sqpmethod_options": {"no_such": 1}, "nlp": "sqpmethod"}, "no_such"),
        ({"ipopt_options": {"mu_strategy": 3}}, "mu_strategy"),
    ],
)
def test_options_that_cannot_act_raise(options, field):
    with pytest.raises(cdl.SpecError, match=field):
        cdl.Direct(**options)


@pytest.mark.parametrize(
    ("options", "field"),
    [
        ({"optimizer": "adam", "momentum": 0.9}, "momentum"),
        ({"optimizer": "lbfgs", "momentum": 0.5}, "momentum"),
        ({"optimizer": "sgd", "momentum": 1.5}, r"momentum=1\.5: must be in \[0, 1\)"),  # heavy ball diverges
        ({"optimizer": "sgd", "momentum": 1.0}, "momentum"),
    ],
)
def test_torch_options_that_cannot_act_raise(options, field):
    with pytest.raises(cdl.SpecError, match=field):
        cdl.TorchTrainer(**options)
    assert cdl.TorchTrainer(optimizer="sgd", momentum=0.9).momentum == 0.9


@pytest.mark.parametrize("field", ["rho_factor", "rho_min", "rho_max"])
def test_step_control_options_need_the_step_control(field):
    with pytest.raises(cdl.SpecError, match=field):
        cdl.MSA(adapt_rho=False, **{field: 7.0 if field != "rho_min" else 0.5})


def test_collocation_options_default_only_with_collocation():
    assert cdl.Direct(transcription="collocation").collocation_degree == 3
    assert cdl.Direct(transcription="collocation").collocation_scheme == "legendre"
    assert cdl.Direct().collocation_degree is None
    assert cdl.Direct().backend_options == cdl.IpoptOptions()
    assert cdl.Direct().lbfgsb_options is None  # only the back-end in use holds an options object


def test_an_ipopt_option_set_by_the_user_is_the_one_ipopt_used(small_ring):
    """IPOPT's own iteration count obeys the user's ``max_iter`` over Direct's, and a typed field
    (the watchdog switched off) changes IPOPT's iterates: a monotone history."""
    solver = cdl.Direct(hessian="lbfgs", max_iter=50, ipopt_options=cdl.IpoptOptions(extra={"max_iter": 3}))
    result = cdl.solve(small_ring, solver, progress=False)
    assert result.iterations == 3 and "Maximum_Iterations_Exceeded" in result.message
    problem = cdl.load_problem("ring", dim=3, n_samples=100)
    objectives = {}
    for trigger in (None, 0):
        # IPOPT's own L-BFGS start (scalar1): long first steps that the default watchdog lets climb
        options = cdl.IpoptOptions(watchdog_shortened_iter_trigger=trigger, limited_memory_initialization="scalar1")
        result = cdl.solve(problem, cdl.Direct(hessian="lbfgs", max_iter=150, ipopt_options=options), progress=False)
        objectives[trigger] = np.array([h["objective"] for h in result.history])
    assert np.any(np.diff(objectives[None]) > 1e-12 * objectives[None][:-1])  # IPOPT's default watchdog climbs
    assert np.all(np.diff(objectives[0]) <= 1e-12 * objectives[0][:-1])


def test_trust_ncg_gets_its_own_options_without_warnings(small_ring, spy):
    _run(small_ring, cdl.Direct(nlp="trust-ncg", max_iter=5, trust_ncg_options={"max_trust_radius": 10.0}))
    assert spy["plugin"] == "trust-ncg"
    assert set(spy["options"]) == {"maxiter", "gtol", "initial_trust_radius", "max_trust_radius", "eta"}
    assert spy["options"]["max_trust_radius"] == 10.0


def test_trust_ncg_runs_without_an_optimize_warning(small_ring):
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # scipy's OptimizeWarning: "Unknown solver options: maxcor, ..."
        result = cdl.solve(small_ring, cdl.Direct(nlp="trust-ncg", max_iter=3), progress=False)
    assert len(result.history) == 4


def test_gauss_newton_damping_reaches_trust_ncg(small_ring, spy):
    _run(small_ring, cdl.Direct(nlp="trust-ncg", gauss_newton_damping=0.5))
    w = small_ring.initial_guess(0)
    v = np.random.default_rng(1).normal(size=w.size)
    damped = spy["hessp"](w, v)
    _run(small_ring, cdl.Direct(nlp="trust-ncg"))
    np.testing.assert_allclose(damped - spy["hessp"](w, v), 0.5 * v, rtol=1e-10, atol=1e-12)


def test_the_engine_option_reaches_the_scipy_backends(small_ring, monkeypatch):
    from control_dl.solvers import direct

    specs = []

    def spy(spec, *args, **kwargs):
        specs.append(spec)
        return make_engine(spec, *args, **kwargs)

    make_engine = direct.make_engine
    monkeypatch.setattr(direct, "make_engine", spy)
    spec = cdl.engines.Casadi(jit=False)
    uncompiled = cdl.solve(small_ring, cdl.Direct(nlp="lbfgsb", engine=spec, max_iter=3), progress=False)
    assert specs and all(s == spec for s in specs)
    assert "not compiled" in uncompiled.message
    compiled = cdl.solve(small_ring, cdl.Direct(nlp="lbfgsb", max_iter=3), progress=False)
    assert uncompiled.history[1]["objective"] == pytest.approx(compiled.history[1]["objective"], rel=1e-9)
    with pytest.raises(cdl.SpecError, match="engine"):
        cdl.Direct(transcription="multiple_shooting", engine="torch")


def test_fatrop_records_every_iteration_and_honours_the_target(tiny):
    solver = cdl.Direct(nlp="fatrop", transcription="multiple_shooting", record_every=1)
    full = cdl.solve(tiny, solver, progress=False)
    assert full.status == "converged" and full.iterations > 10
    assert len(full.snapshots) == full.iterations + 1 == len(full.history)  # one per iteration, not 3
    loss0 = full.history[0]["loss"]
    at_start = cdl.solve(tiny, dataclasses.replace(solver, target_loss=1.01 * loss0), progress=False)
    assert at_start.status == "converged" and at_start.iterations == 0  # the start is already below the target
    target = 0.5 * loss0
    early = cdl.solve(tiny, dataclasses.replace(solver, target_loss=target), progress=False)
    first = next(h["iter"] for h in full.history if h["loss"] <= target)
    assert early.status == "converged" and early.loss <= target
    assert early.iterations == first < full.iterations  # stopped at the first iterate below the target


def test_toml_tables_map_to_their_options_objects(tmp_path):
    preset = tmp_path / "mine.toml"
    preset.write_text(
        'solver = "direct"\nhessian = "lbfgs"\n[ipopt_options]\nmu_strategy = "adaptive"\nbound_relax_factor = 0.0\n'
    )
    solver = cdl.load_solver(preset)
    assert solver.ipopt_options == cdl.IpoptOptions(mu_strategy="adaptive", extra={"bound_relax_factor": 0.0})
    assert solver.solver_options()["bound_relax_factor"] == 0.0
    preset.write_text('solver = "direct"\nnlp = "lbfgsb"\n[lbfgsb_options]\nmaxcor = 5\n')
    assert cdl.load_solver(preset).lbfgsb_options == cdl.LbfgsbOptions(maxcor=5)
    preset.write_text('solver = "direct"\nnlp = "lbfgsb"\n[ipopt_options]\nmu_strategy = "adaptive"\n')
    with pytest.raises(cdl.SpecError, match="ipopt_options"):
        cdl.load_solver(preset)
    assert cdl.load_solver("lbfgsb", lbfgsb_options={"maxcor": 9}).lbfgsb_options.maxcor == 9
    # an override table updates the preset's table key by key; an options object replaces it
    preset.write_text(
        'solver = "direct"\nhessian = "lbfgs"\n[ipopt_options]\nlimited_memory_initialization = "scalar1"\n'
    )
    merged = cdl.load_solver(preset, ipopt_options={"mu_strategy": "adaptive"}).ipopt_options
    assert merged == cdl.IpoptOptions(mu_strategy="adaptive", limited_memory_initialization="scalar1")
    replaced = cdl.load_solver(preset, ipopt_options=cdl.IpoptOptions(mu_strategy="adaptive")).ipopt_options
    assert replaced == cdl.IpoptOptions(mu_strategy="adaptive")


@pytest.mark.parametrize("name", cdl.list_solvers())
def test_every_preset_key_is_an_option_and_round_trips(name):
    doc = read_toml(resolve("solvers", name))
    kind = doc.pop("solver")
    doc.pop("description")
    cls = SOLVER_KINDS[kind]
    assert set(doc) <= {f.name for f in dataclasses.fields(cls)}
    solver = cdl.load_solver(name)
    for key, value in doc.items():
        option = getattr(solver, key)
        expected = type(option).from_table(value) if isinstance(value, dict) else value  # a table: its object
        assert option == expected, key
    spec = solver_spec(solver)
    assert spec.pop("solver") == kind
    assert solver_from_options(kind, spec) == solver  # what a Result stores rebuilds the same solver
    with pytest.raises(cdl.SpecError, match="no_such_option"):
        cdl.load_solver(name, no_such_option=1)
    budget, other = ("epochs", "max_iter") if kind == "torch" else ("max_iter", "epochs")
    with pytest.raises(cdl.SpecError, match=rf"^{other}=3: unknown option .*\(they take {budget}= instead\)"):
        cdl.load_solver(name, **{other: 3})  # the iteration budget as another solver kind spells it


class _GridSearch:
    """A user-defined solver: the documented protocol only (``name`` and ``run``), no ``kind``."""

    name = "grid-search"

    def run(self, problem, w0, progress):
        recorder = Recorder(problem, 3, progress)
        best = w0
        for i, scale in enumerate((1.0, 0.5, 0.0)):
            w = scale * w0
            j, loss = problem.objective_and_loss(w)
            recorder.log(i, w, j, loss)
            best = w if j < problem.objective(best) else best
        return make_result(problem, self, best, "converged", "grid done", recorder, 2)


def test_a_user_defined_solver_works_with_solve(small_ring):
    solver = _GridSearch()
    assert isinstance(solver, cdl.Solver)
    result = cdl.solve(small_ring, solver, progress=False)
    assert result.solver == "grid-search" and result.solver_spec == {"solver": "_GridSearch"}
    assert result.objective == pytest.approx(min(h["objective"] for h in result.history))
    assert len(result.history) == 3


def test_options_objects_are_exported():
    for cls in OPTIONS_CLASSES:
        assert getattr(cdl, cls.__name__) is cls
        assert cls.__doc__ and "Parameters" in cls.__doc__
        for f in dataclasses.fields(cls):
            assert f"{f.name} :" in cls.__doc__, (cls.__name__, f.name)
