"""Measured label precision against the Cramér–Rao bound (paper Fig. 9)."""
from __future__ import annotations

import numpy as np


def plot_precision_vs_crb(report, ax=None, title: str | None = None, factor_lines=(1.0, 2.0)):
    """Bar-and-marker figure of precision per label, as in Zhang et al. (2024) Fig. 9.

    Parameters
    ----------
    report : astropy.table.Table
        From :func:`ddpayne.fit.cramer_rao.precision_report` (columns ``LABEL``, ``UNIT``, ``CRB``,
        ``SCATTER``, ``FORMAL_ERR``, ``REPEAT_PREC``; NaN columns are not drawn).
    ax : matplotlib Axes, optional
    title : str, optional
    factor_lines : sequence of float
        Draw ``k × CRB`` guide markers for each ``k`` (the paper compares with 1× and 2×).

    Returns
    -------
    matplotlib.figure.Figure

    Notes
    -----
    Teff (K) and VMIC (km/s) are divided by 100 and 1 respectively so that every label shares one
    logarithmic axis in dex-like units; the tick labels say so.
    """
    import matplotlib.pyplot as plt

    labels = [str(x) for x in report["LABEL"]]
    scale = np.array([100.0 if name == "TEFF" else 1.0 for name in labels])
    tick = [("TEFF/100" if name == "TEFF" else name) for name in labels]
    if ax is None:
        fig, ax = plt.subplots(figsize=(max(6.0, 0.55 * len(labels) + 2), 4.0))
    else:
        fig = ax.figure
    x = np.arange(len(labels))
    crb = np.asarray(report["CRB"], float) / scale
    ax.bar(x, crb, width=0.6, color="0.85", edgecolor="0.4", label="Cramér–Rao bound")
    styles = {"SCATTER": ("o", "C0", "scatter (noise realisations)"),
              "REPEAT_PREC": ("s", "C1", "repeat observations"),
              "FORMAL_ERR": ("_", "C3", "median formal error")}
    for col, (marker, color, lab) in styles.items():
        if col in report.colnames:
            v = np.asarray(report[col], float) / scale
            if np.any(np.isfinite(v)):
                ax.plot(x, v, ls="none", marker=marker, color=color, ms=8 if marker != "_" else 14,
                        mew=2, label=lab)
    for k in factor_lines:
        if k != 1.0:
            ax.plot(x, k * crb, ls="none", marker="_", color="0.3", ms=12, label=f"{k:g}× bound")
    ax.set_xticks(x)
    ax.set_xticklabels(tick, rotation=60, ha="right")
    ax.set_yscale("log")
    ax.set_ylabel("precision (dex; K/100; km/s)")
    meta = getattr(report, "meta", {}) or {}
    if title is None and "SNR" in meta:
        title = f"precision vs Cramér–Rao bound, S/N = {meta['SNR']:g}"
    if title:
        ax.set_title(title)
    ax.legend(fontsize=8, loc="best")
    fig.tight_layout()
    return fig
