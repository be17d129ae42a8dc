"""Heliocentric observables to Galactocentric phase space, one convention for all of ddpayne.

Cylindrical coordinates follow galpy: ``VT`` (= v_φ) is positive in the direction of Galactic rotation, so
disk stars have ``L_z = R·v_T ≈ +1900 kpc km/s`` and the angular momentum J_φ = L_z of the GES cut
(Zhang et al. 2024, eq. 7) is positive for prograde orbits.
"""
from __future__ import annotations

import astropy.units as u
import numpy as np

from .solar import SOLAR, SolarParameters


def galactocentric(ra, dec, dist, pmra, pmdec, rv, solar: SolarParameters = SOLAR) -> dict[str, np.ndarray]:
    """Galactocentric Cartesian and cylindrical phase space of stars.

    Parameters
    ----------
    ra, dec : array
        ICRS coordinates (deg).
    dist : array
        Heliocentric distance (kpc).
    pmra, pmdec : array
        Proper motions (mas/yr; ``pmra`` includes cos δ).
    rv : array
        Heliocentric radial velocity (km/s).
    solar : SolarParameters
        Solar position and motion.

    Returns
    -------
    dict of arrays
        ``X, Y, Z`` (kpc; astropy Galactocentric axes, Sun at X ≈ −r0), ``VX, VY, VZ`` (km/s), ``R`` (kpc),
        ``PHI`` (rad, increasing in the direction of rotation, Sun at 0), ``VR``, ``VT``, ``VZ`` (km/s).
        Non-finite inputs give NaN rows.
    """
    import astropy.coordinates as coord
    arrs = np.broadcast_arrays(*(np.asarray(a, float) for a in (ra, dec, dist, pmra, pmdec, rv)))
    ra, dec, dist, pmra, pmdec, rv = (np.atleast_1d(a) for a in arrs)
    ok = np.all([np.isfinite(a) for a in (ra, dec, dist, pmra, pmdec, rv)], axis=0) & (dist > 0)
    n = ra.size
    out = {k: np.full(n, np.nan) for k in ("X", "Y", "Z", "VX", "VY", "VZ", "R", "PHI", "VR", "VT")}
    if not ok.any():
        return out
    c = coord.SkyCoord(ra=ra[ok] * u.deg, dec=dec[ok] * u.deg, distance=dist[ok] * u.kpc,
                       pm_ra_cosdec=pmra[ok] * u.mas / u.yr, pm_dec=pmdec[ok] * u.mas / u.yr,
                       radial_velocity=rv[ok] * u.km / u.s, frame="icrs")
    g = c.transform_to(solar.galactocentric_frame())
    x, y, z = (getattr(g, a).to_value(u.kpc) for a in ("x", "y", "z"))
    vx, vy, vz = (getattr(g, a).to_value(u.km / u.s) for a in ("v_x", "v_y", "v_z"))
    R = np.hypot(x, y)
    out["X"][ok], out["Y"][ok], out["Z"][ok] = x, y, z
    out["VX"][ok], out["VY"][ok], out["VZ"][ok] = vx, vy, vz
    out["R"][ok] = R
    out["PHI"][ok] = np.arctan2(y, -x)
    out["VR"][ok] = (x * vx + y * vy) / R
    out["VT"][ok] = (y * vx - x * vy) / R
    return out
