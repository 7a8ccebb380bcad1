"""Every loader of a NumPy file (results, checkpoints, .npz and .npy data files, `control-dl export`) turns
a file that is missing, of another kind, damaged or not one of ours into one SpecError naming the path."""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

import control_dl as cdl
from control_dl.cli import main
from control_dl.solvers.checkpoint import checkpoint_iteration, load_checkpoint


def _archive(path: Path) -> Path:
    """A sound archive whose one large member makes its middle byte array data (np.savez stores, no compression)."""
    with open(path, "wb") as fh:  # np.savez would append .npz to another suffix
        np.savez(fh, w=np.linspace(0.0, 1.0, 10_000))
    return path


def _truncated(path: Path) -> Path:
    data = _archive(path).read_bytes()
    path.write_bytes(data[: len(data) // 2])
    return path


def _damaged(path: Path) -> Path:
    data = bytearray(_archive(path).read_bytes())
    data[len(data) // 2] ^= 0xFF  # one flipped byte inside w's data: the member's CRC-32 no longer matches
    path.write_bytes(bytes(data))
    return path


def _text(path: Path) -> Path:
    path.write_text("# README\n\nnot an archive\n")
    return path


def _empty(path: Path) -> Path:
    path.write_bytes(b"")
    return path


def _npy(path: Path) -> Path:
    with open(path, "wb") as fh:  # np.save would append .npy to the name
        np.save(fh, np.zeros(3))
    return path


def _objects(path: Path) -> Path:
    np.savez(path, w=np.array([{"a": 1}, None], dtype=object))
    return path


def _directory(path: Path) -> Path:
    path.mkdir()
    return path


#: bad file → (how to make it at a path, what the message must say)
BAD_FILES: dict[str, tuple[Callable[[Path], Path], str]] = {
    "missing": (lambda path: path, "no such file"),
    "directory": (_directory, "is a directory"),
    "text file": (_text, r"not an \.npz archive \(no zip header\)"),
    "empty file": (_empty, "is empty"),
    "truncated archive": (_truncated, r"truncated \.npz archive \(BadZipFile"),
    "damaged member": (_damaged, "Bad CRC-32"),
    "npy array": (_npy, r"single \.npy array, not an \.npz archive"),
    "object arrays": (_objects, r"object \(pickled\) arrays"),
}


LOADERS: dict[str, Callable[[Path], object]] = {
    "Result.load": cdl.Result.load,
    "load_checkpoint": lambda path: load_checkpoint(path, cdl.load_problem("ring", n_samples=20, n_steps=2)),
    "checkpoint_iteration": checkpoint_iteration,
}


@pytest.mark.parametrize("bad", sorted(BAD_FILES))
@pytest.mark.parametrize("loader", sorted(LOADERS))
def test_a_bad_result_or_checkpoint_file_is_one_spec_error_naming_it(loader: str, bad: str, tmp_path: Path) -> None:
    make, reason = BAD_FILES[bad]
    path = make(tmp_path / "run.npz")
    with pytest.raises(cdl.SpecError, match=re.escape(repr(str(path))) + ".*" + reason):
        LOADERS[loader](path)


@pytest.mark.parametrize("bad", sorted(set(BAD_FILES) - {"missing", "directory"}))
def test_cli_export_of_a_bad_file_exits_2_naming_it(bad: str, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    make, reason = BAD_FILES[bad]
    path = make(tmp_path / ("README.md" if bad == "text file" else "run.npz"))
    assert main(["export", str(path), "--format", "casadi"]) == 2
    err = capsys.readouterr().err
    assert re.search(re.escape(str(path)) + ".*" + reason, err) and "Traceback" not in err
    assert not path.with_suffix(".casadi").exists()


@pytest.mark.parametrize("bad", ["truncated archive", "damaged member", "object arrays", "empty file", "text file"])
def test_a_bad_npz_data_file_is_one_spec_error_naming_it(bad: str, tmp_path: Path) -> None:
    make, reason = BAD_FILES[bad]
    path = make(tmp_path / "data.npz")
    with pytest.raises(cdl.SpecError, match=re.escape(str(path)) + ".*" + reason):
        cdl.Dataset.from_file(path)


def _npy_truncated(path: Path) -> Path:
    data = _npy(path).read_bytes()
    path.write_bytes(data[:100])  # inside the header
    return path


def _npy_objects(path: Path) -> Path:
    with open(path, "wb") as fh:
        np.save(fh, np.array([{"a": 1}, None], dtype=object), allow_pickle=True)
    return path


NPY_FILES: dict[str, tuple[Callable[[Path], Path], str]] = {
    "directory": (_directory, "is a directory"),
    "text file": (_text, r"not an \.npy array \(no NumPy header\)"),
    "empty file": (_empty, "is empty"),
    "truncated array": (_npy_truncated, r"truncated \.npy array \(ValueError"),
    "npz archive": (_archive, r"is an \.npz archive, not a single \.npy array"),
    "object array": (_npy_objects, r"object \(pickled\) arrays"),
}


@pytest.mark.parametrize("bad", sorted(NPY_FILES))
def test_a_bad_npy_data_file_is_one_spec_error_naming_it(bad: str, tmp_path: Path) -> None:
    make, reason = NPY_FILES[bad]
    path = make(tmp_path / "data.npy")
    with pytest.raises(cdl.SpecError, match=re.escape(str(path)) + ".*" + reason):
        cdl.Dataset.from_file(path)


def test_archives_that_are_not_ours_say_what_they_are(small_ring: cdl.TrainingProblem, tmp_path: Path) -> None:
    checkpoint = tmp_path / "ck.npz"
    solver = cdl.Direct(hessian="lbfgs", max_iter=2, checkpoint=str(checkpoint), checkpoint_every=1)
    result = cdl.solve(small_ring, solver, progress=False)
    with pytest.raises(cdl.SpecError, match="not a control_dl result.*solve checkpoint.*load_checkpoint"):
        cdl.Result.load(checkpoint)
    saved = result.save(tmp_path / "run")
    with pytest.raises(
        cdl.SpecError,
        match=r"checkpoint=.*run\.npz.*not a checkpoint.*no \['iteration', 'fingerprint'\]; it is a result: .*Result\.load",
    ):
        load_checkpoint(saved, small_ring)
    with pytest.raises(cdl.SpecError, match=r"data\.npz.*needs X and y"):  # ours, but not a data file
        cdl.Dataset.from_file(result.save(tmp_path / "data"))
    np.savez(tmp_path / "foreign.npz", a=np.zeros(2))
    with pytest.raises(
        cdl.SpecError, match=r"not a control_dl result: arrays \['a'\], no \['metadata', 'w', 'snapshots'\]"
    ):
        cdl.Result.load(tmp_path / "foreign.npz")
    with np.load(saved) as stored:
        arrays = dict(stored)
    meta = json.loads(str(arrays["metadata"]))
    np.savez(tmp_path / "broken.npz", **{**arrays, "w": np.array(["a", "b"])})
    with pytest.raises(cdl.SpecError, match=r"broken\.npz.*not a control_dl result: .*not a decision vector"):
        cdl.Result.load(tmp_path / "broken.npz")
    for broken in ("not json", json.dumps([1, 2]), json.dumps({**meta, "status": "done"}), json.dumps({"w": 1})):
        np.savez(tmp_path / "broken.npz", **{**arrays, "metadata": np.array(broken)})
        with pytest.raises(cdl.SpecError, match=r"broken\.npz.*not a control_dl result: its metadata do not fit"):
            cdl.Result.load(tmp_path / "broken.npz")


def test_checking_a_destination_leaves_nothing_behind(tmp_path: Path) -> None:
    """check_destination creates a trial file in the folder to see that it accepts files, then removes it."""
    from control_dl._files import check_destination

    assert check_destination(tmp_path / "new" / "run.npz", "--out") == tmp_path / "new" / "run.npz"
    assert check_destination(tmp_path / "run.npz", "--out") == tmp_path / "run.npz"
    assert list(tmp_path.iterdir()) == []


@pytest.mark.skipif(not os.path.isdir("/proc/self"), reason="needs Linux /proc")
def test_an_output_folder_that_refuses_files_is_refused_before_the_work() -> None:
    """A user's report: solve/compare/turnpike --out /proc ran the whole computation, then failed (root
    may write /proc by its permission bits; a trial file tells)."""
    from control_dl._files import output_folder

    with pytest.raises(cdl.SpecError, match=r"--out '/proc': the folder is not writable"):
        output_folder("/proc", "--out")


def test_an_unwritable_output_path_is_refused_before_the_work(small_ring: cdl.TrainingProblem, tmp_path: Path) -> None:
    """The same mistake as export's --out: a directory, or a path under a file, named as the file to write."""
    (tmp_path / "folder.npz").mkdir()
    (tmp_path / "file").write_text("")
    result = cdl.solve(small_ring, cdl.Direct(hessian="lbfgs", max_iter=2), progress=False)
    with pytest.raises(cdl.SpecError, match=r"path=.*folder\.npz'.*is a directory"):
        result.save(tmp_path / "folder")
    with pytest.raises(
        cdl.SpecError, match=r"path=.*file/run\.npz'.*cannot be created: .*file is a file, not a folder"
    ):
        result.save(tmp_path / "file" / "run")
    every = {"checkpoint": str(tmp_path / "folder.npz"), "checkpoint_every": 1}
    for solver in (
        cdl.Direct(hessian="lbfgs", max_iter=3, **every),
        cdl.MSA(rho=1.0, inner="newton", max_iter=3, jit=False, **every),
        cdl.TorchTrainer(optimizer="adam", epochs=3, **every),
    ):
        with pytest.raises(cdl.SpecError, match=r"checkpoint=.*folder\.npz'.*is a directory"):  # at the start
            cdl.solve(small_ring, solver, progress=False)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file", "folder.npz"]
