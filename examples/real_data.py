"""Real data in, trained model out: scikit-learn's handwritten digits, two solvers, three exports.

The catalog problem ``digits`` (1797 8×8 images, 64 pixel intensities standardised on the training
split, 10 classes) is a 64-dimensional ResNet of 10 Euler steps with a cross-entropy readout. It is
trained with scipy's L-BFGS-B on the single-shooting NLP (the problem's default solver) and with
torch's L-BFGS; the test-set confusion matrices are drawn side by side (``confusion.png``), the
training curves in ``convergence.png``. The better network is exported as a torch module, a CasADi
function and an ONNX file, and each export is checked against ``result.predict`` on the raw test
images. Needs the extras ``datasets`` and ``export`` (``pip install 'control_dl[datasets,export]'``).
"""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import torch
from _shared import save, setup
from sklearn.metrics import ConfusionMatrixDisplay

import control_dl as cdl
from control_dl import plotting
from control_dl.problems.costs import predict_labels

small, out = setup("real_data", __doc__)

# --- model: digits, d = 64, N = 10 steps of x + h tanh(A x + b), cross entropy, l2 = 1e-3 ----------
problem = cdl.load_problem("digits", **(dict(n_steps=2, test_size=0.8) if small else {}))
data = problem.data
print(f"digits: {data.x_train.shape[1]} training / {data.x_test.shape[1]} test images, {problem.n_params} parameters")

# --- solvers: the problem's default (scipy L-BFGS-B on the single-shooting NLP, engine "auto") and
# torch's L-BFGS (strong Wolfe), the baseline a torch user knows -----------------------------------
solvers = {
    "lbfgsb": cdl.load_solver(problem.spec["solver"], **(dict(max_iter=5) if small else {})),
    "torch-lbfgs": cdl.load_solver("torch-lbfgs", **(dict(epochs=5) if small else {})),
}

# --- run: train, then classify the raw test images (predict applies the standardisation itself) ------
raw_test = data.inverse_transform(data.x_test).T  # S × 64 pixel intensities 0..16
results = [cdl.solve(problem, solver, seed=0, progress=False) for solver in solvers.values()]
for result in results:
    print(result.summary())

fig, axes = plt.subplots(1, 2, figsize=(13, 5.6))
for ax, name, result in zip(axes, solvers, results, strict=True):
    labels = predict_labels(data.task, problem.cost.loss, result.predict(raw_test, layout="samples").T)
    shown = ConfusionMatrixDisplay.from_predictions(
        data.y_test, labels, labels=np.arange(data.n_classes), display_labels=data.class_names, ax=ax, colorbar=True
    )
    shown.im_.colorbar.set_label("test images")
    ax.set(xlabel="predicted digit", ylabel="true digit")
    ax.set_title(f"{name}: test accuracy {np.mean(labels == data.y_test):.3f}")
fig.suptitle(f"digits: test-set confusion matrices (ResNet, d = {problem.dim}, N = {problem.n_steps})")
save(fig, out / "confusion.png")

fig, ax = plt.subplots(figsize=(6.5, 4.5))
plotting.convergence(results, ax=ax, x="time")
ax.set_title("digits: training objective J against wall time")
save(fig, out / "convergence.png")

# --- export the better network and check each export against result.predict ----------------------
best = max(results, key=lambda r: r.test_accuracy)
expected = best.predict(raw_test, layout="samples")
module = best.to_torch()
phi = best.to_casadi()
onnx_file = best.to_onnx(out / "digits.onnx")
gaps = {
    "torch": np.max(np.abs(module(torch.as_tensor(raw_test)).detach().numpy() - expected)),
    "casadi": np.max(np.abs(np.array(phi.map(raw_test.shape[0])(raw_test.T)).T - expected)),
}
try:
    import onnxruntime

    session = onnxruntime.InferenceSession(str(onnx_file), providers=["CPUExecutionProvider"])
    gaps["onnx"] = np.max(np.abs(session.run(None, {"X": raw_test})[0] - expected))
except ImportError:
    pass
best.save(out / "digits_result")
print(
    f"exports of {best.solver} (max |export − predict| on the test images): "
    + ", ".join(f"{k} {v:.1e}" for k, v in gaps.items())
)
print(f"digits test accuracy with the default solver: {results[0].test_accuracy:.3f}")
