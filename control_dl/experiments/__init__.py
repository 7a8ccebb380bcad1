"""Experiments over many solves: solver comparisons."""

from .compare import CompareTable as CompareTable
from .compare import compare as compare
