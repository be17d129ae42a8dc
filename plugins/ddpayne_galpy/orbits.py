"""Orbits and actions with galpy (Bovy 2015).

Default: the Stäckel approximation (Binney 2012) of galpy's ``actionAngleStaeckel`` in C, vectorised over
stars, with the focal length Δ estimated per star (``estimateDeltaStaeckel``), for the actions
(J_R, J_φ = L_z, J_z) and the orbit parameters (e, R_peri, R_apo, z_max; galpy's ``EccZmaxRperiRap``).
Option ``method="integrate"``: e, r_peri, r_apo (spherical, as galpy's ``Orbit.rperi``/``rap``) and z_max from
numerically integrated orbits (galpy ``Orbit.integrate``), the actions still from the Stäckel approximation.
Monte Carlo uncertainties over distance, proper motions and RV are optional and seeded.
"""
from __future__ import annotations

import logging
from typing import Any

import numpy as np
from astropy.table import Table

from ddpayne.flags import Flag
from ddpayne.galaxy.coords import galactocentric
from ddpayne.galaxy.orbits import OrbitIntegrator
from ddpayne.galaxy.solar import SOLAR, SolarParameters
from ddpayne.galaxy.starpair import column

log = logging.getLogger(__name__)

#: Output columns and their units.
OUTPUT_UNITS: dict[str, str] = {
    "JR": "kpc km / s", "JPHI": "kpc km / s", "JZ": "kpc km / s", "ECC": "",
    "RPERI": "kpc", "RAPO": "kpc", "ZMAX": "kpc", "ENERGY": "km2 / s2",
}
# ENERGY is galpy's: Φ + v²/2 with galpy's zero point of the potential (not zero at infinity for
# MWPotential2014), as ``galpy.orbit.Orbit.E`` reports it.


def get_potential(potential: Any = "MWPotential2014"):
    """A galpy potential from its name (``MWPotential2014`` or any of ``galpy.potential.mwpotentials``,
    e.g. ``McMillan17``), or the object itself.

    Raises
    ------
    ValueError
        For an unknown name, listing the known ones.
    """
    if not isinstance(potential, str):
        return potential
    import galpy.potential as gp
    from galpy.potential import mwpotentials
    if potential == "MWPotential2014":
        return gp.MWPotential2014
    names = [n for n in dir(mwpotentials) if not n.startswith("_") and n[0].isupper()]
    if potential in names:
        return getattr(mwpotentials, potential)
    if hasattr(gp, potential) and not callable(getattr(gp, potential)):
        return getattr(gp, potential)
    raise ValueError(f"unknown galpy potential {potential!r}; known: ['MWPotential2014'] + {names}")


def staeckel_delta(pot, R: np.ndarray, z: np.ndarray, delta0: float = 1e-6) -> np.ndarray:
    """Focal length Δ of the Stäckel fudge per point (natural units), vectorised.

    Sanders (2012, MNRAS 426, 128) eq. 9 with its sign corrected, as galpy's ``estimateDeltaStaeckel``
    computes it point by point; here all points are evaluated in one call of each galpy force/derivative
    function (≈ 50× faster for 10⁵ stars). Falls back to galpy's function for potentials that cannot be
    evaluated on arrays.
    """
    from galpy.actionAngle import estimateDeltaStaeckel
    from galpy.potential import (evaluateR2derivs, evaluateRforces, evaluateRzderivs, evaluatez2derivs,
                                 evaluatezforces)
    R = np.atleast_1d(np.asarray(R, float))
    z = np.atleast_1d(np.where(np.asarray(z, float) == 0.0, 1e-4, np.asarray(z, float)))

    def galpy_loop(R, z):
        return np.atleast_1d(np.asarray(estimateDeltaStaeckel(pot, R, z.copy(), no_median=True), float))

    if not _vectorises(pot):
        return galpy_loop(R, z)
    try:
        with np.errstate(all="ignore"):
            d2 = (z**2 - R**2
                  + (3.0 * R * np.asarray(evaluatezforces(pot, R, z, use_physical=False))
                     - 3.0 * z * np.asarray(evaluateRforces(pot, R, z, use_physical=False))
                     + R * z * (np.asarray(evaluateR2derivs(pot, R, z, use_physical=False))
                                - np.asarray(evaluatez2derivs(pot, R, z, use_physical=False))))
                  / np.asarray(evaluateRzderivs(pot, R, z, use_physical=False)))
        d2 = np.broadcast_to(d2, R.shape).astype(float)
    except Exception:  # noqa: BLE001 - potentials without array support: galpy's per-point loop
        _VECTORISES[id(pot)] = False
        return galpy_loop(R, z)
    d2 = np.where((d2 < delta0**2) & (d2 > -1e-10), delta0**2, d2)
    with np.errstate(invalid="ignore"):
        return np.sqrt(d2)


_VECTORISES: dict[int, bool] = {}


def _vectorises(pot) -> bool:
    """Whether array evaluation of ``pot``'s derivatives reproduces galpy's point-by-point Δ (checked once
    per potential on a few points; some composite potentials do not broadcast correctly)."""
    key = id(pot)
    if key not in _VECTORISES:
        from galpy.actionAngle import estimateDeltaStaeckel
        R = np.array([0.3, 0.9, 1.1, 2.5, 4.0])
        z = np.array([0.05, -0.2, 0.4, 1.5, -3.0])
        _VECTORISES[key] = True
        try:
            fast = staeckel_delta(pot, R, z)
            slow = np.asarray(estimateDeltaStaeckel(pot, R, z.copy(), no_median=True), float)
            _VECTORISES[key] = bool(np.allclose(fast, slow, rtol=1e-6, atol=1e-9, equal_nan=True))
        except Exception:  # noqa: BLE001
            _VECTORISES[key] = False
        if not _VECTORISES[key]:
            log.info("galpy potential %r: Δ estimated point by point (array evaluation differs)", pot)
    return _VECTORISES[key]


def _units_of(pot, solar: SolarParameters) -> tuple[float, float]:
    """Natural units (ro kpc, vo km/s) in which ``pot`` is evaluated.

    A potential in natural units (MWPotential2014) is scaled so that ro = r0 and vo = vc0 (its circular
    velocity at the Sun is vc0); one with physical units set (e.g. McMillan17) keeps its own.
    """
    from galpy.util.conversion import get_physical
    p = pot[0] if isinstance(pot, (list, tuple)) else pot
    if getattr(p, "_roSet", False) or getattr(p, "_voSet", False):
        phys = get_physical(pot)
        return float(phys["ro"]), float(phys["vo"])
    return solar.r0, solar.vc0


class GalpyOrbits(OrbitIntegrator):
    """Orbit integrator on galpy.

    Parameters
    ----------
    potential : str or galpy potential
        ``"MWPotential2014"`` (default, as the paper) or any name of :func:`get_potential`.
    method : {"staeckel", "integrate"}
        Stäckel approximation (fast, default) or numerical orbit integration for e, r_peri, r_apo, z_max.
    solar : SolarParameters
        Solar position and motion (:mod:`ddpayne.galaxy.solar`).
    n_mc : int
        Monte Carlo samples for uncertainties (0: none). Adds ``*_ERR`` columns (half the 16–84 % range).
    seed : int
        Seed of the Monte Carlo draws.
    t_max_gyr, n_steps : float, int
        Integration time and output steps for ``method="integrate"``.
    chunk : int
        Stars per vectorised call (bounds memory).
    r_apo_max : float
        Orbits with a Stäckel apocentre beyond this (kpc), or any non-finite output, are reported as
        :attr:`~ddpayne.flags.Flag.NO_ORBIT` (the approximation fails for barely bound orbits).
    """

    name = "galpy"

    def __init__(self, potential: Any = "MWPotential2014", method: str = "staeckel",
                 solar: SolarParameters = SOLAR, n_mc: int = 0, seed: int = 0,
                 t_max_gyr: float = 5.0, n_steps: int = 5001, chunk: int = 20000,
                 r_apo_max: float = 500.0):
        if method not in ("staeckel", "integrate"):
            raise ValueError(f"method must be 'staeckel' or 'integrate', not {method!r}")
        self.potential_name = potential if isinstance(potential, str) else type(potential).__name__
        self.pot = get_potential(potential)
        self.method = method
        self.solar = solar
        self.n_mc = int(n_mc)
        self.seed = seed
        self.t_max_gyr = t_max_gyr
        self.n_steps = n_steps
        self.chunk = chunk
        self.r_apo_max = r_apo_max
        self.ro, self.vo = _units_of(self.pot, solar)

    # ------------------------------------------------------------------------------------------------
    def _phase_space(self, stars: Table, dist=None, pmra=None, pmdec=None, rv=None):
        def col(name):
            return column(stars, name)
        return galactocentric(col("RA"), col("DEC"), col("DIST") if dist is None else dist,
                              col("PMRA") if pmra is None else pmra,
                              col("PMDEC") if pmdec is None else pmdec,
                              col("RV") if rv is None else rv, self.solar)

    def _staeckel(self, g: dict) -> dict[str, np.ndarray]:
        """Actions and orbit parameters for the finite, bound rows of ``g`` (natural-unit maths inside)."""
        from galpy.actionAngle import actionAngleStaeckel
        from galpy.potential import evaluatePotentials
        n = g["R"].size
        out = {k: np.full(n, np.nan) for k in OUTPUT_UNITS}
        R, z = g["R"] / self.ro, g["Z"] / self.ro
        vR, vT, vz = g["VR"] / self.vo, g["VT"] / self.vo, g["VZ"] / self.vo
        ok = np.isfinite(R) & np.isfinite(vR) & np.isfinite(vT) & np.isfinite(vz) & (R > 0)
        if not ok.any():
            return out
        energy = np.full(n, np.nan)
        energy[ok] = (evaluatePotentials(self.pot, R[ok], z[ok], use_physical=False)
                      + 0.5 * (vR[ok] ** 2 + vT[ok] ** 2 + vz[ok] ** 2))
        out["ENERGY"] = energy * self.vo**2
        # bound orbits only; galpy potentials need not vanish at infinity (MWPotential2014's bulge term)
        ok &= energy < evaluatePotentials(self.pot, 1e8, 0.0, use_physical=False)
        aA = actionAngleStaeckel(pot=self.pot, delta=0.45, c=True)
        idx = np.flatnonzero(ok)
        for s in range(0, idx.size, self.chunk):
            i = idx[s:s + self.chunk]
            delta = staeckel_delta(self.pot, R[i], z[i])
            delta = np.atleast_1d(np.nan_to_num(np.asarray(delta, float), nan=0.45)).clip(1e-4, None)
            phi = np.zeros(i.size)
            with np.errstate(all="ignore"):
                jr, lz, jz = aA(R[i], vR[i], vT[i], z[i], vz[i], phi, delta=delta)
                e, zmax, rperi, rap = aA.EccZmaxRperiRap(R[i], vR[i], vT[i], z[i], vz[i], phi, delta=delta)
            out["JR"][i] = np.asarray(jr) * self.ro * self.vo
            out["JPHI"][i] = np.asarray(lz) * self.ro * self.vo
            out["JZ"][i] = np.asarray(jz) * self.ro * self.vo
            out["ECC"][i] = e
            out["ZMAX"][i] = np.asarray(zmax) * self.ro
            out["RPERI"][i] = np.asarray(rperi) * self.ro
            out["RAPO"][i] = np.asarray(rap) * self.ro
        # the Stäckel approximation breaks down for barely bound orbits: no orbit rather than nonsense
        bad = ok & ~(np.all([np.isfinite(out[k]) for k in OUTPUT_UNITS], axis=0)
                     & (out["RAPO"] < self.r_apo_max))
        for k in OUTPUT_UNITS:
            if k != "ENERGY":
                out[k][bad] = np.nan
        return out

    def _integrate(self, g: dict, out: dict) -> None:
        """Replace e, r_peri, r_apo, z_max of ``out`` by values from integrated orbits."""
        from galpy.orbit import Orbit
        ok = np.isfinite(out["JR"])
        idx = np.flatnonzero(ok)
        if idx.size == 0:
            return
        vxvv = np.stack([g["R"][idx] / self.ro, g["VR"][idx] / self.vo, g["VT"][idx] / self.vo,
                         g["Z"][idx] / self.ro, g["VZ"][idx] / self.vo, g["PHI"][idx]], axis=-1)
        o = Orbit(vxvv, ro=self.ro, vo=self.vo)
        t_unit_gyr = self.ro / self.vo * 0.9777922216807891  # kpc/(km/s) in Gyr
        ts = np.linspace(0.0, self.t_max_gyr / t_unit_gyr, self.n_steps)
        import warnings
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="Using C implementation")
            o.integrate(ts, self.pot, method="dop853_c", progressbar=False)
        out["ECC"][idx] = o.e(use_physical=False)
        out["RPERI"][idx] = o.rperi(use_physical=False) * self.ro
        out["RAPO"][idx] = o.rap(use_physical=False) * self.ro
        out["ZMAX"][idx] = o.zmax(use_physical=False) * self.ro

    def orbits(self, stars: Table) -> Table:
        """Actions and orbit parameters of ``stars`` (one output row per input row, same order).

        Input columns: ``RA``, ``DEC`` (deg), ``DIST`` (kpc), ``PMRA``, ``PMDEC`` (mas/yr), ``RV`` (km/s);
        for ``n_mc > 0`` also ``DIST_ERR``, ``PMRA_ERROR``, ``PMDEC_ERROR``, ``RV_ERR`` (missing errors
        count as zero). Rows with any of them missing or NaN, on unbound orbits, or where the Stäckel
        approximation fails get NaN outputs (``ENERGY`` is kept when known) and
        :attr:`~ddpayne.flags.Flag.NO_ORBIT`.
        """
        n = len(stars)
        g = self._phase_space(stars)
        out = self._staeckel(g)
        if self.method == "integrate":
            self._integrate(g, out)
        flag = np.zeros(n, dtype=np.int64)
        flag[~np.isfinite(out["JR"])] |= int(Flag.NO_ORBIT)
        res = Table()
        for k, unit in OUTPUT_UNITS.items():
            res[k] = out[k]
            if unit:
                res[k].unit = unit
        if self.n_mc > 0:
            for k, v in self._monte_carlo(stars).items():
                res[k + "_ERR"] = v
                if OUTPUT_UNITS[k]:
                    res[k + "_ERR"].unit = OUTPUT_UNITS[k]
        res["FLAG"] = flag
        res.meta.update({"ORB_POT": self.potential_name, "ORB_METH": self.method,
                         "ORB_RO": self.ro, "ORB_VO": self.vo,
                         "SUN_R0": self.solar.r0, "SUN_Z0": self.solar.z0,
                         "SUN_U": self.solar.u, "SUN_V": self.solar.v, "SUN_W": self.solar.w,
                         "SUN_VC0": self.solar.vc0})
        return res

    def _monte_carlo(self, stars: Table) -> dict[str, np.ndarray]:
        """Half the 16–84 % range of each output over ``n_mc`` draws of the inputs (seeded)."""
        rng = np.random.default_rng(self.seed)
        n = len(stars)

        def col(name, default=np.nan):
            v = column(stars, name, default)
            return np.nan_to_num(v, nan=0.0) if default == 0.0 else v

        d, de = col("DIST"), col("DIST_ERR", 0.0)
        pa, pae = col("PMRA"), col("PMRA_ERROR", 0.0)
        pd, pde = col("PMDEC"), col("PMDEC_ERROR", 0.0)
        rv, rve = col("RV"), col("RV_ERR", 0.0)
        m = self.n_mc
        samples = {k: np.full((m, n), np.nan) for k in OUTPUT_UNITS}
        with np.errstate(all="ignore"):
            frac = np.where(d > 0, de / d, 0.0)
        # blocks of stars, all draws at once: one coordinate transformation and one Stäckel call per block
        block = max(1, 200_000 // m)
        for b0 in range(0, n, block):
            sl = slice(b0, min(n, b0 + block))
            k = sl.stop - sl.start

            def draw(x, ex):
                return np.tile(x[sl], m) + rng.normal(size=m * k) * np.tile(ex[sl], m)

            dm = np.tile(d[sl], m) * np.exp(rng.normal(size=m * k) * np.tile(frac[sl], m))
            g = galactocentric(np.tile(col("RA")[sl], m), np.tile(col("DEC")[sl], m), dm,
                               draw(pa, pae), draw(pd, pde), draw(rv, rve), self.solar)
            o = self._staeckel(g)
            for key in OUTPUT_UNITS:
                samples[key][:, sl] = o[key].reshape(m, k)
        res = {}
        for k, s in samples.items():
            with np.errstate(all="ignore"):
                import warnings
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", RuntimeWarning)
                    lo, hi = np.nanpercentile(s, [16, 84], axis=0)
            res[k] = 0.5 * (hi - lo)
        return res
