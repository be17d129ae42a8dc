"""The distance-estimator interface."""
from __future__ import annotations

import abc
from typing import ClassVar

from astropy.table import Table


class DistanceEstimator(abc.ABC):
    """Interface of a distance estimator.

    :meth:`train` learns what it needs (e.g. absolute magnitudes as functions of labels) from control
    stars; :meth:`estimate` returns one row per input star with ``DIST``, ``DIST_ERR`` (kpc) and
    ``FLAG``.
    """

    name: ClassVar[str] = ""

    @abc.abstractmethod
    def train(self, control: Table) -> "DistanceEstimator":
        """Learn from control stars; return self."""

    @abc.abstractmethod
    def estimate(self, stars: Table) -> Table:
        """Distances of ``stars`` (one output row per input row, same order)."""
