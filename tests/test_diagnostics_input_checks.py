"""Diagnostics that do not apply to a problem refuse with one SpecError that says what they need."""

from __future__ import annotations

import numpy as np
import pytest

import control_dl as cdl

D = cdl.diagnostics


@pytest.fixture(scope="module")
def mlp() -> tuple[cdl.TrainingProblem, np.ndarray]:
    """A feed-forward net 2-4-4-1 (states of widths 2, 4, 4, 1: not a flow)."""
    problem = cdl.load_problem("circle", model="mlp", n_samples=20, widths=[2, 4, 4, 1])
    return problem, problem.initial_guess(0)


def test_turnpike_of_a_layer_stack_is_refused_like_the_other_flow_diagnostics(mlp):
    # it compared zero-padded states of widths 2, 4, 4, 1 and returned a report
    problem, w = mlp
    messages = []
    for call in (
        lambda: D.turnpike(problem, w),
        lambda: D.turnpike_sweep(problem, cdl.Direct(), [1.0]),
        lambda: D.invertibility(problem, w),
    ):
        with pytest.raises(cdl.SpecError) as info:
            call()
        messages.append(str(info.value))
    assert all(m.startswith("problem") and "needs a flow" in m for m in messages), messages
    assert "turnpike needs a flow" in messages[0]


class _Linear:
    """f(x, u) = A x + B u, a user field without lipschitz_sq_bound."""

    def param_shapes(self, dim):
        return {"u": (1,)}

    def __call__(self, x, params, ops):
        return ops.matmul(np.array([[0.0, 1.0], [-1.0, 0.5]]), x) + ops.matmul(np.array([[0.0], [1.0]]), params["u"])


def test_invertibility_of_a_user_field_without_a_bound_names_what_the_certificate_needs():
    # it said "the lipschitz constraint needs …" although no constraint was asked for
    problem = cdl.TrainingProblem(data=cdl.datasets.ring(10, seed=0), field=_Linear(), dim=2)
    with pytest.raises(cdl.SpecError) as info:
        D.invertibility(problem, problem.initial_guess(0))
    message = str(info.value)
    assert message.startswith("field='_Linear'") and "the invertibility certificate needs" in message, message
    assert "lipschitz_sq_bound" in message and "lipschitz constraint" not in message


@pytest.mark.parametrize("horizons", ["1,,2", "1,2,", "1, ,2"])
def test_cli_turnpike_horizons_with_an_empty_entry_is_an_error_naming_the_flag(horizons, tmp_path, capsys):
    # "1,,2" silently ran T = 1 and T = 2
    from control_dl.cli import main

    assert main(["turnpike", "ring", "--horizons", horizons, "--out", str(tmp_path), "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert f"--horizons {horizons!r}" in err and "is not one" in err, err
    assert not any(tmp_path.iterdir())  # refused before any solve


def test_plotting_turnpike_called_as_problem_result_names_the_argument_order():
    # it said "quantity=Result(...)": the problem had been taken as the runs, the result as the quantity
    problem = cdl.load_problem("ring", n_samples=10, dim=3, n_steps=3)
    w = problem.initial_guess(0)
    with pytest.raises(cdl.SpecError) as info:
        cdl.plotting.turnpike(problem, w)
    message = str(info.value)
    assert message.startswith("runs=") and "turnpike([(problem, result)])" in message, message
