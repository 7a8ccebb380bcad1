"""Figures from a Result: each function takes ``ax=None`` and returns the matplotlib Axes."""

from ._animation import animate_flow as animate_flow
from ._boundary import decision_boundary as decision_boundary
from ._common import flow_lines as flow_lines
from ._common import grid_lines as grid_lines
from ._convergence import convergence as convergence
from ._grid import grid_deformation as grid_deformation
from ._heatmap import theta_heatmap as theta_heatmap
from ._layers import layers as layers
from ._morse import morse_contours as morse_contours
from ._one_d import regression_fit as regression_fit
from ._one_d import time_paths as time_paths
from ._training import training_heatmap as training_heatmap
from ._trajectories import trajectories as trajectories
from ._turnpike import turnpike as turnpike
from ._turnpike import turnpike_series as turnpike_series
