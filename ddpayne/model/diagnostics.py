"""Does the trained model's physics agree with stellar physics? Model-vs-physical gradient spectra.

The DD-Payne model must not only reproduce the training spectra but also their derivatives with respect
to each label (paper §3.1, Fig. 4). This module compares the emulator's gradient spectra with the
physical ones of a :class:`ddpayne.physics.gradients.GradientSpectra` at the reference points that lie
inside the training-label coverage, label by label (Pearson correlation).

The helpers :func:`align_gradients`, :func:`reference_coverage` and :func:`model_gradients` are shared
with the Kurucz regularizer plugin, so that training and diagnostics compare exactly the same things.
"""
from __future__ import annotations

import logging
from collections.abc import Sequence

import numpy as np
from astropy.table import Table

from ..exceptions import IncompatibleModelError

log = logging.getLogger(__name__)

#: Labels whose nearest-training-star distance defines "inside the training coverage" (with the box).
COVERAGE_LABELS: tuple[str, ...] = ("TEFF", "LOGG", "FE_H")


def align_gradients(label_names: Sequence[str], wavelength, gradients, labels: Sequence[str] | None = None,
                    what: str = "the emulator"):
    """Match an emulator's labels and grid with a gradient-spectra object.

    Parameters
    ----------
    label_names : sequence of str
        The emulator's labels.
    wavelength : ndarray
        The emulator's wavelength grid.
    gradients : GradientSpectra
    labels : sequence of str, optional
        The labels to compare (default: every emulator label present in ``gradients``).
    what : str
        How to call the model in error messages.

    Returns
    -------
    ref_matrix : ndarray, shape (n_ref, n_emulator_labels)
        The reference points as full emulator label vectors.
    emu_index, grad_index : ndarray of int, shape (n_compared,)
        Positions of the compared labels on the emulator's and on the gradient file's label axis.

    Raises
    ------
    IncompatibleModelError
        Different wavelength grid, or emulator labels missing from the gradient file.
    """
    label_names = tuple(label_names)
    src = gradients.provenance.get("source") or gradients.provenance.get("path") or repr(gradients)
    wavelength = np.asarray(wavelength, dtype=float)
    if wavelength.shape != gradients.wavelength.shape or not np.allclose(
            wavelength, gradients.wavelength, rtol=0, atol=1e-6):
        raise IncompatibleModelError(
            f"gradient spectra {src} are on a wavelength grid of {gradients.n_pix} pixels "
            f"({gradients.wavelength[0]:.2f}-{gradients.wavelength[-1]:.2f} Å) but {what} uses "
            f"{wavelength.size} pixels ({wavelength[0]:.2f}-{wavelength[-1]:.2f} Å): rebuild the gradient "
            f"spectra on the model's grid (ddpayne.physics.gradients.GradientSpectra.from_spectra with "
            f"spectra degraded to that grid), or prepare the spectra on the gradient file's grid")
    missing = [n for n in label_names if n not in gradients.label_names]
    if missing:
        raise IncompatibleModelError(
            f"gradient spectra {src} hold labels {list(gradients.label_names)} but {what} has "
            f"{missing} too, so the reference points are not defined for it: compute gradient spectra "
            f"for all of {list(label_names)}, or train the model on the labels of the file")
    ref = np.column_stack([gradients.ref_labels[:, gradients.label_index(n)] for n in label_names])
    if labels is None:
        labels = label_names
    bad = [n for n in labels if n not in label_names]
    if bad:
        raise IncompatibleModelError(f"labels {bad} to compare are not labels of {what} "
                                     f"({list(label_names)})")
    emu_index = np.array([label_names.index(n) for n in labels], dtype=int)
    grad_index = np.array([gradients.label_index(n) for n in labels], dtype=int)
    return ref, emu_index, grad_index


def excluded_pixels(gradients, mask_hydrogen="auto") -> np.ndarray:
    """Pixels not to compare (True): the gradient file's mask, plus hydrogen lines if asked.

    Parameters
    ----------
    gradients : GradientSpectra
    mask_hydrogen : {'auto', True, False}
        ``True``: add the generic hydrogen windows of :func:`ddpayne.prepare.masks.hydrogen_mask`
        (±15 Å around Balmer and Paschen lines); ``False``: the file's mask only; ``'auto'`` (default):
        trust the file's mask when it already masks hydrogen-line centres (the DESI product does, with
        per-line widths that keep the Ca II triplet), else add the generic windows.
    """
    from ..prepare.masks import BALMER_VAC, PASCHEN_VAC, hydrogen_mask

    mask = np.asarray(gradients.mask, bool).copy()
    wave = gradients.wavelength
    if mask_hydrogen == "auto":
        centres = np.concatenate([BALMER_VAC, PASCHEN_VAC])
        centres = centres[(centres > wave[0]) & (centres < wave[-1])]
        if centres.size == 0:
            return mask
        nearest = np.abs(wave[None, :] - centres[:, None]).argmin(axis=1)
        mask_hydrogen = not mask[nearest].any()
    if mask_hydrogen:
        mask |= hydrogen_mask(wave)
    return mask


def reference_coverage(ref_labels, label_names: Sequence[str], label_min, label_max,
                       train_labels=None, margin: float = 0.0, radius: float = 0.15,
                       coverage_labels: Sequence[str] = COVERAGE_LABELS) -> np.ndarray:
    """How far each reference point lies outside the training-label coverage (0 = inside).

    A reference point is inside when (1) every label lies in ``[min − margin·span, max + margin·span]``
    and (2), if ``train_labels`` are given, its nearest training star in the scaled
    (ℓ − ℓ_min)/(ℓ_max − ℓ_min) space of ``coverage_labels`` (TEFF, LOGG, FE_H by default) is closer
    than ``radius``. The box alone would accept points in empty corners of the Kiel diagram.

    Parameters
    ----------
    ref_labels : ndarray, shape (n_ref, n_labels)
        Reference points, columns in ``label_names`` order.
    label_names : sequence of str
    label_min, label_max : ndarray, shape (n_labels,)
        Training-label range.
    train_labels : ndarray, shape (n_train, n_labels), optional
    margin : float
        Fraction of each label's range added on both sides of the box.
    radius : float
        Largest scaled distance to the nearest training star.
    coverage_labels : sequence of str

    Returns
    -------
    ndarray, shape (n_ref,)
        Distance outside the coverage in scaled units (max of the box excess and the nearest-star
        distance beyond ``radius``); 0 for points inside.
    """
    ref = np.atleast_2d(np.asarray(ref_labels, dtype=float))
    lo = np.asarray(label_min, dtype=float)
    hi = np.asarray(label_max, dtype=float)
    span = np.where(hi > lo, hi - lo, 1.0)
    s = (ref - lo) / span
    excess = np.maximum(np.maximum(-margin - s, s - 1 - margin), 0.0).max(axis=1)
    if train_labels is not None:
        cols = [i for i, n in enumerate(label_names) if n in coverage_labels]
        if cols:
            t = (np.asarray(train_labels, dtype=float)[:, cols] - lo[cols]) / span[cols]
            r = s[:, cols]
            d2 = np.full(len(r), np.inf)
            for start in range(0, len(t), 4096):  # bounded memory
                part = t[start:start + 4096]
                d2 = np.minimum(d2, ((r[:, None, :] - part[None]) ** 2).sum(-1).min(axis=1))
            excess = np.maximum(excess, np.maximum(np.sqrt(d2) - radius, 0.0))
    return excess


def inside_reference_points(emulator, gradients, train_labels=None, margin: float = 0.0,
                            radius: float = 0.15) -> np.ndarray:
    """Indices of the reference points of ``gradients`` inside the emulator's training coverage.

    Parameters
    ----------
    emulator : Emulator
    gradients : GradientSpectra
        On the emulator's grid.
    train_labels : ndarray, shape (n_train, n_labels), optional
        The training labels (emulator order), for the nearest-star test of :func:`reference_coverage`.
    margin, radius : float
        Coverage settings (see :func:`reference_coverage`).
    """
    ref, _, _ = align_gradients(emulator.label_names, emulator.wavelength, gradients)
    dist = reference_coverage(ref, emulator.label_names, emulator.label_min, emulator.label_max,
                              train_labels=train_labels, margin=margin, radius=radius)
    return np.flatnonzero(dist == 0)


def model_gradients(emulator, gradients, labels: Sequence[str] | None = None, method: str = "finite",
                    refs=None, pixels=None, difference: str | None = None):
    """The emulator's gradient spectra at the reference points of ``gradients`` (torch tensor).

    Parameters
    ----------
    emulator : Emulator
    gradients : GradientSpectra
    labels : sequence of str, optional
        Labels to differentiate (default: every emulator label in ``gradients``).
    method : {'finite', 'analytic'}
        ``finite``: the same finite difference as the physical side, with the same steps Δk
        (forward, or central when the file says so); ``analytic``: the emulator's exact Jacobian.
    refs : index array, optional
        Reference points to use (default all).
    pixels : slice or index tensor, optional
        Pixels to evaluate (emulators that accept ``pixels=``).
    difference : {'forward', 'central'}, optional
        Override the file's difference type.

    Returns
    -------
    torch.Tensor, shape (n_ref, n_labels_compared, n_pix)
        ∂f/∂ℓ per physical label unit. Differentiable in the emulator's parameters.
    """
    import torch

    ref, ei, gi = align_gradients(emulator.label_names, emulator.wavelength, gradients, labels)
    if refs is not None:
        ref = ref[np.asarray(refs)]
    kw = {} if pixels is None else {"pixels": pixels}
    x = torch.as_tensor(ref, dtype=emulator.dtype, device=emulator.device)
    if method == "analytic":
        _, jac = emulator.jacobian(x, **kw)                   # (n_ref, P, L)
        return jac[:, :, torch.as_tensor(ei, device=jac.device)].permute(0, 2, 1)
    if method != "finite":
        raise ValueError(f"method must be 'finite' or 'analytic', got {method!r}")
    steps = torch.as_tensor(gradients.steps[gi], dtype=emulator.dtype, device=emulator.device)
    n_ref, K = len(ref), len(ei)
    eye = torch.zeros((K, emulator.n_labels), dtype=emulator.dtype, device=emulator.device)
    eye[torch.arange(K), torch.as_tensor(ei)] = steps
    plus = (x[:, None, :] + eye[None]).reshape(n_ref * K, -1)
    difference = difference or gradients.provenance.get("difference", "forward")
    if difference == "central":
        minus = (x[:, None, :] - eye[None]).reshape(n_ref * K, -1)
        f = emulator.flux(torch.cat([plus, minus]), **kw)
        fp, fm = f[:n_ref * K], f[n_ref * K:]
        return (fp - fm).reshape(n_ref, K, -1) / (2 * steps[None, :, None])
    f = emulator.flux(torch.cat([x, plus]), **kw)
    f0, fp = f[:n_ref], f[n_ref:].reshape(n_ref, K, -1)
    return (fp - f0[:, None, :]) / steps[None, :, None]


def _pearson(a: np.ndarray, b: np.ndarray) -> float:
    a = a - a.mean()
    b = b - b.mean()
    den = np.sqrt((a * a).sum() * (b * b).sum())
    return float((a * b).sum() / den) if den > 0 else float("nan")


def gradient_correlation(emulator, gradients, labels: Sequence[str] | None = None,
                         train_labels=None, method: str = "finite", margin: float = 0.0,
                         radius: float = 0.15, mask_hydrogen="auto",
                         chunk: int = 16) -> Table:
    """Per-label Pearson correlation between the model's and the physical gradient spectra.

    Only reference points inside the training coverage (:func:`reference_coverage`) and pixels not
    masked in the gradient file (nor hydrogen lines, if ``mask_hydrogen``) are used.

    Parameters
    ----------
    emulator : Emulator
    gradients : GradientSpectra
    labels : sequence of str, optional
        Default: every emulator label present in ``gradients``.
    train_labels : ndarray, shape (n_train, n_labels), optional
        The training labels (emulator order), for the nearest-star coverage test.
    method : {'finite', 'analytic'}
        How the model's gradients are computed (see :func:`model_gradients`).
    margin, radius : float
        Coverage settings (see :func:`reference_coverage`).
    mask_hydrogen : {'auto', True, False}
        Hydrogen-line handling (:func:`excluded_pixels`).
    chunk : int
        Reference points evaluated at once.

    Returns
    -------
    astropy.table.Table
        One row per label: ``LABEL``, ``RHO`` (correlation over all inside reference points and
        unmasked pixels together), ``RHO_MEDIAN``, ``RHO_MIN`` (over the individual reference points),
        ``N_REF`` (inside points used), ``RMS_PHYS``, ``RMS_DIFF`` (rms of the physical gradient and
        of model − physical, per physical unit).
    """
    import torch

    ref, ei, gi = align_gradients(emulator.label_names, emulator.wavelength, gradients, labels)
    names = [emulator.label_names[i] for i in ei]
    dist = reference_coverage(ref, emulator.label_names, emulator.label_min, emulator.label_max,
                              train_labels=train_labels, margin=margin, radius=radius)
    inside = np.flatnonzero(dist == 0)
    good = ~excluded_pixels(gradients, mask_hydrogen)
    out = Table(names=("LABEL", "RHO", "RHO_MEDIAN", "RHO_MIN", "N_REF", "RMS_PHYS", "RMS_DIFF"),
                dtype=("U8", float, float, float, int, float, float))
    for c in ("RHO", "RHO_MEDIAN", "RHO_MIN"):
        out[c].format = ".3f"
    for c in ("RMS_PHYS", "RMS_DIFF"):
        out[c].format = ".3g"
    if inside.size == 0:
        log.warning("no reference point of %r lies inside the training coverage", gradients)
        for n in names:
            out.add_row((n, np.nan, np.nan, np.nan, 0, np.nan, np.nan))
        return out
    model = []
    with torch.no_grad():
        for start in range(0, inside.size, chunk):
            idx = inside[start:start + chunk]
            model.append(model_gradients(emulator, gradients, names, method, refs=idx)
                         .double().cpu().numpy())
    model = np.concatenate(model)[:, :, good]                      # (n_in, K, P_good)
    phys = gradients.gradients[np.ix_(inside, gi)][:, :, good]
    for k, n in enumerate(names):
        m, p = model[:, k], phys[:, k]
        per = np.array([_pearson(m[r], p[r]) for r in range(len(m))])
        out.add_row((n, _pearson(m.ravel(), p.ravel()), np.nanmedian(per) if per.size else np.nan,
                     np.nanmin(per) if np.any(np.isfinite(per)) else np.nan, inside.size,
                     float(np.sqrt(np.mean(p ** 2))), float(np.sqrt(np.mean((m - p) ** 2)))))
    out["RHO"].description = "Pearson correlation, model vs physical gradient spectra"
    return out
