"""The orbit-integrator interface."""
from __future__ import annotations

import abc
from typing import ClassVar

from astropy.table import Table


class OrbitIntegrator(abc.ABC):
    """Interface of an orbit integrator.

    :meth:`orbits` takes a table with ``RA``, ``DEC`` (deg), ``DIST`` (kpc), ``PMRA``, ``PMDEC``
    (mas/yr) and ``RV`` (km/s) and returns one row per star with ``JR``, ``JPHI``, ``JZ``
    (kpc km/s), ``ECC``, ``RPERI``, ``RAPO``, ``ZMAX`` (kpc), ``ENERGY`` (km²/s²) and ``FLAG``.
    """

    name: ClassVar[str] = ""

    @abc.abstractmethod
    def orbits(self, stars: Table) -> Table:
        """Orbital parameters of ``stars`` (one output row per input row, same order)."""
