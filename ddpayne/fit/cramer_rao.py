"""Cramér–Rao bounds on the labels and the precision-vs-bound report (paper Fig. 9).

Following Sandford et al. (2020, ApJS 249, 24), the Fisher information of a spectrum with Gaussian
per-pixel noise is ``F = Gᵀ Σ⁻¹ G`` with ``G`` the gradient spectra (pixels × labels, ∂f/∂ℓ in physical
units) and ``Σ = diag(σ²)`` (``Σ⁻¹ = diag(ivar)``); the bound on the covariance of any unbiased estimator
is ``F⁻¹`` and the per-label bound is ``sqrt(diag(F⁻¹))``. Two sources of ``G``:

* the emulator Jacobian at a spectrum's solution (:func:`crb_from_emulator`) — the bound the fitted
  model itself implies, equal to the formal error of a converged fit;
* the physical gradient spectra of a :class:`ddpayne.physics.gradients.GradientSpectra` file at any
  reference point and S/N (:func:`crb_from_gradients`) — the bound set by stellar physics; for many
  spectra at once, each with its own noise, at its nearest reference point: :func:`crb_per_spectrum`.

Measured precision comes from noise realisations of mock spectra (:func:`precision_from_realisations`)
or from repeat observations of the same target (:func:`precision_from_repeats`);
:func:`precision_report` puts measured precision, formal errors and the bound side by side per label.
"""
from __future__ import annotations

import logging
from collections.abc import Sequence

import numpy as np
from astropy.table import Table

from ..labels import LABEL_UNIT_STRINGS
from .calibration import robust_sigma

log = logging.getLogger(__name__)


def fisher_matrix(gradients, ivar) -> np.ndarray:
    """``F = Gᵀ diag(ivar) G``.

    Parameters
    ----------
    gradients : array (..., n_pix, n_label)
        ∂f/∂ℓ per physical unit.
    ivar : array (..., n_pix)
        Inverse variance per pixel (0 for bad or masked pixels).

    Returns
    -------
    ndarray (..., n_label, n_label)
    """
    G = np.asarray(gradients, dtype=float)
    w = np.asarray(ivar, dtype=float)
    G = np.where(np.isfinite(G), G, 0.0)
    w = np.where(np.isfinite(w) & (w > 0), w, 0.0)
    return np.einsum("...pi,...p,...pj->...ij", G, w, G)


def _invert(F: np.ndarray) -> np.ndarray:
    """Inverse of (a stack of) symmetric matrices, scaled for conditioning; pinv when singular."""
    d = np.sqrt(np.abs(np.einsum("...ii->...i", F)))
    d = np.where(d > 0, d, 1.0)
    Fs = F / (d[..., :, None] * d[..., None, :])
    try:
        inv = np.linalg.inv(Fs)
    except np.linalg.LinAlgError:
        inv = np.linalg.pinv(Fs, hermitian=True)
    return inv / (d[..., :, None] * d[..., None, :])


def crb_covariance(gradients, ivar, fixed: Sequence[bool] | None = None) -> np.ndarray:
    """The Cramér–Rao covariance bound ``F⁻¹`` (labels in ``fixed`` known exactly: rows/cols NaN)."""
    F = fisher_matrix(gradients, ivar)
    L = F.shape[-1]
    free = np.ones(L, bool) if fixed is None else ~np.asarray(fixed, dtype=bool)
    cov = np.full(F.shape, np.nan)
    sub = F[..., free, :][..., :, free]
    inv = _invert(sub)
    idx = np.flatnonzero(free)
    cov[..., idx[:, None], idx[None, :]] = inv
    return cov


def cramer_rao_bound(gradients, ivar, fixed: Sequence[bool] | None = None) -> np.ndarray:
    """Per-label bound ``sqrt(diag(F⁻¹))``, shape (..., n_label)."""
    cov = crb_covariance(gradients, ivar, fixed)
    with np.errstate(invalid="ignore"):
        return np.sqrt(np.einsum("...ii->...i", cov))


def crb_from_emulator(emulator, labels, ivar, fixed: Sequence[bool] | None = None) -> np.ndarray:
    """Bounds from the emulator's Jacobian at ``labels`` and the spectra's ``ivar``.

    Parameters
    ----------
    emulator : Emulator
    labels : array (n, n_label) or (n_label,)
        Physical labels (e.g. the fitted ones, or the truth of a mock).
    ivar : array (n, n_pix) or (n_pix,)
        Inverse variance of each spectrum (0 = bad pixel); a single row is broadcast.
    fixed : array of bool, optional

    Returns
    -------
    ndarray (n, n_label)
    """
    import torch

    lab = np.atleast_2d(np.asarray(labels, dtype=float))
    with torch.no_grad():
        _, J = emulator.jacobian(torch.as_tensor(lab, dtype=emulator.dtype, device=emulator.device))
    J = J.detach().cpu().numpy().astype(float)
    w = np.asarray(ivar, dtype=float)
    w = np.broadcast_to(np.atleast_2d(w), (len(lab), J.shape[1]))
    return cramer_rao_bound(J, w, fixed)


def crb_from_gradients(gradient_spectra, labels=None, snr: float = 100.0, ref=None, ivar=None,
                       label_names: Sequence[str] | None = None, use_flux: bool = True) -> Table:
    """Bounds from physical gradient spectra at a reference point and S/N (Sandford et al. 2020).

    Parameters
    ----------
    gradient_spectra : GradientSpectra
        Any object with ``label_names``, ``ref_labels`` (n_ref, n_label), ``gradients``
        (n_ref, n_label, n_pix), ``base_flux`` (n_ref, n_pix) and ``mask`` (n_pix,), e.g. a
        :class:`ddpayne.physics.gradients.GradientSpectra`.
    labels : mapping or array, optional
        The label point; the nearest reference point (in labels scaled by the reference-point spread)
        is used. Give ``ref`` (an index) instead to pick one directly.
    snr : float
        Per-pixel S/N of the continuum; σ = sqrt(f)/snr when ``use_flux`` (photon noise: the variance
        scales with the counts, so line cores are less noisy in absolute terms) else 1/snr.
    ivar : array (n_pix,), optional
        Explicit inverse variance (overrides ``snr``).
    label_names : sequence of str, optional
        Restrict to these labels (others are marginalised out by dropping them: the bound assumes only
        these labels are fitted).
    use_flux : bool

    Returns
    -------
    Table
        One row per label: ``LABEL``, ``CRB`` (with the label's unit), plus meta ``REF`` and ``SNR``.
    """
    gs = gradient_spectra
    names = list(gs.label_names)
    refs = np.asarray(gs.ref_labels, dtype=float)
    if ref is None:
        if labels is None:
            raise ValueError("give either labels or ref")
        if isinstance(labels, dict):
            point = np.array([labels.get(n, np.nan) for n in names], dtype=float)
        else:
            point = np.asarray(labels, dtype=float)
        spread = np.nanstd(refs, axis=0)
        spread = np.where(spread > 0, spread, 1.0)
        use = np.isfinite(point)
        d = np.sqrt((((refs[:, use] - point[use]) / spread[use]) ** 2).sum(axis=1))
        ref = int(np.argmin(d))
    G = np.asarray(gs.gradients[ref], dtype=float).T                  # (n_pix, n_label)
    if ivar is None:
        f = np.asarray(gs.base_flux[ref], dtype=float) if use_flux else np.ones(G.shape[0])
        sigma = np.sqrt(np.clip(f, 1e-3, None)) / float(snr)
        ivar = 1.0 / sigma ** 2
    ivar = np.where(np.asarray(gs.mask, bool), 0.0, np.asarray(ivar, dtype=float))
    if label_names is not None:
        cols = [names.index(n) for n in label_names]
        G, names = G[:, cols], list(label_names)
    crb = cramer_rao_bound(G, ivar)
    t = Table({"LABEL": names, "CRB": crb})
    t.meta.update(REF=ref, SNR=float(snr), REFLAB=[float(v) for v in refs[ref]])
    return t


def nearest_reference(gradient_spectra, labels, label_names: Sequence[str]) -> np.ndarray:
    """Index of the nearest reference point of each label row (labels scaled by the points' spread).

    Parameters
    ----------
    gradient_spectra : GradientSpectra
    labels : array (n, len(label_names))
        Physical labels; NaN entries are ignored in the distance (all-NaN rows get index -1).
    label_names : sequence of str
        Names of the columns of ``labels`` (any subset of the product's labels).
    """
    gs = gradient_spectra
    cols = [list(gs.label_names).index(n) for n in label_names]
    refs = np.asarray(gs.ref_labels, dtype=float)[:, cols]
    spread = np.nanstd(refs, axis=0)
    spread = np.where(spread > 0, spread, 1.0)
    x = np.atleast_2d(np.asarray(labels, dtype=float))
    z = (x[:, None, :] - refs[None]) / spread
    d2 = np.where(np.isfinite(z), z ** 2, 0.0).sum(axis=2)
    out = np.argmin(d2, axis=1)
    return np.where(np.all(~np.isfinite(x), axis=1), -1, out)


def crb_per_spectrum(gradient_spectra, labels, ivar, label_names: Sequence[str],
                     chunk: int = 2048) -> tuple[np.ndarray, np.ndarray]:
    """Physical Cramér–Rao bound of every spectrum: its own noise, the physics of its nearest reference point.

    For spectrum ``n`` with inverse variance ``ivar[n]`` and (fitted) labels ``labels[n]``, the gradient
    spectra ``G`` of the nearest reference point of ``gradient_spectra`` give ``F = Gᵀ diag(ivar) G``
    restricted to ``label_names`` (the labels that are fitted; the others are held fixed), and the bound
    ``sqrt(diag(F⁻¹))``. Pixels masked in the product (hydrogen lines) carry no information.

    Parameters
    ----------
    gradient_spectra : GradientSpectra
        On the same wavelength grid as ``ivar``.
    labels : array (n, len(label_names))
    ivar : array (n, n_pix)
    label_names : sequence of str
    chunk : int
        Spectra per einsum (memory: chunk × n_pix × n_label floats).

    Returns
    -------
    crb : ndarray (n, len(label_names))
        NaN for rows with no finite label or no usable pixel.
    ref : ndarray of int (n,)
        The reference point used (-1: none).
    """
    gs = gradient_spectra
    w = np.asarray(ivar, dtype=float)
    n_pix = np.shape(gs.gradients)[-1]
    if w.ndim != 2 or w.shape[1] != n_pix:
        raise ValueError(f"ivar has shape {w.shape}; the gradient spectra have {n_pix} pixels: match the "
                         "product to the spectra's grid first")
    names = list(gs.label_names)
    cols = [names.index(n) for n in label_names]
    ref = nearest_reference(gs, labels, label_names)
    keep = ~np.asarray(gs.mask, bool)
    w = np.where(np.isfinite(w) & (w > 0), w, 0.0) * keep
    out = np.full((w.shape[0], len(cols)), np.nan)
    for r in np.unique(ref[ref >= 0]):
        G = np.asarray(gs.gradients[r], dtype=float)[cols]            # (n_label, n_pix)
        G = np.where(np.isfinite(G), G, 0.0)
        rows = np.flatnonzero(ref == r)
        for a in range(0, rows.size, chunk):
            idx = rows[a:a + chunk]
            F = np.einsum("ip,np,jp->nij", G, w[idx], G, optimize=True)
            good = np.einsum("nii->n", F) > 0
            if good.any():
                cov = _invert(F[good])
                out[idx[good]] = np.sqrt(np.clip(np.einsum("nii->ni", cov), 0, None))
    return out, ref


def precision_from_realisations(fitted, truth=None, robust: bool = True) -> np.ndarray:
    """Scatter of fits to noise realisations of the same spectrum, per label.

    Parameters
    ----------
    fitted : array (n_real, n_label)
    truth : array (n_label,), optional
        Unused for the scatter (kept for symmetry with bias reports).
    robust : bool
        1.4826 × median absolute deviation (default) instead of the standard deviation.
    """
    x = np.asarray(fitted, dtype=float)
    if robust:
        return robust_sigma(x, axis=0)
    return np.nanstd(x, axis=0, ddof=1)


def repeat_pairs(ids) -> tuple[np.ndarray, np.ndarray]:
    """Row indices ``(a, b)`` of non-overlapping pairs of spectra of the same target.

    Rows are grouped by id (stable order); within a group, consecutive spectra are paired (a third
    spectrum of a target is paired with a fourth, and so on).
    """
    ids = np.asarray(ids)
    order = np.argsort(ids, kind="stable")
    same = ids[order][1:] == ids[order][:-1]
    first = []
    i = 0
    while i < len(order) - 1:
        if same[i]:
            first.append(i)
            i += 2
        else:
            i += 1
    first = np.array(first, int)
    return order[first], order[first + 1]


def precision_from_repeats(table: Table, label_names: Sequence[str], id_column: str = "TARGETID",
                           robust: bool = True) -> tuple[np.ndarray, int]:
    """Per-label precision from repeat observations of the same target.

    For every target with ≥ 2 good spectra, consecutive pairs give ``Δ = ℓ_a − ℓ_b``; the precision of
    one measurement is ``scatter(Δ)/√2``.

    Returns
    -------
    precision : ndarray (n_label,)
    n_pairs : int
    """
    ids = np.asarray(table[id_column])
    lab = np.column_stack([np.asarray(table[n], dtype=float) for n in label_names])
    a, b = repeat_pairs(ids)
    if not a.size:
        return np.full(len(label_names), np.nan), 0
    d = lab[a] - lab[b]
    if robust:
        s = robust_sigma(d, axis=0)
    else:
        s = np.nanstd(d, axis=0, ddof=1)
    return s / np.sqrt(2.0), len(a)


def precision_report(label_names: Sequence[str], crb, scatter=None, formal=None, repeats=None,
                     meta: dict | None = None) -> Table:
    """Measured precision vs the Cramér–Rao bound, label by label (the content of paper Fig. 9).

    Parameters
    ----------
    label_names : sequence of str
    crb : array (n_label,)
        Cramér–Rao bound.
    scatter : array (n_label,), optional
        Precision from noise realisations.
    formal : array (n_label,), optional
        Median formal error of the fits.
    repeats : array (n_label,), optional
        Precision from repeat observations.

    Returns
    -------
    Table
        ``LABEL``, ``UNIT``, ``CRB``, ``SCATTER``, ``FORMAL_ERR``, ``REPEAT_PREC`` and the ratios
        ``SCATTER_OVER_CRB``, ``FORMAL_OVER_SCATTER``, ``REPEAT_OVER_CRB`` (NaN where not given).
    """
    n = len(label_names)

    def arr(v):
        return np.full(n, np.nan) if v is None else np.asarray(v, dtype=float)

    crb, scatter, formal, repeats = arr(crb), arr(scatter), arr(formal), arr(repeats)
    t = Table(meta=dict(meta or {}))
    t["LABEL"] = list(label_names)
    t["UNIT"] = [LABEL_UNIT_STRINGS.get(x, "") for x in label_names]
    t["CRB"] = crb
    t["SCATTER"] = scatter
    t["FORMAL_ERR"] = formal
    t["REPEAT_PREC"] = repeats
    with np.errstate(invalid="ignore", divide="ignore"):
        t["SCATTER_OVER_CRB"] = scatter / crb
        t["FORMAL_OVER_SCATTER"] = formal / scatter
        t["REPEAT_OVER_CRB"] = repeats / crb
    return t


def catalogue_precision_report(cat: Table, label_names: Sequence[str] | None = None,
                               id_column: str = "TARGETID") -> Table | None:
    """Precision vs physical bound from a catalogue (paper Fig. 9 for a survey): repeats, errors, ``*_CRB``.

    Needs ``<LABEL>_CRB`` columns (the pipeline writes them). For every target observed twice or more,
    consecutive pairs of spectra give ``z = (ℓ_a − ℓ_b) / sqrt(CRB_a² + CRB_b²)``; the robust scatter of
    ``z`` is the measured precision in units of the bound (``REPEAT_OVER_CRB``: 1 = at the bound), which is
    independent of the pairs' different S/N. ``CRB`` is the median bound of the paired spectra,
    ``REPEAT_PREC = REPEAT_OVER_CRB × CRB`` the precision of a typical paired spectrum, and ``FORMAL_ERR``
    the median formal error of the same spectra. ``REPEAT_OVER_ERR`` is the robust scatter of
    ``(ℓ_a − ℓ_b) / sqrt(ERR_a² + ERR_b²)``: 1 when the formal errors describe the repeat scatter. Without
    repeats, every spectrum is used for ``CRB`` and ``FORMAL_ERR`` and the repeat columns are NaN.

    Returns
    -------
    Table or None
        As :func:`precision_report` (meta ``N_PAIRS``); None when the catalogue has no ``*_CRB`` column.
    """
    names = [n for n in (label_names or [c[:-4] for c in cat.colnames if c.endswith("_CRB")])
             if f"{n}_CRB" in cat.colnames and n in cat.colnames]
    if not names:
        return None
    ids = np.asarray(cat[id_column]) if id_column in cat.colnames else np.arange(len(cat))
    a, b = repeat_pairs(ids)
    from ..flags import Flag

    bad = np.zeros(len(cat), bool)
    if "FLAG" in cat.colnames:
        bad |= (np.asarray(cat["FLAG"], np.int64) & int(Flag.FIT_FAILED | Flag.ALL_MASKED | Flag.BAD_INPUT)) != 0
    order_labels = list(cat.meta.get("LABELS", []))
    bmask = np.asarray(cat["BOUND_MASK"], np.int64) if "BOUND_MASK" in cat.colnames else None
    use = np.concatenate([a, b]) if a.size else np.arange(len(cat))   # spectra the medians are taken over
    crb_all, formal, ratio, ratio_err = [], [], [], []
    for n in names:
        excl = bad.copy()
        if bmask is not None and n in order_labels:
            excl |= (bmask >> order_labels.index(n)) & 1 == 1
        val = np.asarray(cat[n], float)
        bound = np.asarray(cat[f"{n}_CRB"], float)
        err = np.asarray(cat[f"{n}_ERR"], float) if f"{n}_ERR" in cat.colnames else np.full(len(cat), np.nan)
        crb_all.append(np.nanmedian(bound[use]) if np.isfinite(bound[use]).any() else np.nan)
        formal.append(np.nanmedian(err[use]) if np.isfinite(err[use]).any() else np.nan)
        for scale, out in ((bound, ratio), (err, ratio_err)):
            if a.size:
                z = (val[a] - val[b]) / np.hypot(scale[a], scale[b])
                z = z[np.isfinite(z) & ~excl[a] & ~excl[b]]
                out.append(robust_sigma(z) if z.size >= 3 else np.nan)
            else:
                out.append(np.nan)
    crb_all, ratio = np.array(crb_all), np.array(ratio)
    rep = precision_report(names, crb_all, formal=np.array(formal), repeats=ratio * crb_all,
                           meta={"N_PAIRS": int(a.size), "SOURCE": "catalogue repeats"})
    rep["REPEAT_OVER_CRB"] = ratio  # per-pair normalised (exact), not the ratio of medians
    # the same with each pair's formal errors: 1 when the formal errors describe the repeat scatter
    rep["REPEAT_OVER_ERR"] = np.array(ratio_err)
    return rep


def noise_realisation_report(fitter, emulator, truth, snr: float = 100.0, n_real: int = 200, seed: int = 0,
                             fixed=None, robust: bool = False) -> tuple[Table, Table]:
    """Fit ``n_real`` noise realisations of the emulator spectrum at ``truth`` and compare to the bound.

    Returns
    -------
    report : Table
        From :func:`precision_report` (CRB from the emulator Jacobian at the truth and ivar = snr²).
    fits : Table
        The fit results.
    """
    from .testing import mock_batch

    truth = np.asarray(truth, dtype=float)
    batch = mock_batch(emulator, np.repeat(truth[None], n_real, axis=0), snr=snr, seed=seed)
    fits = fitter.fit(emulator, batch, fixed=fixed)
    names = list(emulator.label_names)
    fixed_mask = np.zeros(len(names), bool)
    for k in (fixed or {}):
        fixed_mask[names.index(k)] = True
    crb = crb_from_emulator(emulator, truth, batch.ivar[0], fixed_mask)[0]
    lab = np.column_stack([np.asarray(fits[n], float) for n in names])
    scatter = precision_from_realisations(lab, robust=robust)
    formal = np.array([np.nanmedian(np.asarray(fits[f"{n}_ERR"], float)) for n in names])
    report = precision_report(names, crb, scatter, formal,
                              meta={"SNR": snr, "N_REAL": n_real, "TRUTH": truth.tolist()})
    return report, fits
