"""Preparation of survey spectra: one code path for every survey (paper §2.2).

For each spectrum: bad pixels (NaN, ivar ≤ 0, mask bits, cosmic-ray-like upward outliers) get zero
ivar; the per-arm S/N is measured; wavelengths are shifted to the rest frame with the catalogue RV,
λ_rest = λ_obs / (1 + v/c); the arms are resampled onto one grid and combined with inverse-variance
weights where they overlap; the merged spectrum is divided by its pseudo-continuum
(:func:`ddpayne.prepare.continuum.normalise`).
"""
from __future__ import annotations

import logging
import os
import warnings
from collections.abc import Sequence
from dataclasses import dataclass

import astropy.units as u
import numpy as np
from astropy.constants import c
from scipy.ndimage import median_filter

from .. import __version__
from ..flags import Flag, join_reasons
from ..io.batch import SpectrumBatch
from ..io.readers import SurveySpectra
from .continuum import normalise
from .resample import resample

log = logging.getLogger(__name__)

C_KMS = c.to_value(u.km / u.s)


@dataclass
class PrepareSettings:
    """Settings of :func:`prepare`.

    Attributes
    ----------
    continuum_width : float or None
        Gaussian kernel width L (Å); None takes the reader's default (DESI 20 Å, LAMOST 50 Å).
    outlier_sigma : float
        A pixel more than this many σ *above* the running median (and more than
        ``outlier_fraction`` of it) is a cosmic ray or sky residual and is masked. Downward
        deviations are never clipped: they are absorption lines.
    outlier_fraction : float
        See ``outlier_sigma``.
    outlier_window : int
        Running-median window (pixels).
    min_good_fraction : float
        Below this fraction of good pixels among the pixels the model fits (the whole grid, or the
        ``fit_pixels`` of :func:`prepare`) the spectrum is flagged ``FEW_PIXELS``.
    """

    continuum_width: float | None = None
    outlier_sigma: float = 10.0
    outlier_fraction: float = 0.5
    outlier_window: int = 11
    min_good_fraction: float = 0.5


def bad_pixels(flux: np.ndarray, ivar: np.ndarray, mask: np.ndarray | None = None,
               settings: PrepareSettings | None = None) -> np.ndarray:
    """Boolean array of pixels to give zero ivar (True = bad).

    NaN/inf flux or ivar, ``ivar <= 0``, nonzero ``mask``, and upward outliers (see
    :class:`PrepareSettings`).
    """
    settings = settings or PrepareSettings()
    flux = np.atleast_2d(flux)
    ivar = np.atleast_2d(ivar)
    bad = ~np.isfinite(flux) | ~np.isfinite(ivar) | (ivar <= 0)
    if mask is not None:
        bad |= np.atleast_2d(np.asarray(mask)) != 0
    clean = np.where(bad, np.nan, flux)
    # running median ignoring bad pixels: fill them with the spectrum's median first
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN rows are handled just below
        fill = np.nanmedian(clean, axis=1, keepdims=True)
    fill = np.where(np.isfinite(fill), fill, 0.0)
    med = median_filter(np.where(bad, fill, flux), size=(1, settings.outlier_window), mode="nearest")
    sigma = 1.0 / np.sqrt(np.where(bad, 1.0, ivar))
    excess = np.where(bad, 0.0, flux - med)
    bad |= (excess > settings.outlier_sigma * sigma) & (excess > settings.outlier_fraction * np.abs(med))
    return bad


def _snr(flux, ivar, good):
    s = np.where(good, np.abs(flux) * np.sqrt(np.where(good, ivar, 0.0)), np.nan)
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        out = np.nanmedian(s, axis=1)
    return np.where(np.isfinite(out), out, 0.0)


def check_wavelengths(spectra: SurveySpectra) -> None:
    """Raise :class:`~ddpayne.exceptions.SpectrumFileError` naming the arm whose wavelengths do not
    increase strictly (reversed or scrambled arrays would otherwise mask every pixel in the resampling)."""
    from ..exceptions import SpectrumFileError

    for arm, spec in spectra.arms.items():
        wave = spec.spectral_axis.to_value(u.AA)
        step = np.diff(wave)
        if wave.size > 1 and not np.all(step > 0):
            how = ("decreases: the array is reversed" if np.all(step < 0) else
                   f"is not strictly increasing ({int((step <= 0).sum())} steps <= 0)")
            raise SpectrumFileError(spectra.source, f"arm {arm}: the wavelength array {how}; ddpayne needs "
                                                    "wavelengths increasing with the pixel index: fix the "
                                                    "file")


def pixel_flags(meta, good: np.ndarray, source: str = "", min_good_fraction: float = 0.5) -> None:
    """Set ``N_GOOD_PIX`` and the ``ALL_MASKED``/``FEW_PIXELS`` bits (with reasons) of ``meta`` in place.

    Parameters
    ----------
    meta : Table
        One row per spectrum with ``FLAG`` and ``FLAG_REASON``.
    good : array of bool, shape (n_spec, n_pix)
        The usable pixels among those the model fits.
    source : str
        Named in the log.
    min_good_fraction : float
        See :class:`PrepareSettings`.
    """
    good = np.atleast_2d(good)
    n_pix = good.shape[1]
    n_good = good.sum(axis=1)
    flag = np.asarray(meta["FLAG"], dtype=np.int64).copy()
    reasons = [str(r) for r in meta["FLAG_REASON"]]
    for i in range(len(meta)):
        if n_good[i] == 0:
            flag[i] |= int(Flag.ALL_MASKED)
            reasons[i] = join_reasons(reasons[i], "all pixels masked (NaN or zero ivar)")
            log.warning("%s: spectrum %s has no usable pixel", source, meta["ID"][i])
        elif n_good[i] < min_good_fraction * n_pix:
            flag[i] |= int(Flag.FEW_PIXELS)
            reasons[i] = join_reasons(reasons[i], f"only {n_good[i]} of the {n_pix} pixels the model fits "
                                                  "are usable")
    meta["N_GOOD_PIX"] = n_good
    meta["FLAG"] = flag
    meta["FLAG_REASON"] = reasons


def prepare(spectra: SurveySpectra, grid: np.ndarray | None = None, settings: PrepareSettings | None = None,
            continuum_width: float | None = None, reader=None, fit_pixels: np.ndarray | None = None
            ) -> SpectrumBatch:
    """Turn raw survey spectra into a normalised, rest-frame :class:`~ddpayne.io.batch.SpectrumBatch`.

    Every input spectrum keeps its row (in order); problems are recorded in ``FLAG`` and
    ``FLAG_REASON`` (``ALL_MASKED``, ``FEW_PIXELS``, ``NO_RV`` …), never by dropping it.

    Parameters
    ----------
    spectra : SurveySpectra
        What a reader returned.
    grid : ndarray, optional
        Rest-frame vacuum wavelength grid (Å). Default: the reader's (``reader.default_grid()``), or
        one covering all arms at their median pixel spacing.
    settings : PrepareSettings, optional
    continuum_width : float, optional
        Overrides ``settings.continuum_width``.
    reader : SpectrumReader, optional
        Supplies the default grid and continuum width.
    fit_pixels : array of bool, optional
        The grid pixels the model will fit (e.g. wavelength windows cut after the normalisation);
        ``N_GOOD_PIX`` and ``FEW_PIXELS`` count these. Default: the whole grid.

    Raises
    ------
    ddpayne.exceptions.SpectrumFileError
        If an arm's wavelengths do not increase (:func:`check_wavelengths`).
    """
    check_wavelengths(spectra)
    settings = settings or PrepareSettings()
    width = continuum_width or settings.continuum_width or (
        getattr(reader, "continuum_width", None) or 20.0)
    if grid is None and reader is not None:
        grid = reader.default_grid()
    arms = list(spectra.arms.items())
    if grid is None:
        lo = min(s.spectral_axis.to_value(u.AA).min() for _, s in arms)
        hi = max(s.spectral_axis.to_value(u.AA).max() for _, s in arms)
        step = np.median([np.median(np.diff(s.spectral_axis.to_value(u.AA))) for _, s in arms])
        grid = lo + step * np.arange(int((hi - lo) / step) + 1)
    grid = np.asarray(grid, dtype=float)
    meta = spectra.meta.copy(copy_data=True)
    n = len(meta)
    flag = np.asarray(meta["FLAG"], dtype=np.int64).copy()
    reasons = [str(r) for r in meta["FLAG_REASON"]]
    rv = np.asarray(meta["RV"], dtype=float)
    has_rv = np.isfinite(rv)
    scale = 1.0 + np.where(has_rv, rv, 0.0) / C_KMS

    num = np.zeros((n, grid.size))
    wsum = np.zeros((n, grid.size))
    for arm, spec in arms:
        wave = spec.spectral_axis.to_value(u.AA)
        flux = np.atleast_2d(np.asarray(spec.flux.value, dtype=float))
        ivar = np.atleast_2d(np.asarray(spec.uncertainty.array, dtype=float))
        mask = np.atleast_2d(spec.mask) if spec.mask is not None else None
        bad = bad_pixels(flux, ivar, mask, settings)
        ivar = np.where(bad, 0.0, ivar)
        flux = np.where(bad, 0.0, flux)
        meta[f"SNR_{arm}"] = _snr(flux, ivar, ~bad)
        rest = wave[None, :] / scale[:, None]
        f_r, i_r = resample(rest, flux, ivar, grid)
        num += i_r * f_r
        wsum += i_r
    with np.errstate(invalid="ignore", divide="ignore"):
        merged = np.where(wsum > 0, num / np.where(wsum > 0, wsum, 1.0), 0.0)
    norm_flux, norm_ivar, _ = normalise(grid, merged, wsum, width=width)

    good = norm_ivar > 0
    meta["SNR"] = _snr(norm_flux, norm_ivar, good)
    for i in range(n):
        if not has_rv[i] and not flag[i] & Flag.NO_RV:
            flag[i] |= int(Flag.NO_RV)
            reasons[i] = join_reasons(reasons[i], "RV is NaN: not shifted to the rest frame")
    meta["FLAG"] = flag
    meta["FLAG_REASON"] = reasons
    if fit_pixels is not None:
        fit_pixels = np.asarray(fit_pixels, dtype=bool)
        if fit_pixels.shape != grid.shape:
            raise ValueError(f"fit_pixels has shape {fit_pixels.shape}; the grid has {grid.size} pixels")
        good = good[:, fit_pixels]
    pixel_flags(meta, good, spectra.source, settings.min_good_fraction)
    provenance = {
        "survey": spectra.survey, "reader": getattr(reader, "name", None), "source": spectra.source,
        "continuum_width": width, "grid": [float(grid[0]), float(grid[-1]), int(grid.size)],
        "outlier_sigma": settings.outlier_sigma, "ddpayne_version": __version__,
    }
    return SpectrumBatch(grid, norm_flux, norm_ivar, meta, provenance)


def select_stars(batch: SpectrumBatch) -> tuple[SpectrumBatch, "Table"]:
    """Split a batch into its stars and a table of the rejected rows (``ID``, ``SOURCE_FILE``,
    ``FLAG``, ``FLAG_REASON``) so that nothing disappears silently."""
    is_star = np.asarray(batch.meta["IS_STAR"], dtype=bool)
    keep_cols = [c for c in ("ID", "SOURCE_FILE", "FLAG", "FLAG_REASON") if c in batch.meta.colnames]
    rejected = batch.meta[~is_star][keep_cols]
    return batch[np.flatnonzero(is_star)], rejected


def prepare_file(path, reader=None, catalogue=None, grid: np.ndarray | None = None,
                 settings: PrepareSettings | None = None, chunk_size: int = 256,
                 fit_pixels: np.ndarray | None = None):
    """Read and prepare one survey file chunk by chunk (``fit_pixels``: see :func:`prepare`).

    Yields
    ------
    SpectrumBatch
        Prepared spectra of every row (stars and non-stars; use :func:`select_stars`).
    """
    from ..io.spectra import get_reader, iter_spectra

    rd = get_reader(reader, path)
    if catalogue is not None and not hasattr(catalogue, "colnames"):
        catalogue = rd.read_catalogue(catalogue)
    for chunk in iter_spectra(path, rd, catalogue=catalogue, chunk_size=chunk_size):
        yield prepare(chunk, grid=grid, settings=settings, reader=rd, fit_pixels=fit_pixels)


def prepare_files(paths: Sequence, reader=None, catalogue=None, grid=None, settings=None,
                  stars_only: bool = True, chunk_size: int = 256):
    """Prepare several files into one batch; unreadable files are reported, not fatal.

    Returns
    -------
    batch : SpectrumBatch or None
        The prepared spectra (stars only when ``stars_only``); None if nothing could be read.
    rejected : Table
        One row per spectrum or file left out: ``ID``, ``SOURCE_FILE``, ``FLAG``, ``FLAG_REASON``.
    """
    from astropy.table import Table, vstack

    from ..exceptions import SpectrumFileError

    from ..io.spectra import readers_by_file

    readers = readers_by_file(paths, reader)   # refuses files of several surveys up front
    batches, rejected = [], []
    for path, rd in readers.items():
        try:
            if isinstance(rd, Exception):
                raise rd
            for b in prepare_file(path, reader=rd, catalogue=catalogue, grid=grid,
                                  settings=settings, chunk_size=chunk_size):
                if stars_only:
                    b, rej = select_stars(b)
                    rejected.append(rej)
                if len(b):
                    batches.append(b)
        except (SpectrumFileError, FileNotFoundError) as exc:
            log.error("%s", exc)
            name = os.path.basename(os.fspath(path))   # the file is the row's identity
            rejected.append(Table({"ID": [name], "SOURCE_FILE": [name],
                                   "FLAG": np.array([int(Flag.BAD_INPUT)], dtype=np.int64),
                                   "FLAG_REASON": [str(exc)]}))
    rej = vstack(rejected) if rejected else Table(names=("ID", "SOURCE_FILE", "FLAG", "FLAG_REASON"),
                                                  dtype=(str, str, np.int64, str))
    batch = SpectrumBatch.concatenate(batches) if batches else None
    return batch, rej
