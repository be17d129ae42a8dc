"""Reddening E(B−V) by the star-pair method (Yuan et al. 2013; Zhang et al. 2024, §4.3).

1. Control stars: low extinction (``|b| > 30°`` and a small reference reddening, e.g. the SFD98 map value,
   given
   as a column) — their intrinsic colours are the observed ones corrected with that reference reddening.
2. Intrinsic colours of a target: local linear regression of the control stars' intrinsic colours in
   (Teff, log g, [Fe/H]) (:class:`~ddpayne.galaxy.regression.LocalLinearRegressor`).
3. Colour excesses :math:`E(c) = c_{\\rm obs} - c_0` in BP−RP, G−J, G−H, G−Ks (those available) become
   E(B−V) through :math:`R_c = R_a - R_b` from :mod:`ddpayne.galaxy.extinction`, which depend on Teff,
   [Fe/H] *and* E(B−V): the estimate is iterated (coefficients re-evaluated at the current E(B−V)) until it
   changes by < 1e-4 mag. The colours are combined by inverse variance (photometric errors + the local
   intrinsic-colour scatter of the control stars).

Rows without usable photometry get ``EBV = NaN`` and :attr:`~ddpayne.flags.Flag.NO_PHOTOMETRY`; rows
outside the control coverage (or with NaN labels) get :attr:`~ddpayne.flags.Flag.OUT_OF_CONTROL` (their
E(B−V) is still computed when possible, by extrapolation: treat with care).
"""
from __future__ import annotations

import logging
from typing import Sequence

import numpy as np
from astropy.table import Table

from ..flags import Flag
from .extinction import MAG_COLUMNS, ExtinctionTable, default_table
from .regression import LocalLinearRegressor

log = logging.getLogger(__name__)

#: Default colours (pairs of bands of :data:`ddpayne.galaxy.extinction.BANDS`).
DEFAULT_COLOURS: tuple[tuple[str, str], ...] = (("BP", "RP"), ("G", "J"), ("G", "H"), ("G", "KS"))
#: Label scales for the neighbour search (K, dex, dex).
LABEL_SCALES: tuple[float, float, float] = (100.0, 0.25, 0.15)
#: Floor on photometric errors (mag) when an error column is missing or zero.
MIN_MAG_ERR = 0.01


def column(tab: Table, name: str, default: float = np.nan) -> np.ndarray:
    """A float column of ``tab`` with masked values as NaN, or ``default`` everywhere if absent."""
    if name not in tab.colnames:
        return np.full(len(tab), default, dtype=float)
    c = tab[name]
    if hasattr(c, "mask"):                       # masked (e.g. FITS nulls), any dtype
        return np.ma.asarray(c, dtype=float).filled(np.nan)
    return np.array(c, dtype=float)


def mag_error(tab: Table, band: str) -> np.ndarray:
    """Magnitude error of ``band`` (``<MAG>_ERR`` column, or :data:`MIN_MAG_ERR`), floored."""
    err = column(tab, MAG_COLUMNS[band] + "_ERR", MIN_MAG_ERR)
    return np.sqrt(np.nan_to_num(err, nan=MIN_MAG_ERR) ** 2 + 0.005**2)


def galactic_latitude(tab: Table) -> np.ndarray:
    """``|b|`` in degrees, computed from ``RA``/``DEC`` (a ``B`` column is used only when they are absent:
    ``B`` may be a magnitude in other catalogues)."""
    if not {"RA", "DEC"} <= set(tab.colnames) and "B" in tab.colnames:
        return np.abs(column(tab, "B"))
    import astropy.coordinates as coord
    import astropy.units as u
    ra, dec = column(tab, "RA"), column(tab, "DEC")
    out = np.full(len(tab), np.nan)
    ok = np.isfinite(ra) & np.isfinite(dec)
    if ok.any():
        out[ok] = np.abs(coord.SkyCoord(ra=ra[ok] * u.deg, dec=dec[ok] * u.deg).galactic.b.deg)
    return out


class StarPairExtinction:
    """Star-pair E(B−V) estimator.

    Parameters
    ----------
    colours : sequence of (band, band)
        Colours used (default :data:`DEFAULT_COLOURS`).
    table : ExtinctionTable, optional
        Extinction coefficients (default :func:`~ddpayne.galaxy.extinction.default_table`).
    k : int
        Control neighbours per target.
    max_distance : float
        Coverage limit in scaled label distance (see :class:`LocalLinearRegressor`).
    n_iter : int
        Maximum iterations for the E(B−V)-dependent coefficients.

    Examples
    --------
    >>> sp = StarPairExtinction().fit(control, ebv_column="EBV_SFD")     # doctest: +SKIP
    >>> res = sp.estimate(stars)                                          # doctest: +SKIP
    """

    def __init__(self, colours: Sequence[tuple[str, str]] = DEFAULT_COLOURS,
                 table: ExtinctionTable | None = None, k: int = 48, max_distance: float = 3.0,
                 n_iter: int = 8):
        self.colours = tuple(tuple(c) for c in colours)
        self.table = table or default_table()
        self.k = k
        self.max_distance = max_distance
        self.n_iter = n_iter
        self.regressor: LocalLinearRegressor | None = None

    def _colour_name(self, c) -> str:
        return f"{c[0]}_{c[1]}"

    def _coeff(self, teff, feh, ebv) -> dict[str, np.ndarray]:
        return self.table.coefficients(teff, feh, np.clip(ebv, 0.0, None))

    def control_mask(self, control: Table, ebv_column: str = "EBV_SFD", min_abs_b: float = 30.0,
                     max_ebv: float = 0.05) -> np.ndarray:
        """Control-star selection: ``|b|`` > ``min_abs_b`` and reference reddening < ``max_ebv``."""
        if ebv_column not in control.colnames:
            raise ValueError(f"control table lacks the reference reddening column {ebv_column!r} "
                             f"(e.g. an SFD98 map value); has {control.colnames}")
        ebv = column(control, ebv_column)
        return (galactic_latitude(control) > min_abs_b) & (ebv < max_ebv) & np.isfinite(ebv)

    def fit(self, control: Table, ebv_column: str = "EBV_SFD", min_abs_b: float = 30.0,
            max_ebv: float = 0.05) -> "StarPairExtinction":
        """Learn intrinsic colours from the low-extinction stars of ``control``.

        Parameters
        ----------
        control : Table
            Stars with ``TEFF``, ``LOGG``, ``FE_H``, photometry and ``ebv_column``; the low-extinction ones
            are selected with :meth:`control_mask`.
        ebv_column : str
            Reference reddening (map value) used to de-redden the control stars.
        min_abs_b, max_ebv : float
            Control selection.

        Raises
        ------
        ValueError
            If the control table lacks columns or too few stars pass the selection.
        """
        for c in ("TEFF", "LOGG", "FE_H"):
            if c not in control.colnames:
                raise ValueError(f"control table lacks label column {c!r}")
        sel = self.control_mask(control, ebv_column, min_abs_b, max_ebv)
        ctl = control[sel]
        teff, feh = column(ctl, "TEFF"), column(ctl, "FE_H")
        ebv = column(ctl, ebv_column)
        R = self._coeff(teff, feh, ebv)
        Y = np.stack([column(ctl, MAG_COLUMNS[a]) - column(ctl, MAG_COLUMNS[b]) - (R[a] - R[b]) * ebv
                      for a, b in self.colours], axis=-1)
        X = np.stack([teff, column(ctl, "LOGG"), feh], axis=-1)
        self.regressor = LocalLinearRegressor(LABEL_SCALES, k=self.k, max_distance=self.max_distance,
                                              robust_clip=4.0).fit(X, Y)
        self.n_control = int(sel.sum())
        log.info("star-pair: %d control stars (|b| > %g, %s < %g)", self.n_control, min_abs_b,
                 ebv_column, max_ebv)
        return self

    def intrinsic_colours(self, teff, logg, feh):
        """Intrinsic colours, their local scatter and the out-of-coverage mask at the given labels."""
        if self.regressor is None:
            raise RuntimeError("StarPairExtinction.fit(control) must be called before use")
        X = np.stack([np.asarray(teff, float), np.asarray(logg, float), np.asarray(feh, float)], -1)
        mean, _, scat, outside = self.regressor.predict(X)
        return mean, scat, outside

    def estimate(self, stars: Table) -> Table:
        """E(B−V) of ``stars`` (one row per input row, same order).

        Returns
        -------
        Table
            ``EBV``, ``EBV_ERR`` (mag), ``E_<a>_<b>`` colour excesses (mag; e.g. ``E_BP_RP``),
            ``N_COLOURS`` used, ``FLAG``.
        """
        n = len(stars)
        teff, logg, feh = column(stars, "TEFF"), column(stars, "LOGG"), column(stars, "FE_H")
        c0, scat, outside = self.intrinsic_colours(teff, logg, feh)
        flag = np.zeros(n, dtype=np.int64)
        flag[outside] |= int(Flag.OUT_OF_CONTROL)
        excess = np.full((n, len(self.colours)), np.nan)
        var = np.full((n, len(self.colours)), np.nan)
        for j, (a, b) in enumerate(self.colours):
            obs = column(stars, MAG_COLUMNS[a]) - column(stars, MAG_COLUMNS[b])
            excess[:, j] = obs - c0[:, j]
            var[:, j] = mag_error(stars, a) ** 2 + mag_error(stars, b) ** 2 + scat[:, j] ** 2
        usable = np.isfinite(excess) & np.isfinite(var)
        no_phot = ~usable.any(axis=1)
        # stars with NaN labels cannot have intrinsic colours: report as outside the control coverage
        nolab = ~(np.isfinite(teff) & np.isfinite(logg) & np.isfinite(feh))
        flag[nolab] |= int(Flag.OUT_OF_CONTROL)
        flag[no_phot & ~nolab] |= int(Flag.NO_PHOTOMETRY)
        flag[~np.isfinite(column(stars, MAG_COLUMNS["BP"]) - column(stars, MAG_COLUMNS["RP"]))
             & ~nolab] |= int(Flag.NO_PHOTOMETRY)
        ebv = np.zeros(n)
        wsum = np.zeros(n)
        ex = np.where(usable, excess, 0.0)
        for _ in range(self.n_iter):
            R = self._coeff(np.nan_to_num(teff, nan=5500.0), feh, ebv)
            Rc = np.stack([R[a] - R[b] for a, b in self.colours], axis=-1)
            w = np.where(usable, Rc**2 / np.where(usable, var, 1.0), 0.0)
            wsum = w.sum(axis=1)
            new = np.where(wsum > 0, (w * np.where(usable, ex / Rc, 0.0)).sum(axis=1)
                           / np.where(wsum > 0, wsum, 1.0), np.nan)
            delta = np.nanmax(np.abs(new - ebv)) if np.isfinite(new).any() else 0.0
            ebv = np.nan_to_num(new, nan=0.0)
            if delta < 1e-4:
                break
        ebv_err = np.where(wsum > 0, 1.0 / np.sqrt(np.where(wsum > 0, wsum, 1.0)), np.nan)
        ebv = np.where(no_phot, np.nan, ebv)
        out = Table()
        out["EBV"] = ebv
        out["EBV"].unit = "mag"
        out["EBV_ERR"] = ebv_err
        out["EBV_ERR"].unit = "mag"
        for j, c in enumerate(self.colours):
            out["E_" + self._colour_name(c)] = np.where(usable[:, j], excess[:, j], np.nan)
            out["E_" + self._colour_name(c)].unit = "mag"
        out["N_COLOURS"] = usable.sum(axis=1).astype(np.int16)
        out["FLAG"] = flag
        return out
