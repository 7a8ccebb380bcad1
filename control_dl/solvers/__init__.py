"""How to solve: direct methods (CasADi/IPOPT), and the shared solve() entry point."""

from ._nlp_options import FatropOptions as FatropOptions
from ._nlp_options import IpoptOptions as IpoptOptions
from ._nlp_options import LbfgsbOptions as LbfgsbOptions
from ._nlp_options import SqpmethodOptions as SqpmethodOptions
from ._nlp_options import TrustNcgOptions as TrustNcgOptions
from .base import Recorder as Recorder
from .base import Solver as Solver
from .base import solve as solve
from .catalog import list_solvers as list_solvers
from .catalog import load_solver as load_solver
from .direct import Direct as Direct
from .msa import MSA as MSA
from .torch_trainer import TorchTrainer as TorchTrainer
