"""Systematic (model) errors of the labels, measured on held-out validation stars.

The formal errors ``<LABEL>_ERR`` of a fit, ``sqrt(diag((JᵀWJ)⁻¹))``, describe the photon noise only: they
are what repeat observations of a star scatter by (paper Fig. 9). A data-driven emulator trained on a finite
set of stars with noisy reference labels also has a *model* error — the emulator's spectrum at a label point
is not exactly the star's — which moves every spectrum of a star the same way and so does not average out.

The stars held out of training (the trainer's validation split, by star) measure it. For each label, their
fitted values ``x_fit`` are compared with the reference labels ``x_ref``; with the robust width
``s = 1.4826 MAD(x_fit − x_ref)`` (the statistic survey validations quote, and the one the mock validation
uses: a few badly fitted stars must not set every star's error), median formal error ``e`` and median reference-label error ``r`` (the
label catalogue's ``<LABEL>_ERR``), the systematic error is

.. math:: \\sigma_{\\rm sys}^2 = \\max(0,\\; s^2 - e^2 - r^2),

solved star by star — ``σ_sys`` is the value for which the robust width of
``(x_fit − x_ref) / sqrt(e_i² + r_i² + σ_sys²)`` is 1, so that stars with large errors weigh as they
should (with equal errors this is the formula above) — and the total error of every catalogue row is ``<LABEL>_ERR_TOT = sqrt(<LABEL>_ERR² + σ_sys²)``. This is the
usual cross-validation estimate of a data-driven model's error floor. It is one number per label: with the
tens to hundreds of validation stars of a training set it cannot resolve how the model error varies across
label space (it is larger where the training set is sparse: metal-poor stars, giants), and where the
reference errors dominate the scatter (``r ≈ s``) the difference is poorly determined — the table gives the
statistical uncertainty of each ``σ_sys`` (``SYS_UNCERTAINTY``) so that a user can judge.
"""
from __future__ import annotations

import logging
from collections.abc import Sequence

import numpy as np
from astropy.stats import mad_std
from astropy.table import Column, Table

from ..flags import Flag
from ..labels import LABEL_UNIT_STRINGS

log = logging.getLogger(__name__)

#: Rows left out of the calibration: failed or unusable fits, and solutions at a bound of the fit.
EXCLUDE = int(Flag.FIT_FAILED | Flag.ALL_MASKED | Flag.BAD_INPUT | Flag.AT_BOUND)
#: Fewer validation spectra than this give no systematic error (NaN) for a label.
MIN_STARS = 10


#: Standard error of the MAD-based σ of a Gaussian sample of N, in units of σ/√N (asymptotic).
MAD_SIGMA_SE = 1.166


def robust_sigma(x: np.ndarray, axis: int | None = None):
    """1.4826 × median absolute deviation (a Gaussian σ that ignores outliers) of the finite values.

    :func:`astropy.stats.mad_std` with NaN and ±inf ignored.

    Parameters
    ----------
    x : array_like
    axis : int, optional
        Reduce along this axis (NaNs ignored per column); by default over all values, as a float.

    Returns
    -------
    float or ndarray
        NaN where there are no finite values.
    """
    x = np.asarray(x, float)
    x = np.where(np.isfinite(x), x, np.nan)   # ±inf ignored like NaN
    if axis is None:
        x = x[np.isfinite(x)]
        return float(mad_std(x)) if x.size else float("nan")
    import warnings

    with warnings.catch_warnings():  # an all-NaN column gives NaN, which is the answer
        warnings.simplefilter("ignore", RuntimeWarning)
        return mad_std(x, axis=axis, ignore_nan=True)


def _solve_sys(d: np.ndarray, known_var: np.ndarray, scale: float) -> float:
    """σ_sys ≥ 0 with robust σ of ``d / sqrt(known_var + σ_sys²)`` equal to 1 (0 if already ≤ 1).

    Star by star, so that stars with large formal or reference errors (faint, metal-poor) weigh as they
    should; with equal errors it is ``sqrt(s² − e² − r²)``.
    """
    from scipy.optimize import brentq

    def excess(sys: float) -> float:
        return robust_sigma(d / np.sqrt(known_var + sys ** 2)) - 1.0

    if not np.isfinite(scale) or scale <= 0 or excess(0.0) <= 0.0:
        return 0.0
    return float(brentq(excess, 0.0, 10.0 * scale, xtol=1e-6 * scale))


def systematic_errors(fit: Table, reference: Table, label_names: Sequence[str], id_column: str = "ID",
                      error_suffix: str = "_ERR") -> Table:
    """Per-label systematic errors from fits of validation stars against their reference labels.

    Parameters
    ----------
    fit : Table
        Fit results of the validation spectra (:mod:`ddpayne.fit.results` columns: ``<LABEL>``,
        ``<LABEL>_ERR``, ``FLAG``), with an ``id_column``.
    reference : Table
        Their reference labels: ``id_column``, ``<LABEL>`` and, when known, ``<LABEL>_ERR`` (the reference
        catalogue's errors; taken as 0 when absent, which makes ``SYS`` an upper bound).
    label_names : sequence of str
    id_column : str
        Column joining the two tables (several fit rows may share one reference row: repeat spectra).

    Returns
    -------
    Table
        One row per label: ``LABEL``, ``N``, ``BIAS`` (median fit − reference),
        ``SCATTER`` (1.4826 MAD of fit − reference), ``MEDIAN_ERR`` (formal),
        ``REF_ERR`` (median reference error), ``SYS`` and ``SYS_UNCERTAINTY``
        (1σ, from the sampling error of the MAD-based width, ``1.166 s / sqrt(N)``), in the label's unit.
    """
    ref_ids = np.asarray(reference[id_column]).astype(str)
    pos = {r: i for i, r in enumerate(ref_ids)}
    fit_ids = np.asarray(fit[id_column]).astype(str)
    rows = np.array([pos.get(f, -1) for f in fit_ids], dtype=int)
    flags = np.asarray(fit["FLAG"], dtype=np.int64) if "FLAG" in fit.colnames else np.zeros(len(fit), np.int64)
    usable = (rows >= 0) & ((flags & EXCLUDE) == 0)
    out = []
    for name in label_names:
        x = np.asarray(fit[name], float)
        e = np.asarray(fit[name + error_suffix], float) if name + error_suffix in fit.colnames else \
            np.full(len(fit), np.nan)
        xr = np.full(len(fit), np.nan)
        er = np.zeros(len(fit))
        xr[rows >= 0] = np.asarray(reference[name], float)[rows[rows >= 0]]
        if name + error_suffix in reference.colnames:
            er[rows >= 0] = np.asarray(reference[name + error_suffix], float)[rows[rows >= 0]]
            if not np.isfinite(er[rows >= 0]).any():   # an empty error column: as if absent
                er[:] = 0.0
        ok = usable & np.isfinite(x) & np.isfinite(xr) & np.isfinite(e) & np.isfinite(er)
        d = x[ok] - xr[ok]
        n = int(ok.sum())
        if n < MIN_STARS:
            out.append((name, n, np.nan, np.nan, np.nan, np.nan, np.nan, np.nan))
            continue
        s = robust_sigma(d)
        med_e, med_r = float(np.median(e[ok])), float(np.median(er[ok]))
        sys = _solve_sys(d, e[ok] ** 2 + er[ok] ** 2, s)
        # d(sys)/d(s) = s / sys; at sys = 0 the bound is the scatter's own uncertainty
        ds = MAD_SIGMA_SE * s / np.sqrt(n)
        unc = float(s * ds / sys) if sys > ds else float(np.sqrt(2.0 * s * ds))
        out.append((name, n, float(np.median(d)), s, med_e, med_r, sys, unc))
    t = Table(rows=out, names=("LABEL", "N", "BIAS", "SCATTER", "MEDIAN_ERR", "REF_ERR", "SYS",
                               "SYS_UNCERTAINTY"),
              dtype=(str, int, float, float, float, float, float, float)) if out else Table()
    if len(t):
        t["SYS"].description = "systematic (model) error: robust std of (fit - ref)/sqrt(err^2 + ref_err^2 + SYS^2) = 1"
        t["SCATTER"].description = "1.4826 MAD of fitted - reference label, validation stars"
        t.meta["EXCLUDED_FLAGS"] = EXCLUDE
    return t


def total_error_columns(cat: Table, systematics: Table, error_suffix: str = "_ERR") -> Table:
    """``<LABEL>_ERR_TOT = hypot(<LABEL>_ERR, SYS)`` for every label of ``systematics`` that ``cat`` has.

    Labels whose ``SYS`` is NaN (too few validation stars) get NaN total errors: unknown, not zero.
    """
    out = Table()
    for row in systematics:
        name = str(row["LABEL"])
        if name + error_suffix not in cat.colnames:
            continue
        tot = np.hypot(np.asarray(cat[name + error_suffix], float), float(row["SYS"]))
        out[f"{name}_ERR_TOT"] = Column(tot, unit=LABEL_UNIT_STRINGS.get(name) or None,
                                        description=f"total error of {name}: formal error and the model's "
                                                    f"systematic error {float(row['SYS']):.4g} "
                                                    "(validation stars) in quadrature")
    return out
