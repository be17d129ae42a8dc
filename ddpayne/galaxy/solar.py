"""The Sun's position and motion in the Galaxy: explicit, documented settings.

Every transformation between heliocentric observables (RA, Dec, distance, proper motions, RV) and the
Galactocentric frame in ddpayne — the mock Galaxy (:mod:`ddpayne.mock.galaxy`) and the orbit plugins —
uses one :class:`SolarParameters` object, so that they agree. Defaults and references:

* ``r0 = 8.122 kpc``: distance of the Sun from the Galactic centre (GRAVITY Collaboration 2018, A&A 615, L15).
* ``z0 = 0.0208 kpc``: height of the Sun above the plane (Bennett & Bovy 2019, MNRAS 482, 1417).
* ``u, v, w = 11.1, 12.24, 7.25 km/s``: peculiar motion of the Sun with respect to the local standard of rest,
  U towards the Galactic centre, V in the direction of rotation, W towards the NGP
  (Schönrich, Binney & Dehnen 2010, MNRAS 403, 1829).
* ``vc0 = 233.36 km/s``: circular velocity at ``r0``, chosen so that ``vc0 + v = 245.6 km/s``, the Sun's total
  azimuthal velocity of Drimmel & Poggio (2018, RNAAS 2, 210), which is also astropy's ``Galactocentric``
  ``v4.0`` default. The potential of the orbit plugin (e.g. MWPotential2014, Bovy 2015) is scaled so that its
  circular velocity at ``r0`` is ``vc0``.

Change them with :func:`dataclasses.replace`, e.g. ``replace(SOLAR, r0=8.0, vc0=220.0)``.
"""
from __future__ import annotations

from dataclasses import dataclass

import astropy.units as u
import numpy as np


@dataclass(frozen=True)
class SolarParameters:
    """Solar position and motion (kpc, km/s); see the module docstring for references."""

    r0: float = 8.122
    z0: float = 0.0208
    u: float = 11.1
    v: float = 12.24
    w: float = 7.25
    vc0: float = 233.36

    @property
    def v_sun(self) -> tuple[float, float, float]:
        """The Sun's Galactocentric Cartesian velocity (vx towards the GC, vy rotation, vz NGP), km/s."""
        return (self.u, self.vc0 + self.v, self.w)

    def galactocentric_frame(self):
        """An astropy :class:`~astropy.coordinates.Galactocentric` frame with these settings."""
        import astropy.coordinates as coord
        return coord.Galactocentric(galcen_distance=self.r0 * u.kpc, z_sun=self.z0 * u.kpc,
                                    galcen_v_sun=coord.CartesianDifferential(list(self.v_sun) * u.km / u.s))

    def galpy_kwargs(self) -> dict:
        """Keyword arguments for :class:`galpy.orbit.Orbit` (``ro``, ``vo``, ``zo``, ``solarmotion``).

        galpy's ``solarmotion`` is ``[-U, V, W]`` relative to the circular velocity ``vo`` at ``ro``.
        """
        return {"ro": self.r0, "vo": self.vc0, "zo": self.z0,
                "solarmotion": np.array([-self.u, self.v, self.w])}


#: The default solar parameters used throughout ddpayne.
SOLAR = SolarParameters()
