"""Problem specifications: TOML documents ↔ :class:`TrainingProblem` objects.

A spec has the sections ``[data]``, ``[model]``, ``[control]``, ``[cost]``, ``[constraints]``
(plus top-level ``name``, ``description`` and ``solver``, the preset the command line uses when no
``--solver`` is given). Every leaf key is unique across sections, so an
override names the leaf alone: ``load_problem("ring", dim=3, n_steps=20)``. Unknown keys, wrong
types and out-of-range values raise :class:`~control_dl.SpecError` naming the key and the value.
"""

from __future__ import annotations

import copy
import dataclasses
import math
import os
from pathlib import Path
from typing import Any

import numpy as np

from .._catalog import list_names, resolve
from .._errors import SpecError, is_integer, is_number, spec_error
from .._toml import read_toml
from .controls import CONTROLS
from .costs import Constraints, Cost
from .datasets import BUNDLED, DATASETS, Dataset, bundled
from .dynamics import Dynamics
from .feedforward import FeedForward
from .fields import FIELDS
from .training import TrainingProblem

#: leaf key -> (section, type). ``float`` accepts ints; ``None`` values mean "not set".
SCHEMA: dict[str, tuple[str, type]] = {
    "dataset": ("data", str),
    "n_samples": ("data", int),
    "noise": ("data", float),
    "seed": ("data", int),
    "n_test": ("data", int),
    "n_in": ("data", int),
    "path": ("data", str),
    "target": ("data", str),
    "task": ("data", str),
    "standardize": ("data", bool),
    "test_size": ("data", float),
    "model": ("model", str),
    "dim": ("model", int),
    "field": ("model", str),
    "activation": ("model", str),
    "width": ("model", int),
    "widths": ("model", list),
    "lift": ("model", str),
    "control": ("control", str),
    "n_steps": ("control", int),
    "horizon": ("control", float),
    "integrator": ("control", str),
    "n_nodes": ("control", int),
    "n_modes": ("control", int),
    "basis": ("control", str),
    "loss": ("cost", str),
    "l2": ("cost", float),
    "h1": ("cost", float),
    "l1": ("cost", float),
    "l1_eps": ("cost", float),
    "turnpike": ("cost", float),
    "tracking": ("cost", float),
    "tracking_target": ("cost", float),
    "theta_max": ("constraints", float),
    "lipschitz": ("constraints", float),
    "lipschitz_norm": ("constraints", str),
}
SECTIONS = ("data", "model", "control", "cost", "constraints")
#: keys that describe the flow of a ResNet; a ``model = "mlp"`` spec ignores them when they come from
#: the file and rejects them as overrides (an explicit option never vanishes silently).
RESNET_ONLY = (
    "dim",
    "field",
    "width",
    "lift",
    "control",
    "n_steps",
    "horizon",
    "integrator",
    "n_nodes",
    "n_modes",
    "basis",
)
#: integer sizes (every int key but ``seed``, and ``widths`` entries) must stay below this: larger ones
#: cannot index an array
MAX_SIZE = 2**31
TOP_LEVEL = ("name", "description", "solver")
#: keys of ``[data]`` per kind of data source (the generators take theirs from their signature)
DATA_KEYS = {
    "file": ("path", "target", "task", "standardize", "test_size", "seed"),
    **{name: ("seed", "test_size", "standardize") for name in BUNDLED},
    **{name: ("n_samples", "noise", "seed", "n_test") for name in DATASETS},
    "spheres": ("n_samples", "noise", "seed", "n_test", "n_in"),
}
#: ``dataset = "arrays"``: data stored in a saved Result (never written in a TOML file)
ARRAYS = "arrays"


def _check_type(key: str, value: Any) -> Any:
    kind = SCHEMA[key][1]
    if value is None:
        return None
    # numpy scalars (np.int64 from a loop over np.arange, np.float32 from a tensor) are numbers like any
    # other; they are stored as Python int / float so the spec stays TOML- and JSON-writable
    if kind is float:
        if not is_number(value):
            raise spec_error(key, value, "must be a number")
        if not math.isfinite(value):
            raise spec_error(key, value, "must be finite (no NaN/inf)")
        return float(value)
    if key == "target" and is_integer(value):
        return int(value)  # a column index (.npy data)
    if kind is bool and not isinstance(value, (bool, np.bool_)):
        raise spec_error(key, value, "must be true or false")
    if kind is bool:
        return bool(value)
    if kind is int and not is_integer(value):
        raise spec_error(key, value, "must be an integer")
    if kind is int and key != "seed" and abs(value) >= MAX_SIZE:
        raise spec_error(key, value, f"must be an integer below {MAX_SIZE}")
    if kind is int:
        return int(value)
    if kind is str and not isinstance(value, str):
        raise spec_error(key, value, "must be a string")
    if kind is list:
        listed = value.tolist() if isinstance(value, np.ndarray) and value.ndim == 1 else value
        if not isinstance(listed, (list, tuple)) or not all(is_integer(v) for v in listed):
            raise spec_error(key, value, "must be a list of integers")
        if any(abs(v) >= MAX_SIZE for v in listed):
            raise spec_error(key, value, f"every entry must be an integer below {MAX_SIZE}")
        return [int(v) for v in listed]
    return value


def normalise(doc: dict[str, Any], overrides: dict[str, Any] | None = None) -> dict[str, Any]:
    """Validate the structure of a spec document and apply overrides by leaf name.

    Parameters
    ----------
    doc : dict
        Parsed TOML.
    overrides : dict, optional
        Leaf key → value.

    Returns
    -------
    dict
        A new, type-checked spec with every section present; a relative data ``path`` is made
        absolute (against the working directory: :func:`read_problem_doc` anchors the paths of a
        TOML file to its folder first).

    Raises
    ------
    SpecError
        On an unknown section or key, or a value of the wrong type.
    """
    try:
        return _normalise(doc, overrides)
    except RecursionError:
        raise SpecError("spec: arrays or tables nested too deeply") from None


def _normalise(doc: dict[str, Any], overrides: dict[str, Any] | None) -> dict[str, Any]:
    if not isinstance(doc, dict):
        raise SpecError(f"spec must be a table, got {type(doc).__name__}")
    spec: dict[str, Any] = {section: {} for section in SECTIONS}
    for key, value in doc.items():
        if key in TOP_LEVEL:
            if not isinstance(value, str):
                raise spec_error(key, value, "must be a string")
            spec[key] = value
        elif key in SECTIONS:
            if not isinstance(value, dict):
                raise spec_error(key, value, "must be a table of keys")
            for leaf, leaf_value in value.items():
                if leaf not in SCHEMA or SCHEMA[leaf][0] != key:
                    valid = sorted(k for k, (s, _) in SCHEMA.items() if s == key)
                    raise spec_error(f"{key}.{leaf}", leaf_value, f"unknown key; valid keys in [{key}]: {valid}")
                spec[key][leaf] = _check_type(leaf, copy.deepcopy(leaf_value))
        else:
            raise spec_error(key, value, f"unknown section; valid: {list(SECTIONS) + list(TOP_LEVEL)}")
    for leaf, value in (overrides or {}).items():
        if leaf not in SCHEMA:
            raise spec_error(leaf, value, f"unknown key; valid keys: {sorted(SCHEMA)}")
        spec[SCHEMA[leaf][0]][leaf] = _check_type(leaf, value)
    if spec["data"].get("path") is not None:
        spec["data"]["path"] = os.path.abspath(Path(spec["data"]["path"]).expanduser())
    return spec


def _pick(section: dict[str, Any], keys: tuple[str, ...], owner: str) -> dict[str, Any]:
    extra = sorted(set(section) - set(keys))
    if extra:
        raise spec_error(extra[0], section[extra[0]], f"does not apply to {owner}; it takes {list(keys)}")
    return {k: section[k] for k in keys if section.get(k) is not None}


def build_dataset(section: dict[str, Any]) -> Dataset:
    """The data a ``[data]`` section names: a generator, a file or a scikit-learn set.

    Parameters
    ----------
    section : dict
        The normalised ``[data]`` section (``dataset`` plus the keys of that kind, :data:`DATA_KEYS`).

    Returns
    -------
    Dataset
        The data.

    Raises
    ------
    SpecError
        On an unknown dataset, a key that does not apply to it, or a bad file.
    """
    data = dict(section)
    name = data.pop("dataset", None)
    if name not in DATA_KEYS:
        raise spec_error("dataset", name, f"must be 'file' or one of {sorted(set(DATA_KEYS) - {'file'})}")
    options = _pick(data, DATA_KEYS[name], f"dataset {name!r}")
    if name == "file":
        if "path" not in options:
            raise spec_error("path", None, 'dataset = "file" needs path = "data.csv" (relative to the TOML file)')
        if str(options["path"]).lower().endswith(".csv") and "target" not in options:
            raise spec_error("target", None, "a CSV file needs target = the label column's header name")
        return Dataset.from_file(**options)
    if name in BUNDLED:
        return bundled(name, **options)
    return DATASETS[name](**options)


def build_problem(spec: dict[str, Any], data: Dataset | None = None) -> TrainingProblem:
    """Build a :class:`TrainingProblem` from a normalised spec.

    Parameters
    ----------
    spec : dict
        Output of :func:`normalise`.
    data : Dataset, optional
        Use these data instead of building them from ``spec["data"]`` (required when the spec says
        ``dataset = "arrays"``: data stored in a saved Result).

    Returns
    -------
    TrainingProblem
        The problem, with ``spec`` attached.

    Raises
    ------
    SpecError
        An unknown model, field or control name, ``widths`` missing for ``model = 'mlp'`` or given
        for a ResNet, a dataset stored only in a saved Result, or any error of the objects built
        (the message names the field).
    """
    if data is None:
        if spec["data"].get("dataset") == ARRAYS:
            raise spec_error("dataset", ARRAYS, "names data stored in a saved Result; pass the Dataset itself")
        data = build_dataset(spec["data"])
    dataset = data

    model = dict(spec["model"])
    kind = model.pop("model", "resnet")
    if kind not in ("resnet", "mlp"):
        raise spec_error("model", kind, "must be 'resnet' or 'mlp'")
    cost = Cost(**{k: v for k, v in spec["cost"].items() if v is not None})
    if kind == "mlp":
        if model.get("widths") is None:
            raise spec_error("widths", None, "model = 'mlp' needs widths = [n_in, ..., n_out]")
        network = FeedForward(widths=model["widths"], activation=model.get("activation") or "tanh")
        return TrainingProblem(
            data=dataset, model=network, cost=cost, constraints=Constraints(**spec["constraints"]), spec=spec
        )
    if model.get("widths") is not None:
        raise spec_error("widths", model["widths"], "applies to model = 'mlp' only")
    model.pop("widths", None)
    field_name = model.pop("field", "inside")
    if field_name not in FIELDS:
        raise spec_error("field", field_name, f"must be one of {sorted(FIELDS)}")
    field_keys = ("activation", "width") if field_name == "bottleneck" else ("activation",)
    field = FIELDS[field_name](
        **_pick({k: model.pop(k) for k in list(model) if k not in ("dim", "lift")}, field_keys, f"field {field_name!r}")
    )

    control_spec = dict(spec["control"])
    horizon = control_spec.pop("horizon", 1.0)
    integrator = control_spec.pop("integrator", "euler")
    control_name = control_spec.pop("control", "piecewise_constant")
    if control_name not in CONTROLS:
        raise spec_error("control", control_name, f"must be one of {sorted(CONTROLS)}")
    control_keys = {
        "piecewise_constant": ("n_steps",),
        "time_invariant": ("n_steps",),
        "piecewise_linear": ("n_steps", "n_nodes"),
        "spectral": ("n_steps", "n_modes", "basis"),
    }[control_name]
    control = CONTROLS[control_name](**_pick(control_spec, control_keys, f"control {control_name!r}"))

    return TrainingProblem(
        data=dataset,
        field=field,
        dim=model.get("dim"),
        control=control,
        horizon=horizon,
        integrator=integrator,
        cost=cost,
        constraints=Constraints(**spec["constraints"]),
        lift=model.get("lift", "pad"),
        spec=spec,
    )


def load_problem(name_or_path: str | Path, **overrides: Any) -> TrainingProblem:
    """Load a named problem (``problems/*.toml``) or a TOML file, with overrides by leaf key.

    Parameters
    ----------
    name_or_path : str or Path
        Catalog name (see :func:`list_problems`) or path to a TOML spec.
    **overrides
        Leaf keys of the spec, e.g. ``dim=3, n_steps=20, l2=1e-3``.

    Returns
    -------
    TrainingProblem
        The problem.

    Raises
    ------
    SpecError
        On an unknown name or key, a wrong type or an out-of-range value.
    """
    return problem_from_spec(read_problem_doc(name_or_path), **overrides)


def read_problem_doc(name_or_path: str | Path) -> dict[str, Any]:
    """Read a problem TOML (catalog name or path), its data ``path`` made relative to the file's folder.

    Parameters
    ----------
    name_or_path : str or Path
        Catalog name or path to a TOML spec.

    Returns
    -------
    dict
        The document (not yet normalised).

    Raises
    ------
    SpecError
        On an unknown name, a missing file or invalid TOML.
    """
    path = resolve("problems", name_or_path)
    doc = read_toml(path)
    data = doc.get("data")
    if isinstance(data, dict) and isinstance(data.get("path"), str) and not Path(data["path"]).is_absolute():
        data["path"] = os.path.abspath(path.parent / data["path"])
    return doc


def problem_from_spec(doc: dict[str, Any], **overrides: Any) -> TrainingProblem:
    """Build a problem from an in-memory spec document (the TOML structure as a dict).

    Parameters
    ----------
    doc : dict
        Spec with sections data/model/control/cost/constraints.
    **overrides
        Leaf keys to replace.

    Returns
    -------
    TrainingProblem
        The problem.

    Raises
    ------
    SpecError
        On an unknown key, a wrong type or an out-of-range value.
    """
    spec = normalise(doc, overrides)
    if spec["model"].get("model") == "mlp":
        bad = sorted(set(overrides) & set(RESNET_ONLY))
        if bad:
            raise spec_error(bad[0], overrides[bad[0]], "does not apply to model = 'mlp' (it takes widths, activation)")
    return build_problem(spec)


def list_problems() -> list[str]:
    """Names of the problems in the catalog.

    Returns
    -------
    list of str
        Sorted names usable with :func:`load_problem`.
    """
    return list_names("problems")


def describe(problem: TrainingProblem) -> dict[str, Any] | None:
    """The normalised spec of a problem built in Python, or None when the spec format cannot say it.

    The data section is the dataset's :attr:`~control_dl.Dataset.source` (a generator, a file, a
    scikit-learn set) or ``{"dataset": "arrays"}`` for data given as arrays. A user-defined vector
    field, a callable loss or a feed-forward option outside the spec (residual, step, output
    activation) has no spec: the result is then saved without one.

    Parameters
    ----------
    problem : TrainingProblem
        The problem (its own ``spec`` is returned when set).

    Returns
    -------
    dict or None
        A spec that :func:`build_problem` turns back into an equal problem (checked here).
    """
    if problem.spec is not None:
        return problem.spec
    source = problem.data.source
    data = {k: v for k, v in source.items() if k != "sha256"} if source else {"dataset": ARRAYS}
    doc: dict[str, Any] = {
        "data": data,
        "cost": dataclasses.asdict(problem.cost),
        "constraints": dataclasses.asdict(problem.constraints),
    }
    model = problem.model
    if isinstance(model, Dynamics):
        return None  # a user's dynamics has no spec
    if isinstance(model, FeedForward):
        doc["model"] = {"model": "mlp", "widths": list(model.widths), "activation": model.activation}
    else:
        field_name = next((n for n, kind in FIELDS.items() if type(problem.field) is kind), None)
        control_name = next((n for n, kind in CONTROLS.items() if type(problem.control) is kind), None)
        if field_name is None or control_name is None:
            return None
        doc["model"] = {"dim": problem.dim, "field": field_name, "lift": problem.lift, **vars(problem.field)}
        doc["control"] = {
            "control": control_name,
            "horizon": problem.horizon,
            "integrator": problem.integrator,
            **dataclasses.asdict(problem.control),
        }
    try:
        spec = normalise(doc)
        rebuilt = build_problem(spec, data=problem.data)
    except (SpecError, TypeError):
        return None
    same = ("field", "dim", "control", "horizon", "integrator", "cost", "constraints", "lift", "model")
    if any(getattr(rebuilt, name) != getattr(problem, name) for name in same):
        return None
    return spec
