"""Experiments: sweeps over problems × solvers × seeds (local pool or Dask) and their results store."""

from .runner import run_sweep as run_sweep
from .store import RunStore as RunStore
from .store import load_runs as load_runs
from .sweep import Run as Run
from .sweep import SweepSpec as SweepSpec
from .sweep import load_sweep as load_sweep
