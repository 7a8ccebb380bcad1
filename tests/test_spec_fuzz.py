"""Bad input: random spec documents give a valid TrainingProblem or a SpecError, nothing else.

The documents mix valid keys with junk keys and values of every TOML type (and a few that TOML
cannot express), with sizes kept small so that building the data stays cheap.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import control_dl as cdl
from control_dl.problems.spec import SCHEMA, SECTIONS

SMALL_INTS = ("n_samples", "n_test", "n_in", "dim", "width", "n_steps", "n_nodes", "n_modes", "seed")
NAMES = {
    "dataset": ["ring", "spiral", "circle", "xor", "square_1d", "spheres", "sin"],
    "model": ["resnet", "mlp"],
    "field": ["inside", "outside", "bottleneck", "nope"],
    "activation": ["tanh", "sigmoid", "softplus", "relu", "identity", "cos"],
    "lift": ["pad", "affine", "other"],
    "control": ["piecewise_constant", "piecewise_linear", "time_invariant", "spectral", "x"],
    "integrator": ["euler", "rk4", "heun"],
    "basis": ["legendre", "fourier", "chebyshev"],
    "loss": ["mse", "logistic", "cross_entropy", "hinge"],
}

junk_scalars = st.one_of(
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.booleans(),
    st.text(max_size=8),
    st.dates(),
    st.datetimes(),
    st.times(),
    st.none(),
)
junk = st.recursive(
    junk_scalars,
    lambda inner: st.one_of(st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=6), inner, max_size=3)),
    max_leaves=6,
)


def plausible(key: str) -> st.SearchStrategy:
    """Values near the valid range of one leaf key (including its edges and wrong types)."""
    kind = SCHEMA[key][1]
    if key in NAMES:
        return st.sampled_from(NAMES[key])
    if key in SMALL_INTS:
        upper = 6 if key in ("n_steps", "n_modes", "n_nodes") else 30
        huge = st.sampled_from([2**31, 2**63, 2**70, -(2**70)])
        return st.one_of(st.integers(min_value=-3, max_value=upper), huge)
    if key == "widths":  # often [n_in = 2, ..., n_out = 1] as the ring data needs, to reach the sizes
        width = st.one_of(st.integers(min_value=-1, max_value=6), st.sampled_from([2**31, 2**70]))
        return st.one_of(st.lists(width, max_size=5), st.lists(width, max_size=3).map(lambda m: [2, *m, 1]))
    if kind is float:
        return st.one_of(
            st.floats(min_value=-2.0, max_value=2.0),
            st.sampled_from([0, 1, 0.5, 1e-300, 1e300, math.inf, -math.inf, math.nan]),
        )
    return junk


def leaf_value(key: str) -> st.SearchStrategy:
    return st.one_of(plausible(key), plausible(key), plausible(key), junk)


def _small(key: str, value: object) -> object:
    """Keep sizes that the spec accepts small enough to build quickly (huge ones must be refused)."""
    if key in SMALL_INTS and isinstance(value, int) and 30 < value < 2**31:
        return 30 if key in ("n_samples", "n_test") else 6
    if key == "widths" and isinstance(value, list):
        return [_small("width", v) for v in value]
    return value


@st.composite
def spec_documents(draw: st.DrawFn) -> dict:
    doc: dict = {}
    for section in SECTIONS:
        if draw(st.integers(0, 9)) == 0:
            doc[section] = draw(junk)
            continue
        keys = [k for k, (s, _) in SCHEMA.items() if s == section]
        chosen = draw(st.lists(st.sampled_from(keys), unique=True, max_size=len(keys)))
        table = {k: draw(leaf_value(k)) for k in chosen}
        if draw(st.integers(0, 9)) == 0:
            table[draw(st.text(max_size=6))] = draw(junk)
        doc[section] = table
    for section, table in doc.items():
        if isinstance(table, dict):
            doc[section] = {k: _small(k, v) for k, v in table.items()}
    if draw(st.integers(0, 9)) == 0:
        doc[draw(st.sampled_from(["name", "description", "extra", "data"]))] = draw(junk)
    return doc


def _check_problem(problem: cdl.TrainingProblem) -> None:
    assert isinstance(problem, cdl.TrainingProblem)
    w = problem.initial_guess(0)
    assert w.shape == (problem.n_params,) and np.all(np.isfinite(w))


@settings(max_examples=1000, deadline=None, suppress_health_check=list(HealthCheck))
@given(doc=spec_documents())
def test_problem_from_random_documents_is_valid_or_spec_error(doc: dict) -> None:
    try:
        problem = cdl.problem_from_spec(doc)
    except cdl.SpecError:
        return
    _check_problem(problem)


@pytest.mark.parametrize("key", [*sorted(SCHEMA), "bogus"])
@settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
@given(data=st.data())
def test_overrides_are_valid_or_spec_error(key: str, data: st.DataObject) -> None:
    value = _small(key, data.draw(leaf_value(key) if key in SCHEMA else junk))
    base = data.draw(
        st.sampled_from(
            [
                {"data": {"dataset": "ring", "n_samples": 20}, "model": {"dim": 3}, "control": {"n_steps": 3}},
                {"data": {"dataset": "ring", "n_samples": 20}, "model": {"model": "mlp", "widths": [2, 3, 1]}},
            ]
        )
    )
    try:
        problem = cdl.problem_from_spec(base, **{key: value})
    except cdl.SpecError:
        return
    _check_problem(problem)


@settings(max_examples=200, deadline=None, suppress_health_check=list(HealthCheck))
@given(content=st.one_of(st.binary(max_size=80), st.text(max_size=80).map(str.encode)))
def test_load_problem_from_random_files(tmp_path_factory: pytest.TempPathFactory, content: bytes) -> None:
    path = tmp_path_factory.mktemp("fuzz") / "p.toml"
    path.write_bytes(content)
    try:
        problem = cdl.load_problem(path, n_samples=10)
    except cdl.SpecError:
        return
    _check_problem(problem)


def test_fuzz_found_cases() -> None:
    """Inputs the fuzzer found raising something other than SpecError (kept as regressions)."""
    cases = [
        {"data": {"dataset": "ring", "n_samples": 10}, "model": {"dim": 2**70}},
        {"data": {"dataset": "ring", "n_samples": 10}, "control": {"n_steps": 2**70}},
        {"data": {"dataset": "ring", "n_samples": 10}, "model": {"field": "bottleneck", "width": 2**40}},
        {"data": {"dataset": "ring", "n_samples": 10}, "model": {"model": "mlp", "widths": [2, 2**31, 1]}},
    ]
    for doc in cases:
        with pytest.raises(cdl.SpecError):
            cdl.problem_from_spec(doc)
