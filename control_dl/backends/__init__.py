"""Array namespaces (``ops``) in which the model is written once.

Every piece of the model (vector fields, integrators, losses, regularisers) is written against a
small namespace of array operations. Three implementations exist:

- :data:`numpy_ops` — float64 numpy arrays, the reference;
- :data:`casadi_ops` — CasADi ``SX``/``MX``/``DM`` matrices (symbolic, for the direct methods and MSA);
- :func:`torch_ops` — torch tensors (imported lazily, so the core works without torch).

Convention: a batch of states is a ``d × S`` matrix, one column per sample, and a 1-D parameter
(a bias ``b ∈ R^d``) arrives as a ``d × 1`` column, so ``A x + b`` broadcasts over the columns.
Flat parameter vectors are reshaped in column-major (Fortran) order in every backend, the order
CasADi uses natively, so one flat vector ``w`` means the same network in all three.
"""

from __future__ import annotations

from typing import Any

from ._casadi import casadi_ops
from ._numpy import numpy_ops

BACKENDS = ("numpy", "casadi", "torch")


def torch_ops() -> Any:
    """Return the torch namespace, importing torch on first use.

    Returns
    -------
    TorchOps
        The ``ops`` namespace over ``torch.float64`` tensors.

    Raises
    ------
    ImportError
        If torch is not installed (``pip install control_dl[torch]``).
    """
    from ._torch import TorchOps

    return TorchOps()


def get_ops(name: str) -> Any:
    """Return the ``ops`` namespace called ``name``.

    Parameters
    ----------
    name : {"numpy", "casadi", "torch"}
        Backend name.

    Returns
    -------
    object
        The namespace.

    Raises
    ------
    ValueError
        If ``name`` is not a known backend.
    """
    if name == "numpy":
        return numpy_ops
    if name == "casadi":
        return casadi_ops
    if name == "torch":
        return torch_ops()
    raise ValueError(f"backend={name!r} is not one of {BACKENDS}")


__all__ = ["BACKENDS", "casadi_ops", "get_ops", "numpy_ops", "torch_ops"]
