"""Every figure renders on a tiny solve and shows what it claims (checked through its artists)."""

from __future__ import annotations

import os
from pathlib import Path

import matplotlib
import matplotlib.pyplot as plt
import numpy as np
import pytest
from matplotlib.collections import PathCollection, QuadMesh
from PIL import Image

import control_dl as cdl
from control_dl import plotting
from control_dl.cli import write_standard_figures

matplotlib.use("Agg")


def quick(problem: cdl.TrainingProblem) -> cdl.Result:
    """A few IPOPT iterations: enough for a Result with history and a non-random w."""
    return cdl.solve(problem, cdl.Direct(hessian="lbfgs", max_iter=3), seed=0, progress=False)


@pytest.fixture(scope="module")
def ring3():
    problem = cdl.load_problem("ring", n_samples=30, dim=3, n_steps=4)
    return problem, quick(problem)


@pytest.fixture(scope="module")
def ring2():
    problem = cdl.load_problem("ring", n_samples=30, dim=2, n_steps=4)
    return problem, quick(problem)


@pytest.fixture(autouse=True)
def close_figures():
    yield
    plt.close("all")


def scatters(ax):
    return [c for c in ax.collections if isinstance(c, PathCollection)]


def has_colorbar(ax) -> bool:
    return len(ax.figure.axes) > 1


@pytest.mark.parametrize("name", ["ring2", "ring3"])
def test_layers_one_panel_per_layer_with_points_and_grid(name, request):
    problem, result = request.getfixturevalue(name)
    axes = plotting.layers(problem, result, layers=[0, 2, -1], n_lines=5)
    assert len(axes) == 3
    states = problem.forward(result.w)
    for ax, k in zip(axes, [0, 2, 4], strict=True):
        assert ax.get_xlabel() == "$x_1$" and ax.get_ylabel() == "$x_2$"
        assert f"layer {k}" in ax.get_title()
        (points,) = scatters(ax)
        assert len(ax.lines) == 2 * 5  # grid lines
        if problem.dim == 2:  # the points drawn are the states after k layers
            np.testing.assert_allclose(points.get_offsets(), states[k].T)
    assert (axes[0].get_zlabel() == "$x_3$") if problem.dim == 3 else axes[0].name == "rectilinear"
    assert axes[0].get_legend() is not None  # one entry per class
    assert len(axes[0].get_legend().get_texts()) == 2


def test_layers_rejects_bad_input(ring2):
    problem, result = ring2
    with pytest.raises(ValueError, match="layer"):
        plotting.layers(problem, result, layers=[9])
    sq = cdl.load_problem("square_1d", n_samples=10, dim=1, n_steps=2)
    with pytest.raises(ValueError, match="d >= 2"):
        plotting.layers(sq, quick(sq))


def test_grid_deformation_lines_are_images_of_the_input_grid(ring2):
    problem, result = ring2
    ax0 = plotting.grid_deformation(problem, result, layer=0, n_lines=4, resolution=7)
    assert len(ax0.lines) == 8 and ax0.get_xlabel() == "$x_1$"
    first = ax0.lines[0].get_xydata()
    assert np.ptp(first[:, 0]) == 0.0  # at layer 0 a line x_1 = const is straight
    ax = plotting.grid_deformation(problem, result, layer=-1, n_lines=4, resolution=7)
    image = problem.forward(result.w, first.T)[-1]
    np.testing.assert_allclose(ax.lines[0].get_xydata(), image.T)
    assert len(ax.get_legend().get_texts()) == 2
    assert len(scatters(ax)[0].get_offsets()) == 30


def test_grid_deformation_3d(ring3):
    problem, result = ring3
    ax = plotting.grid_deformation(problem, result, n_lines=3)
    assert ax.name == "3d" and ax.get_zlabel() == "$x_3$" and len(ax.lines) == 6


def test_turnpike_figure_draws_the_diagnostic(ring3):
    # issue 16: the figure computed its own state gap (RMS to 0) and sampled θ at midpoints, so its
    # gap at t = 0 read 0.69 where the diagnostic said 0.579; now every line is the report's arrays
    problem, result = ring3
    longer = cdl.load_problem("ring", n_samples=30, dim=3, n_steps=8, horizon=2.0)
    pairs = [(problem, result), (longer, quick(longer))]
    reports = [cdl.diagnostics.turnpike(p, r) for p, r in pairs]
    for quantity, attribute in (("theta", "theta_norm"), ("state", "state_gap"), ("error", "error_t")):
        ax = plotting.turnpike(pairs, quantity)
        assert len(ax.lines) == 2
        assert ax.get_xlabel() == "time t (depth)" and ax.get_ylabel()
        assert [t.get_text() for t in ax.get_legend().get_texts()] == ["T = 1", "T = 2"]
        for line, report in zip(ax.lines, reports, strict=True):
            np.testing.assert_array_equal(line.get_xdata(), report.t)
            np.testing.assert_array_equal(line.get_ydata(), getattr(report, attribute))
        t, values = plotting.turnpike_series(problem, result, quantity)
        np.testing.assert_array_equal(values, getattr(reports[0], attribute))
    with pytest.raises(cdl.SpecError, match="quantity='speed'"):
        plotting.turnpike_series(problem, result, "speed")
    # called like the other figures, (problem, result): a plain TypeError before (a fresh user's report)
    with pytest.raises(cdl.SpecError, match=r"quantity=None: .*'theta', 'state', 'error'"):
        plotting.turnpike_series(problem, result)
    with pytest.raises(cdl.SpecError, match="result="):
        plotting.turnpike_series(problem, None, "theta")
    with pytest.raises(ValueError):
        plotting.turnpike([])


def test_turnpike_figure_of_a_sweep_draws_its_reports():
    solver = cdl.Direct(hessian="lbfgs", max_iter=3)
    sweep = cdl.diagnostics.turnpike_sweep(cdl.load_problem("ring", n_samples=20, dim=3, n_steps=4), solver, [1.0, 2.0])
    ax = plotting.turnpike(sweep, "state", log=False)
    for line, report in zip(ax.lines, sweep.reports, strict=True):
        np.testing.assert_array_equal(line.get_xydata(), np.column_stack([report.t, report.state_gap]))
    assert ax.get_legend().get_texts()[0].get_text().startswith("T = 1 (μ = ")


@pytest.mark.parametrize("points", [None, np.array([[0.0, 0.1], [0.2, -0.1], [0.3, 0.3]])])
def test_morse_contours(ring3, points):
    problem, result = ring3
    ax = plotting.morse_contours(problem, result, critical_points=points, resolution=30)
    assert has_colorbar(ax) and ax.get_xlabel() == "$x_1$" and "augmented" in ax.get_title()
    assert len(scatters(ax)[0].get_offsets()) == 30
    if points is None:
        assert not ax.lines
    else:
        # (m, 2) input is read as m points, each marked by its type from the Hessian's eigenvalue signs
        assert sum(len(line.get_xdata()) for line in ax.lines) == 3
        w, h = result.w, 1e-2

        def phi(x):
            return problem.predict(w, np.asarray(x, float).reshape(2, -1))[0, 0]

        expected = {}
        for p in points:
            hess = np.array(
                [
                    [
                        (phi(p + a + b) - phi(p + a - b) - phi(p - a + b) + phi(p - a - b)) / (4 * h * h)
                        for b in np.eye(2) * h
                    ]
                    for a in np.eye(2) * h
                ]
            )
            lam = np.linalg.eigvalsh(hess)
            kind = "maximum" if lam.max() < 0 else "minimum" if lam.min() > 0 else "saddle"
            expected[kind] = expected.get(kind, 0) + 1
        labels = sorted(t.get_text() for t in ax.get_legend().get_texts())
        assert labels == sorted(f"∇Φ = 0: {kind} ({n})" for kind, n in expected.items())
        for line in ax.lines:
            kind = line.get_label().split(": ")[1].split(" (")[0]
            assert line.get_marker() == {"maximum": "^", "minimum": "v", "saddle": "X"}[kind]


def test_morse_critical_point_types_from_eigenvalue_signs(ring3):
    from control_dl.plotting._morse import critical_point_types

    lam = np.array([[-2.0, -1.0], [0.5, 3.0], [-1.0, 2.0], [0.0, 1.0]])
    assert critical_point_types(lam) == ["maximum", "minimum", "saddle", "degenerate"]
    problem, result = ring3
    ax = plotting.morse_contours(problem, result, critical_points=np.zeros((0, 2)), resolution=20)
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["no critical point (∇Φ ≠ 0)"]


def test_morse_contours_needs_scalar_2d_output(small_sin):
    with pytest.raises(ValueError, match="n_in"):
        plotting.morse_contours(small_sin, quick(small_sin))


def test_theta_heatmap_shows_theta(ring3):
    problem, result = ring3
    ax = plotting.theta_heatmap(problem, result)
    (mesh,) = [c for c in ax.collections if isinstance(c, QuadMesh)]
    values = mesh.get_array().reshape(problem.layout.p, problem.n_steps)
    mid = problem.times[:-1] + 0.5 * problem.step_size
    np.testing.assert_allclose(values, problem.theta(result.w, mid).T)
    assert has_colorbar(ax) and ax.get_xlabel() and ax.get_ylabel()
    assert [t.get_text() for t in ax.get_yticklabels()] == ["A 3×3", "b 3"]


def test_one_d_figures():
    problem = cdl.load_problem("square_1d", n_samples=12, dim=2, n_steps=3)
    result = quick(problem)
    ax = plotting.time_paths(problem, result, coord=1)
    assert len(ax.lines) == 12 and has_colorbar(ax) and ax.get_ylabel() == "$x_{2}(t)$"
    ax = plotting.regression_fit(problem, result)
    assert len(ax.lines) == 1 and len(scatters(ax)) == 2 and len(ax.get_legend().get_texts()) == 3
    with pytest.raises(ValueError, match="coord"):
        plotting.time_paths(problem, result, coord=2)


def test_existing_figures_render(ring3):
    problem, result = ring3
    assert plotting.decision_boundary(problem, result, resolution=20).get_xlabel() == "$x_1$"
    assert len(plotting.trajectories(problem, result).lines) == 30
    assert len(plotting.convergence([result, result]).lines) == 2


@pytest.mark.parametrize("frames", [None, [0, 2, 4, 2]])
def test_animate_flow_writes_gif_with_one_frame_per_layer(ring2, tmp_path, frames):
    problem, result = ring2
    path = plotting.animate_flow(problem, result, tmp_path / "flow.gif", frames=frames, fps=5)
    with Image.open(path) as gif:
        assert gif.format == "GIF"
        assert gif.n_frames == (problem.n_steps + 1 if frames is None else len(frames))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["flow.gif"]  # no temporary file left
    umask = os.umask(0o022)
    os.umask(umask)
    assert path.stat().st_mode & 0o777 == 0o666 & ~umask  # like any new file (mkstemp gave 0o600)


def test_animate_flow_rejects_bad_arguments(ring3, tmp_path):
    problem, result = ring3
    with pytest.raises(ValueError, match="gif"):
        plotting.animate_flow(problem, result, tmp_path / "flow.mp4")
    with pytest.raises(ValueError, match="fps"):
        plotting.animate_flow(problem, result, tmp_path / "flow.gif", fps=0)
    assert not list(tmp_path.iterdir())
    (tmp_path / "flow.gif").mkdir()
    with pytest.raises(cdl.SpecError, match=r"path=.*flow\.gif'.*is a directory"):  # before rendering
        plotting.animate_flow(problem, result, tmp_path / "flow.gif")


def test_standard_figures_include_grid_and_heatmap(ring3, tmp_path):
    problem, result = ring3
    names = {p.name for p in write_standard_figures(problem, result, tmp_path)}
    assert names == {
        "convergence.png",
        "theta_heatmap.png",
        "decision_boundary.png",
        "trajectories.png",
        "grid_deformation.png",
    }
    # the same folder for a regression on 1-D inputs: before, the ring's decision boundary and grid
    # deformation stayed beside the new run's figures, as if they were its own (a fresh user's report)
    sin = cdl.load_problem("sin", n_samples=20, n_steps=3)
    again = {p.name for p in write_standard_figures(sin, quick(sin), tmp_path)}
    assert again == {"convergence.png", "theta_heatmap.png", "trajectories.png"}
    assert {p.name for p in tmp_path.iterdir()} == again


def test_the_figures_guide_block_runs_on_its_problem_without_overlaps(monkeypatch, tmp_path):
    # a fresh user's report: the block drew grid_deformation of the quick start's d = 3 ring on 2-D
    # axes (SpecError), and with d = 2 a colour-bar label ran into the next panel's x_2 label
    text = (Path(__file__).resolve().parents[1] / "docs" / "guide" / "figures.md").read_text(encoding="utf-8")
    block = text.split("```python\n", 1)[1].split("```", 1)[0]
    assert 'load_problem("ring", dim=3' in block
    load, solve = cdl.load_problem, cdl.solve
    monkeypatch.setattr(cdl, "load_problem", lambda name, **kw: load(name, **{**kw, "n_samples": 30, "n_steps": 4}))
    few = cdl.Direct(hessian="lbfgs", max_iter=3)
    monkeypatch.setattr(cdl, "solve", lambda problem, solver, **kw: solve(problem, few, seed=0, progress=False))
    monkeypatch.chdir(tmp_path)
    namespace: dict = {}
    exec(block, namespace)  # noqa: S102 — the guide's own example
    fig = namespace["fig"]
    assert (tmp_path / "figures.png").exists() and (tmp_path / "flow.gif").exists()
    fig.canvas.draw()
    boxes = [ax.get_tightbbox() for ax in fig.axes]  # 3 panels and 2 colour bars, with their labels
    for box in boxes:
        assert box.x0 >= 0 and box.y0 >= 0 and box.x1 <= fig.bbox.x1 and box.y1 <= fig.bbox.y1
    panels = [ax.get_tightbbox() for ax in namespace["axes"]]
    colorbars = [ax.get_tightbbox() for ax in fig.axes if ax not in namespace["axes"]]
    assert colorbars[0].x1 <= panels[1].x0 and panels[1].x1 <= panels[2].x0


def test_the_figures_guide_gives_each_functions_signature():
    # it said every figure takes (problem, result, ax=None) and returns the Axes: false for five of them
    import inspect
    import re

    text = (Path(__file__).resolve().parents[1] / "docs" / "guide" / "figures.md").read_text(encoding="utf-8")
    assert "Every figure is one function of `cdl.plotting` taking `(problem, result, ax=None)`" not in text
    rows = [line for line in text.splitlines() if line.startswith("| `") and "| `(" in line]
    documented = {}
    for row in rows:
        names, takes = row.split(" | ")[:2]
        for name in re.findall(r"`(\w+)`", names):
            documented[name] = re.match(r"`\(([^)]*)\)`", takes.strip()).group(1)
    figures = {n for n in dir(plotting) if not n.startswith("_") and inspect.isfunction(getattr(plotting, n))}
    assert figures - {"flow_lines", "grid_lines"} == set(documented)  # the two helpers are not figures
    for name, takes in documented.items():
        params = list(inspect.signature(getattr(plotting, name)).parameters)
        expected = [p.split("=")[0].strip() for p in takes.split(",") if p.strip() not in ("…", "")]
        assert params[: len(expected)] == expected, name


def test_convergence_panels_say_what_they_plot_against(ring3):
    # emsa_sin's two panels (wall time, iteration) had the same title (a fresh user's report)
    _, result = ring3
    by_time = plotting.convergence([result], x="time")
    by_iter = plotting.convergence([result], x="iter")
    assert by_time.get_title() == "objective against wall time" and by_time.get_xlabel() == "wall time [s]"
    assert by_iter.get_title() == "objective against iteration" and by_iter.get_xlabel() == "iteration"


def test_trajectories_of_many_classes_name_the_classes_and_the_coordinates_shown():
    # digits: 3 of 64 coordinates drawn, 10 class colours without a legend (a fresh user's report)
    problem = cdl.load_problem("digits", n_steps=2, test_size=0.9)
    fig = plt.figure()
    ax = plotting.trajectories(problem, quick(problem), ax=fig.add_subplot(111, projection="3d"))
    assert "$x_1$, $x_2$, $x_3$ of the 64 state coordinates" in ax.get_title()
    legend = ax.get_legend()
    texts = [t.get_text() for t in legend.get_texts()]
    assert texts == ["x(0)", "x(T)"] + [f"class {k}" for k in range(10)]
    colours = [matplotlib.colors.to_hex(h.get_color()) for h in legend.legend_handles[2:]]
    assert len(set(colours)) == 10  # one colour per class: no two classes share one
    points = scatters(ax)[0]
    used = {matplotlib.colors.to_hex(c) for c in points.get_facecolors()}
    assert used <= set(colours)
    ring = cdl.load_problem("ring", n_samples=30, dim=3, n_steps=4)
    title = plotting.trajectories(ring, quick(ring)).get_title()
    assert "coordinates" not in title  # d = 3: every coordinate is drawn


def test_3d_panels_keep_their_labels_inside_their_area(ring3):
    # regularisation.png: the 3-D grid's x_3 label ran into the θ heat map's y label beside it
    problem, result = ring3
    fig = plt.figure(figsize=(16, 4), layout="constrained")
    grid = plotting.grid_deformation(problem, result, ax=fig.add_subplot(1, 2, 1, projection="3d"))
    heat = plotting.theta_heatmap(problem, result, ax=fig.add_subplot(1, 2, 2))
    fig.canvas.draw()
    assert grid.get_tightbbox().x1 <= heat.get_tightbbox().x0
