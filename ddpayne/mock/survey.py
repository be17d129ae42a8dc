"""A mock DESI survey: real-layout coadd files, an mwsall-like catalogue and reference labels, from the library.

For each mock star (a library spectrum, i.e. noiseless normalised flux on the DESI grid with true labels):

1. a place in the Galaxy (:func:`ddpayne.mock.galaxy.assign_galaxy`, population forced to the library
   star's chemical population): RA/Dec, distance, E(B−V), Gaia astrometry/photometry, 2MASS, RV_TRUE;
2. a flux-calibrated continuum: a blackbody of the star's Teff reddened by E(B−V) (a λ⁻¹ law normalised to
   A_V = 3.1 E(B−V)), scaled to the star's G magnitude, in 1e-17 erg/(s cm² Å);
3. the normalised spectrum is Doppler shifted by RV_TRUE (cubic-spline resampling of the 0.8 Å library
   spectrum, λ_obs = λ_rest (1 + v/c)) onto the real DESI arm grids B 3600–5800 Å (2751 px), R 5760–7620 Å
   (2326 px), Z 7520–9824 Å (2881 px), all 0.8 Å (vacuum);
4. Gaussian noise: per-pixel variance ∝ (F_λ T(λ) + b·m_R) / T(λ)² — photon noise of the star through a
   smooth arm throughput T plus a constant sky/read-noise floor ``b`` (``background``, default 0.3) in
   units of the star's median R-arm counts m_R — scaled so that the median per-pixel S/N of the **R arm**
   equals the requested ``snr``; IVAR = 1/σ². (Without the floor, line cores of cool stars get huge
   inverse variances, and the ivar-weighted pseudo-continuum of the data path would sit 0.2–0.3 low in the
   blue: real DESI noise has a floor.) Pixels the shifted
   library spectrum does not cover get IVAR = 0 and MASK bit 8 (NODATA, as desispec's specmask).
5. RESOLUTION: a Gaussian LSF of FWHM = λ/R(λ) (the DESI preset of :mod:`ddpayne.physics.degrade`) in DESI's
   11-diagonal banded format (the library spectra already carry that LSF).

The code follows these steps: :func:`sample_galaxy` (1), :func:`draw_spectra` (2–4, with
:func:`measure_rvs` for the RVS-pipeline-like catalogue values), :func:`write_coadds` (5, the files) and
:func:`write_catalogues`; :func:`make_mock_survey` runs them with one seeded random stream.

Files written (``make_mock_survey``, or ``ddpayne build mock-survey``):

* ``coadd-main-bright-<HPX>.fits`` (and ``coadd-sv3-bright-<HPX>.fits`` for repeat observations, see
  ``repeat_fraction``): PRIMARY (with ``INFIL000`` so specutils' 'DESI coadd' loader identifies
  it), FIBERMAP, B/R/Z_{WAVELENGTH,FLUX,IVAR,MASK,RESOLUTION}, SCORES — as the real coadds;
* ``mwsall-mock.fits``: RVTAB (TARGETID, RR_SPECTYPE='STAR', RR_Z, VRAD, VRAD_ERR, TEFF/LOGG/FEH/ALPHAFE
  with RVS-pipeline-like noise and errors, SN_B/R/Z, SUCCESS, RVS_WARN, HEALPIX, SURVEY, PROGRAM, PRIMARY,
  REF_ID), FIBERMAP, SCORES, GAIA (Gaia DR3-like columns);
* ``twomass-mock.fits``: TARGETID, SOURCE_ID, J, H, KS and errors (2MASS is a separate cross-match);
* ``reference-labels-mock.fits``: TARGETID + the 15 labels + ``<LABEL>_ERR`` (true + Gaussian noise with
  LAMOST/APOGEE-like errors, :data:`REFERENCE_ERRORS`);
* ``truth-mock.fits``: everything true (labels, galaxy truth, library index, S/N, RV).
"""
from __future__ import annotations

import datetime as _dt
import functools
import json
import logging
from dataclasses import dataclass
from pathlib import Path

import astropy.units as u
import numpy as np
from astropy import constants as const
from astropy.io import fits
from astropy.modeling.physical_models import BlackBody
from astropy.table import Table, vstack
from scipy.interpolate import CubicSpline

from .. import __version__
from ..io.atomic import atomic_path
from ..labels import LABEL_NAMES, LABEL_UNIT_STRINGS
from ..physics.degrade import gaussian_resolution_matrix
from .library import MockLibrary

log = logging.getLogger(__name__)

#: Speed of light (km/s).
C_KMS = const.c.to_value(u.km / u.s)
#: DESI arm grids (vacuum Å): start, stop, number of pixels (0.8 Å).
ARMS = {"B": (3600.0, 5800.0, 2751), "R": (5760.0, 7620.0, 2326), "Z": (7520.0, 9824.0, 2881)}
MASK_NODATA = 1 << 8
#: Reference-catalogue label errors (1σ): LAMOST DR9 / APOGEE DR17-like.
REFERENCE_ERRORS = {"TEFF": 60.0, "LOGG": 0.08, "VMIC": 0.15, "FE_H": 0.05, "C_FE": 0.06, "N_FE": 0.08,
                    "O_FE": 0.07, "MG_FE": 0.04, "AL_FE": 0.07, "SI_FE": 0.05, "CA_FE": 0.05, "TI_FE": 0.07,
                    "CR_FE": 0.07, "MN_FE": 0.06, "NI_FE": 0.05}
#: Units of :func:`blackbody_flambda`.
_B_LAMBDA = u.erg / (u.cm**2 * u.s * u.AA * u.sr)
#: Base TARGETID of the mock (a made-up range not overlapping real DESI ids).
TARGETID0 = 39700000000000000


def arm_wavelength(arm: str) -> np.ndarray:
    start, _, n = ARMS[arm]
    return np.round(start + 0.8 * np.arange(n), 4)


def arm_throughput(wave: np.ndarray) -> np.ndarray:
    """A smooth DESI-like total throughput (0–1): low in the blue, peak ~0.5 near 7000 Å, falling to the red."""
    x = (np.asarray(wave, float) - 7000.0) / 2600.0
    return np.clip(0.5 * np.exp(-0.5 * x**2 / 0.55) * (1 - 0.4 * np.exp(-(np.asarray(wave) - 3600) / 250.0)),
                   0.02, None)


def blackbody_flambda(wave: np.ndarray, teff: float) -> np.ndarray:
    """Planck B_λ (arbitrary units: erg/(s cm² Å sr)) at wavelength ``wave`` (Å).

    :class:`astropy.modeling.physical_models.BlackBody`; only its shape matters (:func:`_continuum`
    scales it to the star's G magnitude).
    """
    with np.errstate(over="ignore"):   # exp(hc/λkT) overflows far on the Wien side: B_λ = 0 there
        return BlackBody(temperature=teff * u.K, scale=1.0 * _B_LAMBDA)(np.asarray(wave, float) * u.AA).value


def _continuum(wave, teff, ebv, gmag):
    """Flux-calibrated continuum in 1e-17 erg/(s cm² Å): reddened blackbody scaled to the G magnitude."""
    bb = blackbody_flambda(wave, teff)
    a_lam = 3.1 * ebv * (5500.0 / np.asarray(wave, float))  # simple λ^-1 law, A_V = 3.1 E(B-V)
    f = bb * 10 ** (-0.4 * a_lam)
    # G ~ V-ish: F_λ(6000 Å) of a G = 0 star ≈ 2.5e-9 erg/(s cm² Å)  ->  1e-17 units
    f6000 = np.interp(6000.0, wave, f)
    return f / f6000 * 2.5e-9 * 10 ** (-0.4 * gmag) / 1e-17


def _rvs_like(rng, true, n):
    """RVS-pipeline-like Teff/logg/[Fe/H]/[α/Fe]: noisy, slightly biased, with errors."""
    teff = true["TEFF"] + rng.normal(0, 90, n) + 30
    logg = true["LOGG"] + rng.normal(0, 0.25, n) - 0.05
    feh = true["FE_H"] + rng.normal(0, 0.15, n) + 0.05
    alpha = np.mean([true[k] for k in ("MG_FE", "SI_FE", "CA_FE", "TI_FE")], axis=0) + rng.normal(0, 0.1, n)
    return teff, logg, feh, alpha


def _no_dex(t: Table) -> Table:
    """Drop 'dex' units (not FITS units: logg and abundance columns are written unitless)."""
    for c in t.colnames:
        if t[c].unit is not None and "dex" in str(t[c].unit):
            t[c].unit = None
    return t


@dataclass
class MockStars:
    """The survey's stars: library rows, true labels with their TARGETIDs, Galaxy places and S/N.

    Attributes
    ----------
    library_index : ndarray (n,)
        Row of each star's spectrum in the library.
    labels : astropy.table.Table
        The library labels (``LIB_STAR_ID`` instead of ``STAR_ID``) and ``TARGETID``.
    galaxy : astropy.table.Table
        :func:`~ddpayne.mock.galaxy.assign_galaxy`'s table: places, astrometry, photometry, RV_TRUE.
    snr : ndarray (n,)
        Each star's median per-pixel S/N in the R arm.
    """

    library_index: np.ndarray
    labels: Table
    galaxy: Table
    snr: np.ndarray

    def __len__(self) -> int:
        return len(self.labels)


@dataclass
class ArmSpectra:
    """Observed arm spectra of some stars (``flux[arm]`` row k is star ``rows[k]``), per-arm S/N and median flux."""

    rows: np.ndarray
    flux: dict[str, np.ndarray]
    ivar: dict[str, np.ndarray]
    mask: dict[str, np.ndarray]
    sn: dict[str, np.ndarray]
    median_flux: dict[str, np.ndarray]

    def scores(self, targetid) -> Table:
        """The SCORES table of these spectra (integrated and median flux, median S/N per arm)."""
        t = Table()
        t["TARGETID"] = targetid
        for a in ARMS:
            t[f"INTEG_COADD_FLUX_{a}"] = (self.median_flux[a] * arm_wavelength(a).size * 0.8).astype(np.float32)
            t[f"MEDIAN_COADD_FLUX_{a}"] = self.median_flux[a]
            t[f"MEDIAN_COADD_SNR_{a}"] = self.sn[a]
        return t


@dataclass
class RvsMeasurements:
    """What the DESI RVS pipeline would report: noisy RVs and atmospheric parameters (one row per star)."""

    vrad: np.ndarray
    vrad_err: np.ndarray
    vsini: np.ndarray
    teff: np.ndarray
    logg: np.ndarray
    feh: np.ndarray
    alpha_fe: np.ndarray


def sample_galaxy(lib: MockLibrary, n_stars: int, rng: np.random.Generator, seed: int, snr: float,
                  snr_spread: float = 0.0) -> MockStars:
    """Step 1: choose library stars, give them TARGETIDs, places in the Galaxy and each an S/N."""
    from .galaxy import assign_galaxy

    n_lib = len(lib)
    if n_stars <= n_lib:
        idx = rng.choice(n_lib, size=n_stars, replace=False)
    else:
        log.warning("%d stars requested from a library of %d: library spectra are reused", n_stars, n_lib)
        idx = np.concatenate([rng.permutation(n_lib) for _ in range(n_stars // n_lib + 1)])[:n_stars]
    labels = Table(lib.labels[idx], copy=True)
    labels["LIB_STAR_ID"] = labels["STAR_ID"]
    labels.remove_column("STAR_ID")
    labels["TARGETID"] = TARGETID0 + np.arange(n_stars, dtype=np.int64)
    pops = np.array([str(p) for p in labels["POP"]]) if "POP" in labels.colnames else None
    gal = assign_galaxy(labels, seed=seed, populations=pops)
    star_snr = snr * (10 ** rng.normal(0, snr_spread, n_stars) if snr_spread > 0 else np.ones(n_stars))
    return MockStars(idx, labels, gal, star_snr)


@functools.lru_cache(maxsize=1)
def _instrument() -> tuple[dict, dict, dict]:
    """Arm wavelengths, resolution matrices (float32) and throughputs."""
    waves = {a: arm_wavelength(a) for a in ARMS}
    res = {a: gaussian_resolution_matrix(waves[a], "desi").astype(np.float32) for a in ARMS}
    return waves, res, {a: arm_throughput(waves[a]) for a in ARMS}


def draw_spectra(lib: MockLibrary, stars: MockStars, rows: np.ndarray, rng: np.random.Generator,
                 background: float = 0.3) -> ArmSpectra:
    """Step 2: noisy, Doppler-shifted, flux-calibrated arm spectra of ``stars`` rows ``rows`` (new noise
    at every call; see the module docstring, items 2-4)."""
    arm_waves, _, thr = _instrument()
    n = len(rows)
    flux = {a: np.zeros((n, arm_waves[a].size), np.float32) for a in ARMS}
    ivar = {a: np.zeros_like(flux[a]) for a in ARMS}
    mask = {a: np.zeros(flux[a].shape, np.uint32) for a in ARMS}
    sn_arm = {a: np.zeros(n, np.float32) for a in ARMS}
    med_flux = {a: np.zeros(n, np.float32) for a in ARMS}
    rv = np.asarray(stars.galaxy["RV_TRUE"], float)
    for j, i in enumerate(rows):
        f_rest = lib.flux[stars.library_index[i]].astype(float)
        ok = np.isfinite(f_rest)
        spline = CubicSpline(lib.wavelength[ok], f_rest[ok])
        lo, hi = lib.wavelength[ok][0], lib.wavelength[ok][-1]
        cont_all = {a: _continuum(arm_waves[a], float(stars.labels["TEFF"][i]), float(stars.galaxy["EBV_TRUE"][i]),
                                  float(stars.galaxy["PHOT_G_MEAN_MAG"][i])) for a in ARMS}
        # noise: sigma = k * sqrt(F T + b m_R) / T; S/N = F T / (k sqrt(F T + b m_R)), median over R = snr
        counts_r = cont_all["R"] * thr["R"]
        floor = background * np.median(counts_r)
        k = np.median(counts_r / np.sqrt(counts_r + floor)) / stars.snr[i]
        for a in ARMS:
            w_rest = arm_waves[a] / (1.0 + rv[i] / C_KMS)
            inside = (w_rest >= lo) & (w_rest <= hi)
            norm = np.where(inside, spline(np.clip(w_rest, lo, hi)), 1.0)
            true_flux = cont_all[a] * norm
            sigma = k * np.sqrt(np.clip(true_flux, 0.0, None) * thr[a] + floor) / thr[a]
            obs = true_flux + rng.normal(0, 1, true_flux.size) * sigma
            flux[a][j] = obs
            ivar[a][j] = np.where(inside, 1.0 / sigma**2, 0.0)
            mask[a][j] = np.where(inside, 0, MASK_NODATA)
            good = ivar[a][j] > 0
            sn_arm[a][j] = np.median(obs[good] * np.sqrt(ivar[a][j][good])) if good.any() else 0.0
            med_flux[a][j] = np.median(obs[good]) if good.any() else 0.0
    return ArmSpectra(np.asarray(rows), flux, ivar, mask, sn_arm, med_flux)


def measure_rvs(stars: MockStars, rng: np.random.Generator) -> RvsMeasurements:
    """RVS-pipeline-like measurements: Teff/logg/[Fe/H]/[α/Fe], VRAD with an S/N-dependent error, VSINI."""
    n = len(stars)
    teff, logg, feh, alpha = _rvs_like(rng, stars.labels, n)
    vrad_err = np.clip(0.5 + 50.0 / stars.snr, 0.3, 20.0)
    vrad = np.asarray(stars.galaxy["RV_TRUE"], float) + rng.normal(0, 1, n) * vrad_err
    vsini = np.abs(rng.normal(0, 3, n))
    return RvsMeasurements(vrad, vrad_err, vsini, np.asarray(teff, float), np.asarray(logg, float),
                           np.asarray(feh, float), alpha)


def fibermap_table(stars: MockStars) -> Table:
    """The FIBERMAP rows of the stars (targeting, astrometry and Gaia photometry as DESI lists them)."""
    n, gal = len(stars), stars.galaxy
    fibermap = Table()
    fibermap["TARGETID"] = stars.labels["TARGETID"]
    fibermap["COADD_FIBERSTATUS"] = np.zeros(n, np.int32)
    fibermap["TARGET_RA"] = np.asarray(gal["RA"], float)
    fibermap["TARGET_DEC"] = np.asarray(gal["DEC"], float)
    fibermap["PMRA"] = np.asarray(gal["PMRA"], np.float32)
    fibermap["PMDEC"] = np.asarray(gal["PMDEC"], np.float32)
    fibermap["REF_EPOCH"] = np.full(n, 2016.0, np.float32)
    fibermap["OBJTYPE"] = np.array(["TGT"] * n)
    fibermap["EBV"] = np.asarray(gal["EBV_SFD"], np.float32)
    fibermap["REF_ID"] = np.asarray(gal["SOURCE_ID"], np.int64)
    fibermap["REF_CAT"] = np.array(["G2"] * n)
    fibermap["GAIA_PHOT_G_MEAN_MAG"] = np.asarray(gal["PHOT_G_MEAN_MAG"], np.float32)
    fibermap["GAIA_PHOT_BP_MEAN_MAG"] = np.asarray(gal["PHOT_BP_MEAN_MAG"], np.float32)
    fibermap["GAIA_PHOT_RP_MEAN_MAG"] = np.asarray(gal["PHOT_RP_MEAN_MAG"], np.float32)
    fibermap["PARALLAX"] = np.asarray(gal["PARALLAX"], np.float32)
    fibermap["DESI_TARGET"] = np.full(n, 1 << 61, np.int64)   # MWS_ANY
    fibermap["MWS_TARGET"] = np.ones(n, np.int64)             # MWS_BROAD
    fibermap["COADD_NUMEXP"] = np.ones(n, np.int16)
    fibermap["COADD_EXPTIME"] = np.full(n, 900.0, np.float32)
    fibermap["PHOTSYS"] = np.array(["S"] * n)
    return _no_dex(fibermap)


def write_coadds(outdir: Path, survey: str, spectra: ArmSpectra, fibermap: Table, scores: Table,
                 healpix: np.ndarray, header: dict) -> list[Path]:
    """Step 3: one ``coadd-<survey>-bright-<HPX>.fits`` per healpix of the spectra's stars.

    ``fibermap`` and ``healpix`` are indexed by star, ``scores`` by spectrum; ``header`` adds keys to
    every PRIMARY header.
    """
    arm_waves, res, _ = _instrument()
    rows_all = spectra.rows
    paths = []
    for hp in np.unique(healpix[rows_all]):
        rows = np.flatnonzero(healpix[rows_all] == hp)
        prim = fits.PrimaryHDU()
        h = prim.header
        h["SPGRP"] = "healpix"
        h["SPGRPVAL"] = int(hp)
        h["HPXPIXEL"] = int(hp)
        h["HPXNSIDE"] = 64
        h["HPXNEST"] = True
        h["SURVEY"] = survey
        h["PROGRAM"] = "bright"
        h["INFIL000"] = ("ddpayne-mock", "marks this file as a coadd (specutils)")
        for key, value in header.items():
            h[key] = value
        hdus = [prim, fits.BinTableHDU(fibermap[rows_all[rows]], name="FIBERMAP")]
        for a in ARMS:
            w = fits.ImageHDU(arm_waves[a], name=f"{a}_WAVELENGTH")
            w.header["BUNIT"] = "Angstrom"
            f = fits.ImageHDU(spectra.flux[a][rows], name=f"{a}_FLUX")
            f.header["BUNIT"] = "10**-17 erg/(s cm2 Angstrom)"
            iv = fits.ImageHDU(spectra.ivar[a][rows], name=f"{a}_IVAR")
            iv.header["BUNIT"] = "10**+34 (s2 cm4 Angstrom2) / erg2"
            m = fits.ImageHDU(spectra.mask[a][rows], name=f"{a}_MASK")
            r = fits.ImageHDU(np.repeat(res[a][None], rows.size, axis=0), name=f"{a}_RESOLUTION")
            hdus += [w, f, iv, m, r]
        hdus.append(fits.BinTableHDU(scores[rows], name="SCORES"))
        path = outdir / f"coadd-{survey}-bright-{hp}.fits"
        with atomic_path(path) as tmp:
            fits.HDUList(hdus).writeto(tmp)
        paths.append(path)
    return paths


def rvs_table(stars: MockStars, rvs: RvsMeasurements, spectra: ArmSpectra, fibermap: Table,
              healpix: np.ndarray) -> Table:
    """The mwsall RVTAB rows of the main-survey spectra."""
    n = len(stars)
    rvtab = Table()
    rvtab["TARGETID"] = stars.labels["TARGETID"]
    rvtab["RR_SPECTYPE"] = np.array(["STAR"] * n)
    rvtab["RR_Z"] = rvs.vrad / C_KMS
    rvtab["VRAD"] = rvs.vrad
    rvtab["VRAD_ERR"] = rvs.vrad_err
    rvtab["VSINI"] = rvs.vsini
    rvtab["TEFF"] = rvs.teff
    rvtab["TEFF_ERR"] = np.full(n, 90.0)
    rvtab["LOGG"] = rvs.logg
    rvtab["LOGG_ERR"] = np.full(n, 0.25)
    rvtab["FEH"] = rvs.feh
    rvtab["FEH_ERR"] = np.full(n, 0.15)
    rvtab["ALPHAFE"] = rvs.alpha_fe
    rvtab["ALPHAFE_ERR"] = np.full(n, 0.1)
    rvtab["SUCCESS"] = np.ones(n, bool)
    rvtab["RVS_WARN"] = np.zeros(n, np.int64)
    for a in ARMS:
        rvtab[f"SN_{a}"] = spectra.sn[a]
    rvtab["TARGET_RA"] = fibermap["TARGET_RA"]
    rvtab["TARGET_DEC"] = fibermap["TARGET_DEC"]
    rvtab["REF_ID"] = fibermap["REF_ID"]
    rvtab["HEALPIX"] = healpix.astype(np.int32)
    rvtab["SURVEY"] = np.array(["main"] * n)
    rvtab["PROGRAM"] = np.array(["bright"] * n)
    rvtab["PRIMARY"] = np.ones(n, bool)
    for c, unit in (("VRAD", "km/s"), ("VRAD_ERR", "km/s"), ("TEFF", "K"), ("TEFF_ERR", "K"),
                    ("TARGET_RA", "deg"), ("TARGET_DEC", "deg")):
        rvtab[c].unit = unit
    return rvtab


def repeat_rvs_rows(rvtab: Table, stars: MockStars, rvs: RvsMeasurements, spectra: ArmSpectra,
                    rng: np.random.Generator) -> Table:
    """RVTAB rows of second observations (``spectra.rows``): new RV error and S/N, SURVEY 'sv3', not PRIMARY."""
    rep = spectra.rows
    r2 = Table(rvtab[rep], copy=True)
    r2["VRAD"] = np.asarray(stars.galaxy["RV_TRUE"], float)[rep] + rng.normal(0, 1, rep.size) * rvs.vrad_err[rep]
    r2["RR_Z"] = r2["VRAD"] / C_KMS
    for a in ARMS:
        r2[f"SN_{a}"] = spectra.sn[a]
    r2["SURVEY"] = "sv3"
    r2["PRIMARY"] = False
    return r2


def gaia_table(stars: MockStars, fibermap: Table) -> Table:
    """The Gaia DR3-like rows of the stars (the mwsall GAIA HDU)."""
    gal = stars.galaxy
    gaia = Table()
    gaia["SOURCE_ID"] = np.asarray(gal["SOURCE_ID"], np.int64)
    for c in ("RA", "DEC", "PARALLAX", "PARALLAX_ERROR", "PMRA", "PMRA_ERROR", "PMDEC", "PMDEC_ERROR", "RUWE",
              "ASTROMETRIC_PARAMS_SOLVED", "NU_EFF_USED_IN_ASTROMETRY", "PSEUDOCOLOUR", "ECL_LAT",
              "PHOT_G_MEAN_MAG", "PHOT_BP_MEAN_MAG", "PHOT_RP_MEAN_MAG", "L", "B"):
        gaia[c] = gal[c]
    gaia["PARALLAX_OVER_ERROR"] = np.asarray(gal["PARALLAX"]) / np.asarray(gal["PARALLAX_ERROR"])
    gaia["BP_RP"] = np.asarray(gal["PHOT_BP_MEAN_MAG"]) - np.asarray(gal["PHOT_RP_MEAN_MAG"])
    gaia["RADIAL_VELOCITY"] = np.full(len(stars), np.nan)
    gaia["EBV"] = fibermap["EBV"]
    return _no_dex(gaia)


def reference_table(stars: MockStars, rng: np.random.Generator, ref_fraction: float) -> Table:
    """A ``ref_fraction`` share of the stars with true labels + Gaussian LAMOST/APOGEE-like errors."""
    labels, n = stars.labels, len(stars)
    ref = Table()
    sel = rng.random(n) < ref_fraction
    ref["TARGETID"] = labels["TARGETID"][sel]
    ref["SOURCE_ID"] = np.asarray(stars.galaxy["SOURCE_ID"], np.int64)[sel]
    for name in LABEL_NAMES:
        err = REFERENCE_ERRORS[name]
        ref[name] = np.asarray(labels[name], float)[sel] + rng.normal(0, err, sel.sum())
        ref[f"{name}_ERR"] = np.full(sel.sum(), err)
        if LABEL_UNIT_STRINGS[name] != "dex":  # 'dex' is not a FITS unit
            ref[name].unit = LABEL_UNIT_STRINGS[name]
            ref[f"{name}_ERR"].unit = LABEL_UNIT_STRINGS[name]
    ref.meta["ORIGIN"] = "ddpayne mock reference catalogue (LAMOST/APOGEE-like errors)"
    return ref


def _write_table(table: Table, path: Path) -> Path:
    with atomic_path(path) as tmp:
        table.write(tmp, format="fits")
    return path


def write_catalogues(outdir: Path, stars: MockStars, spectra: ArmSpectra, rvs: RvsMeasurements, rvtab: Table,
                     fibermap: Table, scores: Table, rng: np.random.Generator, ref_fraction: float,
                     provenance: dict, repeats: tuple[ArmSpectra, Table, Table] | None = None) -> dict[str, Path]:
    """Step 4: the mwsall-like, 2MASS, reference-label and truth catalogues.

    ``rvtab``, ``fibermap`` and ``scores`` are the main survey's mwsall rows; ``repeats`` (second
    observations, their SCORES and RVTAB rows) add row-aligned rows to every mwsall HDU. Returns the
    paths under the keys ``mwsall``, ``twomass``, ``reference``, ``truth``.
    """
    gaia = gaia_table(stars, fibermap)
    n_obs = np.ones(len(stars), np.int16)
    fm_all, sc_all, gaia_all = fibermap, scores, gaia
    if repeats is not None:   # the mwsall HDUs are row-aligned: repeats get their rows in every one of them
        rep_spectra, rep_scores, rep_rvtab = repeats
        rep = rep_spectra.rows
        rvtab = vstack([rvtab, rep_rvtab])
        fm_all = vstack([fibermap, fibermap[rep]])
        sc_all = vstack([scores, rep_scores])
        gaia_all = vstack([gaia, gaia[rep]])
        n_obs[rep] = 2
    _no_dex(rvtab)
    mws = outdir / "mwsall-mock.fits"
    prim = fits.PrimaryHDU()
    prim.header["MOCK"] = True
    prim.header["MOCKSEED"] = int(provenance["seed"])
    with atomic_path(mws) as tmp:
        fits.HDUList([prim, fits.BinTableHDU(rvtab, name="RVTAB"), fits.BinTableHDU(fm_all, name="FIBERMAP"),
                      fits.BinTableHDU(sc_all, name="SCORES"), fits.BinTableHDU(gaia_all, name="GAIA")]).writeto(tmp)

    tm = Table()
    tm["TARGETID"] = stars.labels["TARGETID"]
    tm["SOURCE_ID"] = gaia["SOURCE_ID"]
    for c in ("J", "H", "KS", "J_ERR", "H_ERR", "KS_ERR"):
        if c in stars.galaxy.colnames:
            tm[c] = stars.galaxy[c]
    twomass = _write_table(tm, outdir / "twomass-mock.fits")
    reference = _write_table(reference_table(stars, rng, ref_fraction), outdir / "reference-labels-mock.fits")

    truth = Table(stars.galaxy, copy=True)
    for c in truth.colnames:  # 'dex' is not a FITS unit
        if str(truth[c].unit) == "dex":
            truth[c].unit = None
    truth["SNR_TARGET"] = stars.snr
    truth["N_OBS"] = n_obs
    truth["VRAD"] = rvs.vrad
    for a in ARMS:
        truth[f"SN_{a}"] = spectra.sn[a]
    truth.meta["PROVJSON"] = json.dumps(provenance, default=str)[:60000]
    return {"mwsall": mws, "twomass": twomass, "reference": reference,
            "truth": _write_table(truth, outdir / "truth-mock.fits")}


def make_mock_survey(outdir: str | Path, n_stars: int, snr: float = 50.0, seed: int = 1, n_per_file: int = 500,
                     library: MockLibrary | str | Path | None = None, ref_fraction: float = 1.0,
                     snr_spread: float = 0.0, background: float = 0.3,
                     repeat_fraction: float = 0.0) -> dict[str, list[Path] | Path]:
    """Write a mock DESI survey (see the module docstring).

    The steps: :func:`sample_galaxy`, :func:`draw_spectra` (and :func:`measure_rvs`), :func:`write_coadds`,
    :func:`write_catalogues`; one random stream (``seed``) runs through them in that order, repeat
    observations draw from their own.

    Parameters
    ----------
    outdir : path
        Output folder (created).
    n_stars : int
        Number of mock spectra. Library stars are used without replacement while possible; beyond the
        library size they are reused (new noise, RV and Galaxy place; ``LIB_STAR_ID`` tells).
    snr : float
        Median per-pixel S/N in the R arm.
    seed : int
        Seed of every random draw.
    n_per_file : int
        Spectra per coadd file.
    library : MockLibrary or path, optional
        Default: the committed ``ddpayne/data/mock_library.fits``.
    ref_fraction : float
        Fraction of stars listed in the reference-label catalogue.
    snr_spread : float
        If > 0, each star's S/N is ``snr × 10**N(0, snr_spread)`` (a spread of S/N like a real survey).
    background : float
        Sky + read-noise variance floor in units of the star's median R-arm counts (see above).
    repeat_fraction : float
        Fraction of the stars observed a second time, as DESI re-observes targets in several surveys:
        the same TARGETID, truth and S/N with new noise and RV-measurement error, written to
        ``coadd-sv3-bright-<HPX>.fits`` with its own MWS catalogue row (SURVEY 'sv3', PRIMARY False).
        Repeats give the precision from repeat observations (paper Fig. 9).

    Returns
    -------
    dict
        ``coadds`` (list of paths), ``mwsall``, ``twomass``, ``reference``, ``truth``.
    """
    outdir = Path(outdir)
    outdir.mkdir(parents=True, exist_ok=True)
    lib = library if isinstance(library, MockLibrary) else MockLibrary.read(library)
    if n_stars < 1:
        raise ValueError("n_stars must be >= 1")
    if not snr > 0:
        raise ValueError(f"snr must be positive, got {snr}")
    if background < 0:
        raise ValueError(f"background must be >= 0, got {background}")
    if not 0 <= repeat_fraction <= 1:
        raise ValueError(f"repeat_fraction must be in [0, 1], got {repeat_fraction}")
    rng = np.random.default_rng(seed)
    now = _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")
    stars = sample_galaxy(lib, n_stars, rng, seed=seed, snr=snr, snr_spread=snr_spread)
    spectra = draw_spectra(lib, stars, np.arange(n_stars), rng, background=background)
    rvs = measure_rvs(stars, rng)
    healpix = 10000 + np.arange(n_stars) // n_per_file
    fibermap = fibermap_table(stars)
    scores = spectra.scores(stars.labels["TARGETID"])
    header = {"MOCK": (True, "ddpayne mock survey: synthetic spectra"),
              "MOCKSNR": (float(snr), "target median S/N per pixel, R arm"), "MOCKSEED": int(seed),
              "DDPVER": __version__}
    coadds = write_coadds(outdir, "main", spectra, fibermap, scores, healpix, header)
    rvtab = rvs_table(stars, rvs, spectra, fibermap, healpix)

    repeats = None
    if repeat_fraction > 0:  # a second observation of some stars (own random stream: the rest is unchanged)
        rrng = np.random.default_rng([seed, 7919])
        rep = np.flatnonzero(rrng.random(n_stars) < repeat_fraction)
        if rep.size:
            again = draw_spectra(lib, stars, rep, rrng, background=background)
            rep_scores = again.scores(stars.labels["TARGETID"][rep])
            coadds += write_coadds(outdir, "sv3", again, fibermap, rep_scores, healpix, header)
            repeats = (again, rep_scores, repeat_rvs_rows(rvtab, stars, rvs, again, rrng))

    prov = {"created": now, "ddpayne_version": __version__, "n_stars": n_stars, "snr": snr, "seed": seed,
            "snr_spread": snr_spread, "background": background, "repeat_fraction": repeat_fraction,
            "library": lib.provenance}
    paths = write_catalogues(outdir, stars, spectra, rvs, rvtab, fibermap, scores, rng, ref_fraction, prov,
                             repeats=repeats)
    log.info("mock survey: %d stars in %d coadd files at S/N %.0f -> %s", n_stars, len(coadds), snr, outdir)
    return {"coadds": coadds, **paths}


def main(argv=None) -> int:
    """Deprecated ``python -m ddpayne.mock.survey``: runs ``ddpayne build mock-survey``."""
    from ..pipeline.cli_synth import deprecated_alias

    return deprecated_alias("python -m ddpayne.mock.survey", ["build", "mock-survey"], argv)


if __name__ == "__main__":
    raise SystemExit(main())
