"""Spectro-photometric + parallax distances (Zhang et al. 2024, §4.3; Xiang et al. 2021).

* **Absolute magnitudes** M_G and M_Ks as functions of (Teff, log g, [Fe/H]) are *learned* from control
  stars with precise parallaxes (ϖ/σ_ϖ > 10 after the zero-point correction, RUWE < 1.4) by local linear
  regression (:class:`ddpayne.galaxy.regression.LocalLinearRegressor`), with a robust clip that removes
  unresolved binaries from the calibration. No stellar-model relation is built in.
* **Spectro-photometric distance**: :math:`m - M = 5 \\log d - 5 + A` (eq. 5) with ``A = R(Teff, [Fe/H],
  E(B−V))·E(B−V)`` from :mod:`ddpayne.galaxy.extinction`; G is used when present, else Ks (as the paper).
  Its error combines the photometric error, the local scatter of the calibration (less the part the
  calibrators' own label errors explain), the target's label errors through the local gradient
  ∂M/∂label, and the E(B−V) error.
* **Geometric distance**: :math:`\\log d = -\\log \\varpi` (eq. 6) with ϖ corrected for the Lindegren et al.
  (2021, A&A 649, A4) zero point (``gaiadr3-zeropoint``: needs ``PHOT_G_MEAN_MAG``,
  ``NU_EFF_USED_IN_ASTROMETRY``, ``PSEUDOCOLOUR``, ``ECL_LAT``, ``ASTROMETRIC_PARAMS_SOLVED``). Where these
  are missing or outside the recipe's validity, the global QSO offset −0.017 mas (Lindegren et al. 2021) is
  used and ``ZP_FALLBACK`` is set.
* **Combination**: inverse-variance weighted mean in log d; the spectro-photometric one alone when
  ϖ/σ_ϖ < 2, RUWE > 1.4, or the parallax is missing/non-positive (:attr:`~ddpayne.flags.Flag.NO_PARALLAX`).
  When the two disagree by more than ``tension_sigma`` (tested in parallax space, where the errors are
  Gaussian; a likely high-mass-ratio binary, whose extra light makes d_spec too small) the more precise of
  the two alone is adopted and :attr:`~ddpayne.flags.Flag.DISTANCE_TENSION` is set.
* Stars outside the calibration coverage in (Teff, log g, [Fe/H]) keep an *extrapolated* (local linear)
  absolute magnitude and are flagged :attr:`~ddpayne.flags.Flag.OUT_OF_CONTROL`. On the mock survey with the
  survey itself as calibration set (G 14–19: 431 of 5000 stars with ϖ/σ_ϖ > 10, mostly dwarfs), 46 % of the
  stars were outside, and their spectro-photometric distances still had −1.6 % bias and 14 % scatter;
  lowering ``min_plx_snr_train`` to 5 or 3 widens the coverage but biases the calibration (−5 %, −10 %)
  through the parallax-S/N selection. A brighter calibration sample is the better cure.
"""
from __future__ import annotations

import logging
import warnings

import numpy as np
from astropy.table import Table

from ddpayne.flags import Flag
from ddpayne.galaxy.distances import DistanceEstimator
from ddpayne.galaxy.extinction import MAG_COLUMNS, ExtinctionTable, default_table
from ddpayne.galaxy.regression import LocalLinearRegressor
from ddpayne.galaxy.starpair import column, mag_error

log = logging.getLogger(__name__)

#: Global parallax offset of Gaia EDR3/DR3 from quasars (Lindegren et al. 2021), mas: the fallback.
GLOBAL_ZERO_POINT = -0.017
#: Label scales for the neighbour search (K, dex, dex).
LABEL_SCALES = (100.0, 0.2, 0.15)
_LN10 = np.log(10.0)


def parallax_zero_point(stars: Table) -> tuple[np.ndarray, np.ndarray]:
    """Lindegren et al. (2021) zero point (mas) per row and a boolean 'fallback used' mask.

    Uses ``zero_point.zpt.get_zpt`` where all its inputs are present and within its validity
    (6 < G < 21, 1.1 < ν_eff < 1.9 for 5-parameter, 1.24 < pseudocolour < 1.72 for 6-parameter solutions);
    elsewhere :data:`GLOBAL_ZERO_POINT`.
    """
    n = len(stars)
    zp = np.full(n, GLOBAL_ZERO_POINT)
    g = column(stars, "PHOT_G_MEAN_MAG")
    nu = column(stars, "NU_EFF_USED_IN_ASTROMETRY")
    pc = column(stars, "PSEUDOCOLOUR")
    lat = column(stars, "ECL_LAT")
    sol = column(stars, "ASTROMETRIC_PARAMS_SOLVED")
    p5 = (sol == 31) & np.isfinite(nu) & (nu > 1.1) & (nu < 1.9)
    p6 = (sol == 95) & np.isfinite(pc) & (pc > 1.24) & (pc < 1.72)
    ok = (p5 | p6) & np.isfinite(g) & (g > 6) & (g < 21) & np.isfinite(lat)
    if ok.any():
        try:
            from zero_point import zpt
            zpt.load_tables()
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                z = np.asarray(zpt.get_zpt(g[ok], np.where(p5[ok], nu[ok], np.nan),
                                           np.where(p6[ok], pc[ok], np.nan), lat[ok], sol[ok]), float)
            good = np.isfinite(z)
            idx = np.flatnonzero(ok)
            zp[idx[good]] = z[good]
            ok[idx[~good]] = False
        except ImportError:   # pragma: no cover - gaiadr3-zeropoint is a dependency
            log.warning("gaiadr3-zeropoint is not installed: using the global zero point %g mas",
                        GLOBAL_ZERO_POINT)
            ok[:] = False
    return zp, ~ok


class SpectroPhotometricDistance(DistanceEstimator):
    """Spectro-photometric distances combined with zero-point-corrected Gaia parallaxes.

    Parameters
    ----------
    table : ExtinctionTable, optional
        Extinction coefficients (default: :func:`ddpayne.galaxy.extinction.default_table`).
    min_plx_snr_train : float
        ϖ/σ_ϖ required of calibration stars.
    min_plx_snr : float
        ϖ/σ_ϖ below which the parallax is not used (paper: 2).
    max_ruwe : float
        RUWE above which the parallax is not used (paper: 1.4).
    tension_sigma : float
        Disagreement (in σ of log d) that flags a likely binary.
    k : int
        Neighbours of the local regression.
    """

    name = "spectrophotometric"

    def __init__(self, table: ExtinctionTable | None = None, min_plx_snr_train: float = 10.0,
                 min_plx_snr: float = 2.0, max_ruwe: float = 1.4, tension_sigma: float = 3.0,
                 k: int = 48, max_distance: float = 3.0):
        self.table = table
        self.min_plx_snr_train = min_plx_snr_train
        self.min_plx_snr = min_plx_snr
        self.max_ruwe = max_ruwe
        self.tension_sigma = tension_sigma
        self.k = k
        self.max_distance = max_distance
        self.regressor: LocalLinearRegressor | None = None

    def _ext(self, teff, feh, ebv) -> dict[str, np.ndarray]:
        tab = self.table or default_table()
        return tab.extinction(np.nan_to_num(teff, nan=5500.0), feh, np.nan_to_num(ebv, nan=0.0))

    def train(self, control: Table) -> "SpectroPhotometricDistance":
        """Learn M_G(labels), M_Ks(labels) from control stars with precise parallaxes.

        ``control`` needs ``TEFF``, ``LOGG``, ``FE_H``, ``EBV`` (e.g. from the star-pair method),
        ``PHOT_G_MEAN_MAG``, ``KS``, ``PARALLAX``, ``PARALLAX_ERROR``, ``RUWE`` and the zero-point inputs.

        Raises
        ------
        ValueError
            If columns are missing or fewer than a handful of stars qualify.
        """
        need = ("TEFF", "LOGG", "FE_H", "EBV", "PARALLAX", "PARALLAX_ERROR")
        missing = [c for c in need if c not in control.colnames]
        if missing:
            raise ValueError(f"distance control table lacks column(s) {missing} "
                             f"(EBV comes from ddpayne.galaxy.starpair or a map)")
        zp, _ = parallax_zero_point(control)
        plx = column(control, "PARALLAX") - zp
        snr = plx / column(control, "PARALLAX_ERROR")
        ruwe = column(control, "RUWE", 1.0)
        sel = (snr > self.min_plx_snr_train) & (np.nan_to_num(ruwe, nan=99) < self.max_ruwe) \
            & np.isfinite(column(control, "EBV"))
        teff, feh, ebv = column(control, "TEFF"), column(control, "FE_H"), column(control, "EBV")
        A = self._ext(teff, feh, ebv)
        dm = 5.0 * np.log10(1.0 / np.where(plx > 0, plx, np.nan)) + 10.0   # mu for plx in mas
        Y = np.stack([column(control, MAG_COLUMNS[b]) - A[b] - dm for b in ("G", "KS")], -1)[sel]
        X = np.stack([teff, column(control, "LOGG"), feh], -1)[sel]
        self.regressor = LocalLinearRegressor(LABEL_SCALES, k=self.k, max_distance=self.max_distance,
                                              robust_clip=3.0).fit(X, Y)
        # typical label errors of the calibrators: their effect is already in the calibration scatter
        cal_err = np.stack([column(control, c + "_ERR", 0.0) for c in ("TEFF", "LOGG", "FE_H")], -1)[sel]
        self.cal_label_err = np.nan_to_num(np.nanmedian(cal_err, axis=0), nan=0.0) if cal_err.size else \
            np.zeros(3)
        self.n_control = int(sel.sum())
        log.info("absolute magnitudes learned from %d control stars with parallax S/N > %g",
                 self.n_control, self.min_plx_snr_train)
        return self

    def absolute_magnitudes(self, stars: Table):
        """Predicted M_G, M_Ks, their errors (calibration scatter ⊕ label errors) and the outside mask."""
        if self.regressor is None:
            raise RuntimeError("SpectroPhotometricDistance.train(control) must be called first")
        X = np.stack([column(stars, "TEFF"), column(stars, "LOGG"), column(stars, "FE_H")], -1)
        mean, grad, scat, outside = self.regressor.predict(X)
        lerr = np.stack([column(stars, c + "_ERR", 0.0) for c in ("TEFF", "LOGG", "FE_H")], -1)
        lerr = np.nan_to_num(lerr, nan=0.0)
        prop = np.sqrt(np.nansum((grad * lerr[:, None, :]) ** 2, axis=-1))
        # the calibration scatter already holds the calibrators' own label errors: remove them in
        # quadrature (keeping at least half the scatter) and add the target's
        prop_cal = np.sqrt(np.nansum((grad * self.cal_label_err[None, None, :]) ** 2, axis=-1))
        intrinsic2 = np.maximum(scat**2 - prop_cal**2, 0.25 * scat**2)
        err = np.sqrt(intrinsic2 + prop**2)
        return mean[:, 0], mean[:, 1], err[:, 0], err[:, 1], outside

    def estimate(self, stars: Table) -> Table:
        """Distances of ``stars`` (one row per input row, same order).

        Input columns: labels (+ ``_ERR``), ``EBV`` (+ ``EBV_ERR``; 0 assumed if absent, with a warning),
        photometry, parallax and zero-point inputs, ``RUWE``. Output: ``DIST``, ``DIST_ERR``,
        ``DIST_SPEC``, ``DIST_SPEC_ERR``, ``DIST_PLX``, ``DIST_PLX_ERR`` (kpc), ``M_G``, ``M_KS``,
        ``M_G_ERR``, ``M_KS_ERR`` (mag), ``PARALLAX_CORR``, ``PARALLAX_ZP`` (mas), ``ZP_FALLBACK``,
        ``FLAG``.
        """
        n = len(stars)
        flag = np.zeros(n, dtype=np.int64)
        teff, feh = column(stars, "TEFF"), column(stars, "FE_H")
        if "EBV" not in stars.colnames:
            log.warning("no EBV column: assuming zero extinction for %d stars", n)
        ebv = column(stars, "EBV", 0.0)
        ebv_err = np.nan_to_num(column(stars, "EBV_ERR", 0.0), nan=0.0)
        mg, mk, mg_err, mk_err, outside = self.absolute_magnitudes(stars)
        flag[outside] |= int(Flag.OUT_OF_CONTROL)
        A = self._ext(teff, feh, ebv)
        tab = self.table or default_table()
        R = tab.coefficients(np.nan_to_num(teff, nan=5500.0), feh, np.nan_to_num(ebv, nan=0.0))
        # spectro-photometric: G first, Ks as fallback
        logd = np.full(n, np.nan)
        sig = np.full(n, np.nan)
        for band, M, Merr in (("KS", mk, mk_err), ("G", mg, mg_err)):   # G last: it wins where present
            m = column(stars, MAG_COLUMNS[band])
            mu = m - M - A[band]
            ld = (mu + 5.0) / 5.0 - 3.0                                  # log10(d / kpc)
            s = np.sqrt(mag_error(stars, band) ** 2 + Merr**2 + (R[band] * ebv_err) ** 2) / 5.0
            ok = np.isfinite(ld) & np.isfinite(s) & np.isfinite(ebv)
            logd = np.where(ok, ld, logd)
            sig = np.where(ok, s, sig)
        has_spec = np.isfinite(logd)
        no_phot = (~np.isfinite(column(stars, MAG_COLUMNS["G"]))
                   & ~np.isfinite(column(stars, MAG_COLUMNS["KS"])))
        flag[no_phot] |= int(Flag.NO_PHOTOMETRY)
        # geometric
        zp, fallback = parallax_zero_point(stars)
        plx = column(stars, "PARALLAX") - zp
        plx_err = column(stars, "PARALLAX_ERROR")
        ruwe = column(stars, "RUWE", 1.0)
        with np.errstate(invalid="ignore", divide="ignore"):
            snr = plx / plx_err
            use_plx = (np.isfinite(snr) & (snr >= self.min_plx_snr) & (plx > 0)
                       & (np.nan_to_num(ruwe, nan=1.0) <= self.max_ruwe))
            logd_p = np.where(plx > 0, -np.log10(plx), np.nan)
            sig_p = plx_err / (plx * _LN10)
        flag[~use_plx] |= int(Flag.NO_PARALLAX)
        # combination
        both = has_spec & use_plx
        # tension is tested in parallax space, where the parallax error is Gaussian
        tension = np.zeros(n, dtype=bool)
        plx_spec = 10.0 ** -logd[both]
        z = (plx[both] - plx_spec) / np.hypot(plx_err[both], plx_spec * _LN10 * sig[both])
        tension[both] = np.abs(z) > self.tension_sigma
        flag[tension] |= int(Flag.DISTANCE_TENSION)
        w_s = np.where(has_spec, 1.0 / sig**2, 0.0)
        w_p = np.where(use_plx, 1.0 / sig_p**2, 0.0)
        # in tension: keep only the more precise of the two (a precise parallax wins over the
        # spectro-photometric distance of a likely binary)
        w_s = np.where(tension & (sig_p < sig), 0.0, w_s)
        w_p = np.where(tension & (sig_p >= sig), 0.0, w_p)
        wsum = w_s + w_p
        with np.errstate(invalid="ignore", divide="ignore"):
            logd_f = (np.nan_to_num(logd) * w_s + np.nan_to_num(logd_p) * w_p) / wsum
            sig_f = 1.0 / np.sqrt(wsum)
        logd_f = np.where(wsum > 0, logd_f, np.nan)
        sig_f = np.where(wsum > 0, sig_f, np.nan)
        d = 10.0**logd_f
        out = Table()
        cols = {
            "DIST": (d, "kpc"), "DIST_ERR": (d * _LN10 * sig_f, "kpc"),
            "DIST_SPEC": (10.0**logd, "kpc"), "DIST_SPEC_ERR": (10.0**logd * _LN10 * sig, "kpc"),
            "DIST_PLX": (np.where(use_plx, 10.0**logd_p, np.nan), "kpc"),
            "DIST_PLX_ERR": (np.where(use_plx, 10.0**logd_p * _LN10 * sig_p, np.nan), "kpc"),
            "M_G": (mg, "mag"), "M_KS": (mk, "mag"), "M_G_ERR": (mg_err, "mag"), "M_KS_ERR": (mk_err, "mag"),
            "PARALLAX_CORR": (plx, "mas"), "PARALLAX_ZP": (zp, "mas"),
        }
        for k, (v, unit) in cols.items():
            out[k] = v
            out[k].unit = unit
        out["ZP_FALLBACK"] = fallback
        out["FLAG"] = flag
        return out
