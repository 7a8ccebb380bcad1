"""What to solve: datasets, vector fields, controls, integrators, dynamics, costs and the training problem."""

from . import datasets as datasets
from .controls import Control as Control
from .controls import PiecewiseConstant as PiecewiseConstant
from .controls import PiecewiseLinear as PiecewiseLinear
from .controls import Spectral as Spectral
from .controls import TimeInvariant as TimeInvariant
from .controls import step_index as step_index
from .costs import Constraints as Constraints
from .costs import Cost as Cost
from .datasets import Dataset as Dataset
from .dynamics import Dynamics as Dynamics
from .dynamics import Flow as Flow
from .dynamics import LayerStack as LayerStack
from .feedforward import FeedForward as FeedForward
from .fields import Bottleneck as Bottleneck
from .fields import Inside as Inside
from .fields import Outside as Outside
from .fields import VectorField as VectorField
from .integrators import Integrator as Integrator
from .training import TrainingProblem as TrainingProblem
