"""Quality flags of fitted labels: χ² outliers, bounds, training coverage, [Fe/H] floors.

The main entry point is :func:`add_quality_columns`, which fills ``QFLAG_CHI2``, ``COVERAGE_DIST``,
``BOUND_MASK``, ``ABUND_FLAG`` and the corresponding ``FLAG`` bits of a fit-result table
(:mod:`ddpayne.fit.results`). Each piece is also a plain function on arrays.
"""
from __future__ import annotations

import logging
from collections.abc import Sequence

import numpy as np
from astropy.table import Table

from ..flags import Flag
from ..labels import ABUNDANCE_LABELS, FE_H_FLOORS

log = logging.getLogger(__name__)

#: Bit of each abundance label in ``ABUND_FLAG``: ``1 << ABUNDANCE_LABELS.index(label)``.
ABUND_FLAG_BITS: dict[str, int] = {name: 1 << i for i, name in enumerate(ABUNDANCE_LABELS)}

#: ``QFLAG_CHI2`` at or above which a fit is an outlier (paper §4.1).
QFLAG_CHI2_LIMIT = 3.0


def qflag_chi2(chi2, snr=None, n_per_bin: int = 500, min_per_bin: int = 20,
               deviation: str = "mean") -> np.ndarray:
    """Paper Eq. 4: ``(χ² − median χ²) / MAD(χ²)`` among stars of similar S/N.

    Parameters
    ----------
    chi2 : array (n,)
        χ² of each fit; non-finite values give NaN and are left out of the statistics.
    snr : array (n,), optional
        S/N of each spectrum. Stars are sorted by S/N and cut into bins of ``n_per_bin`` consecutive
        stars (the last bin absorbs a remainder smaller than ``n_per_bin``). Without S/N (or with NaN
        S/N) stars form one bin.
    n_per_bin : int
        Stars per S/N bin.
    min_per_bin : int
        Bins with fewer finite χ² give NaN (too few for a median).
    deviation : {"mean", "median"}
        ``"mean"``: mean absolute deviation from the median, as the paper defines χ²_mad;
        ``"median"``: median absolute deviation.

    Returns
    -------
    ndarray (n,)
    """
    chi2 = np.asarray(chi2, dtype=float)
    n = chi2.size
    out = np.full(n, np.nan)
    good = np.isfinite(chi2)
    if snr is None:
        snr = np.full(n, np.nan)
    snr = np.asarray(snr, dtype=float)
    groups = []
    has_snr = good & np.isfinite(snr)
    idx = np.flatnonzero(has_snr)
    idx = idx[np.argsort(snr[idx], kind="stable")]
    n_bins = max(1, idx.size // max(n_per_bin, 1))
    groups.extend(np.array_split(idx, n_bins) if idx.size else [])
    groups.append(np.flatnonzero(good & ~np.isfinite(snr)))
    for g in groups:
        if g.size < min_per_bin:
            continue
        med = np.median(chi2[g])
        dev = np.abs(chi2[g] - med)
        mad = dev.mean() if deviation == "mean" else np.median(dev)
        if not mad > 0:
            continue
        out[g] = (chi2[g] - med) / mad
    return out


def at_bound_mask(labels, lower, upper, fixed=None, rtol: float = 1e-3) -> np.ndarray:
    """Boolean (n, n_label): a fitted label within ``rtol`` × range of a bound (fixed labels never)."""
    labels = np.atleast_2d(np.asarray(labels, dtype=float))
    lower, upper = np.asarray(lower, float), np.asarray(upper, float)
    tol = rtol * (upper - lower)
    with np.errstate(invalid="ignore"):
        m = (labels <= lower + tol) | (labels >= upper - tol)
    if fixed is not None:
        m &= ~np.asarray(fixed, dtype=bool)
    return m


def scale_labels(labels, label_min, label_max) -> np.ndarray:
    """Labels scaled to the training range: ``(ℓ − min)/(max − min)``."""
    lo, hi = np.asarray(label_min, float), np.asarray(label_max, float)
    return (np.asarray(labels, dtype=float) - lo) / np.where(hi > lo, hi - lo, 1.0)


class CoverageModel:
    """Nearest-neighbour distance to the training labels in scaled label space.

    Parameters
    ----------
    training_labels : array (n_train, n_label)
        Labels of the training stars (physical units).
    label_min, label_max : array (n_label,)
        Scaling range (the emulator's).
    columns : sequence of int, optional
        Label indices used for the distance (default all).
    quantile : float
        The threshold is this quantile of the training stars' own leave-one-out nearest-neighbour
        distances, times ``factor``.
    factor : float
    """

    def __init__(self, training_labels, label_min, label_max, columns: Sequence[int] | None = None,
                 quantile: float = 0.99, factor: float = 1.5):
        from scipy.spatial import cKDTree

        tl = np.atleast_2d(np.asarray(training_labels, dtype=float))
        tl = tl[np.all(np.isfinite(tl), axis=1)]
        if len(tl) < 2:
            raise ValueError("need at least two finite training label rows for the coverage flag")
        self.label_min, self.label_max = np.asarray(label_min, float), np.asarray(label_max, float)
        self.columns = np.arange(tl.shape[1]) if columns is None else np.asarray(columns, dtype=int)
        pts = scale_labels(tl, self.label_min, self.label_max)[:, self.columns]
        self.tree = cKDTree(pts)
        d, _ = self.tree.query(pts, k=2)
        self.threshold = float(factor * np.quantile(d[:, 1], quantile))

    def distance(self, labels) -> np.ndarray:
        """Distance of each row of ``labels`` to the nearest training star (NaN for non-finite rows)."""
        labels = np.atleast_2d(np.asarray(labels, dtype=float))
        out = np.full(len(labels), np.nan)
        ok = np.all(np.isfinite(labels[:, self.columns]), axis=1)
        if ok.any():
            pts = scale_labels(labels[ok], self.label_min, self.label_max)[:, self.columns]
            out[ok] = self.tree.query(pts, k=1)[0]
        return out

    def outside(self, labels) -> np.ndarray:
        """True where the nearest-neighbour distance exceeds the threshold."""
        d = self.distance(labels)
        with np.errstate(invalid="ignore"):
            return d > self.threshold


def coverage_columns(label_names: Sequence[str], use: Sequence[str] | None) -> np.ndarray | None:
    """Indices of ``use`` among ``label_names`` (those present); None when ``use`` is None or none present."""
    if use is None:
        return None
    cols = [list(label_names).index(n) for n in use if n in label_names]
    return np.array(cols, dtype=int) if cols else None


def coverage_distance(labels, training_labels, label_min, label_max) -> np.ndarray:
    """Nearest-neighbour distance of each label row to the training set, in scaled label space."""
    return CoverageModel(training_labels, label_min, label_max).distance(labels)


def abundance_flags(labels, label_names: Sequence[str], bound_mask=None,
                    floors: dict[str, float] | None = None) -> np.ndarray:
    """Per-element ``ABUND_FLAG`` bits (:data:`ABUND_FLAG_BITS`).

    A bit is set when ``FE_H`` is below the element's floor (:data:`ddpayne.labels.FE_H_FLOORS`)
    or (when ``bound_mask`` is given) the abundance label itself is at a bound. Spectra without a
    finite ``FE_H`` get no floor bits (they are flagged ``FIT_FAILED`` instead).
    """
    labels = np.atleast_2d(np.asarray(labels, dtype=float))
    names = list(label_names)
    floors = FE_H_FLOORS if floors is None else floors
    out = np.zeros(len(labels), dtype=np.int32)
    feh = labels[:, names.index("FE_H")] if "FE_H" in names else np.full(len(labels), np.nan)
    with np.errstate(invalid="ignore"):
        for name, bit in ABUND_FLAG_BITS.items():
            if name not in names:
                continue
            flag = feh < floors.get(name, -np.inf)
            if bound_mask is not None:
                flag |= np.asarray(bound_mask)[:, names.index(name)]
            out[flag] |= bit
    return out


def _set(table: Table, name: str, values) -> None:
    """Replace a column's values, keeping its unit and description."""
    if name in table.colnames:
        table[name][:] = values
    else:
        table[name] = values


def add_quality_columns(table: Table, lower=None, upper=None, fixed=None, coverage: CoverageModel | None = None,
                        n_per_bin: int = 500, min_per_bin: int = 20, qflag_limit: float = QFLAG_CHI2_LIMIT,
                        deviation: str = "mean") -> Table:
    """Fill the quality columns and ``FLAG`` bits of a fit-result table, in place (also returned).

    Parameters
    ----------
    table : Table
        From :func:`ddpayne.fit.results.build_result_table` (labels in ``table.meta['LABELS']``).
    lower, upper : array (n_label,), optional
        Fit bounds; default ``table.meta['LOWER']``/``['UPPER']`` when present, else no bound flags.
    fixed : array (n_label,) of bool, optional
        Fixed labels (never flagged at bound); default ``table.meta['FIXED']`` when present.
    coverage : CoverageModel, optional
        Training-coverage model; without it ``COVERAGE_DIST`` stays NaN and no coverage flag is set.
    n_per_bin, min_per_bin, deviation
        Passed to :func:`qflag_chi2`.
    qflag_limit : float
        ``QFLAG_CHI2 ≥ qflag_limit`` sets ``CHI2_OUTLIER``.
    """
    names = list(table.meta["LABELS"])
    labels = np.column_stack([np.asarray(table[n], dtype=float) for n in names])
    fitted = np.all(np.isfinite(labels), axis=1)
    flags = np.asarray(table["FLAG"], dtype=np.int64).copy()
    # clear bits this function owns so that it can be re-run over a merged catalogue
    for f in (Flag.AT_BOUND, Flag.OUT_OF_COVERAGE, Flag.CHI2_OUTLIER, Flag.BELOW_FEH_FLOOR):
        flags &= ~int(f)
    lower = table.meta.get("LOWER") if lower is None else lower
    upper = table.meta.get("UPPER") if upper is None else upper
    fixed = table.meta.get("FIXED") if fixed is None else fixed
    bmask = np.zeros(labels.shape, dtype=bool)
    if lower is not None and upper is not None:
        bmask = at_bound_mask(labels, lower, upper, fixed)
        bmask &= fitted[:, None]
    bits = (bmask * (1 << np.arange(len(names)))).sum(axis=1).astype(np.int32)
    _set(table, "BOUND_MASK", bits)
    flags[bmask.any(axis=1)] |= int(Flag.AT_BOUND)
    abund = abundance_flags(labels, names, bmask)
    abund[~fitted] = 0
    _set(table, "ABUND_FLAG", abund)
    with np.errstate(invalid="ignore"):
        feh_floor = abundance_flags(labels, names) != 0
    flags[feh_floor & fitted] |= int(Flag.BELOW_FEH_FLOOR)
    snr = np.asarray(table["SNR"], dtype=float) if "SNR" in table.colnames else None
    chi2 = np.where(fitted, np.asarray(table["CHI2"], dtype=float), np.nan)
    q = qflag_chi2(chi2, snr, n_per_bin=n_per_bin, min_per_bin=min_per_bin, deviation=deviation)
    _set(table, "QFLAG_CHI2", q)
    with np.errstate(invalid="ignore"):
        flags[q >= qflag_limit] |= int(Flag.CHI2_OUTLIER)
    if coverage is not None:
        d = coverage.distance(labels)
        _set(table, "COVERAGE_DIST", d)
        with np.errstate(invalid="ignore"):
            flags[d > coverage.threshold] |= int(Flag.OUT_OF_COVERAGE)
        table.meta["COVTHR"] = coverage.threshold
    _set(table, "FLAG", flags)
    return table
