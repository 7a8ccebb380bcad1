"""Result.load(path, problem=) and load_checkpoint check the problem's fingerprint, spec or not.

A problem built in Python has no spec; its result and its checkpoints used to be attached to any
problem with as many parameters (another activation, another standardisation, other data).
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import control_dl as cdl
from control_dl.problems import fields
from control_dl.problems.training import check_same_network, problem_fingerprint
from control_dl.solvers.checkpoint import load_checkpoint

RNG = np.random.default_rng(0)
X = RNG.normal(size=(40, 2)) * 10 + 5
Y = (X[:, 0] > 5).astype(int)


def built(
    activation: str = "tanh",
    seed: int = 0,
    standardize: bool = True,
    cost: cdl.Cost | None = None,
    **options: Any,
) -> cdl.TrainingProblem:
    """A problem built in Python (no spec): tiny, 2 inputs, d = 3, 3 steps."""
    data = cdl.Dataset.from_arrays(X, Y, standardize=standardize, seed=seed)
    options.setdefault("control", cdl.PiecewiseConstant(n_steps=3))
    options.setdefault("field", fields.Inside(activation=activation))
    return cdl.TrainingProblem(
        data=data,
        dim=3,
        cost=cost or cdl.Cost(loss="logistic"),
        **options,
    )


@pytest.fixture(scope="module")
def saved(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, cdl.Result]:
    problem = built()
    assert problem.spec is None
    result = cdl.solve(problem, cdl.load_solver("lbfgsb", max_iter=5), progress=False)
    return result.save(tmp_path_factory.mktemp("fp") / "r.npz"), result


#: a problem with the saved one's n_params but another network → the entry the refusal names
OTHER_NETWORKS = {
    "activation": (lambda: built("relu"), "network.model.field.activation is 'tanh'"),
    "field": (lambda: built(field=fields.Outside()), "network.model.field.type is 'Inside'"),
    "split seed (standardisation)": (lambda: built(seed=3), r"network.inputs.mean\[0\]"),
    "no standardisation": (lambda: built(standardize=False), "network.inputs.mean is"),
    "horizon": (lambda: built(horizon=2.0), "network.grid.horizon is 1.0 in the result, 2.0"),
    "integrator": (lambda: built(integrator="rk4"), "network.grid.integrator is 'euler'"),
}


@pytest.mark.parametrize("case", sorted(OTHER_NETWORKS))
def test_load_refuses_a_python_built_problem_with_another_network(case: str, saved: tuple) -> None:
    path, result = saved
    make, named = OTHER_NETWORKS[case]
    other = make()
    assert other.spec is None and other.n_params == result.w.size  # the length of w does not tell them apart
    with pytest.raises(
        cdl.SpecError, match="problem=.*has another network than the one this result was solved on: " + named
    ):
        cdl.Result.load(path, problem=other)


def test_load_accepts_the_same_network_rebuilt_or_on_other_data(saved: tuple) -> None:
    path, result = saved
    again = built()  # another object, the same network
    np.testing.assert_array_equal(
        cdl.Result.load(path, problem=again).predict(X, layout="samples"), result.predict(X, layout="samples")
    )
    # the same standardisation, another cost and other test data: evaluating the network is legitimate
    same_net = cdl.TrainingProblem(
        data=cdl.Dataset(
            again.data.x_train,
            again.data.y_train,
            again.data.x_train[:, :5],
            again.data.y_train[:5],
            task="binary",
            mean=again.data.mean,
            scale=again.data.scale,
        ),
        dim=3,
        control=cdl.PiecewiseConstant(n_steps=3),
        cost=cdl.Cost(loss="mse", l2=0.1),
    )
    assert cdl.Result.load(path, problem=same_net).problem is same_net


def test_the_saved_fingerprint_is_the_problems(saved: tuple) -> None:
    path, result = saved
    loaded = cdl.Result.load(path)
    assert loaded.fingerprint == json.loads(json.dumps(problem_fingerprint(result.problem)))
    assert loaded.fingerprint["network"]["model"]["field"] == {"type": "Inside", "activation": "tanh"}


def _without_fingerprint(path: Path, tmp_path: Path) -> Path:
    """The file as a control_dl without fingerprints wrote it (metadata without the entry)."""
    arrays = dict(np.load(path))
    meta = json.loads(str(arrays["metadata"]))
    del meta["fingerprint"]
    arrays["metadata"] = np.array(json.dumps(meta))
    old = tmp_path / "old.npz"
    np.savez(old, **arrays)
    return old


def test_an_older_file_is_checked_on_its_specs_model(saved: tuple, tmp_path: Path) -> None:
    path, result = saved
    old = _without_fingerprint(path, tmp_path)
    assert cdl.Result.load(old).fingerprint is None
    with pytest.raises(
        cdl.SpecError, match=r"problem=.*another network \(network.model.field.activation is 'tanh' there"
    ):
        cdl.Result.load(old, problem=built("relu"))
    assert cdl.Result.load(old, problem=built()).w.size == result.w.size


def test_check_same_network_compares_models_with_and_without_a_spec(small_ring: cdl.TrainingProblem) -> None:
    """The diagnostics' check: a problem built in Python was never checked, and one described by
    ``describe`` (with ``lift = "pad"`` written out) was refused for the catalog's equal network."""
    data, cost = small_ring.data, small_ring.cost
    relu = cdl.TrainingProblem(data=data, dim=3, field=fields.Inside(activation="relu"), cost=cost)
    with pytest.raises(
        cdl.SpecError, match=r"result=.*another network \(network.model.field.activation is 'tanh' there"
    ):
        check_same_network(relu, small_ring.spec)
    described = cdl.problems.spec.describe(cdl.TrainingProblem(data=data, dim=3, cost=cost))
    assert described["model"] != small_ring.spec["model"]  # the same network, spelled otherwise
    check_same_network(small_ring, described)
    check_same_network(cdl.load_problem("spiral", n_samples=30, dim=3, n_steps=5), small_ring.spec)  # other data


@pytest.mark.parametrize(
    "other",
    [{"activation": "relu"}, {"control": "piecewise_linear", "n_nodes": 4}, {"control": "spectral", "n_modes": 4}],
)
def test_a_result_of_another_network_or_control_is_refused_by_solve_and_the_diagnostics(other) -> None:
    """A user's report: a result of a piecewise-constant control (4 steps) was taken by problems with a
    piecewise-linear control of 4 nodes or a spectral one of 4 modes (same n_params): the θ blocks were
    read as other coefficients; solve(w0=result) took even another activation. In memory too (no spec)."""
    problem = cdl.load_problem("ring", n_samples=30, dim=3, n_steps=4)
    result = cdl.solve(problem, cdl.load_solver("lbfgsb", max_iter=5), progress=False)
    python_built = cdl.TrainingProblem(data=problem.data, dim=3, control=cdl.PiecewiseConstant(4), cost=problem.cost)
    in_memory = cdl.solve(python_built, cdl.load_solver("lbfgsb", max_iter=5), progress=False)
    changed = cdl.load_problem("ring", n_samples=30, dim=3, n_steps=4, **other)
    assert changed.n_params == problem.n_params
    for given in (result, in_memory):
        with pytest.raises(cdl.SpecError, match=r"w0=.*another network \(network\.(model|control)"):
            cdl.solve(changed, cdl.load_solver("lbfgsb", max_iter=1), w0=given, progress=False)
        with pytest.raises(cdl.SpecError, match=r"result=.*another network"):
            cdl.diagnostics.pmp_residual(changed, given)
    rk4 = cdl.load_problem("ring", n_samples=30, dim=3, n_steps=4, integrator="rk4")  # a legitimate evaluation
    assert cdl.diagnostics.pmp_residual(rk4, result).residual >= 0


# ------------------------------------------------------------------------------------ checkpoints
def _relabelled(problem: cdl.TrainingProblem) -> cdl.TrainingProblem:
    """``problem`` with one training label flipped: the same inputs and standardisation."""
    data = problem.data
    labels = data.y_train.copy()
    labels[0] = 1 - labels[0]
    other = cdl.Dataset(
        data.x_train, labels, data.x_test, data.y_test, task=data.task, mean=data.mean, scale=data.scale
    )
    return dataclasses.replace(problem, data=other)


#: a Python-built problem like ``built()`` but for one thing → the entry the refusal names
OTHER_PROBLEMS = {
    "data": (lambda: _relabelled(built()), "data.y_train is"),
    "loss": (lambda: built(cost=cdl.Cost(loss="mse")), "cost.cost.loss is 'logistic'"),
    "l2": (lambda: built(cost=cdl.Cost(loss="logistic", l2=1e-2)), "cost.cost.l2 is 0.0"),
    "horizon": (lambda: built(horizon=5.0), "network.grid.horizon is 1.0"),
    "activation": (lambda: built("relu"), "network.model.field.activation"),
}


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("ck") / "ck.npz"
    cdl.solve(built(), cdl.TorchTrainer(epochs=2, checkpoint=str(path), checkpoint_every=2), progress=False)
    return path


@pytest.mark.parametrize("case", sorted(OTHER_PROBLEMS))
def test_a_checkpoint_of_another_python_built_problem_is_refused(case: str, checkpoint: Path) -> None:
    make, named = OTHER_PROBLEMS[case]
    other = make()
    assert other.spec is None and other.n_params == built().n_params
    with pytest.raises(cdl.SpecError, match="checkpoint=.*was written for a different problem: " + named):
        load_checkpoint(checkpoint, other)


def test_a_checkpoint_resumes_the_same_python_built_problem(checkpoint: Path) -> None:
    assert load_checkpoint(checkpoint, built()).shape == (built().n_params,)
