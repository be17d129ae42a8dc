"""A simple Galaxy model that gives mock stars positions, velocities, dust, photometry and astrometry.

:func:`assign_galaxy` takes a table of *true* stellar labels (drawn elsewhere, e.g. by the mock-survey
generator) and returns it with everything a Gaia × 2MASS cross-match would add, plus the truth, so that
extinction, distances, orbits and the Gaia-Enceladus-Sausage (GES) selection can be validated end to end.

The model (all choices deliberately simple and documented here; nothing in the *estimators* uses them):

Populations (``POP``)
    ``thin``, ``thick``, ``halo`` and ``ges``, drawn per star with probabilities that depend on [Fe/H] and
    [Mg/Fe] (:func:`population_probabilities`): metal-rich low-α stars are mostly thin disk, high-α stars with
    [Fe/H] > −1 mostly thick disk, metal-poor stars halo or GES (GES favoured for lower [α/Fe], none above
    [Fe/H] = −0.5). This chemical prior is multiplied by the star's *visibility* in each population (the
    fraction of the population inside its magnitude window on the sky footprint), so that e.g. a luminous
    metal-rich giant, which would have to lie kpc above the plane, becomes halo ("splash") rather than disk.
Density
    Thin disk: exponential, scale length 2.6 kpc, height 0.3 kpc. Thick disk: 2.0 kpc, 0.9 kpc. Halo: cored
    power law :math:`(r_q^2 + 1)^{-1.75}` with flattening q = 0.7. GES: broken power law (slope −2.5 inside
    25 kpc, −4.5 outside), q = 0.8.
Kinematics
    Disks: Gaussian (σ_R, σ_φ, σ_z) = (35, 25, 20) km/s (thin) and (60, 45, 45) km/s (thick) about a mean
    rotation ``vc0 − 15`` and ``vc0 − 50`` km/s. Halo: spherical, σ = (140, 100, 100) km/s (r, θ, φ), mean
    v_φ = +20 km/s. GES: radially anisotropic, σ = (160, 25, 25) km/s (β ≈ 0.98), mean v_φ = 0 (e ≳ 0.9).
Sky and distance
    A line of sight is drawn uniformly on the sky at ``|b|`` > ``min_abs_b`` (several candidates, one chosen
    with
    probability ∝ its column of the star's population within the distance range); the distance along it
    ∝ ρ d², restricted so that the apparent G lies in ``g_range`` (a magnitude-limited survey like DESI MWS).
Absolute magnitudes (``M_*_TRUE``)
    A blackbody of the star's Teff and radius :math:`R = \\sqrt{G M / g}` with mass
    :math:`M = (T_{\\rm eff}/5772\\,{\\rm K})^{1.4}\\,M_\\odot` for dwarfs and 0.85–1.0 :math:`M_\\odot`
    (lower for metal-poor stars) for giants, smoothly joined at log g ≈ 3.9; AB magnitudes in the speclite
    Gaia DR3 and 2MASS passbands converted to Vega with fixed offsets (:data:`AB_MINUS_VEGA`). For the Sun
    this gives
    M_G = 4.70, BP−RP = 0.87 (real: 4.67, 0.82). A fraction ``binary_fraction`` of stars are unresolved
    equal-mass twins (``BINARY_TRUE``): 0.753 mag brighter in every band with the same labels.
Dust (``EBV_TRUE``)
    A dust disk :math:`dE(B-V)/ds = k\\,e^{-(R-R_0)/3\\,{\\rm kpc}}e^{-|z|/0.1\\,{\\rm kpc}}`,
    k = 0.3 mag/kpc (``dust_k``), integrated to the star, times a log-normal patchiness (0.2 dex) per line of
    sight.
    ``EBV_SFD`` is the same integral to infinity: what a 2D map such as SFD98 would give.
Photometry
    Extinction from :mod:`ddpayne.galaxy.extinction` (the Teff- and E(B−V)-dependent coefficients),
    Gaussian errors growing with magnitude; 2MASS magnitudes fainter than J 16.5, H 16.0, Ks 15.5 are missing
    (NaN), as in the real 2MASS point-source catalogue.
Astrometry
    Gaia DR3-like: σ_ϖ(G) from the DR3 science-performance formula :math:`\\sqrt{40 + 800 z + 30 z^2}` µas
    with
    :math:`z = 10^{0.4(\\max(G, 13) - 15)}` (× 1.3 for 6-parameter solutions, × a 0.1 dex log-normal
    scatter), σ_µ = 1.1 σ_ϖ; ``ASTROMETRIC_PARAMS_SOLVED`` 31 or 95 (more 95 at faint G) with
    ``NU_EFF_USED_IN_ASTROMETRY`` (Lindegren et al. 2021, eq. for ν_eff from BP−RP) or ``PSEUDOCOLOUR``;
    the observed ``PARALLAX`` includes the Lindegren et al. (2021) zero point (``gaiadr3-zeropoint``), so the
    correction matters. RUWE log-normal about 1.0 (0.07 dex), 2 % of single stars and 40 % of binaries above
    1.4.

Examples
--------
>>> from astropy.table import Table
>>> from ddpayne.mock.galaxy import assign_galaxy
>>> labels = Table({"TEFF": [5800.0, 4800.0], "LOGG": [4.3, 2.5], "FE_H": [0.0, -1.5],
...                 "MG_FE": [0.0, 0.2]})
>>> stars = assign_galaxy(labels, seed=1)
>>> set(stars["POP"]) <= {"thin", "thick", "halo", "ges"}
True
>>> bool((stars["PHOT_G_MEAN_MAG"] > 13.9).all() and (stars["PHOT_G_MEAN_MAG"] < 19.1).all())
True
"""
from __future__ import annotations

import functools
import logging
from dataclasses import dataclass

import astropy.units as u
import numpy as np
from astropy import constants as const
from astropy.modeling.physical_models import BlackBody
from astropy.table import Table

from ..galaxy.extinction import BANDS, ExtinctionTable, _band_mags, default_table
from ..galaxy.solar import SOLAR, SolarParameters

log = logging.getLogger(__name__)

#: Population names in the order of :func:`population_probabilities` columns.
POPULATIONS: tuple[str, ...] = ("thin", "thick", "halo", "ges")

#: AB − Vega offsets (mag): Gaia DR3 (Riello et al. 2021 zero points), 2MASS (Blanton & Roweis 2007).
AB_MINUS_VEGA: dict[str, float] = {"G": 0.1136, "BP": 0.0155, "RP": 0.3561, "J": 0.91, "H": 1.39, "KS": 1.85}

#: Output columns of apparent magnitudes for each band.
MAG_COLUMNS: dict[str, str] = {"G": "PHOT_G_MEAN_MAG", "BP": "PHOT_BP_MEAN_MAG", "RP": "PHOT_RP_MEAN_MAG",
                               "J": "J", "H": "H", "KS": "KS"}
#: 2MASS faint limits (mag): fainter stars have no 2MASS magnitude.
TWOMASS_LIMITS: dict[str, float] = {"J": 16.5, "H": 16.0, "KS": 15.5}

_TSUN, _LOGG_SUN, _MBOL_SUN = 5772.0, 4.438, 4.74
_BINARY_DMAG = 2.5 * np.log10(2.0)


@dataclass(frozen=True)
class PopulationModel:
    """Density and kinematics of one population (kpc, km/s); see the module docstring."""

    kind: str                    # "disk" or "spheroid"
    h_r: float = 0.0             # disk scale length
    h_z: float = 0.0             # disk scale height
    q: float = 1.0               # spheroid flattening
    slope_in: float = 3.5        # spheroid density slope inside r_break
    slope_out: float = 3.5       # ... and outside
    r_break: float = 1e9
    r_core: float = 1.0
    sigma: tuple[float, float, float] = (30.0, 20.0, 20.0)  # (R|r, phi|theta, z|phi) dispersions
    v_lag: float = 0.0           # disks: mean rotation = vc0 - v_lag; spheroids: mean v_phi = -v_lag
    sigma_slope: float = 0.0     # spheroids: dispersions scale as (r / 8 kpc)**-sigma_slope beyond 8 kpc
    sigma_l: float = 0.0         # spheroids: if > 0, tangential dispersions are min(sigma, sigma_l / r)


#: The population models used by :func:`assign_galaxy`.
POPULATION_MODELS: dict[str, PopulationModel] = {
    "thin": PopulationModel("disk", h_r=2.6, h_z=0.3, sigma=(35.0, 25.0, 20.0), v_lag=15.0),
    "thick": PopulationModel("disk", h_r=2.0, h_z=0.9, sigma=(60.0, 45.0, 45.0), v_lag=50.0),
    "halo": PopulationModel("spheroid", q=0.7, slope_in=3.5, slope_out=3.5, sigma=(140.0, 100.0, 100.0),
                            v_lag=-20.0, sigma_slope=0.3),
    "ges": PopulationModel("spheroid", q=0.8, slope_in=2.5, slope_out=4.5, r_break=25.0,
                           sigma=(160.0, 30.0, 30.0), v_lag=0.0, sigma_slope=0.3, sigma_l=250.0),
}


def _sigmoid(x):
    return 1.0 / (1.0 + np.exp(-np.clip(x, -50, 50)))


def population_probabilities(feh: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """Probability of each of :data:`POPULATIONS` given [Fe/H] and [α/Fe] (here [Mg/Fe]).

    Returns an array of shape (n, 4) whose rows sum to one.
    """
    feh = np.asarray(feh, float)
    alpha = np.asarray(alpha, float)
    rich = _sigmoid((feh + 0.8) / 0.12)          # disk metallicities
    poor = 1.0 - rich
    low_a = _sigmoid((0.15 - alpha) / 0.04)
    w_thin = rich * low_a * 0.95
    w_thick = rich * (1.0 - low_a) * 0.9 + 0.04 * rich
    w_ges = poor * (0.35 + 0.45 * _sigmoid((0.28 - alpha) / 0.05)) * (feh < -0.5)   # GES MDF ends ~ -0.5
    w_halo = poor * 0.45 + 0.01 + 0.06 * rich * (1.0 - low_a)   # incl. a little "splash"
    w = np.stack([w_thin, w_thick, w_halo, w_ges], axis=-1)
    return w / w.sum(axis=-1, keepdims=True)


# ----------------------------------------------------------------------------------------------------
# absolute magnitudes (the mock's truth; estimators must learn their own relation from control stars)

@functools.lru_cache(maxsize=1)
def _bb_mag_table() -> tuple[np.ndarray, np.ndarray]:
    """Vega absolute magnitudes of a 1 R_sun blackbody on a Teff grid: (teff (n,), mags (n, 6))."""
    teff = np.arange(2500.0, 15001.0, 25.0)
    wave = np.arange(3000.0, 26000.1, 5.0)
    # pi * B_lambda at the surface, diluted to 10 pc, erg/s/cm2/AA
    unit = u.erg / (u.cm**2 * u.s * u.AA * u.sr)
    planck = BlackBody(temperature=teff[:, None] * u.K, scale=1.0 * unit)
    dilution = (const.R_sun / (10 * u.pc)).to_value(u.dimensionless_unscaled) ** 2
    flux = np.pi * planck(wave[None, :] * u.AA).to_value(unit) * dilution
    mags = _band_mags(flux, wave, BANDS) - np.array([AB_MINUS_VEGA[b] for b in BANDS])
    return teff, mags


def stellar_mass(teff, logg, feh) -> np.ndarray:
    """The mock's stellar mass (M_sun): a dwarf Teff relation blended into a giant value at log g ≈ 3.9."""
    teff, logg, feh = (np.asarray(a, float) for a in (teff, logg, feh))
    m_dwarf = np.clip((teff / _TSUN) ** 1.4, 0.1, 2.5)
    m_giant = 0.925 + 0.075 * np.tanh((feh + 0.7) / 0.3)
    wd = _sigmoid((logg - 3.9) / 0.1)
    return wd * m_dwarf + (1.0 - wd) * m_giant


def true_absolute_magnitudes(teff, logg, feh) -> dict[str, np.ndarray]:
    """The mock's absolute magnitudes (Vega) of a single star, per band of :data:`BANDS`.

    Blackbody of radius :math:`R/R_\\odot = \\sqrt{(M/M_\\odot)\\,10^{\\log g_\\odot - \\log g}}`.
    """
    teff, logg, feh = (np.asarray(a, float) for a in (teff, logg, feh))
    tgrid, mgrid = _bb_mag_table()
    mass = stellar_mass(teff, logg, feh)
    log_r = 0.5 * (np.log10(mass) + _LOGG_SUN - logg)
    out = {}
    tc = np.clip(teff, tgrid[0], tgrid[-1])
    for i, b in enumerate(BANDS):
        out[b] = np.interp(tc, tgrid, mgrid[:, i]) - 5.0 * log_r
    return out


# ----------------------------------------------------------------------------------------------------
# densities, dust, errors

def _galcen_xyz(l_deg, b_deg, d, solar: SolarParameters):
    """Approximate Galactocentric x, y, z (kpc; Sun at x = −r0) for density evaluation."""
    l, b = np.radians(l_deg), np.radians(b_deg)
    x = d * np.cos(b) * np.cos(l) - solar.r0
    y = d * np.cos(b) * np.sin(l)
    z = d * np.sin(b) + solar.z0
    return x, y, z


def log_density(pop: str, x, y, z, solar: SolarParameters = SOLAR) -> np.ndarray:
    """Unnormalised log number density of population ``pop`` at Galactocentric (x, y, z) in kpc."""
    m = POPULATION_MODELS[pop]
    R = np.hypot(x, y)
    if m.kind == "disk":
        return -(R - solar.r0) / m.h_r - np.abs(z) / m.h_z
    rq = np.sqrt(R**2 + (z / m.q) ** 2 + m.r_core**2)
    inner = -m.slope_in * np.log(rq)
    outer = -m.slope_out * np.log(rq) + (m.slope_out - m.slope_in) * np.log(m.r_break)
    return np.where(rq < m.r_break, inner, outer)


def dust_ebv(l_deg, b_deg, d, *, k: float = 0.4, h_z: float = 0.1, h_r: float = 3.0,
             solar: SolarParameters = SOLAR, n_steps: int = 96) -> np.ndarray:
    """E(B−V) of the mock dust disk integrated from the Sun to distance ``d`` (kpc) along (l, b).

    Trapezoid rule on log-spaced nodes from 1 pc to ``d`` (the dust lies within a few hundred pc of the
    plane, so far lines of sight need fine steps only near the Sun), plus the first parsec.
    """
    l_deg, b_deg, d = np.broadcast_arrays(np.asarray(l_deg, float), np.asarray(b_deg, float),
                                          np.asarray(d, float))
    s0 = np.minimum(1e-3, d)
    t = np.linspace(0.0, 1.0, n_steps)
    s = np.exp(np.log(s0)[..., None] + (np.log(d) - np.log(s0))[..., None] * t)
    x, y, z = _galcen_xyz(l_deg[..., None], b_deg[..., None], s, solar)
    dens = k * np.exp(-(np.hypot(x, y) - solar.r0) / h_r - np.abs(z) / h_z)
    return np.trapezoid(dens, s, axis=-1) + dens[..., 0] * s0


def gaia_parallax_error(g, rng: np.random.Generator | None = None) -> np.ndarray:
    """Gaia DR3-like parallax uncertainty (mas) at G (science-performance formula, 5-parameter)."""
    z = 10.0 ** (0.4 * (np.maximum(np.asarray(g, float), 13.0) - 15.0))
    sig = np.sqrt(40.0 + 800.0 * z + 30.0 * z**2) * 1e-3
    if rng is not None:
        sig = sig * 10.0 ** rng.normal(0.0, 0.1, size=sig.shape)
    return sig


def nu_eff_from_colour(bp_rp) -> np.ndarray:
    """ν_eff (µm⁻¹) used in Gaia EDR3 astrometry from BP−RP (Lindegren et al. 2021, A&A 649, A2)."""
    c = np.asarray(bp_rp, float)
    return np.clip(1.76 - (1.61 / np.pi) * np.arctan(0.531 * c), 1.24, 1.72)


# ----------------------------------------------------------------------------------------------------

@functools.lru_cache(maxsize=None)
def _log_norm(pop: str, solar: SolarParameters) -> float:
    """log of the integral of :func:`log_density` over all space (kpc³): normalises each population."""
    r = np.logspace(-3.0, 3.5, 700)
    mu = np.linspace(-1.0, 1.0, 401)
    R = r[:, None] * np.sqrt(1.0 - mu[None, :] ** 2)
    z = r[:, None] * mu[None, :]
    rho = np.exp(log_density(pop, -R, np.zeros_like(R), z, solar))
    inner = np.trapezoid(rho, mu, axis=1) * 2.0 * np.pi * r**2
    return float(np.log(np.trapezoid(inner, r)))


def _draw_positions(prior: np.ndarray, forced: np.ndarray | None, d_lo: np.ndarray, d_hi: np.ndarray,
                    min_abs_b: float, rng: np.random.Generator, solar: SolarParameters,
                    n_los: int = 12, n_d: int = 48, chunk: int = 4000):
    """Draw population and (l, b, d) for each star.

    The population is drawn from ``prior`` (chemistry) times the *visibility* of each population for this
    star: the fraction of that population's stars (normalised density) inside the star's distance window on
    the candidate lines of sight. A luminous metal-rich giant that would have to sit 10 kpc above the plane
    is therefore unlikely to be called thin disk. ``forced`` (population indices) skips that draw.
    """
    n = prior.shape[0]
    pop_idx = np.empty(n, dtype=int)
    l_out, b_out, d_out = np.empty(n), np.empty(n), np.empty(n)
    sinb_min = np.sin(np.radians(min_abs_b))
    log_norm = np.array([_log_norm(p, solar) for p in POPULATIONS])
    for s in range(0, n, chunk):
        sl = slice(s, min(n, s + chunk))
        m = sl.stop - sl.start
        rows = np.arange(m)
        # candidate lines of sight, uniform on the sky at |b| > min_abs_b
        ll = rng.uniform(0.0, 360.0, (m, n_los))
        sb = rng.uniform(sinb_min, 1.0, (m, n_los)) * rng.choice([-1.0, 1.0], (m, n_los))
        bb = np.degrees(np.arcsin(sb))
        # log-spaced distance nodes within [d_lo, d_hi]; weight = rho d^3 dln d = rho d^2 dd
        lo, hi = np.log(d_lo[sl]), np.log(d_hi[sl])
        step = (hi - lo) / n_d
        lnd = lo[:, None] + step[:, None] * (np.arange(n_d) + 0.5)
        dd = np.exp(lnd)[:, None, :]
        x, y, z = _galcen_xyz(ll[..., None], bb[..., None], dd, solar)
        logw = np.stack([log_density(p, x, y, z, solar) - log_norm[k]
                         for k, p in enumerate(POPULATIONS)])            # (4, m, n_los, n_d)
        logw += (3.0 * np.log(dd) + np.log(step)[:, None, None])[None]
        if forced is None:
            top = logw.max(axis=(0, 2, 3), keepdims=True)
            vis = np.exp(logw - top).sum(axis=(2, 3)).T                  # (m, 4), common scale per star
            post = prior[sl] * vis
            post /= post.sum(axis=1, keepdims=True)
            k = (rng.uniform(size=(m, 1)) > np.cumsum(post, axis=1)).sum(axis=1)
            k = k.clip(0, len(POPULATIONS) - 1)
        else:
            k = forced[sl]
        pop_idx[sl] = k
        lw = logw[k, rows]                                               # (m, n_los, n_d)
        w = np.exp(lw - lw.max(axis=(1, 2), keepdims=True))
        col = w.sum(axis=2)
        cum = np.cumsum(col / col.sum(axis=1, keepdims=True), axis=1)
        j_los = (rng.uniform(size=(m, 1)) > cum).sum(axis=1).clip(0, n_los - 1)
        wk = w[rows, j_los]
        cd = np.cumsum(wk / wk.sum(axis=1, keepdims=True), axis=1)
        j = (rng.uniform(size=(m, 1)) > cd).sum(axis=1).clip(0, n_d - 1)
        l_out[sl], b_out[sl] = ll[rows, j_los], bb[rows, j_los]
        d_out[sl] = np.exp(lo + step * (j + rng.uniform(size=m)))
    return np.array(POPULATIONS)[pop_idx], l_out, b_out, d_out


def _escape_speed(R, z, solar: SolarParameters) -> np.ndarray:
    """Escape speed (km/s) of galpy's MWPotential2014 scaled to (r0, vc0): used only to truncate the mock
    halo/GES velocity distributions so that the mock holds bound stars."""
    from galpy.potential import MWPotential2014, evaluatePotentials
    phi = evaluatePotentials(MWPotential2014, np.asarray(R) / solar.r0, np.asarray(z) / solar.r0,
                             use_physical=False)
    phi_inf = evaluatePotentials(MWPotential2014, 1e8, 0.0, use_physical=False)  # galpy's zero is not at ∞
    return np.sqrt(np.maximum(2.0 * (phi_inf - np.asarray(phi, float)), 0.0)) * solar.vc0


def _draw_velocities(pop, x, y, z, rng, solar: SolarParameters, v_esc_fraction: float = 0.95):
    """Galactocentric Cartesian velocities (km/s) for stars at (x, y, z) (astropy Galactocentric axes)."""
    n = pop.size
    R = np.hypot(x, y)
    r = np.sqrt(R**2 + z**2)
    e_R = np.stack([x / R, y / R, np.zeros(n)], -1)
    e_rot = np.stack([y / R, -x / R, np.zeros(n)], -1)           # direction of Galactic rotation
    e_z = np.tile([0.0, 0.0, 1.0], (n, 1))
    e_r = np.stack([x / r, y / r, z / r], -1)
    e_th = np.cross(e_r, e_rot)
    e_th /= np.linalg.norm(e_th, axis=-1, keepdims=True)
    v = np.empty((n, 3))
    for p in POPULATIONS:
        sel = pop == p
        if not sel.any():
            continue
        m = POPULATION_MODELS[p]
        g = rng.normal(size=(sel.sum(), 3)) * np.array(m.sigma)
        if m.kind == "disk":
            vphi = solar.vc0 - m.v_lag + g[:, 1]
            v[sel] = g[:, :1] * e_R[sel] + vphi[:, None] * e_rot[sel] + g[:, 2:] * e_z[sel]
        else:
            rr = r[sel]
            sig = np.tile(np.array(m.sigma, float), (rr.size, 1))
            sig *= np.where(rr > 8.0, (rr / 8.0) ** -m.sigma_slope, 1.0)[:, None]
            if m.sigma_l > 0:
                sig[:, 1:] = np.minimum(sig[:, 1:], m.sigma_l / rr[:, None])
            g = rng.normal(size=(rr.size, 3)) * sig
            # truncate at a fraction of the escape speed (rejection; vphi mean included)
            vesc = _escape_speed(R[sel], z[sel], solar) * v_esc_fraction
            for _ in range(50):
                fast = (g[:, 0] ** 2 + g[:, 1] ** 2 + (g[:, 2] - m.v_lag) ** 2) > vesc**2
                if not fast.any():
                    break
                g[fast] = rng.normal(size=(int(fast.sum()), 3)) * sig[fast]
            else:
                g[fast] *= (0.99 * vesc[fast] / np.sqrt(g[fast, 0] ** 2 + g[fast, 1] ** 2
                                                         + (g[fast, 2] - m.v_lag) ** 2))[:, None]
            vphi = -m.v_lag + g[:, 2]
            v[sel] = g[:, :1] * e_r[sel] + g[:, 1:2] * e_th[sel] + vphi[:, None] * e_rot[sel]
    return v


def assign_galaxy(labels: Table, seed: int, *, g_range: tuple[float, float] = (14.0, 19.0),
                  min_abs_b: float = 20.0, binary_fraction: float = 0.05, rv_error: float = 1.0,
                  populations: np.ndarray | None = None, solar: SolarParameters = SOLAR,
                  extinction_table: ExtinctionTable | None = None, dust_k: float = 0.3) -> Table:
    """Give each star of ``labels`` a place in a simple Galaxy, with Gaia/2MASS-like observables.

    Parameters
    ----------
    labels : `~astropy.table.Table`
        True labels: ``TEFF`` (K), ``LOGG``, ``FE_H`` required; ``MG_FE`` (or ``ALPHA_FE``) used for the
        population choice when present (else an [α/Fe]–[Fe/H] trend is assumed); other columns
        (e.g. ``TARGETID``) are kept.
    seed : int
        Seed of every random draw: the same labels and seed give the same table.
    g_range : (float, float)
        Apparent G magnitudes the distances are drawn to satisfy (after extinction).
    min_abs_b : float
        Lines of sight are drawn at Galactic ``|b|`` > ``min_abs_b`` degrees.
    binary_fraction : float
        Fraction of unresolved equal-mass binaries (``BINARY_TRUE``).
    rv_error : float
        σ of the Gaussian noise of the observed ``RV`` (km/s); ``RV_TRUE`` is noiseless.
    populations : array of str, optional
        Force the population of each star (values of :data:`POPULATIONS`).
    solar : SolarParameters
        Solar position and motion for the Galactocentric transformation.
    extinction_table : ExtinctionTable, optional
        Extinction coefficients (default :func:`ddpayne.galaxy.extinction.default_table`).
    dust_k : float
        Dust density in the plane at the solar circle, mag E(B−V) per kpc.

    Returns
    -------
    `~astropy.table.Table`
        A copy of ``labels`` with added columns (see the module docstring): ``POP``, ``BINARY_TRUE``,
        ``RA``, ``DEC``, ``L``, ``B`` (deg), ``DIST_TRUE`` (kpc), ``X_GC``, ``Y_GC``, ``Z_GC`` (kpc),
        ``VX_GC``, ``VY_GC``, ``VZ_GC``, ``RV_TRUE``, ``RV``, ``RV_ERR`` (km/s), ``PARALLAX_TRUE``,
        ``PMRA_TRUE``, ``PMDEC_TRUE``, ``M_G_TRUE`` … ``M_KS_TRUE`` (single-star absolute magnitudes),
        ``EBV_TRUE``, ``EBV_SFD``, ``PHOT_G_MEAN_MAG``, ``PHOT_BP_MEAN_MAG``, ``PHOT_RP_MEAN_MAG``, ``J``,
        ``H``, ``KS`` and their ``*_ERR``, ``SOURCE_ID``, ``PARALLAX``, ``PARALLAX_ERROR``, ``PMRA``,
        ``PMDEC``, ``PMRA_ERROR``, ``PMDEC_ERROR``, ``RUWE``, ``ASTROMETRIC_PARAMS_SOLVED``,
        ``NU_EFF_USED_IN_ASTROMETRY``, ``PSEUDOCOLOUR``, ``ECL_LAT``, ``PARALLAX_ZP_TRUE``.

    Raises
    ------
    ValueError
        If a required label column is missing or not finite (naming the column and the first bad row).
    """
    import astropy.coordinates as coord

    for col in ("TEFF", "LOGG", "FE_H"):
        if col not in labels.colnames:
            raise ValueError(f"assign_galaxy: labels table lacks column {col!r} (has {labels.colnames})")
        bad = ~np.isfinite(np.asarray(labels[col], float))
        if bad.any():
            raise ValueError(f"assign_galaxy: column {col!r} is not finite in {bad.sum()} row(s), "
                             f"first at row {int(np.flatnonzero(bad)[0])}")
    rng = np.random.default_rng(seed)
    out = Table(labels, copy=True)
    n = len(out)
    teff = np.asarray(out["TEFF"], float)
    logg = np.asarray(out["LOGG"], float)
    feh = np.asarray(out["FE_H"], float)
    if "MG_FE" in out.colnames:
        alpha = np.nan_to_num(np.asarray(out["MG_FE"], float), nan=0.0)
    elif "ALPHA_FE" in out.colnames:
        alpha = np.nan_to_num(np.asarray(out["ALPHA_FE"], float), nan=0.0)
    else:
        alpha = np.clip(-0.3 * feh, 0.0, 0.35)
    tab = extinction_table or default_table()

    # populations: chemistry prior here, visibility in the magnitude window applied with the positions
    prior = population_probabilities(feh, alpha)
    forced = None
    if populations is not None:
        pops = np.asarray(populations).astype(str)
        if pops.shape != (n,) or not np.isin(pops, POPULATIONS).all():
            raise ValueError(f"populations must be {n} values from {POPULATIONS}")
        forced = np.searchsorted(np.array(POPULATIONS), pops, sorter=np.argsort(POPULATIONS))
        forced = np.argsort(POPULATIONS)[forced]
    binary = rng.uniform(size=n) < binary_fraction

    # absolute magnitudes (single star) and the system's
    mabs = true_absolute_magnitudes(teff, logg, feh)
    msys = {b: mabs[b] - np.where(binary, _BINARY_DMAG, 0.0) for b in BANDS}

    # distance range for g_range, before extinction at the near end; the far end keeps room for the
    # maximal (to-infinity) extinction of the line of sight, applied after the line of sight is known
    g_lo, g_hi = g_range
    d_lo = 10.0 ** ((g_lo - msys["G"] + 5.0) / 5.0) * 1e-3
    d_hi = np.minimum(10.0 ** ((g_hi - msys["G"] + 5.0) / 5.0) * 1e-3, 200.0)
    d_lo = np.minimum(d_lo, 0.9 * d_hi)
    pop, l_deg, b_deg, dist = _draw_positions(prior, forced, d_lo, d_hi, min_abs_b, rng, solar)

    # dust, then pull stars that extinction pushed beyond the faint limit back inside it
    patch = 10.0 ** rng.normal(0.0, 0.2, size=n)
    ebv_sfd = dust_ebv(l_deg, b_deg, np.full(n, 100.0), k=dust_k, solar=solar) * patch
    for _ in range(3):
        ebv = dust_ebv(l_deg, b_deg, dist, k=dust_k, solar=solar) * patch
        a_g = tab.extinction(teff, feh, ebv)["G"]
        g_app = msys["G"] + 5.0 * np.log10(dist * 1e3) - 5.0 + a_g
        too_faint = g_app > g_hi
        if not too_faint.any():
            break
        dist = np.where(too_faint, dist * 10.0 ** (-(g_app - g_hi + 0.02) / 5.0), dist)
    ebv = dust_ebv(l_deg, b_deg, dist, k=dust_k, solar=solar) * patch

    # phase space: exact Galactocentric position, velocities from the population model
    frame = solar.galactocentric_frame()
    gal = coord.SkyCoord(l=l_deg * u.deg, b=b_deg * u.deg, distance=dist * u.kpc, frame="galactic")
    gc = gal.transform_to(frame)
    x, y, z = (np.asarray(getattr(gc, a).to_value(u.kpc)) for a in ("x", "y", "z"))
    v = _draw_velocities(pop, x, y, z, rng, solar)
    gcv = coord.SkyCoord(x=x * u.kpc, y=y * u.kpc, z=z * u.kpc, v_x=v[:, 0] * u.km / u.s,
                         v_y=v[:, 1] * u.km / u.s, v_z=v[:, 2] * u.km / u.s, frame=frame)
    icrs = gcv.transform_to(coord.ICRS())
    ra, dec = icrs.ra.deg, icrs.dec.deg
    pmra_t = icrs.pm_ra_cosdec.to_value(u.mas / u.yr)
    pmdec_t = icrs.pm_dec.to_value(u.mas / u.yr)
    rv_t = icrs.radial_velocity.to_value(u.km / u.s)
    ecl = coord.SkyCoord(ra=ra * u.deg, dec=dec * u.deg).transform_to(coord.BarycentricMeanEcliptic())
    ecl_lat = ecl.lat.deg

    # photometry
    ext = tab.extinction(teff, feh, ebv)
    mu = 5.0 * np.log10(dist * 1e3) - 5.0
    mags, errs = {}, {}
    for b in BANDS:
        true = msys[b] + mu + ext[b]
        if b == "G":
            sig = 0.0003 + 0.0002 * 10.0 ** (0.4 * (true - 15.0))
        elif b in ("BP", "RP"):
            sig = 0.001 + 0.001 * 10.0 ** (0.4 * (true - 15.0))
        else:
            ref = {"J": 14.5, "H": 14.0, "KS": 13.5}[b]
            sig = 0.02 + 0.02 * 10.0 ** (0.4 * (true - ref))
        obs = true + rng.normal(size=n) * sig
        if b in TWOMASS_LIMITS:
            missing = true > TWOMASS_LIMITS[b]
            obs = np.where(missing, np.nan, obs)
            sig = np.where(missing, np.nan, sig)
        mags[b], errs[b] = obs, sig

    # astrometry
    p6 = 0.05 + 0.35 * np.clip((mags["G"] - 16.0) / 3.0, 0.0, 1.0)
    solved = np.where(rng.uniform(size=n) < p6, 95, 31).astype(np.int16)
    nu = nu_eff_from_colour(mags["BP"] - mags["RP"])
    nu_eff = np.where(solved == 31, nu, np.nan)
    pseudo = np.where(solved == 95, np.clip(nu + rng.normal(0.0, 0.03, n), 1.24, 1.72), np.nan)
    plx_err = gaia_parallax_error(mags["G"], rng) * np.where(solved == 95, 1.3, 1.0)
    pm_err = 1.1 * plx_err
    zp = _zero_point(mags["G"], nu_eff, pseudo, ecl_lat, solved)
    plx_true = 1.0 / dist
    ruwe = 10.0 ** rng.normal(0.0, 0.03, n)
    high = np.where(binary, rng.uniform(size=n) < 0.4, rng.uniform(size=n) < 0.02)
    ruwe = np.where(high, rng.uniform(1.4, 3.0, n), ruwe)

    out["POP"] = pop
    out["BINARY_TRUE"] = binary
    out["SOURCE_ID"] = rng.choice(np.int64(2) ** 62, size=n, replace=False).astype(np.int64)
    cols = {
        "RA": (ra, u.deg), "DEC": (dec, u.deg), "L": (l_deg, u.deg), "B": (b_deg, u.deg),
        "DIST_TRUE": (dist, u.kpc), "X_GC": (x, u.kpc), "Y_GC": (y, u.kpc), "Z_GC": (z, u.kpc),
        "VX_GC": (v[:, 0], u.km / u.s), "VY_GC": (v[:, 1], u.km / u.s), "VZ_GC": (v[:, 2], u.km / u.s),
        "RV_TRUE": (rv_t, u.km / u.s), "RV": (rv_t + rng.normal(0.0, rv_error, n), u.km / u.s),
        "RV_ERR": (np.full(n, float(rv_error)), u.km / u.s),
        "PARALLAX_TRUE": (plx_true, u.mas), "PMRA_TRUE": (pmra_t, u.mas / u.yr),
        "PMDEC_TRUE": (pmdec_t, u.mas / u.yr),
        **{f"M_{b}_TRUE": (mabs[b], u.mag) for b in BANDS},
        "EBV_TRUE": (ebv, u.mag), "EBV_SFD": (ebv_sfd, u.mag),
        **{MAG_COLUMNS[b]: (mags[b], u.mag) for b in BANDS},
        **{MAG_COLUMNS[b] + "_ERR": (errs[b], u.mag) for b in BANDS},
        "PARALLAX": (plx_true + zp + rng.normal(size=n) * plx_err, u.mas),
        "PARALLAX_ERROR": (plx_err, u.mas), "PARALLAX_ZP_TRUE": (zp, u.mas),
        "PMRA": (pmra_t + rng.normal(size=n) * pm_err, u.mas / u.yr),
        "PMDEC": (pmdec_t + rng.normal(size=n) * pm_err, u.mas / u.yr),
        "PMRA_ERROR": (pm_err, u.mas / u.yr), "PMDEC_ERROR": (pm_err, u.mas / u.yr),
        "RUWE": (ruwe, None), "ASTROMETRIC_PARAMS_SOLVED": (solved, None),
        "NU_EFF_USED_IN_ASTROMETRY": (nu_eff, u.um**-1), "PSEUDOCOLOUR": (pseudo, u.um**-1),
        "ECL_LAT": (ecl_lat, u.deg),
    }
    for name, (val, unit) in cols.items():
        out[name] = val
        if unit is not None:
            out[name].unit = unit
    out.meta["GALSEED"] = seed
    out.meta["GALMODEL"] = "ddpayne.mock.galaxy (thin/thick/halo/ges)"
    log.info("assigned galaxy properties to %d stars: %s", n,
             {p: int((pop == p).sum()) for p in POPULATIONS})
    return out


def _zero_point(g, nu_eff, pseudo, ecl_lat, solved) -> np.ndarray:
    """Lindegren et al. (2021) parallax zero point (mas) from ``gaiadr3-zeropoint``."""
    import warnings
    from zero_point import zpt
    zpt.load_tables()
    gg = np.clip(g, 6.0, 20.99)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return np.asarray(zpt.get_zpt(gg, nu_eff, pseudo, ecl_lat, solved.astype(float)), float)


def simple_labels(n: int, seed: int) -> Table:
    """A simple DESI-MWS-like label mix for galaxy-layer tests and benchmarks (no spectra needed).

    70 % dwarfs/turn-off stars (Teff 5000–6800 K, log g 3.8–4.6) and 30 % giants (4000–5200 K,
    1.0–3.2); [Fe/H] from a disk (−0.3 ± 0.3) and a halo (−1.4 ± 0.5) component, clipped to [−3, 0.5];
    [Mg/Fe] = clip(−0.3 [Fe/H], 0, 0.35) + N(0, 0.05). Deterministic for a seed.
    """
    rng = np.random.default_rng(seed)
    dwarf = rng.uniform(size=n) < 0.7
    feh = np.where(rng.uniform(size=n) < 0.6, rng.normal(-0.3, 0.3, n),
                   rng.normal(-1.4, 0.5, n)).clip(-3, 0.5)
    return Table({"TEFF": np.where(dwarf, rng.uniform(5000, 6800, n), rng.uniform(4000, 5200, n)),
                  "LOGG": np.where(dwarf, rng.uniform(3.8, 4.6, n), rng.uniform(1.0, 3.2, n)),
                  "FE_H": feh, "MG_FE": np.clip(-0.3 * feh, 0, 0.35) + rng.normal(0, 0.05, n)})


#: Errors (1σ) of the "observed" spectroscopic labels of :func:`observe_labels` (DESI-like).
OBSERVED_LABEL_ERRORS = {"TEFF": 50.0, "LOGG": 0.1, "FE_H": 0.05}


def observe_labels(stars: Table, seed: int, keep_truth: bool = False) -> Table:
    """Add Gaussian errors (:data:`OBSERVED_LABEL_ERRORS`) to TEFF, LOGG, FE_H in place; set ``<L>_ERR``.

    With ``keep_truth`` the true values are kept as ``<L>_TRUE``. Returns ``stars``.
    """
    rng = np.random.default_rng(seed)
    for col, err in OBSERVED_LABEL_ERRORS.items():
        if keep_truth:
            stars[col + "_TRUE"] = stars[col]
        stars[col] = stars[col] + rng.normal(0.0, err, len(stars))
        stars[col + "_ERR"] = err
    return stars
