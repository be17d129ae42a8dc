"""Training the DD-Payne model: prepared spectra + reference labels -> emulator (paper §3.3, Eq. 3).

The loss minimised at every step (one mini-batch of ``batch_size`` spectra) is, per pixel λ,

.. math::

    \\mathcal L_\\lambda = \\frac{1}{N_b}\\sum_{i\\in b}
        \\big(f_\\lambda(\\ell_i) - f_{{\\rm obs},i,\\lambda}\\big)^2 \\, {\\rm ivar}_{i,\\lambda}
        \\; + \\; R_\\lambda

with :math:`R_\\lambda` the regularizer's term (the Kurucz gradient term for ``regularizer='kurucz'``),
and the optimiser minimises Σ_λ 𝓛_λ. Every pixel has its own network, so this is exactly the paper's
pixel-by-pixel training, done for all pixels at once. The reported ``data_*`` and ``reg`` columns are
the averages over pixels of the two terms (``data`` ≈ 1 for a model that fits to the noise).

Choices (settings in :class:`TrainingSettings`): Adam; batches of 512; learning rate falling
exponentially (or by a cosine) from 0.01 to 0.0001 over the epochs; validation stars drawn by *star*
(all spectra of a star go to the same side); the model with the lowest validation loss (data term on the
validation stars + regularization term) is kept; checkpoints (model, optimiser, RNG, history, best model)
every ``checkpoint_every`` epochs, written atomically, so that a killed run resumes exactly.
"""
from __future__ import annotations

import copy
import dataclasses
import hashlib
import inspect
import json
import logging
import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from astropy.table import Table

from .. import __version__, registry
from ..exceptions import DDPayneError, IncompatibleModelError
from ..io.atomic import atomic_path
from ..labels import LABEL_NAMES, LABEL_UNIT_STRINGS
from .emulator import Emulator, load_emulator  # noqa: F401  (load_emulator re-exported for convenience)

log = logging.getLogger(__name__)

#: Version of the checkpoint layout.
CHECKPOINT_VERSION = 1
#: Metadata columns tried, in order, to group spectra by star for the train/validation split.
STAR_ID_COLUMNS: tuple[str, ...] = ("STAR_ID", "SOURCE_ID", "GAIA_SOURCE_ID", "TARGETID", "ID")


class TrainingSetError(DDPayneError, ValueError):
    """The training set cannot train the requested model (NaN labels, too few stars, ...)."""


@dataclass
class TrainingSettings:
    """Settings of :func:`train_emulator` (defaults: the paper's, §3.3).

    Attributes
    ----------
    epochs : int
        Passes over the training stars (paper: 10,000).
    batch_size : int
        Spectra per optimiser step (paper: 512).
    learning_rate, final_learning_rate : float
        Learning rate at the first and at the last epoch (paper: 0.01 -> 0.0001).
    schedule : {'exponential', 'cosine', 'constant'}
        How the learning rate goes from the first to the last value.
    validation_fraction : float
        Fraction of *stars* held out for validation.
    seed : int
        Seed of the split, the weight initialisation and the batch order.
    device : str
        ``'cpu'``, ``'cuda'``, ``'cuda:1'``, ...
    dtype : {'float32', 'float64'}
    checkpoint_every : int
        Epochs between checkpoints (when a ``checkpoint_dir`` is given).
    pixel_chunk : int or None
        Pixels evaluated at once (None: chosen from ``memory_budget_mb``). Results do not depend on it
        beyond floating-point summation order.
    memory_budget_mb : float
        Rough budget for the activations of one pixel chunk.
    allow_underdetermined : bool
        Train even when the training set is smaller than the free parameters per pixel.
    progress : bool
        Show a tqdm progress bar.
    num_threads : int or None
        CPU threads torch may use during training (None: leave torch's setting). On a shared machine
        1 is often faster than oversubscribed threads.
    backprop : {'auto', 'manual', 'autograd'}
        ``manual``: use the emulator's hand-written, cache-blocked back-propagation when it has one
        (the ``mlp`` emulator with sigmoid activation; ~3x faster than autograd on CPU);
        ``autograd``: always torch autograd; ``auto`` (default): manual on CPU, autograd on GPU (large
        fused kernels suit a GPU better than many small blocks). Both give the same gradients up to
        rounding.
    track_pixels : tuple of int
        Pixels whose own loss terms are recorded every epoch (history columns ``data_train_<p>``,
        ``data_val_<p>``, ``reg_<p>``), as in the paper's Fig. 3 (one pixel's loss curve).
    """

    epochs: int = 10000
    batch_size: int = 512
    learning_rate: float = 1e-2
    final_learning_rate: float = 1e-4
    schedule: str = "exponential"
    validation_fraction: float = 0.1
    seed: int = 0
    device: str = "cpu"
    dtype: str = "float32"
    checkpoint_every: int = 100
    pixel_chunk: int | None = None
    memory_budget_mb: float = 1024.0
    allow_underdetermined: bool = False
    progress: bool = True
    num_threads: int | None = None
    backprop: str = "auto"
    track_pixels: tuple = ()

    def __post_init__(self):
        if self.epochs < 1 or self.batch_size < 1:
            raise ValueError("epochs and batch_size must be >= 1")
        if self.backprop not in ("auto", "manual", "autograd"):
            raise ValueError(f"backprop must be 'auto', 'manual' or 'autograd', got {self.backprop!r}")
        if self.schedule not in ("exponential", "cosine", "constant"):
            raise ValueError(f"schedule must be exponential, cosine or constant, got {self.schedule!r}")
        if not 0 <= self.validation_fraction < 1:
            raise ValueError("validation_fraction must be in [0, 1)")
        if self.learning_rate <= 0 or self.final_learning_rate <= 0:
            raise ValueError("learning rates must be > 0")

    def learning_rate_at(self, epoch: int) -> float:
        """Learning rate of epoch ``epoch`` (0-based)."""
        if self.schedule == "constant" or self.epochs == 1:
            return self.learning_rate
        t = epoch / (self.epochs - 1)
        if self.schedule == "exponential":
            return self.learning_rate * (self.final_learning_rate / self.learning_rate) ** t
        return self.final_learning_rate + 0.5 * (self.learning_rate - self.final_learning_rate) * (
            1 + math.cos(math.pi * t))

    def fingerprint(self) -> dict:
        """The settings that change the result (for checking a checkpoint; a run may resume on
        another device)."""
        d = dataclasses.asdict(self)
        for k in ("checkpoint_every", "progress", "memory_budget_mb", "pixel_chunk", "num_threads",
                  "backprop", "device", "track_pixels"):
            d.pop(k)
        return d


# ---------------------------------------------------------------------------------------- inputs
def _label_array(labels, label_names, n_spec: int) -> tuple[np.ndarray, tuple[str, ...]]:
    if isinstance(labels, Table):
        if label_names is None:
            label_names = [n for n in LABEL_NAMES if n in labels.colnames]
        missing = [n for n in label_names if n not in labels.colnames]
        if missing:
            raise TrainingSetError(f"label table lacks columns {missing}")
        arr = np.column_stack([np.ma.filled(np.ma.asarray(labels[n], dtype=float), np.nan)
                               for n in label_names])
    else:
        arr = np.asarray(labels, dtype=float)
        if label_names is None:
            if arr.ndim == 2 and arr.shape[1] == len(LABEL_NAMES):
                label_names = LABEL_NAMES
            else:
                raise TrainingSetError("label_names must be given with a label array")
    label_names = tuple(label_names)
    if arr.ndim != 2 or arr.shape != (n_spec, len(label_names)):
        raise TrainingSetError(f"labels must have shape (n_spectra, n_labels) = ({n_spec}, "
                               f"{len(label_names)}), got {arr.shape}")
    return arr, label_names


def _star_ids(batch, star_ids) -> np.ndarray:
    if star_ids is not None:
        ids = np.asarray(star_ids).astype(str)
        if ids.shape != (len(batch),):
            raise TrainingSetError(f"star_ids must have one entry per spectrum ({len(batch)}), "
                                   f"got {ids.shape}")
        return ids
    for col in STAR_ID_COLUMNS:
        if col in batch.meta.colnames:
            return np.asarray(batch.meta[col]).astype(str)
    return np.arange(len(batch)).astype(str)


def split_by_star(star_ids, validation_fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Split spectra into training and validation sets by star (all spectra of a star together).

    Returns
    -------
    train, val : ndarray of int
        Spectrum indices, sorted.
    """
    star_ids = np.asarray(star_ids)
    stars = np.unique(star_ids)
    rng = np.random.default_rng(seed)
    order = rng.permutation(stars.size)
    n_val = int(round(validation_fraction * stars.size))
    if validation_fraction > 0 and stars.size > 1:
        n_val = min(max(n_val, 1), stars.size - 1)
    val_stars = stars[order[:n_val]]
    is_val = np.isin(star_ids, val_stars)
    return np.flatnonzero(~is_val), np.flatnonzero(is_val)


def _hash_arrays(*arrays) -> str:
    h = hashlib.sha256()
    for a in arrays:
        a = np.ascontiguousarray(a)
        h.update(str(a.shape).encode())
        h.update(a.tobytes())
    return h.hexdigest()


def _create(kind: str, spec, **defaults):
    if not isinstance(spec, str):
        return spec
    return registry.create(kind, spec, **defaults)


def _describe_regularizer(reg) -> dict:
    if hasattr(reg, "describe"):
        return reg.describe()
    return {"name": getattr(reg, "name", type(reg).__name__)}


# ---------------------------------------------------------------------------------------- training
def train_emulator(batch, labels, label_names: Sequence[str] | None = None, *,
                   star_ids=None, emulator: str | Emulator = "mlp",
                   emulator_options: Mapping[str, Any] | None = None,
                   regularizer: Any = "kurucz", regularizer_options: Mapping[str, Any] | None = None,
                   settings: TrainingSettings | None = None,
                   checkpoint_dir: str | Path | None = None, resume: bool = True,
                   output: str | Path | None = None,
                   callback: Callable[[int, dict], None] | None = None) -> tuple[Emulator, Table]:
    """Train a spectral emulator on prepared spectra with known labels (paper Eq. 3).

    Parameters
    ----------
    batch : ddpayne.io.batch.SpectrumBatch
        Prepared (rest-frame, continuum-normalised) training spectra; ``ivar == 0`` marks bad pixels.
    labels : ndarray (n_spectra, n_labels) or astropy.table.Table
        Reference labels of each spectrum, physical units (a Table: one column per label).
    label_names : sequence of str, optional
        Labels, in the column order of ``labels`` (for a Table: which columns; default every column
        named in :data:`ddpayne.labels.LABEL_NAMES`).
    star_ids : array_like, optional
        Star of each spectrum, for the split by star (default: the first of ``STAR_ID``, ``SOURCE_ID``,
        ``GAIA_SOURCE_ID``, ``TARGETID``, ``ID`` found in ``batch.meta``).
    emulator : str or Emulator
        Emulator plugin name (default ``'mlp'``) or an emulator instance to continue training.
    emulator_options : mapping, optional
        Passed to the emulator class (e.g. ``{'n_hidden': 40, 'activation': 'sigmoid'}``).
    regularizer : str or Regularizer or None
        Regularizer plugin name (``'kurucz'``, ``'none'``), instance, or None (= ``'none'``).
    regularizer_options : mapping, optional
        Passed to the regularizer class (``kurucz``: ``{'gradients': 'file.fits', 'weights': {...}}``).
    settings : TrainingSettings, optional
    checkpoint_dir : path, optional
        Folder for ``checkpoint.pt`` (and ``history.ecsv``); enables resuming.
    resume : bool
        Continue from the checkpoint in ``checkpoint_dir`` if there is one.
    output : path, optional
        Save the trained (best-validation) emulator there.
    callback : callable, optional
        ``callback(epoch, row)`` after every epoch (``row``: the history row as a dict).

    Returns
    -------
    emulator : Emulator
        The best-validation model, with ``provenance`` filled in.
    history : astropy.table.Table
        One row per epoch: ``epoch``, ``data_train``, ``data_val``, ``reg``, ``loss_val`` (validation data
        term + regularization: the criterion of the best model), ``lr``, ``seconds``.

    Raises
    ------
    TrainingSetError
        NaN labels or flux, too few training stars for the model, wrong shapes.
    IncompatibleModelError
        Gradient spectra on another grid or with other labels; a checkpoint from another run.
    """
    import torch

    settings = settings or TrainingSettings()
    old_threads = torch.get_num_threads()
    if settings.num_threads:
        torch.set_num_threads(int(settings.num_threads))
    try:
        return _train(batch, labels, label_names, star_ids, emulator, emulator_options, regularizer,
                      regularizer_options, settings, checkpoint_dir, resume, output, callback)
    finally:
        torch.set_num_threads(old_threads)


def _train(batch, labels, label_names, star_ids, emulator, emulator_options, regularizer,
           regularizer_options, settings, checkpoint_dir, resume, output, callback):
    import torch
    from tqdm.auto import tqdm

    n_spec, n_pix = batch.flux.shape
    lab, label_names = _label_array(labels, label_names, n_spec)
    ids = _star_ids(batch, star_ids)

    bad = ~np.all(np.isfinite(lab), axis=1)
    if bad.any():
        where = [f"{batch.ids[i]} ({', '.join(n for n, v in zip(label_names, lab[i]) if not np.isfinite(v))})"
                 for i in np.flatnonzero(bad)[:5]]
        raise TrainingSetError(
            f"{bad.sum()} training spectra have NaN/inf labels, e.g. {where}: remove them "
            f"(ddpayne.model.trainingset.build_training_set rejects and reports them) or fill the labels")
    flux = np.array(batch.flux, dtype=np.float32)      # our own copies (the batch is not modified)
    ivar = np.array(batch.ivar, dtype=np.float32)
    ivar[~np.isfinite(ivar) | (ivar < 0)] = 0.0
    badflux = (~np.isfinite(flux)) & (ivar > 0)
    if badflux.any():
        rows = np.flatnonzero(badflux.any(axis=1))
        raise TrainingSetError(f"{rows.size} spectra have NaN/inf flux at pixels with ivar > 0, e.g. "
                               f"{list(batch.ids[rows[:5]])}: set ivar = 0 there (ddpayne.prepare does)")
    flux[~np.isfinite(flux)] = 0.0
    empty = ~(ivar > 0).any(axis=1)
    if empty.any():
        log.warning("%d training spectra have no valid pixel and do not constrain the model: %s",
                    empty.sum(), list(batch.ids[np.flatnonzero(empty)[:10]]))

    train_idx, val_idx = split_by_star(ids, settings.validation_fraction, settings.seed)
    lmin, lmax = lab.min(axis=0), lab.max(axis=0)
    const = [n for n, lo, hi in zip(label_names, lmin, lmax) if not hi > lo]
    if const:
        raise TrainingSetError(f"labels {const} have the same value for every training spectrum: drop them "
                               f"from label_names or add stars that vary them")

    emu_new = isinstance(emulator, str)
    emu = _create("emulator", emulator, label_names=label_names, wavelength=batch.wavelength,
                  label_min=lmin, label_max=lmax, seed=settings.seed, dtype=settings.dtype,
                  device=settings.device, **dict(emulator_options or {}))
    if not emu_new:
        if tuple(emu.label_names) != label_names:
            raise IncompatibleModelError(f"emulator labels {emu.label_names} differ from the training "
                                         f"labels {label_names}")
        emu.to(device=settings.device)
        if hasattr(emu, "requires_grad_"):
            emu.requires_grad_(True)
    if regularizer is None:
        regularizer = "none"
    reg = _create("regularizer", regularizer, **dict(regularizer_options or {}))
    if hasattr(reg, "set_training_labels"):
        reg.set_training_labels(lab[train_idx])
    reg.check_compatible(emu)
    reg_info = _describe_regularizer(reg)

    n_par = emu.n_parameters_per_pixel
    n_con = len(train_idx) + int(getattr(reg, "n_constraints_per_pixel", 0) or 0)
    if n_par and n_con < n_par and not settings.allow_underdetermined:
        extra = f" + {n_con - len(train_idx)} gradient constraints" if n_con > len(train_idx) else ""
        raise TrainingSetError(
            f"the training set has {len(train_idx)} training spectra{extra}"
            f" = {n_con} constraints per pixel, fewer than the {n_par} free parameters of each pixel's "
            f"model ({type(emu).__name__} with {len(label_names)} labels): add training stars, use a "
            f"smaller network (e.g. emulator_options={{'n_hidden': 10}}), or set "
            f"TrainingSettings(allow_underdetermined=True) to train anyway")

    dev = emu.device
    dt = emu.dtype
    t_flux = torch.as_tensor(flux, dtype=dt, device=dev)
    t_ivar = torch.as_tensor(ivar, dtype=dt, device=dev)
    t_lab = torch.as_tensor(lab, dtype=dt, device=dev)
    t_train = torch.as_tensor(train_idx, device=dev)
    t_val = torch.as_tensor(val_idx, device=dev)

    # the pixel chunk: bound the activations of one chunk by the memory budget
    rows = settings.batch_size
    if getattr(reg, "_prepared", None) is not None:  # the Kurucz regularizer's rows per step
        p = reg._prepared
        rows = max(rows, len(p["refs"]) * (len(p["labels"]) + 1))
    supports_pixels = "pixels" in inspect.signature(emu.flux).parameters
    manual = bool(getattr(emu, "manual_backward", False)) and hasattr(emu, "data_term_backward") and (
        settings.backprop == "manual" or (settings.backprop == "auto" and emu.device.type == "cpu"))
    reg_manual = manual and hasattr(reg, "penalty_backward")
    reg_pixels = "pixels" in inspect.signature(reg.penalty).parameters
    if settings.pixel_chunk:
        chunk = int(settings.pixel_chunk)
    else:
        width = getattr(emu, "n_hidden", 40)
        chunk = int(settings.memory_budget_mb * 2**20 / (8 * width * rows * t_flux.element_size()))
        chunk = max(16, chunk)
    if not supports_pixels or chunk >= n_pix:
        chunks = [None]
    else:
        chunks = [slice(s, min(s + chunk, n_pix)) for s in range(0, n_pix, chunk)]
    log.info("training %s on %d spectra (%d train / %d validation, %d stars), %d pixels in %d chunk(s)",
             emu, n_spec, len(train_idx), len(val_idx), np.unique(ids).size, n_pix, len(chunks))

    fingerprint = {
        "settings": settings.fingerprint(), "emulator": getattr(emu, "name", type(emu).__name__),
        "emulator_options": json.loads(json.dumps(dict(emulator_options or {}), default=str)),
        "regularizer": json.loads(json.dumps(reg_info, default=str)),
        "data": _hash_arrays(batch.wavelength, flux, ivar, lab, ids.astype("U")),
        "label_names": list(label_names), "checkpoint_version": CHECKPOINT_VERSION,
    }

    optimizer = torch.optim.Adam(emu.parameters(), lr=settings.learning_rate)
    gen = torch.Generator().manual_seed(settings.seed)
    history: list[dict] = []
    best = {"loss": math.inf, "epoch": -1, "state": None}
    start = 0
    ckpt = Path(checkpoint_dir) / "checkpoint.pt" if checkpoint_dir is not None else None

    if ckpt is not None and resume and ckpt.exists():
        state = torch.load(ckpt, map_location="cpu", weights_only=True)
        if state.get("fingerprint") != fingerprint:
            raise IncompatibleModelError(
                f"checkpoint {ckpt} belongs to another training run (other data, labels, settings, "
                f"emulator or regularizer): delete it, use another checkpoint_dir, or pass resume=False")
        emu.load_state_dict(state["emulator"])
        optimizer.load_state_dict(state["optimizer"])
        gen.set_state(state["generator"])
        history = state["history"]
        best = state["best"]
        start = state["epoch"]
        log.info("resumed from %s at epoch %d", ckpt, start)
    elif emu_new:
        w = t_ivar[t_train]
        mean = (t_flux[t_train] * w).sum(0) / w.sum(0).clamp_min(1e-30)
        fallback = t_flux[t_train].mean(0)
        mean = torch.where(w.sum(0) > 0, mean, fallback)
        emu.initialize(mean.double().cpu().numpy())

    def data_term(idx, pixels, grad: bool):
        sl = slice(None) if pixels is None else pixels
        kw = {} if pixels is None else {"pixels": pixels}
        with torch.set_grad_enabled(grad):
            f = emu.flux(t_lab[idx], **kw)
            return ((f - t_flux[idx][:, sl]) ** 2 * t_ivar[idx][:, sl]).sum()

    def save_checkpoint(epoch: int):
        if ckpt is None:
            return
        content = {"fingerprint": fingerprint, "epoch": epoch, "emulator": emu.state_dict(),
                   "optimizer": optimizer.state_dict(), "generator": gen.get_state(), "history": history,
                   "best": best, "ddpayne_version": __version__}
        with atomic_path(ckpt) as tmp:
            torch.save(content, tmp)
        hist = history_table(history) if history else None
        if hist is not None:
            with atomic_path(ckpt.parent / "history.ecsv") as tmp:
                hist.write(tmp, format="ascii.ecsv")

    bar = tqdm(range(start, settings.epochs), desc="training", unit="epoch", disable=not settings.progress,
               initial=start, total=settings.epochs)
    for epoch in bar:
        t_start = time.perf_counter()
        lr = settings.learning_rate_at(epoch)
        for group in optimizer.param_groups:
            group["lr"] = lr
        perm = t_train[torch.randperm(len(train_idx), generator=gen).to(dev)]
        n_batches = -(-len(train_idx) // settings.batch_size)
        data_sum = 0.0
        reg_sum = 0.0
        n_steps = 0
        for b0 in range(0, len(perm), settings.batch_size):
            idx = perm[b0:b0 + settings.batch_size]
            nb = len(idx)
            optimizer.zero_grad(set_to_none=True)
            if hasattr(reg, "set_step"):   # e.g. the reference subset of a stochastic regularizer
                reg.set_step(epoch * n_batches + n_steps)
            step_data = 0.0
            step_reg = 0.0
            if manual:   # the emulator back-propagates by hand, block by block (same gradients)
                step_data = emu.data_term_backward(t_lab[idx], t_flux[idx], t_ivar[idx], scale=1.0 / nb)
                value = reg.penalty_backward(emu) if reg_manual else None
                if value is not None:
                    step_reg = float(value)
                else:
                    for px in chunks:
                        loss_r = reg.penalty(emu, pixels=px) if (px is not None and reg_pixels) \
                            else reg.penalty(emu)
                        if loss_r.requires_grad:
                            loss_r.backward()
                        step_reg += float(loss_r.detach())
                        if not reg_pixels:
                            break
            else:
                for px in chunks:
                    loss_d = data_term(idx, px, True) / nb
                    loss = loss_d
                    if reg_pixels:
                        loss_r = reg.penalty(emu, pixels=px) if px is not None else reg.penalty(emu)
                        loss = loss + loss_r
                        step_reg += float(loss_r.detach())
                    if loss.requires_grad:
                        loss.backward()
                    step_data += float(loss_d.detach())
                if not reg_pixels:
                    loss_r = reg.penalty(emu)
                    if loss_r.requires_grad:
                        loss_r.backward()
                    step_reg += float(loss_r.detach())
            optimizer.step()
            data_sum += step_data * nb
            reg_sum += step_reg
            n_steps += 1
        data_train = data_sum / len(train_idx) / n_pix
        reg_mean = reg_sum / max(n_steps, 1) / n_pix
        if len(val_idx):
            vsum = 0.0
            for v0 in range(0, len(val_idx), settings.batch_size):
                vidx = t_val[v0:v0 + settings.batch_size]
                vsum += sum(float(data_term(vidx, px, False)) for px in chunks)
            data_val = vsum / len(val_idx) / n_pix
        else:
            data_val = float("nan")
        loss_val = (data_val if len(val_idx) else data_train) + reg_mean
        row = {"epoch": epoch, "data_train": data_train, "data_val": data_val, "reg": reg_mean,
               "loss_val": loss_val, "lr": lr, "seconds": time.perf_counter() - t_start}
        for px in settings.track_pixels:     # one pixel's terms (paper Fig. 3), not timed
            one = slice(int(px), int(px) + 1)
            with torch.no_grad():
                row[f"data_train_{px}"] = sum(float(data_term(t_train[a:a + settings.batch_size], one, False))
                                              for a in range(0, len(train_idx), settings.batch_size)
                                              ) / len(train_idx)
                row[f"data_val_{px}"] = (sum(float(data_term(t_val[a:a + settings.batch_size], one, False))
                                             for a in range(0, len(val_idx), settings.batch_size))
                                         / len(val_idx)) if len(val_idx) else float("nan")
                row[f"reg_{px}"] = float(reg.penalty(emu, pixels=one)) if reg_pixels else float("nan")
        history.append(row)
        if loss_val < best["loss"]:
            best = {"loss": loss_val, "epoch": epoch,
                    "state": {k: v.detach().cpu().clone() for k, v in emu.state_dict().items()}}
        bar.set_postfix(data=f"{data_train:.3g}", val=f"{data_val:.3g}", reg=f"{reg_mean:.3g}")
        if ckpt is not None and ((epoch + 1) % settings.checkpoint_every == 0
                                 or epoch + 1 == settings.epochs):
            save_checkpoint(epoch + 1)
        if callback is not None:
            callback(epoch, dict(row))
    bar.close()

    if best["state"] is not None:
        emu.load_state_dict(best["state"])
    if hasattr(emu, "requires_grad_"):
        emu.requires_grad_(False)   # the result is for inference: no autograd graphs in the fitters
    optimizer.zero_grad(set_to_none=True)
    emu.provenance = {
        "ddpayne_version": __version__, "training_settings": dataclasses.asdict(settings),
        "emulator_options": fingerprint["emulator_options"], "regularizer": reg_info,
        "regularizer_checksum": reg_info.get("checksum"), "best_epoch": int(best["epoch"]),
        "best_loss_val": float(best["loss"]), "n_train": int(len(train_idx)), "n_val": int(len(val_idx)),
        "n_stars": int(np.unique(ids).size), "data_sha256": fingerprint["data"],
        "label_units": {n: LABEL_UNIT_STRINGS.get(n, "") for n in label_names},
    }
    hist = history_table(history)
    if output is not None:
        emu.save(output)
    return emu, hist


def history_table(history: Sequence[Mapping]) -> Table:
    """The training history as a Table (columns epoch, data_train, data_val, reg, loss_val, lr,
    seconds)."""
    names = ["epoch", "data_train", "data_val", "reg", "loss_val", "lr", "seconds"]
    if history:
        names += [k for k in history[0] if k not in names]
    t = Table(rows=[[row.get(n, np.nan) for n in names] for row in history] if history else None,
              names=names, dtype=[int] + [float] * (len(names) - 1))
    t["data_train"].description = "data term (chi2 per pixel per spectrum), training stars"
    t["data_val"].description = "data term (chi2 per pixel per spectrum), validation stars"
    t["reg"].description = "regularization term per pixel"
    t["lr"].description = "learning rate"
    t["seconds"].description = "wall-clock time of the epoch"
    t["seconds"].unit = "s"
    return t


def copy_emulator(emulator: Emulator) -> Emulator:
    """A deep copy of an emulator (e.g. to keep a snapshot while training continues)."""
    return copy.deepcopy(emulator)
