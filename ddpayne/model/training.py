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
from .regularizer import Regularizer

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
        With a plugin name: the plugin's options, passed unchanged to its
        :meth:`~ddpayne.model.regularizer.Regularizer.from_options`, which validates them (``kurucz``:
        ``{'gradients': 'file.fits', 'weights': {...}}``).
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
    """The training run: check the inputs, build the model and regularizer, run the epochs, finish."""
    from tqdm.auto import tqdm

    flux, ivar, lab, label_names, ids = _training_arrays(batch, labels, label_names, star_ids)
    train_idx, val_idx = split_by_star(ids, settings.validation_fraction, settings.seed)
    emu, emu_new = _make_emulator(emulator, emulator_options, label_names, batch.wavelength, lab, settings)
    reg = _make_regularizer(regularizer, regularizer_options, emu, lab[train_idx])
    _check_determined(emu, reg, len(train_idx), label_names, settings)
    reg_info = reg.describe()
    run = _TrainingRun.start(emu, reg, flux, ivar, lab, train_idx, val_idx, settings)
    log.info("training %s on %d spectra (%d train / %d validation, %d stars), %d pixels in %d chunk(s)",
             emu, len(lab), len(train_idx), len(val_idx), np.unique(ids).size, run.n_pix, len(run.chunks))

    fingerprint = {
        "settings": settings.fingerprint(), "emulator": emu.name or type(emu).__name__,
        "emulator_options": json.loads(json.dumps(dict(emulator_options or {}), default=str)),
        "regularizer": json.loads(json.dumps(reg_info, default=str)),
        "data": _hash_arrays(batch.wavelength, flux, ivar, lab, ids.astype("U")),
        "label_names": list(label_names), "checkpoint_version": CHECKPOINT_VERSION,
    }
    ckpt = Path(checkpoint_dir) / "checkpoint.pt" if checkpoint_dir is not None else None
    progress = _Progress()
    if ckpt is not None and resume and ckpt.exists():
        progress = _load_checkpoint(ckpt, fingerprint, run)
    elif emu_new:
        emu.initialize(_mean_training_flux(run))

    bar = tqdm(range(progress.epoch, settings.epochs), desc="training", unit="epoch",
               disable=not settings.progress, initial=progress.epoch, total=settings.epochs)
    for epoch in bar:
        row = _epoch(run, epoch)
        progress.record(epoch, row, emu)
        bar.set_postfix(data=f"{row['data_train']:.3g}", val=f"{row['data_val']:.3g}",
                        reg=f"{row['reg']:.3g}")
        if ckpt is not None and (progress.epoch % settings.checkpoint_every == 0
                                 or progress.epoch == settings.epochs):
            _save_checkpoint(ckpt, fingerprint, run, progress)
        if callback is not None:
            callback(epoch, dict(row))
    bar.close()

    _finish(run, progress, fingerprint, reg_info, len(np.unique(ids)), label_names)
    if output is not None:
        emu.save(output)
    return emu, history_table(progress.history)


# ---------------------------------------------------------------------------------------- setup steps
def _training_arrays(batch, labels, label_names, star_ids):
    """Checked float32 copies of flux and ivar (bad pixels: ivar 0), the labels and the star ids.

    Raises
    ------
    TrainingSetError
        NaN/inf labels, NaN/inf flux where ivar > 0, labels constant over the training set, bad shapes.
    """
    n_spec = batch.flux.shape[0]
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
    const = [n for n, lo, hi in zip(label_names, lab.min(axis=0), lab.max(axis=0)) if not hi > lo]
    if const:
        raise TrainingSetError(f"labels {const} have the same value for every training spectrum: drop them "
                               f"from label_names or add stars that vary them")
    return flux, ivar, lab, label_names, ids


def _make_emulator(emulator, options, label_names, wavelength, lab, settings) -> tuple[Emulator, bool]:
    """A new emulator by plugin name, or the given one checked and moved to the device (and whether it
    is new: a new one is initialised from the mean training flux)."""
    if isinstance(emulator, str):
        emu = registry.create("emulator", emulator, label_names=label_names, wavelength=wavelength,
                              label_min=lab.min(axis=0), label_max=lab.max(axis=0), seed=settings.seed,
                              dtype=settings.dtype, device=settings.device, **dict(options or {}))
        return emu, True
    if tuple(emulator.label_names) != label_names:
        raise IncompatibleModelError(f"emulator labels {emulator.label_names} differ from the training "
                                     f"labels {label_names}")
    emulator.to(device=settings.device)
    emulator.requires_grad_(True)
    return emulator, False


def _make_regularizer(regularizer, options, emu, train_labels) -> Regularizer:
    """The regularizer (plugin name, instance or None), given the training labels and checked against
    the emulator."""
    if regularizer is None:
        regularizer = "none"
    if isinstance(regularizer, str):
        regularizer = registry.get("regularizer", regularizer).from_options(options)
    regularizer.set_training_labels(train_labels)
    regularizer.check_compatible(emu)
    return regularizer


def _check_determined(emu, reg, n_train: int, label_names, settings) -> None:
    """Raise TrainingSetError when each pixel's model has more free parameters than constraints."""
    n_par = emu.n_parameters_per_pixel
    n_con = n_train + int(reg.n_constraints_per_pixel or 0)
    if n_par and n_con < n_par and not settings.allow_underdetermined:
        extra = f" + {n_con - n_train} gradient constraints" if n_con > n_train else ""
        raise TrainingSetError(
            f"the training set has {n_train} training spectra{extra}"
            f" = {n_con} constraints per pixel, fewer than the {n_par} free parameters of each pixel's "
            f"model ({type(emu).__name__} with {len(label_names)} labels): add training stars, use a "
            f"smaller network (e.g. emulator_options={{'n_hidden': 10}}), or set "
            f"TrainingSettings(allow_underdetermined=True) to train anyway")


def pixel_chunks(emu, reg, settings: TrainingSettings, n_pix: int, bytes_per_value: int) -> list:
    """The pixel slices evaluated at once (``[None]``: all pixels together).

    The chunk bounds the activations of one evaluation (``n_hidden`` × rows × pixels, rows: the larger
    of the batch size and the regularizer's :attr:`~ddpayne.model.regularizer.Regularizer.rows_per_step`)
    by ``settings.memory_budget_mb``, unless ``settings.pixel_chunk`` fixes it. Emulators without
    :attr:`~ddpayne.model.emulator.Emulator.pixel_slices` are evaluated on all pixels at once.
    """
    if settings.pixel_chunk:
        chunk = int(settings.pixel_chunk)
    else:
        rows = max(settings.batch_size, int(reg.rows_per_step or 0))
        chunk = max(16, int(settings.memory_budget_mb * 2**20
                            / (8 * emu.hidden_width * rows * bytes_per_value)))
    if not emu.pixel_slices or chunk >= n_pix:
        return [None]
    return [slice(s, min(s + chunk, n_pix)) for s in range(0, n_pix, chunk)]


def _uses_manual_backward(emu, settings: TrainingSettings) -> bool:
    """Whether the emulator back-propagates by hand (``backprop``: manual, or auto on a CPU)."""
    return bool(emu.manual_backward) and (
        settings.backprop == "manual" or (settings.backprop == "auto" and emu.device.type == "cpu"))


@dataclass
class _TrainingRun:
    """What the steps of one training run share: model, regularizer, optimiser, data on the device."""

    emu: Emulator
    reg: Regularizer
    settings: TrainingSettings
    optimizer: Any
    generator: Any
    flux: Any
    ivar: Any
    labels: Any
    train: Any
    val: Any
    chunks: list
    manual: bool

    @classmethod
    def start(cls, emu, reg, flux, ivar, lab, train_idx, val_idx, settings) -> _TrainingRun:
        import torch

        dev, dt = emu.device, emu.dtype
        t_flux = torch.as_tensor(flux, dtype=dt, device=dev)
        return cls(emu=emu, reg=reg, settings=settings,
                   optimizer=torch.optim.Adam(emu.parameters(), lr=settings.learning_rate),
                   generator=torch.Generator().manual_seed(settings.seed), flux=t_flux,
                   ivar=torch.as_tensor(ivar, dtype=dt, device=dev),
                   labels=torch.as_tensor(lab, dtype=dt, device=dev),
                   train=torch.as_tensor(train_idx, device=dev), val=torch.as_tensor(val_idx, device=dev),
                   chunks=pixel_chunks(emu, reg, settings, flux.shape[1], t_flux.element_size()),
                   manual=_uses_manual_backward(emu, settings))

    @property
    def n_pix(self) -> int:
        return self.flux.shape[1]


def _mean_training_flux(run: _TrainingRun) -> np.ndarray:
    """ivar-weighted mean training flux per pixel (plain mean where no pixel is valid)."""
    import torch

    w = run.ivar[run.train]
    mean = (run.flux[run.train] * w).sum(0) / w.sum(0).clamp_min(1e-30)
    mean = torch.where(w.sum(0) > 0, mean, run.flux[run.train].mean(0))
    return mean.double().cpu().numpy()


# ---------------------------------------------------------------------------------------- the loss
def _data_term(run: _TrainingRun, idx, pixels, grad: bool):
    """Σ ivar (f(ℓ) − f_obs)² over the spectra ``idx`` and the pixel slice ``pixels`` (None: all)."""
    import torch

    sl = slice(None) if pixels is None else pixels
    kw = {} if pixels is None else {"pixels": pixels}
    with torch.set_grad_enabled(grad):
        f = run.emu.flux(run.labels[idx], **kw)
        return ((f - run.flux[idx][:, sl]) ** 2 * run.ivar[idx][:, sl]).sum()


def _penalty(run: _TrainingRun, pixels):
    """The regularizer's term over ``pixels`` (the whole term when it is not pixelwise)."""
    if run.reg.pixelwise and pixels is not None:
        return run.reg.penalty(run.emu, pixels=pixels)
    return run.reg.penalty(run.emu)


def _autograd_gradients(run: _TrainingRun, idx) -> tuple[float, float]:
    """Accumulate ∂(data/n + R)/∂θ chunk by chunk with autograd; return (data/n, R)."""
    nb = len(idx)
    step_data = step_reg = 0.0
    for px in run.chunks:
        loss_d = _data_term(run, idx, px, True) / nb
        loss = loss_d
        if run.reg.pixelwise:
            loss_r = _penalty(run, px)
            loss = loss + loss_r
            step_reg += float(loss_r.detach())
        if loss.requires_grad:
            loss.backward()
        step_data += float(loss_d.detach())
    if not run.reg.pixelwise:
        step_reg += _penalty_with_autograd(run)
    return step_data, step_reg


def _manual_gradients(run: _TrainingRun, idx) -> tuple[float, float]:
    """Accumulate the gradients with the emulator's hand-written back-propagation (the regularizer's
    own when it has one, else autograd on its term); return (data/n, R)."""
    step_data = run.emu.data_term_backward(run.labels[idx], run.flux[idx], run.ivar[idx],
                                           scale=1.0 / len(idx))
    value = run.reg.penalty_backward(run.emu)
    step_reg = float(value) if value is not None else _penalty_with_autograd(run)
    return step_data, step_reg


def _penalty_with_autograd(run: _TrainingRun) -> float:
    """Accumulate ∂R/∂θ with autograd (chunk by chunk when pixelwise); return R."""
    total = 0.0
    for px in (run.chunks if run.reg.pixelwise else [None]):
        loss_r = _penalty(run, px)
        if loss_r.requires_grad:
            loss_r.backward()
        total += float(loss_r.detach())
    return total


# ---------------------------------------------------------------------------------------- step and epoch
def _step(run: _TrainingRun, idx, step: int) -> tuple[float, float]:
    """One optimiser step on the spectra ``idx``; returns the step's data term (per spectrum) and R."""
    run.optimizer.zero_grad(set_to_none=True)
    run.reg.set_step(step)   # e.g. the reference subset of a stochastic regularizer
    terms = _manual_gradients(run, idx) if run.manual else _autograd_gradients(run, idx)
    run.optimizer.step()
    return terms


def _epoch(run: _TrainingRun, epoch: int) -> dict:
    """One pass over the training stars in a seeded random order; returns the history row."""
    import torch

    t_start = time.perf_counter()
    s = run.settings
    lr = s.learning_rate_at(epoch)
    for group in run.optimizer.param_groups:
        group["lr"] = lr
    n_train = len(run.train)
    perm = run.train[torch.randperm(n_train, generator=run.generator).to(run.emu.device)]
    n_batches = -(-n_train // s.batch_size)
    data_sum = reg_sum = 0.0
    n_steps = 0
    for b0 in range(0, n_train, s.batch_size):
        idx = perm[b0:b0 + s.batch_size]
        step_data, step_reg = _step(run, idx, epoch * n_batches + n_steps)
        data_sum += step_data * len(idx)
        reg_sum += step_reg
        n_steps += 1
    data_train = data_sum / n_train / run.n_pix
    reg_mean = reg_sum / max(n_steps, 1) / run.n_pix
    data_val = _data_per_pixel(run, run.val, run.chunks)
    loss_val = (data_val if len(run.val) else data_train) + reg_mean
    row = {"epoch": epoch, "data_train": data_train, "data_val": data_val, "reg": reg_mean,
           "loss_val": loss_val, "lr": lr, "seconds": time.perf_counter() - t_start}
    row.update(_tracked_pixel_terms(run))   # not timed
    return row


def _data_per_pixel(run: _TrainingRun, idx, chunks) -> float:
    """The data term of the spectra ``idx`` per spectrum and per pixel of ``chunks`` (NaN if none)."""
    if not len(idx):
        return float("nan")
    n_pix = sum((run.n_pix if px is None else px.stop - px.start) for px in chunks)
    total = 0.0
    for a in range(0, len(idx), run.settings.batch_size):
        total += sum(float(_data_term(run, idx[a:a + run.settings.batch_size], px, False)) for px in chunks)
    return total / len(idx) / n_pix


def _tracked_pixel_terms(run: _TrainingRun) -> dict:
    """The loss terms of each of ``settings.track_pixels`` (paper Fig. 3: one pixel's loss curve)."""
    import torch

    row = {}
    for px in run.settings.track_pixels:
        one = slice(int(px), int(px) + 1)
        with torch.no_grad():
            row[f"data_train_{px}"] = _data_per_pixel(run, run.train, [one])
            row[f"data_val_{px}"] = _data_per_pixel(run, run.val, [one])
            row[f"reg_{px}"] = (float(run.reg.penalty(run.emu, pixels=one)) if run.reg.pixelwise
                                else float("nan"))
    return row


# ---------------------------------------------------------------------------------------- bookkeeping
@dataclass
class _Progress:
    """Where a run stands: epochs done, history rows and the best model so far."""

    epoch: int = 0
    history: list = dataclasses.field(default_factory=list)
    best: dict = dataclasses.field(default_factory=lambda: {"loss": math.inf, "epoch": -1, "state": None})

    def record(self, epoch: int, row: dict, emu) -> None:
        """Add an epoch's row; keep a copy of the model if it has the lowest validation loss so far."""
        self.history.append(row)
        self.epoch = epoch + 1
        if row["loss_val"] < self.best["loss"]:
            self.best = {"loss": row["loss_val"], "epoch": epoch,
                         "state": {k: v.detach().cpu().clone() for k, v in emu.state_dict().items()}}


def _save_checkpoint(ckpt: Path, fingerprint: dict, run: _TrainingRun, progress: _Progress) -> None:
    """Write model, optimiser, RNG, history and best model atomically (and ``history.ecsv``)."""
    import torch

    content = {"fingerprint": fingerprint, "epoch": progress.epoch, "emulator": run.emu.state_dict(),
               "optimizer": run.optimizer.state_dict(), "generator": run.generator.get_state(),
               "history": progress.history, "best": progress.best, "ddpayne_version": __version__}
    with atomic_path(ckpt) as tmp:
        torch.save(content, tmp)
    if progress.history:
        with atomic_path(ckpt.parent / "history.ecsv") as tmp:
            history_table(progress.history).write(tmp, format="ascii.ecsv")


def _load_checkpoint(ckpt: Path, fingerprint: dict, run: _TrainingRun) -> _Progress:
    """Restore a run from its checkpoint (raises IncompatibleModelError for another run's)."""
    import torch

    state = torch.load(ckpt, map_location="cpu", weights_only=True)
    if state.get("fingerprint") != fingerprint:
        raise IncompatibleModelError(
            f"checkpoint {ckpt} belongs to another training run (other data, labels, settings, "
            f"emulator or regularizer): delete it, use another checkpoint_dir, or pass resume=False")
    run.emu.load_state_dict(state["emulator"])
    run.optimizer.load_state_dict(state["optimizer"])
    run.generator.set_state(state["generator"])
    log.info("resumed from %s at epoch %d", ckpt, state["epoch"])
    return _Progress(epoch=state["epoch"], history=state["history"], best=state["best"])


def _finish(run: _TrainingRun, progress: _Progress, fingerprint: dict, reg_info: dict, n_stars: int,
            label_names) -> None:
    """Load the best-validation weights, make the model inference-only and fill in its provenance."""
    emu = run.emu
    if progress.best["state"] is not None:
        emu.load_state_dict(progress.best["state"])
    emu.requires_grad_(False)   # the result is for inference: no autograd graphs in the fitters
    run.optimizer.zero_grad(set_to_none=True)
    emu.provenance = {
        "ddpayne_version": __version__, "training_settings": dataclasses.asdict(run.settings),
        "emulator_options": fingerprint["emulator_options"], "regularizer": reg_info,
        "regularizer_checksum": reg_info.get("checksum"), "best_epoch": int(progress.best["epoch"]),
        "best_loss_val": float(progress.best["loss"]), "n_train": int(len(run.train)),
        "n_val": int(len(run.val)), "n_stars": int(n_stars), "data_sha256": fingerprint["data"],
        "label_units": {n: LABEL_UNIT_STRINGS.get(n, "") for n in label_names},
    }


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
