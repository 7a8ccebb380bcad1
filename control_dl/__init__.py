"""control_dl: training neural networks as optimal control problems.

import control_dl as cdl
problem = cdl.load_problem("ring", dim=3, n_steps=20)
result = cdl.solve(problem, cdl.load_solver("ipopt-lbfgs"))
"""

__version__ = "0.1.0"

from . import backends as backends
from . import diagnostics as diagnostics
from . import engines as engines
from . import experiments as experiments
from . import plotting as plotting
from ._errors import SpecError as SpecError
from .experiments import CompareTable as CompareTable
from .experiments import compare as compare
from .problems import Bottleneck as Bottleneck
from .problems import Constraints as Constraints
from .problems import Control as Control
from .problems import Cost as Cost
from .problems import Dataset as Dataset
from .problems import Dynamics as Dynamics
from .problems import FeedForward as FeedForward
from .problems import Inside as Inside
from .problems import Outside as Outside
from .problems import PiecewiseConstant as PiecewiseConstant
from .problems import PiecewiseLinear as PiecewiseLinear
from .problems import Spectral as Spectral
from .problems import TimeInvariant as TimeInvariant
from .problems import TrainingProblem as TrainingProblem
from .problems import VectorField as VectorField
from .problems import datasets as datasets
from .problems.spec import list_problems as list_problems
from .problems.spec import load_problem as load_problem
from .problems.spec import problem_from_spec as problem_from_spec
from .result import Result as Result
from .solvers import MSA as MSA
from .solvers import Direct as Direct
from .solvers import FatropOptions as FatropOptions
from .solvers import IpoptOptions as IpoptOptions
from .solvers import LbfgsbOptions as LbfgsbOptions
from .solvers import Solver as Solver
from .solvers import SqpmethodOptions as SqpmethodOptions
from .solvers import TorchTrainer as TorchTrainer
from .solvers import TrustNcgOptions as TrustNcgOptions
from .solvers import list_solvers as list_solvers
from .solvers import load_solver as load_solver
from .solvers import solve as solve

__all__ = [
    "Bottleneck",
    "CompareTable",
    "Constraints",
    "Control",
    "Cost",
    "Dataset",
    "Direct",
    "Dynamics",
    "FatropOptions",
    "FeedForward",
    "Inside",
    "IpoptOptions",
    "LbfgsbOptions",
    "MSA",
    "Outside",
    "PiecewiseConstant",
    "PiecewiseLinear",
    "Result",
    "Solver",
    "SpecError",
    "Spectral",
    "SqpmethodOptions",
    "TimeInvariant",
    "TorchTrainer",
    "TrainingProblem",
    "TrustNcgOptions",
    "VectorField",
    "backends",
    "compare",
    "datasets",
    "diagnostics",
    "engines",
    "experiments",
    "list_problems",
    "list_solvers",
    "load_problem",
    "load_solver",
    "plotting",
    "problem_from_spec",
    "solve",
]
