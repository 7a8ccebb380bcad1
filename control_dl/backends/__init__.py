"""Array namespaces (``ops``) in which the model is written once.

Every piece of the model (vector fields, integrators, losses, regularisers) is written against the
:class:`Ops` protocol, a small namespace of documented array operations. Three implementations
exist, identical in names, shapes and semantics (tested op by op against each other):

- :data:`numpy_ops` — float64 numpy arrays, the reference;
- :data:`casadi_ops` — CasADi ``SX``/``MX``/``DM`` matrices (symbolic, for the direct methods and MSA);
- :func:`torch_ops` — torch tensors (imported lazily, so the core works without torch).

Convention: a batch of states is a ``d × S`` matrix, one column per sample, and a 1-D parameter
(a bias ``b ∈ R^d``) arrives as a ``d × 1`` column, so ``A x + b`` broadcasts over the columns.
Flat parameter vectors are reshaped in column-major (Fortran) order in every backend, the order
CasADi uses natively, so one flat vector ``w`` means the same network in all three. Every op
accepts numpy constants; non-differentiable points follow one convention (relu'(0) = 0,
abs'(0) = 0, max/min split the derivative at a tie), see :mod:`control_dl.backends._protocol`.
"""

from __future__ import annotations

from typing import Any

from .._errors import SpecError, spec_error
from ._casadi import casadi_ops
from ._numpy import numpy_ops
from ._protocol import Ops as Ops
from ._protocol import smooth_abs as smooth_abs

BACKENDS = ("numpy", "casadi", "torch")


def torch_ops(device: Any = None) -> Ops:
    """Return the torch namespace, importing torch on first use.

    Parameters
    ----------
    device : str or torch.device, optional
        Device of constants that meet no tensor (default: torch's default device).

    Returns
    -------
    Ops
        The ``ops`` namespace over ``torch.float64`` tensors.

    Raises
    ------
    SpecError
        If torch is not installed (``pip install control_dl[torch]``).
    """
    try:
        from ._torch import TorchOps
    except ImportError as err:
        raise SpecError(
            "backend='torch': torch is not installed; install the extra: pip install control_dl[torch]"
        ) from err
    return TorchOps(device=device)


def get_ops(name: str) -> Ops:
    """Return the ``ops`` namespace called ``name``.

    Parameters
    ----------
    name : {"numpy", "casadi", "torch"}
        Backend name.

    Returns
    -------
    Ops
        The namespace.

    Raises
    ------
    SpecError
        If ``name`` is not a known backend, or torch is requested but not installed.
    """
    if name == "numpy":
        return numpy_ops
    if name == "casadi":
        return casadi_ops
    if name == "torch":
        return torch_ops()
    raise spec_error("backend", name, f"must be one of {list(BACKENDS)}")


__all__ = ["BACKENDS", "Ops", "casadi_ops", "get_ops", "numpy_ops", "smooth_abs", "torch_ops"]
