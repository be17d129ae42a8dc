"""Where each label's information comes from: per-pixel Fisher information maps of a fitted spectrum.

For Gaussian per-pixel noise (inverse variance :math:`w_p`) and a model :math:`f_p(\\boldsymbol\\ell)` with
gradients :math:`G_{pk} = \\partial f_p/\\partial \\ell_k` (the emulator's exact Jacobian at the best fit, or
physical gradient spectra), the Fisher matrix is :math:`F = G^{\\rm T} W G` (:mod:`ddpayne.fit.cramer_rao`).
It is a sum over pixels, so each pixel's share of it can be mapped:

* **conditional** information, label :math:`k` measured with all other labels known:

  .. math:: I_{k}(\\lambda_p) = w_p\\, G_{pk}^2, \\qquad \\sum_p I_k(\\lambda_p) = F_{kk};

* **marginalised** information, label :math:`k` measured while all labels are fitted: with
  :math:`C = F^{-1}`, the part of :math:`\\partial f/\\partial\\ell_k` that no combination of the other
  labels' gradients can mimic (its :math:`W`-orthogonal projection) is
  :math:`r_{pk} = \\sum_j G_{pj} C_{jk} / C_{kk}`, and

  .. math:: I^{\\rm marg}_{k}(\\lambda_p) = w_p\\, r_{pk}^2, \\qquad
     \\sum_p I^{\\rm marg}_k(\\lambda_p) = 1/C_{kk} = 1/\\sigma_{\\rm CRB}(\\ell_k)^2 .

  Equivalently :math:`I^{\\rm marg}_k(\\lambda_p)\\,C_{kk}` is pixel :math:`p`'s share of the variance of the
  best (minimum-variance, linearised) estimate of :math:`\\ell_k`, whose weights are :math:`(C G^{\\rm T}W)_{kp}`.

A map is cut into **windows** (:func:`information_windows`): runs of pixels between minima of the map,
neighbours merged when the dip between them is shallow, never across masked pixels or grid gaps. Each window's
share of the label's information is the sum of the map over it divided by the total; its identification is
the strongest line of a line list in it (:mod:`ddpayne.physics.lines`, strength index
:math:`\\log\\varepsilon_\\odot + \\log gf - \\theta\\chi`). The **own-element fraction** of an abundance
label (``<X>_FE_OWN_FRAC``, :func:`own_element_fraction`) is the summed share of the windows where a line of
element X is among the window's lines that matter: its strength index within ``own_tolerance`` (3 dex) of the
window's strongest line. (The index ignores saturation, so a generous tolerance: a strong Mg I line next
to a low-excitation Fe I line ranks ~2 dex below it, yet both are deep.)
"""
from __future__ import annotations

import itertools
import logging
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from astropy.table import Table

log = logging.getLogger(__name__)

#: Default depth of the dip (relative to the smaller neighbouring peak) above which windows are merged.
MERGE_LEVEL = 0.3
#: Default tolerance (dex of strength index) for a window to count as a label's own element.
OWN_TOLERANCE = 3.0


def information_maps(gradients, ivar, fixed: Sequence[bool] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Per-pixel conditional and marginalised Fisher information of every label.

    Parameters
    ----------
    gradients : array (..., n_pix, n_label)
        ∂f/∂ℓ_k per physical label unit (emulator Jacobian or physical gradient spectra).
    ivar : array (..., n_pix)
        Inverse variance per pixel (0, negative or non-finite: no information).
    fixed : sequence of bool, optional
        Labels held fixed in the fit: no marginal map (NaN), and they are not marginalised over.

    Returns
    -------
    conditional, marginal : ndarray (..., n_pix, n_label)
        :math:`I_k(\\lambda)` and :math:`I^{\\rm marg}_k(\\lambda)` (module docstring), in 1/label-unit² per pixel.
    """
    from .cramer_rao import crb_covariance

    G = np.asarray(gradients, dtype=float)
    G = np.where(np.isfinite(G), G, 0.0)
    w = np.asarray(ivar, dtype=float)
    w = np.where(np.isfinite(w) & (w > 0), w, 0.0)
    cond = w[..., :, None] * G ** 2
    cov = crb_covariance(G, w, fixed)
    diag = np.einsum("...kk->...k", cov)
    with np.errstate(invalid="ignore", divide="ignore"):
        r = np.einsum("...pj,...jk->...pk", G, np.nan_to_num(cov)) / diag[..., None, :]
    marg = w[..., :, None] * r ** 2
    return cond, marg


def information_windows(wavelength, info, merge: float = MERGE_LEVEL, smooth: int = 3,
                        gap: float = 3.0) -> list[tuple[int, int]]:
    """Cut a 1-D information map into windows, one per feature.

    Parameters
    ----------
    wavelength : array (n_pix,)
    info : array (n_pix,)
        Non-negative information per pixel.
    merge : float
        Neighbouring windows are merged when the (smoothed) map at their boundary exceeds ``merge`` times
        the smaller of their peaks: one feature whose map dips a little is not split.
    smooth : int
        Width (pixels) of the running mean the minima are found on (1: none).
    gap : float
        A step in wavelength larger than ``gap`` times the median step is a grid gap: windows never span it.

    Returns
    -------
    list of (start, stop)
        Pixel index ranges (``stop`` exclusive) covering every pixel with information, in wavelength order.
    """
    from scipy.ndimage import uniform_filter1d

    wave = np.asarray(wavelength, dtype=float)
    x = np.nan_to_num(np.asarray(info, dtype=float), nan=0.0, posinf=0.0)
    x = np.clip(x, 0.0, None)
    n = x.size
    if n == 0 or not np.any(x > 0):
        return []
    s = uniform_filter1d(x, max(int(smooth), 1), mode="nearest") if smooth > 1 else x
    s = np.where(x > 0, s, 0.0)                     # masked pixels stay zero: they always separate
    # cut points: local minima of s (plateaus of zeros cut everywhere) and grid gaps
    cut = np.zeros(n + 1, bool)
    cut[0] = cut[n] = True
    interior = np.arange(1, n - 1)
    cut[interior] = (s[interior] <= s[interior - 1]) & (s[interior] <= s[interior + 1])
    cut[np.flatnonzero(s == 0)] = True
    dw = np.diff(wave)
    hard = np.zeros(n + 1, bool)
    if dw.size:
        big = np.flatnonzero(dw > gap * np.median(dw)) + 1
        cut[big] = hard[big] = True
    hard[np.flatnonzero(s == 0)] = True
    hard[np.flatnonzero(s == 0) + 1] = True
    edges = np.flatnonzero(cut)
    # merge across shallow dips: a cut between two segments goes when the map there exceeds ``merge`` times the
    # smaller of the two segments' peaks (never at a hard cut)
    peak = np.maximum.reduceat(s, edges[:-1]) if edges.size > 1 else np.zeros(0)
    inner = edges[1:-1]
    drop = ~hard[inner] & (s[np.minimum(inner, n - 1)] > merge * np.minimum(peak[:-1], peak[1:]))
    edges = np.r_[edges[0], inner[~drop], edges[-1]]
    wins = [(int(a), int(b)) for a, b in itertools.pairwise(edges) if b > a]
    return [(a, b) for a, b in wins if np.any(x[a:b] > 0)]


@dataclass
class FeatureIdentifier:
    """Names the strongest line-list line at each pixel of one wavelength grid.

    A line is given to the grid pixel nearest its vacuum wavelength (lines farther than one local pixel step
    from every pixel, e.g. in grid gaps, are dropped) with its strength index ``s``
    (:func:`ddpayne.physics.lines.line_strength`). A strong line (``s ≥ wing_strength``) also reaches the
    pixels around it, out to ``wing_reach`` Å, with ``s − 2 log10(d/δ)`` at distance ``d`` (δ the local pixel
    step): damping wings fall as 1/d², so Ca II H and K or the Balmer lines are named in their wings. Per
    pixel the strongest line is kept, and per element the strongest line of that element.

    Parameters
    ----------
    wavelength : array (n_pix,)
        Vacuum wavelength grid (Å).
    lines : Table
        A line list (:func:`ddpayne.physics.lines.load_line_list`).
    teff : float
        Effective temperature (K) of the strength index.
    wing_strength, wing_reach : float
        Strength index above which a line's wings are followed, and how far (Å).
    """

    wavelength: np.ndarray
    lines: Table
    teff: float = 5000.0
    wing_strength: float = 3.5
    wing_reach: float = 30.0

    def __post_init__(self):
        from ..physics.lines import line_strength

        w = np.asarray(self.wavelength, dtype=float)
        n = w.size
        step = np.diff(w)
        local = np.minimum(np.r_[step[:1], step], np.r_[step, step[-1:]]) if n > 1 else np.ones(n)
        lv = np.asarray(self.lines["WAVE_VAC"], float)
        strength = line_strength(self.lines, self.teff) if len(self.lines) else np.zeros(0)
        hi = np.clip(np.searchsorted(w, lv), 1, max(n - 1, 1))
        pix = np.where(np.abs(lv - w[hi - 1]) <= np.abs(lv - w[hi]), hi - 1, hi)
        ok = np.abs(lv - w[pix]) <= local[pix]
        rows, pixs, svals = [np.flatnonzero(ok)], [pix[ok]], [strength[ok]]
        for r in np.flatnonzero(strength >= self.wing_strength):      # the wings of strong lines
            a, b = np.searchsorted(w, [lv[r] - self.wing_reach, lv[r] + self.wing_reach])
            if b <= a:
                continue
            p = np.arange(a, b)
            d = np.maximum(np.abs(w[p] - lv[r]), local[p])
            rows.append(np.full(p.size, r))
            pixs.append(p)
            svals.append(strength[r] - 2.0 * np.log10(d / local[p]))
        self._rows = np.concatenate(rows)
        self._pix = np.concatenate(pixs)
        self._strength = np.concatenate(svals)
        self._codes = np.asarray(self.lines["SPECIES"], float)[self._rows]
        self.best_row, self.best_strength = self._per_pixel(np.ones(self._rows.size, bool))
        self._element_cache: dict[str, tuple[np.ndarray, np.ndarray]] = {}

    def _per_pixel(self, sel: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        n = np.asarray(self.wavelength).size
        row = np.full(n, -1)
        strength = np.full(n, -np.inf)
        idx = np.flatnonzero(sel)
        if idx.size:
            order = idx[np.lexsort((self._strength[idx], self._pix[idx]))]
            last = np.r_[self._pix[order][1:] != self._pix[order][:-1], True]
            top = order[last]
            row[self._pix[top]] = self._rows[top]
            strength[self._pix[top]] = self._strength[top]
        return row, strength

    def element(self, symbol: str) -> tuple[np.ndarray, np.ndarray]:
        """Per pixel: row (in :attr:`lines`) and strength index of the strongest line of element ``symbol``
        (-1 and -inf where none)."""
        from ..physics.lines import species_elements

        if symbol not in self._element_cache:
            uniq = np.unique(self._codes)
            mine = [c for c in uniq if symbol in species_elements(c)]
            self._element_cache[symbol] = self._per_pixel(np.isin(self._codes, mine))
        return self._element_cache[symbol]

    def strongest(self, start: int, stop: int) -> int:
        """Row (in :attr:`lines`) of the strongest line in pixels ``start:stop`` (-1 if none)."""
        s = self.best_strength[start:stop]
        if not s.size or not np.isfinite(s.max()):
            return -1
        return int(self.best_row[start + int(np.argmax(s))])

    def strong_lines(self, symbol: str, n: int = 30) -> Table:
        """The ``n`` strongest lines of element ``symbol`` on the grid, by wavelength."""
        row, strength = self.element(symbol)
        good = np.flatnonzero(np.isfinite(strength))
        keep = good[np.argsort(strength[good])[::-1][:n]]
        t = self.lines[row[keep]]
        t["STRENGTH"] = strength[keep]
        t.sort("WAVE_VAC")
        return t


def label_element(label: str) -> str | None:
    """The element whose lines measure ``label`` (``'MG_FE'`` -> ``'Mg'``, ``'FE_H'`` -> ``'Fe'``), else None."""
    from ..labels import element_of

    try:
        return element_of(label)
    except ValueError:
        return None


def _identifier(wavelength, lines, teff) -> FeatureIdentifier | None:
    if lines is None:
        return None
    if isinstance(lines, FeatureIdentifier):
        return lines
    return FeatureIdentifier(np.asarray(wavelength, float), lines, 5000.0 if teff is None else float(teff))


def information_table(wavelength, gradients, ivar, label_names: Sequence[str], lines=None,
                      teff: float | None = None, kind: str = "marginal", top: int | None = 10,
                      merge: float = MERGE_LEVEL, own_tolerance: float = OWN_TOLERANCE,
                      fixed: Sequence[bool] | None = None) -> Table:
    """The ranked "where label k comes from" table of one spectrum.

    Parameters
    ----------
    wavelength : array (n_pix,)
        Vacuum wavelength grid (Å).
    gradients : array (n_pix, n_label)
        ∂f/∂ℓ at the spectrum's labels (e.g. ``emulator.jacobian``).
    ivar : array (n_pix,)
        The spectrum's inverse variance.
    label_names : sequence of str
        Names of the gradient columns.
    lines : Table, FeatureIdentifier or None
        A line list (:func:`ddpayne.physics.lines.load_line_list`) to name the windows; None: unnamed.
    teff : float, optional
        Teff of the line strength index (default 5000 K).
    kind : {'marginal', 'conditional'}
        Which map the windows and shares are made of.
    top : int or None
        Windows kept per label (the largest shares); None: all.
    merge, own_tolerance : float
        See :func:`information_windows` and :func:`own_element_fraction`.
    fixed : sequence of bool, optional
        Labels held fixed (no marginal map).

    Returns
    -------
    astropy.table.Table
        One row per (label, window), by label and decreasing share: ``LABEL``, ``RANK``, ``WAVE_MIN``,
        ``WAVE_MAX``, ``WAVE_PEAK`` (Å, vacuum), ``SHARE`` (of the label's information), ``CUM_SHARE``,
        ``SHARE_OTHER`` (the other map's share in the same window), ``SPECIES``, ``LINE_WAVE_AIR``,
        ``LINE_WAVE_VAC`` (Å) and ``LINE_STRENGTH`` of the strongest line in the window, ``OWN_ELEMENT``
        (a line of the label's element is among the window's strong lines), ``OWN_SPECIES`` and
        ``OWN_WAVE_AIR`` (its strongest line of the label's element). ``meta['TOTAL_<LABEL>']``: the summed
        information (1/σ² in label units).
    """
    from ..physics.lines import species_name

    if kind not in ("marginal", "conditional"):
        raise ValueError(f"kind must be 'marginal' or 'conditional', not {kind!r}")
    wave = np.asarray(wavelength, dtype=float)
    cond, marg = information_maps(gradients, ivar, fixed)
    main, other = (marg, cond) if kind == "marginal" else (cond, marg)
    ident = _identifier(wave, lines, teff)
    rows: list[tuple] = []
    meta = {}
    for k, name in enumerate(label_names):
        m = main[:, k]
        total = float(np.nansum(m))
        meta[f"TOTAL_{name}"] = total
        if not total > 0:
            continue
        tot_other = float(np.nansum(other[:, k]))
        wins = information_windows(wave, m, merge=merge)
        shares = np.array([np.nansum(m[a:b]) for a, b in wins]) / total
        order = np.argsort(shares)[::-1][: top if top else None]
        elem = label_element(name)
        cum = 0.0
        for rank, j in enumerate(order, 1):
            a, b = wins[j]
            cum += shares[j]
            peak = a + int(np.nanargmax(m[a:b]))
            species, lair, lvac, lstr, own = "", np.nan, np.nan, np.nan, False
            own_species, own_air = "", np.nan
            if ident is not None:
                r = ident.strongest(a, b)
                if r >= 0:
                    species = species_name(ident.lines["SPECIES"][r])
                    lair, lvac = float(ident.lines["WAVE_AIR"][r]), float(ident.lines["WAVE_VAC"][r])
                    lstr = float(ident.best_strength[a:b].max())
                    if elem is not None:
                        erow, est = ident.element(elem)
                        i = a + int(np.argmax(est[a:b]))
                        if np.isfinite(est[i]):
                            own = bool(est[i] >= lstr - own_tolerance)
                            own_species = species_name(ident.lines["SPECIES"][erow[i]])
                            own_air = float(ident.lines["WAVE_AIR"][erow[i]])
            so = float(np.nansum(other[a:b, k]) / tot_other) if tot_other > 0 else np.nan
            rows.append((name, rank, wave[a], wave[b - 1], wave[peak], shares[j], cum, so, species, lair, lvac,
                         lstr, own, own_species, own_air))
    names = ("LABEL", "RANK", "WAVE_MIN", "WAVE_MAX", "WAVE_PEAK", "SHARE", "CUM_SHARE", "SHARE_OTHER", "SPECIES",
             "LINE_WAVE_AIR", "LINE_WAVE_VAC", "LINE_STRENGTH", "OWN_ELEMENT", "OWN_SPECIES", "OWN_WAVE_AIR")
    dtypes = (str, int, float, float, float, float, float, float, str, float, float, float, bool, str, float)
    t = Table(rows=rows, names=names, dtype=dtypes) if rows else Table(names=names, dtype=dtypes)
    for c in ("WAVE_MIN", "WAVE_MAX", "WAVE_PEAK", "LINE_WAVE_AIR", "LINE_WAVE_VAC", "OWN_WAVE_AIR"):
        t[c].unit = "Angstrom"
    t.meta.update(meta)
    t.meta["MAP"] = kind
    return t


def own_element_fraction(wavelength, gradients, ivar, label_names: Sequence[str], lines, teff: float | None = None,
                         kind: str = "marginal", merge: float = MERGE_LEVEL, own_tolerance: float = OWN_TOLERANCE,
                         fixed: Sequence[bool] | None = None) -> dict[str, float]:
    """Share of each abundance label's information that comes from lines of its own element.

    The windows of the label's map (:func:`information_windows`) in which a line of the element has a
    strength index within ``own_tolerance`` dex of the window's strongest line are the element's own; their
    summed share is the fraction. Labels that are not abundances (TEFF, LOGG, VMIC) are left out.

    Parameters
    ----------
    wavelength, gradients, ivar, label_names, teff, kind, merge, fixed
        As :func:`information_table`.
    lines : Table or FeatureIdentifier
        The line list.
    own_tolerance : float
        dex.

    Returns
    -------
    dict
        ``{label: fraction}`` (NaN where the label has no information).
    """
    wave = np.asarray(wavelength, dtype=float)
    cond, marg = information_maps(gradients, ivar, fixed)
    maps = marg if kind == "marginal" else cond
    ident = _identifier(wave, lines, teff)
    out: dict[str, float] = {}
    for k, name in enumerate(label_names):
        elem = label_element(name)
        if elem is None:
            continue
        m = np.nan_to_num(maps[:, k])
        total = m.sum()
        if not total > 0:
            out[name] = np.nan
            continue
        _, est = ident.element(elem)
        wins = np.array(information_windows(wave, m, merge=merge), dtype=int).reshape(-1, 2)
        # per window (pixels between consecutive starts; the gaps between windows hold no information)
        starts = wins[:, 0]
        inside = np.zeros(m.size, bool)
        inside[_ranges(wins)] = True
        best = np.maximum.reduceat(np.where(inside, ident.best_strength, -np.inf), starts)
        mine = np.maximum.reduceat(np.where(inside, est, -np.inf), starts)
        info = np.add.reduceat(m, starts)
        own = np.isfinite(best) & (mine >= best - own_tolerance)
        out[name] = float(info[own].sum() / total)
    return out


def _ranges(wins: np.ndarray) -> np.ndarray:
    """Indices of the pixels in windows ``(start, stop)``."""
    return np.concatenate([np.arange(a, b) for a, b in wins]) if len(wins) else np.zeros(0, int)


def emulator_gradients(emulator, labels) -> np.ndarray:
    """The emulator's exact Jacobian ∂f/∂ℓ at ``labels`` (``(n_label,)`` or ``(n, n_label)``), as numpy."""
    import torch

    arr = np.atleast_2d(np.asarray(labels, dtype=float))
    with torch.no_grad():
        _, jac = emulator.jacobian(torch.as_tensor(arr, dtype=emulator.dtype, device=emulator.device))
    jac = jac.detach().cpu().numpy().astype(float)
    return jac[0] if np.ndim(labels) == 1 else jac


def own_fraction_columns(emulator, labels, ivar, lines, teff=None, chunk: int = 64, **options) -> Table:
    """``<LABEL>_OWN_FRAC`` columns (e.g. ``MG_FE_OWN_FRAC``) for many spectra, from the emulator's Jacobian.

    Parameters
    ----------
    emulator : ddpayne.model.emulator.Emulator
    labels : array (n, n_label)
        Fitted labels (rows with non-finite labels give NaN).
    ivar : array (n, n_pix)
        Inverse variances on the emulator's grid.
    lines : Table
        Line list.
    teff : array (n,), optional
        Teff of each spectrum's strength index (rounded to 250 K); default the TEFF label if fitted, else 5000 K.
    chunk : int
        Spectra per Jacobian evaluation.
    **options
        Passed to :func:`own_element_fraction`.
    """
    names = list(emulator.label_names)
    labels = np.atleast_2d(np.asarray(labels, float))
    ivar = np.atleast_2d(np.asarray(ivar, float))
    n = len(labels)
    if teff is None:
        teff = labels[:, names.index("TEFF")] if "TEFF" in names else np.full(n, 5000.0)
    teff = np.where(np.isfinite(teff), np.clip(np.round(np.asarray(teff, float) / 250.0) * 250.0, 3000, 9000),
                    5000.0)
    wave = np.asarray(emulator.wavelength, float)
    idents: dict[float, FeatureIdentifier] = {}
    abund = [nm for nm in names if label_element(nm) is not None]
    out = {nm: np.full(n, np.nan) for nm in abund}
    good = np.all(np.isfinite(labels), axis=1)
    for start in range(0, n, chunk):
        rows = np.arange(start, min(start + chunk, n))
        rows = rows[good[rows]]
        if not rows.size:
            continue
        jac = np.atleast_3d(emulator_gradients(emulator, labels[rows]))
        for i, r in enumerate(rows):
            t = float(teff[r])
            if t not in idents:
                idents[t] = FeatureIdentifier(wave, lines, t)
            frac = own_element_fraction(wave, jac[i], ivar[r], names, idents[t], **options)
            for nm, v in frac.items():
                out[nm][r] = v
    table = Table()
    for nm in abund:
        table[f"{nm}_OWN_FRAC"] = out[nm]
        table[f"{nm}_OWN_FRAC"].description = (f"share of {nm}'s marginalised Fisher information in windows of "
                                               f"{label_element(nm)} lines (docs/inspect.rst)")
    return table


def catalogue_own_fractions(emulator, stars: Table, prepared_files: Sequence, line_list=None,
                            **options) -> Table | None:
    """``<LABEL>_OWN_FRAC`` columns of a whole catalogue, prepared file by prepared file (memory flat).

    The pipeline's catalogue stage calls this when ``[output] own_fraction = true``.

    Parameters
    ----------
    emulator : ddpayne.model.emulator.Emulator
    stars : Table
        One row per spectrum with the fitted labels, in the order of the prepared files' spectra.
    prepared_files : sequence of path
        The prepared-spectra files (:class:`ddpayne.io.batch.SpectrumBatch`).
    line_list : None, str, path or Table
        :func:`ddpayne.physics.lines.load_line_list` (default: the installed line-list plugin).

    Returns
    -------
    Table or None
        None (and a log line) when no line list is available.
    """
    from ..io.batch import SpectrumBatch
    from ..physics.lines import load_line_list

    try:
        lines = load_line_list(line_list)
    except Exception as exc:  # noqa: BLE001 -- an optional column: the catalogue is written without it
        log.warning("no own-element fractions: the line list could not be loaded (%s: %s)", type(exc).__name__, exc)
        return None
    if lines is None:
        log.warning("no own-element fractions: no line-list plugin is installed")
        return None
    names = list(emulator.label_names)
    labels = np.column_stack([np.asarray(stars[n], float) for n in names])
    parts, start = [], 0
    for path in prepared_files:
        batch = SpectrumBatch.read(path)
        rows = slice(start, start + len(batch))
        parts.append(own_fraction_columns(emulator, labels[rows], batch.ivar, lines, **options))
        start = rows.stop
    if start != len(stars):
        raise ValueError(f"{start} prepared spectra for {len(stars)} catalogue rows")
    from astropy.table import vstack

    return vstack(parts) if parts else None


__all__ = [
    "FeatureIdentifier",
    "catalogue_own_fractions",
    "emulator_gradients",
    "information_maps",
    "information_table",
    "information_windows",
    "label_element",
    "own_element_fraction",
    "own_fraction_columns",
]
