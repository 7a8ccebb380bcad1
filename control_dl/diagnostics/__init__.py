"""Diagnostics of trained networks: what control theory predicts, measured.

- :mod:`.turnpike`: ‖θ(t)‖ and ‖x(t) − x̄‖ decay (Esteve, Geshkovski, Pighin, Zuazua).
- :mod:`.pmp`: costates, ∂H/∂θ and the Hamiltonian along t (Pontryagin).
- :mod:`.morse`: critical points of Φ = λ2 ∘ flow ∘ λ1 (Kuehn and Kuntz).
- :mod:`.architecture`: non-augmented / augmented / bottleneck / degenerate.
- :mod:`.invertibility`: step certificates, backward inversion, decision-region topology.
- :mod:`.convergence`: the ResNet's convergence to the neural ODE as depth grows.
- :mod:`.layers`: Kuntz's classes of feed-forward nets, singular values of every layer.
- :mod:`.training_dynamics`: θ(t, τ) over layer time and training time.
"""

from .architecture import Architecture as Architecture
from .architecture import classify as classify
from .convergence import ConvergenceReport as ConvergenceReport
from .convergence import euler_convergence as euler_convergence
from .invertibility import Inversion as Inversion
from .invertibility import InvertibilityReport as InvertibilityReport
from .invertibility import RegionTopology as RegionTopology
from .invertibility import decision_region_topology as decision_region_topology
from .invertibility import invert as invert
from .invertibility import invertibility as invertibility
from .layers import FeedForwardClass as FeedForwardClass
from .layers import LayerRanks as LayerRanks
from .layers import classify_feedforward as classify_feedforward
from .layers import layer_ranks as layer_ranks
from .morse import CriticalPoint as CriticalPoint
from .morse import CriticalPointReport as CriticalPointReport
from .morse import InputOutputMap as InputOutputMap
from .morse import critical_points as critical_points
from .pmp import PMPReport as PMPReport
from .pmp import pmp_residual as pmp_residual
from .training_dynamics import TrainingDynamics as TrainingDynamics
from .training_dynamics import training_dynamics as training_dynamics
from .turnpike import TurnpikeReport as TurnpikeReport
from .turnpike import TurnpikeSweep as TurnpikeSweep
from .turnpike import turnpike as turnpike
from .turnpike import turnpike_sweep as turnpike_sweep
