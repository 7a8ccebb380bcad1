"""Engines: how J, ∇J, Gauss-Newton products, states and costates are evaluated (see :mod:`._base`)."""

from ._base import Engine as Engine
from ._base import Evaluation as Evaluation
from ._base import StageValues as StageValues
from ._base import Sweep as Sweep

__all__ = ["Engine", "Evaluation", "StageValues", "Sweep"]
