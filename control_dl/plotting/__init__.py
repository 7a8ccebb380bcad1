"""Figures from a Result: most take ``(problem, result, ax=None)`` and return the matplotlib Axes.

The exceptions: :func:`convergence` takes a list of Results, :func:`compare_curves` a CompareTable
(and returns two Axes), :func:`turnpike` a list of runs or a TurnpikeSweep, :func:`layers` a ``fig``
(and returns an array of Axes), :func:`turnpike_series` returns ``(t, values)`` arrays and
:func:`animate_flow` the path of its GIF.
"""

from ._animation import animate_flow as animate_flow
from ._boundary import decision_boundary as decision_boundary
from ._common import flow_lines as flow_lines
from ._common import grid_lines as grid_lines
from ._compare import compare_curves as compare_curves
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
