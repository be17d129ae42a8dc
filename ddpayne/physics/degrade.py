"""Instrument degradation of high-resolution synthetic spectra, shared by gradients and mocks.

:func:`degrade_to_survey` takes a high-resolution normalised spectrum on vacuum wavelengths and returns
what the data path would produce from an observed spectrum of that star: convolved with the instrument
line-spread function, sampled on the survey grid, and divided by the *same* pseudo-continuum
(:func:`ddpayne.prepare.continuum.normalise`, L = 20 Å for DESI) as observed spectra.

**LSF options**:

* a Gaussian of FWHM = λ/R(λ), with R a number, a callable ``R(λ)``, or the named presets
  ``'desi'`` (R rising linearly from 2000 at 3600 Å to 5500 at 9824 Å, as the bundled
  ``shared/data/sun`` spectrum was made) and ``'lamost'`` (R = 1800);
* DESI's per-arm banded RESOLUTION matrix: :func:`apply_resolution_matrix` (the high-resolution spectrum
  is first averaged into the arm's pixels, then multiplied by the matrix, as DESI's extraction model
  does).
"""
from __future__ import annotations

import functools
import hashlib
from collections.abc import Callable

import numpy as np
from scipy import sparse

from ..prepare.continuum import normalise
from ..prepare.grid import desi_grid

FWHM_TO_SIGMA = 1.0 / (2.0 * np.sqrt(2.0 * np.log(2.0)))
#: The Gaussian kernel is truncated at this many sigmas (neglected weight < 6e-8).
KERNEL_SIGMAS = 5.5


def desi_resolution(wave: np.ndarray) -> np.ndarray:
    """DESI-like resolving power: linear from R = 2000 at 3600 Å to R = 5500 at 9824 Å."""
    wave = np.asarray(wave, dtype=float)
    return 2000.0 + (wave - 3600.0) * (5500.0 - 2000.0) / (9824.0 - 3600.0)


def lamost_resolution(wave: np.ndarray) -> np.ndarray:
    """LAMOST low-resolution spectrograph: R ≈ 1800 (constant)."""
    return np.full(np.shape(wave), 1800.0)


def _resolution_function(resolution) -> Callable[[np.ndarray], np.ndarray]:
    if isinstance(resolution, str):
        presets = {"desi": desi_resolution, "lamost": lamost_resolution}
        if resolution.lower() not in presets:
            raise ValueError(f"unknown resolution preset {resolution!r}; use one of {sorted(presets)}, "
                             f"a number or a callable R(wavelength)")
        return presets[resolution.lower()]
    if callable(resolution):
        return resolution
    r = float(resolution)
    if not r > 0:
        raise ValueError(f"resolving power must be positive, got {resolution}")
    return lambda w: np.full(np.shape(w), r)


@functools.lru_cache(maxsize=8)
def _lsf_matrix_cached(key: str, hires: bytes, n_hi: int, grid: bytes, n_grid: int,
                       sigma: bytes) -> sparse.csr_matrix:
    wh = np.frombuffer(hires, dtype=float, count=n_hi)
    wg = np.frombuffer(grid, dtype=float, count=n_grid)
    sg = np.frombuffer(sigma, dtype=float, count=n_grid)
    # trapezoid weights of the (possibly non-uniform) high-resolution grid
    dw = np.empty_like(wh)
    dw[1:-1] = 0.5 * (wh[2:] - wh[:-2])
    dw[0], dw[-1] = 0.5 * (wh[1] - wh[0]), 0.5 * (wh[-1] - wh[-2])
    lo = np.searchsorted(wh, wg - KERNEL_SIGMAS * sg, side="left")
    hi = np.searchsorted(wh, wg + KERNEL_SIGMAS * sg, side="right")
    counts = hi - lo
    rows = np.repeat(np.arange(n_grid), counts)
    offs = np.arange(counts.sum()) - np.repeat(np.cumsum(counts) - counts, counts)
    cols = np.repeat(lo, counts) + offs
    vals = np.exp(-0.5 * ((wh[cols] - wg[rows]) / sg[rows]) ** 2) * dw[cols]
    m = sparse.csr_matrix((vals, (rows, cols)), shape=(n_grid, n_hi))
    norm = np.asarray(m.sum(axis=1)).ravel()
    # rows whose kernel is not fully covered by the high-resolution range are left empty (NaN later)
    full = (wg - KERNEL_SIGMAS * sg >= wh[0]) & (wg + KERNEL_SIGMAS * sg <= wh[-1])
    scale = np.where(full & (norm > 0), 1.0 / np.where(norm > 0, norm, 1.0), 0.0)
    return sparse.diags(scale) @ m


def lsf_matrix(wave_hires: np.ndarray, grid: np.ndarray, resolution="desi") -> sparse.csr_matrix:
    """Sparse matrix M such that ``M @ flux_hires`` is the Gaussian-LSF-convolved flux sampled at ``grid``.

    Rows for grid pixels whose kernel extends beyond the high-resolution range are all zero.
    """
    wh = np.ascontiguousarray(wave_hires, dtype=float)
    wg = np.ascontiguousarray(grid, dtype=float)
    if wh.ndim != 1 or np.any(np.diff(wh) <= 0):
        raise ValueError("high-resolution wavelengths must be 1-D and strictly increasing")
    if wg.ndim != 1 or np.any(np.diff(wg) <= 0):
        raise ValueError("survey grid must be 1-D and strictly increasing")
    sigma = np.ascontiguousarray(wg / _resolution_function(resolution)(wg) * FWHM_TO_SIGMA, dtype=float)
    if np.any(~np.isfinite(sigma) | (sigma <= 0)):
        raise ValueError("resolving power must be finite and positive over the grid")
    key = hashlib.sha1(wh.tobytes() + wg.tobytes() + sigma.tobytes()).hexdigest()
    return _lsf_matrix_cached(key, wh.tobytes(), wh.size, wg.tobytes(), wg.size, sigma.tobytes())


def convolve_to_grid(wave_hires, flux_hires, grid, resolution="desi") -> np.ndarray:
    """Gaussian-LSF convolution sampled on ``grid`` (no normalisation). NaN where not covered."""
    m = lsf_matrix(wave_hires, grid, resolution)
    f = np.asarray(flux_hires, dtype=float)
    out = (m @ f.T).T if f.ndim == 2 else m @ f
    covered = np.asarray(m.getnnz(axis=1) > 0)
    return np.where(covered, out, np.nan)


def pixel_average(wave_hires, flux_hires, pixel_wave) -> np.ndarray:
    """Average the high-resolution flux within each pixel (edges halfway between pixel centres)."""
    wh = np.asarray(wave_hires, float)
    fh = np.asarray(flux_hires, float)
    pw = np.asarray(pixel_wave, float)
    edges = np.concatenate([[pw[0] - 0.5 * (pw[1] - pw[0])], 0.5 * (pw[1:] + pw[:-1]),
                            [pw[-1] + 0.5 * (pw[-1] - pw[-2])]])
    # integral of the linear interpolant via cumulative trapezoid
    cum = np.concatenate([[0.0], np.cumsum(0.5 * (fh[1:] + fh[:-1]) * np.diff(wh))])
    ce = np.interp(edges, wh, cum)
    out = np.diff(ce) / np.diff(edges)
    out[(edges[:-1] < wh[0]) | (edges[1:] > wh[-1])] = np.nan
    return out


def resolution_matrix(rdata: np.ndarray) -> sparse.csr_matrix:
    """DESI's banded RESOLUTION array ``(ndiag, npix)`` as a sparse matrix.

    Same convention as desispec's ``Resolution``: row ``d`` of ``rdata`` holds diagonal offset
    ``ndiag//2 - d``.
    """
    rdata = np.asarray(rdata, dtype=float)
    if rdata.ndim != 2 or rdata.shape[0] % 2 != 1:
        raise ValueError(f"RESOLUTION data must have shape (ndiag odd, npix), got {rdata.shape}")
    ndiag, npix = rdata.shape
    offsets = np.arange(ndiag // 2, -(ndiag // 2) - 1, -1)
    return sparse.dia_matrix((rdata, offsets), shape=(npix, npix)).tocsr()


def apply_resolution_matrix(wave_hires, flux_hires, arm_wave, rdata) -> np.ndarray:
    """Degrade a high-resolution spectrum with one arm's DESI RESOLUTION matrix.

    The spectrum is averaged into the arm's pixels and multiplied by the matrix. Returns flux on
    ``arm_wave`` (NaN where the high-resolution spectrum does not cover a pixel or its LSF).
    """
    arm_wave = np.asarray(arm_wave, float)
    r = resolution_matrix(rdata)
    if r.shape[0] != arm_wave.size:
        raise ValueError(f"RESOLUTION has {r.shape[0]} pixels but the arm grid {arm_wave.size}")
    pix = pixel_average(wave_hires, flux_hires, arm_wave)
    bad = ~np.isfinite(pix)
    out = r @ np.where(bad, 0.0, pix)
    reach = (r != 0).astype(float) @ bad.astype(float)
    return np.where(reach > 0, np.nan, out)


def gaussian_resolution_matrix(arm_wave: np.ndarray, resolution="desi", ndiag: int = 11) -> np.ndarray:
    """A DESI-format banded RESOLUTION array for a Gaussian LSF of FWHM λ/R(λ) (rows sum to 1).

    Used by the mock survey to write realistic ``*_RESOLUTION`` HDUs.
    """
    w = np.asarray(arm_wave, float)
    sig = w / _resolution_function(resolution)(w) * FWHM_TO_SIGMA
    dlam = np.gradient(w)
    offsets = np.arange(ndiag // 2, -(ndiag // 2) - 1, -1)
    out = np.zeros((ndiag, w.size))
    # diagonal with offset k at column j couples row j - k with column j
    for d, k in enumerate(offsets):
        rows = np.arange(w.size) - k
        ok = (rows >= 0) & (rows < w.size)
        rr = np.clip(rows, 0, w.size - 1)
        out[d] = np.where(ok, np.exp(-0.5 * (k * dlam / sig[rr]) ** 2), 0.0)
    r = resolution_matrix(out)
    rowsum = np.asarray(r.sum(axis=1)).ravel()
    for d, k in enumerate(offsets):
        rows = np.clip(np.arange(w.size) - k, 0, w.size - 1)
        out[d] = out[d] / rowsum[rows]
    return out


def degrade_to_survey(wave_vac_hires: np.ndarray, flux_hires: np.ndarray, grid: np.ndarray | None = None,
                      resolution="desi", continuum_width: float = 20.0, normalise_continuum: bool = True
                      ) -> np.ndarray:
    """Convolve, resample and continuum-normalise a high-resolution spectrum like the survey data.

    Parameters
    ----------
    wave_vac_hires : ndarray, shape (n_hi,)
        Vacuum wavelengths (Å), strictly increasing (convert line-list air wavelengths with
        :func:`ddpayne.physics.airvac.air_to_vacuum` first).
    flux_hires : ndarray, shape (n_hi,) or (n_spec, n_hi)
        Flux (normalised to the true continuum, or absolute).
    grid : ndarray, optional
        Survey grid (vacuum Å). Default: :func:`ddpayne.prepare.grid.desi_grid`.
    resolution : float, callable or {'desi', 'lamost'}
        Resolving power R(λ) of the Gaussian LSF (FWHM = λ/R).
    continuum_width : float
        L (Å) of the pseudo-continuum kernel: 20 for DESI (as the data), ~50 for LAMOST.
    normalise_continuum : bool
        Divide by the pseudo-continuum (default True). False returns the convolved flux.

    Returns
    -------
    ndarray
        Flux on ``grid``; NaN for pixels the high-resolution spectrum does not cover (and, after
        normalisation, 1.0 where no continuum could be computed, as the data path does).
    """
    grid = desi_grid() if grid is None else np.asarray(grid, float)
    conv = convolve_to_grid(wave_vac_hires, flux_hires, grid, resolution)
    if not normalise_continuum:
        return conv
    ivar = np.where(np.isfinite(conv), 1.0, 0.0)
    norm, nivar, _ = normalise(grid, np.where(np.isfinite(conv), conv, 1.0), ivar, width=continuum_width)
    return np.where(nivar > 0, norm, np.nan)


def degrade_with_resolution_matrices(wave_vac_hires: np.ndarray, flux_hires: np.ndarray,
                                     arms: dict, grid: np.ndarray | None = None,
                                     continuum_width: float = 20.0) -> np.ndarray:
    """Like :func:`degrade_to_survey`, but with DESI's per-arm RESOLUTION matrices instead of a Gaussian.

    Parameters
    ----------
    arms : dict
        ``{arm_name: (arm_wavelength, resolution_data)}`` with ``resolution_data`` of shape
        ``(ndiag, n_arm_pix)`` (one fibre's ``B_RESOLUTION[i]`` etc. from a coadd file).
    grid : ndarray, optional
        Merged grid (default DESI's). Each arm is degraded on its own pixels, resampled onto ``grid``
        (:func:`ddpayne.prepare.resample.resample`) and the arms are averaged where they overlap (equal
        weights: the spectrum is noiseless), then normalised as the data.
    """
    from ..prepare.resample import resample
    grid = desi_grid() if grid is None else np.asarray(grid, float)
    num = np.zeros(grid.size)
    den = np.zeros(grid.size)
    for name, (arm_wave, rdata) in arms.items():
        f = apply_resolution_matrix(wave_vac_hires, flux_hires, arm_wave, rdata)
        ok = np.isfinite(f)
        fo, io = resample(np.asarray(arm_wave, float), np.where(ok, f, 0.0)[None], ok.astype(float)[None], grid)
        w = (io[0] > 0).astype(float)
        num += w * fo[0]
        den += w
    conv = np.where(den > 0, num / np.where(den > 0, den, 1.0), np.nan)
    ivar = np.where(np.isfinite(conv), 1.0, 0.0)
    norm, nivar, _ = normalise(grid, np.where(np.isfinite(conv), conv, 1.0), ivar, width=continuum_width)
    return np.where(nivar > 0, norm, np.nan)
