"""How to solve: direct methods (CasADi/IPOPT), and the shared solve() entry point."""

from .base import Recorder as Recorder
from .base import Solver as Solver
from .base import solve as solve
from .catalog import list_solvers as list_solvers
from .catalog import load_solver as load_solver
from .direct import Direct as Direct
from .msa import MSA as MSA
