"""Export: the torch module, the CasADi function and the ONNX file compute result.predict."""

from __future__ import annotations

import os
import re
import sys

import casadi as ca
import numpy as np
import pytest

import control_dl as cdl
from control_dl import export
from control_dl.cli import main

torch = pytest.importorskip("torch")

RNG = np.random.default_rng(11)
#: raw inputs on very different scales, so a missing standardisation would show
X = RNG.normal(size=(60, 3)) * [1.0, 20.0, 0.1] + [5.0, -3.0, 0.0]
SCORE = (X[:, 0] - 5.0) + (X[:, 1] + 3.0) / 20.0 - 10.0 * X[:, 2] ** 2
LABELS = np.digitize(SCORE, np.quantile(SCORE, [1 / 3, 2 / 3]))  # three classes of 20


def trained(problem: cdl.TrainingProblem) -> cdl.Result:
    return cdl.solve(problem, cdl.Direct(hessian="lbfgs", nlp="lbfgsb", max_iter=15), progress=False)


PROBLEMS = {
    "resnet, standardised, affine lift, rk4": lambda data: cdl.TrainingProblem(
        data=data, dim=4, lift="affine", integrator="rk4", control=cdl.PiecewiseConstant(n_steps=4),
        cost=cdl.Cost(loss="cross_entropy", l2=1e-3),
    ),
    "spectral control, softplus bottleneck": lambda data: cdl.TrainingProblem(
        data=data, dim=5, field=cdl.Bottleneck(width=2, activation="softplus"),
        control=cdl.Spectral(n_modes=3, n_steps=6), cost=cdl.Cost(loss="cross_entropy"),
    ),
    "mlp": lambda data: cdl.TrainingProblem(
        data=data, model=cdl.FeedForward(widths=(3, 6, 3)), cost=cdl.Cost(loss="cross_entropy")
    ),
}  # fmt: skip


@pytest.fixture(scope="module", params=sorted(PROBLEMS))
def result(request) -> cdl.Result:
    data = cdl.Dataset.from_arrays(X, LABELS, standardize=True)
    return trained(PROBLEMS[request.param](data))


def test_torch_module_equals_predict(result):
    module = result.to_torch()
    out = module(torch.as_tensor(X)).detach().numpy()
    np.testing.assert_allclose(out, result.predict(X, layout="samples"), rtol=0, atol=1e-10)
    assert module.w.dtype == torch.float64 and module.w.requires_grad
    one = module(torch.as_tensor(X[:1])).detach().numpy()  # one sample, S = 1
    np.testing.assert_allclose(one, result.predict(X[:1], layout="samples"), rtol=0, atol=1e-10)


def test_casadi_function_equals_predict_with_exact_derivatives(result):
    phi = result.to_casadi()
    assert phi.size1_in(0) == 3 and phi.size1_out(0) == 3
    values = np.array(phi.map(X.shape[0])(X.T))
    np.testing.assert_allclose(values, result.predict(X.T), rtol=0, atol=1e-10)
    x = ca.SX.sym("x", 3)
    jacobian = ca.Function("J", [x], [ca.jacobian(phi(x), x)])
    module = result.to_torch()
    for sample in X[:4]:
        exact = np.array(jacobian(sample))
        autograd = torch.autograd.functional.jacobian(lambda z: module(z[None, :])[0], torch.as_tensor(sample))
        np.testing.assert_allclose(exact, autograd.numpy(), rtol=1e-10, atol=1e-12)  # another AD engine
        steps = np.eye(3) * 1e-6 * np.maximum(1.0, np.abs(sample))
        central = np.stack(
            [
                (result.predict((sample + e)[:, None]) - result.predict((sample - e)[:, None]))[:, 0] / (2 * e.sum())
                for e in steps
            ],
            axis=1,
        )
        np.testing.assert_allclose(exact, central, rtol=1e-5, atol=1e-6)  # finite differences


def test_onnx_file_equals_predict(result, tmp_path):
    onnxruntime = pytest.importorskip("onnxruntime")
    path = result.to_onnx(tmp_path / "net.onnx")
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    out = session.run(None, {"X": X})[0]
    np.testing.assert_allclose(out, result.predict(X, layout="samples"), rtol=0, atol=1e-9)


def test_result_export_writes_the_format_asked(result, tmp_path, caplog):
    path = result.export("casadi", tmp_path / "net.casadi")
    phi = ca.Function.load(str(path))
    np.testing.assert_allclose(np.array(phi.map(X.shape[0])(X.T)), result.predict(X.T), rtol=0, atol=1e-10)
    assert not caplog.records
    with caplog.at_level("WARNING", logger="control_dl.export"):
        odd = result.export("casadi", tmp_path / "net.onnx")  # the format asked, whatever the name says
    assert [r.getMessage() for r in caplog.records] == [f"writing a casadi export to {odd}: its suffix is not .casadi"]
    assert odd.read_bytes() == path.read_bytes()
    with pytest.raises(cdl.SpecError, match="format='keras'"):
        result.export("keras", tmp_path / "net.h5")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["net.casadi", "net.onnx"]


def test_cli_export_writes_files_other_programs_load(tmp_path, capsys):
    pytest.importorskip("onnxruntime")
    import onnxruntime

    data = cdl.Dataset.from_arrays(X, LABELS, standardize=True)
    result = trained(PROBLEMS["resnet, standardised, affine lift, rk4"](data))
    saved = result.save(tmp_path / "run")
    expected = result.predict(X, layout="samples")
    for fmt in ("torch", "casadi", "onnx"):
        assert main(["export", str(tmp_path / "run"), "--format", fmt]) == 0
    program = torch.export.load(tmp_path / "run.pt2").module()
    np.testing.assert_allclose(program(torch.as_tensor(X)).detach().numpy(), expected, rtol=0, atol=1e-10)
    phi = ca.Function.load(str(tmp_path / "run.casadi"))
    np.testing.assert_allclose(np.array(phi.map(60)(X.T)).T, expected, rtol=0, atol=1e-10)
    session = onnxruntime.InferenceSession(str(tmp_path / "run.onnx"), providers=["CPUExecutionProvider"])
    np.testing.assert_allclose(session.run(None, {"X": X})[0], expected, rtol=0, atol=1e-9)
    assert saved.is_file() and "wrote" in capsys.readouterr().out
    assert main(["export", str(tmp_path / "none.npz"), "--format", "onnx"]) == 2


def test_missing_export_extra_is_a_spec_error_naming_it(result, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "onnxruntime", None)
    with pytest.raises(cdl.SpecError, match=r"control_dl\[export\]"):
        result.to_onnx(tmp_path / "net.onnx")
    assert not (tmp_path / "net.onnx").exists()


@pytest.mark.parametrize("fmt", ["torch", "casadi", "onnx"])
def test_an_unusable_output_path_is_refused_before_any_work(fmt, tmp_path, monkeypatch, capsys):
    data = cdl.Dataset.from_arrays(X, LABELS, standardize=True)
    result = trained(PROBLEMS["mlp"](data))
    saved = result.save(tmp_path / "run")
    (tmp_path / "folder").mkdir()
    (tmp_path / "file").write_text("")

    def no_work(*args, **kwargs):
        raise AssertionError("the export started before its output path was checked")

    monkeypatch.setattr(export, "to_torch", no_work)
    monkeypatch.setattr(export, "to_casadi", no_work)
    bad = {
        str(tmp_path / "folder"): "is a directory",
        str(tmp_path / "file/net.out"): r"cannot be created: .*file is a file, not a folder",
    }
    if os.path.isdir("/proc/self"):  # writable by its permission bits (root), yet it refuses files
        bad["/proc/control-dl/net.out"] = r"cannot be written: (/proc refuses new files|no write permission)"
    for out, reason in bad.items():
        with pytest.raises(cdl.SpecError, match=rf"path=.*{out}'.*{reason}"):
            export.write_export(result.problem, result.w, fmt, out)
        assert main(["export", str(saved), "--format", fmt, "--out", out]) == 2
        err = capsys.readouterr().err
        assert re.search(rf"--out=.*{out}'.*{reason}", err) and "Traceback" not in err
    with pytest.raises(cdl.SpecError, match="is a directory"):
        result.to_onnx(tmp_path / "folder")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file", "folder", "run.npz"]


def test_onnx_export_of_a_network_with_huge_outputs_is_checked_relative_to_their_size(tmp_path):
    """A user's diverged L-BFGS-B result (outputs ~1e18) exported to torch, .pt2 and CasADi but not to
    ONNX: the check compared the runtimes to 1e-12 absolute, and float64 round-off is 1e-10 relative."""
    pytest.importorskip("onnxruntime")
    problem = cdl.load_problem(
        "ring", dim=3, n_steps=10, n_samples=100, field="outside", activation="identity", horizon=100
    )
    diverged = cdl.solve(
        problem, cdl.load_solver("lbfgsb", max_iter=20), w0=20 * problem.initial_guess(0), progress=False
    )
    assert diverged.status == "diverged"
    w = diverged.w
    path = export.write_export(problem, w, "onnx", tmp_path / "huge.onnx")
    import onnxruntime

    x = np.random.default_rng(0).normal(size=(4, 2))
    got = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run(None, {"X": x})[0]
    expected = problem.predict(w, x.T).T
    assert np.max(np.abs(expected)) > 1e12  # the case: huge outputs
    np.testing.assert_allclose(got, expected, rtol=1e-9)


def test_predict_reads_torch_tensors_also_with_requires_grad(result):
    """A user's report: predict(torch.ones(3, 2, requires_grad=True), layout="samples") raised numpy's
    RuntimeError; torch users hold their data as such tensors."""
    torch = pytest.importorskip("torch")
    x = np.random.default_rng(0).normal(size=(5, result.problem.data.n_in))
    tensor = torch.tensor(x, requires_grad=True)
    np.testing.assert_array_equal(result.predict(tensor, layout="samples"), result.predict(x, layout="samples"))
