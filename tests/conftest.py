"""Shared fixtures: small problems that solve in well under a second."""

from __future__ import annotations

import os
import tempfile

import matplotlib
import pytest

matplotlib.use("Agg")
os.environ.setdefault("OMP_NUM_THREADS", "1")
# JIT libraries compiled by the tests go to a throw-away cache, never the user's ~/.cache
os.environ.setdefault("CONTROL_DL_CACHE", tempfile.mkdtemp(prefix="control_dl_test_cache_"))

import control_dl as cdl  # noqa: E402


@pytest.fixture
def small_ring() -> cdl.TrainingProblem:
    """Ring, 40 samples, d = 3, 5 Euler steps."""
    return cdl.load_problem("ring", n_samples=40, dim=3, n_steps=5)


@pytest.fixture
def small_sin() -> cdl.TrainingProblem:
    """sin regression, 20 samples, d = 2, 4 steps."""
    return cdl.load_problem("sin", n_samples=20, dim=2, n_steps=4)
