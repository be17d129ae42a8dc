"""Figures of the training: loss curves (paper Fig. 3) and model-vs-physics gradient spectra (Fig. 4).

Both functions return a :class:`matplotlib.figure.Figure` built without pyplot (Agg canvas, no global
state), ready for ``fig.savefig(...)``.
"""
from __future__ import annotations

import numpy as np
from astropy.table import Table
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from ..labels import element_of


def _new_figure(figsize) -> Figure:
    fig = Figure(figsize=figsize, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def _label_text(label: str) -> str:
    if label == "TEFF":
        return r"$T_{\rm eff}$ (per 100 K)"
    if label == "LOGG":
        return r"$\log g$"
    if label == "VMIC":
        return r"$v_{\rm mic}$"
    if label == "FE_H":
        return "[Fe/H]"
    return f"[{element_of(label)}/Fe]"


def plot_loss_history(history: Table, ax=None, title: str | None = None,
                      pixel: int | None = None) -> Figure:
    """Loss terms against epoch (paper Fig. 3).

    Parameters
    ----------
    history : astropy.table.Table
        As returned by :func:`ddpayne.model.training.train_emulator` (columns ``epoch``,
        ``data_train``, ``data_val``, ``reg``).
    ax : matplotlib Axes, optional
        Draw there instead of a new figure.
    title : str, optional
    pixel : int, optional
        Plot the terms of this pixel (recorded with ``TrainingSettings(track_pixels=(pixel,))``), as in
        the paper's figure, instead of the averages over pixels.

    Returns
    -------
    matplotlib.figure.Figure
    """
    if ax is None:
        fig = _new_figure((6.0, 4.0))
        ax = fig.add_subplot()
    else:
        fig = ax.figure
    ep = np.asarray(history["epoch"]) + 1
    sfx = "" if pixel is None else f"_{pixel}"
    if pixel is not None and f"data_train{sfx}" not in history.colnames:
        raise KeyError(f"pixel {pixel} was not tracked: train with TrainingSettings(track_pixels=({pixel},))")
    ax.plot(ep, history["data_train" + sfx], color="0.6", label="data term, training")
    if np.any(np.isfinite(np.asarray(history["data_val" + sfx], dtype=float))):
        ax.plot(ep, history["data_val" + sfx], color="k", label="data term, validation")
    reg = np.asarray(history["reg" + sfx], dtype=float)
    if np.any(reg > 0):
        ax.plot(ep, reg, color="tab:blue", label="regularization (gradient spectra)")
    ax.set_yscale("log")
    if ep.size > 1:
        ax.set_xscale("log")
    ax.set_xlabel("epoch")
    ax.set_ylabel("loss per pixel" if pixel is None else f"loss of pixel {pixel}")
    ax.legend(frameon=False)
    if title:
        ax.set_title(title)
    return fig


def plot_gradient_comparison(emulator, gradients, label: str = "MG_FE", ref: int = 0,
                             wavelength_range: tuple[float, float] | None = None,
                             method: str = "finite", mask_hydrogen="auto", ax=None) -> Figure:
    """The model's gradient spectrum of ``label`` against the physical one at one reference point
    (paper Fig. 4).

    Parameters
    ----------
    emulator : Emulator
    gradients : GradientSpectra
        On the emulator's grid.
    label : str
        Which label's gradient spectrum.
    ref : int
        Index of the reference point in ``gradients``.
    wavelength_range : (float, float), optional
        Å range to show (default: all).
    method : {'finite', 'analytic'}
        How the model's gradient is computed (:func:`ddpayne.model.diagnostics.model_gradients`).
    mask_hydrogen : {'auto', True, False}
        Which pixels are greyed out and left out of ρ (:func:`ddpayne.model.diagnostics.excluded_pixels`).
    ax : matplotlib Axes, optional

    Returns
    -------
    matplotlib.figure.Figure
    """
    import torch

    from ..model.diagnostics import _pearson, excluded_pixels, model_gradients

    if not 0 <= ref < gradients.n_ref:
        raise IndexError(f"reference point {ref} does not exist ({gradients.n_ref} points)")
    with torch.no_grad():
        model = model_gradients(emulator, gradients, [label], method, refs=[ref]).double().cpu().numpy()
    model = model[0, 0]
    phys = gradients.gradients[ref, gradients.label_index(label)]
    unit = 100.0 if label == "TEFF" else 1.0
    wave = gradients.wavelength
    masked = excluded_pixels(gradients, mask_hydrogen)
    sel = np.ones(wave.size, bool) if wavelength_range is None else (
        (wave >= wavelength_range[0]) & (wave <= wavelength_range[1]))
    good = sel & ~masked
    rho = _pearson(model[good], phys[good]) if good.sum() > 2 else float("nan")
    if ax is None:
        fig = _new_figure((9.0, 3.5))
        ax = fig.add_subplot()
    else:
        fig = ax.figure
    p = np.where(masked, np.nan, phys) * unit
    m = np.where(masked, np.nan, model) * unit
    # a grid of separate windows is drawn as separate pieces, not joined across the gaps
    w, p, m = wave[sel], p[sel], m[sel]
    if w.size > 2:
        gap = np.flatnonzero(np.diff(w) > 5.0 * np.median(np.diff(w))) + 1
        w, p, m = (np.insert(w, gap, np.nan), np.insert(p, gap, np.nan), np.insert(m, gap, np.nan))
    ax.plot(w, p, color="tab:red", lw=1.2, label="physical (Kurucz)")
    ax.plot(w, m, color="k", lw=0.8, label=f"DD-Payne model (ρ = {rho:.3f})")
    for lo, hi in _runs(wave, masked & sel):
        ax.axvspan(lo, hi, color="0.9", lw=0)
    refrow = gradients.ref_labels[ref]
    desc = ", ".join(f"{n}={v:.4g}" for n, v in zip(gradients.label_names, refrow)
                     if n in ("TEFF", "LOGG", "FE_H"))
    ax.set_title(f"{_label_text(label)} gradient spectrum at reference point {ref} ({desc})", fontsize=9)
    ax.set_xlabel("vacuum wavelength [Å]")
    ax.set_ylabel(r"$\partial f / \partial$" + _label_text(label))
    ax.legend(frameon=False, fontsize=8)
    return fig


def _runs(wave: np.ndarray, flag: np.ndarray):
    """(start, end) wavelengths of the contiguous True runs of ``flag``."""
    if not flag.any():
        return []
    edges = np.flatnonzero(np.diff(np.concatenate([[0], flag.astype(int), [0]])))
    return [(wave[a], wave[b - 1]) for a, b in zip(edges[::2], edges[1::2])]
