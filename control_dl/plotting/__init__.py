"""Figures from a Result: each function takes ``ax=None`` and returns the matplotlib Axes."""

from ._boundary import decision_boundary as decision_boundary
from ._convergence import convergence as convergence
from ._training import training_heatmap as training_heatmap
from ._trajectories import trajectories as trajectories
