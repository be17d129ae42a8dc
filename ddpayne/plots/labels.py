"""Figures of the labels in a catalogue (paper Figs. 5–8).

Each function takes a catalogue :class:`~astropy.table.Table` and returns a matplotlib ``Figure``;
rows with a nonzero ``FLAG`` bit in ``exclude`` are left out (default: failed fits and χ² outliers).
"""
from __future__ import annotations

import matplotlib

matplotlib.use("Agg", force=False)
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from astropy.table import Table  # noqa: E402

from ..flags import Flag  # noqa: E402
from ..labels import ABUNDANCE_LABELS, element_of  # noqa: E402
from ..fit.calibration import robust_sigma  # noqa: E402

DEFAULT_EXCLUDE = int(Flag.FIT_FAILED | Flag.CHI2_OUTLIER | Flag.ALL_MASKED | Flag.BAD_INPUT)


def _good(cat: Table, exclude: int = DEFAULT_EXCLUDE, *cols: str) -> np.ndarray:
    ok = np.ones(len(cat), bool)
    if "FLAG" in cat.colnames:
        ok &= (np.asarray(cat["FLAG"], dtype=np.int64) & exclude) == 0
    for c in cols:
        ok &= np.isfinite(np.asarray(cat[c], dtype=float))
    return ok


def _latex(label: str) -> str:
    if label == "TEFF":
        return r"$T_{\rm eff}$ [K]"
    if label == "LOGG":
        return r"$\log g$"
    if label == "FE_H":
        return "[Fe/H]"
    if label == "VMIC":
        return r"$v_{\rm mic}$ [km/s]"
    return f"[{element_of(label)}/Fe]"


def kiel_diagram(cat: Table, exclude: int = DEFAULT_EXCLUDE):
    """Fig. 5: the Kiel diagram (Teff–log g coloured by [Fe/H]) and Teff–[Fe/H]."""
    ok = _good(cat, exclude, "TEFF", "LOGG", "FE_H")
    fig, axes = plt.subplots(1, 2, figsize=(10, 4.2), constrained_layout=True)
    sc = axes[0].scatter(cat["TEFF"][ok], cat["LOGG"][ok], c=cat["FE_H"][ok], s=4, cmap="viridis",
                         vmin=-2.5, vmax=0.5)
    axes[0].invert_xaxis()
    axes[0].invert_yaxis()
    axes[0].set(xlabel=_latex("TEFF"), ylabel=_latex("LOGG"), title=f"{ok.sum()} stars")
    fig.colorbar(sc, ax=axes[0], label="[Fe/H]")
    axes[1].scatter(cat["TEFF"][ok], cat["FE_H"][ok], s=4, c="k", alpha=0.5)
    axes[1].invert_xaxis()
    axes[1].set(xlabel=_latex("TEFF"), ylabel="[Fe/H]")
    return fig


def compare_reference(cat: Table, reference: dict[str, str], exclude: int = DEFAULT_EXCLUDE):
    """Fig. 6: labels against a reference pipeline's, e.g. ``{"TEFF": "SP_TEFF", "FE_H": "SP_FEH"}``.

    Each panel shows the one-to-one line and prints the median offset and robust scatter.
    """
    labels = [lab for lab in reference if lab in cat.colnames and reference[lab] in cat.colnames]
    fig, axes = plt.subplots(1, max(len(labels), 1), figsize=(4.2 * max(len(labels), 1), 4),
                             constrained_layout=True, squeeze=False)
    for ax, lab in zip(axes[0], labels):
        ok = _good(cat, exclude, lab, reference[lab])
        x, y = np.asarray(cat[reference[lab]])[ok], np.asarray(cat[lab])[ok]
        ax.scatter(x, y, s=4, alpha=0.6)
        lo, hi = np.nanmin(np.r_[x, y]) if ok.any() else 0, np.nanmax(np.r_[x, y]) if ok.any() else 1
        ax.plot([lo, hi], [lo, hi], "r-", lw=1)
        d = y - x
        if d.size:
            ax.text(0.05, 0.92, f"offset {np.median(d):.3g}, σ {robust_sigma(d):.3g}",
                    transform=ax.transAxes)
        ax.set(xlabel=f"reference {reference[lab]}", ylabel=f"ddpayne {_latex(lab)}")
    return fig


def abundance_density(cat: Table, label: str = "MG_FE", exclude: int = DEFAULT_EXCLUDE, bins: int = 60,
                      min_column: int = 5):
    """Fig. 7: [X/Fe]–[Fe/H] as a density map and column-normalised (each [Fe/H] column sums to 1).

    Columns with fewer than ``min_column`` stars are left blank in the normalised panel: a column of one or
    two stars would otherwise be the darkest thing in it and hide the sequences.
    """
    ok = _good(cat, exclude, "FE_H", label)
    x, y = np.asarray(cat["FE_H"])[ok], np.asarray(cat[label])[ok]
    h, xe, ye = np.histogram2d(x, y, bins=bins, range=[[-3, 0.6], [-0.5, 0.8]])
    fig, axes = plt.subplots(1, 2, figsize=(10, 4), constrained_layout=True)
    axes[0].imshow(np.log10(h.T + 1), origin="lower", aspect="auto", extent=[xe[0], xe[-1], ye[0], ye[-1]],
                   cmap="Greys")
    n_col = h.sum(axis=1, keepdims=True)
    col = np.where(n_col >= min_column, h / np.maximum(n_col, 1), np.nan)
    axes[1].imshow(col.T, origin="lower", aspect="auto", extent=[xe[0], xe[-1], ye[0], ye[-1]], cmap="Greys")
    for ax, title in zip(axes, ("log density", "column-normalised")):
        ax.set(xlabel="[Fe/H]", ylabel=_latex(label), title=title)
    return fig


def abundance_panels(cat: Table, exclude: int = DEFAULT_EXCLUDE):
    """Fig. 8: every [X/Fe]–[Fe/H] panel, abundances below their [Fe/H] floor left out."""
    labels = [lab for lab in ABUNDANCE_LABELS if lab in cat.colnames]
    ncol = 4
    nrow = int(np.ceil(len(labels) / ncol)) or 1
    fig, axes = plt.subplots(nrow, ncol, figsize=(3.2 * ncol, 2.6 * nrow), constrained_layout=True,
                             squeeze=False)
    abund = np.asarray(cat["ABUND_FLAG"], dtype=np.int64) if "ABUND_FLAG" in cat.colnames else None
    for i, lab in enumerate(labels):
        ax = axes.flat[i]
        ok = _good(cat, exclude, "FE_H", lab)
        if abund is not None:
            ok &= (abund & (1 << ABUNDANCE_LABELS.index(lab))) == 0
        ax.scatter(np.asarray(cat["FE_H"])[ok], np.asarray(cat[lab])[ok], s=2, alpha=0.5)
        ax.set(xlabel="[Fe/H]", ylabel=_latex(lab))
    for ax in list(axes.flat)[len(labels):]:
        ax.set_visible(False)
    return fig
