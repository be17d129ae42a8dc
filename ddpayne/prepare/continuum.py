"""Pseudo-continuum normalisation by an ivar-weighted Gaussian kernel (paper Eqs. 1–2).

The continuum at pixel i is

.. math:: \\bar f(\\lambda_i) = \\frac{\\sum_j w_j K_{ij} f_j}{\\sum_j w_j K_{ij}},\\qquad
          K_{ij} = \\exp\\left(-\\frac{(\\lambda_j-\\lambda_i)^2}{2L^2}\\right)

with ``w_j`` the inverse variance (zero for bad pixels and for the masked Balmer cores and DIBs).
This one function serves observed spectra, mock spectra and physical gradient spectra alike, so that
everything compared with the data is normalised the same way.
"""
from __future__ import annotations

import functools

import numpy as np
from scipy import sparse

from .masks import continuum_mask

#: The kernel is truncated at this many widths L (the neglected weight is < 1e-9).
KERNEL_TRUNCATION = 6.5


@functools.lru_cache(maxsize=16)
def _kernel_matrix(grid_key: bytes, n: int, width: float) -> sparse.csr_matrix:
    wave = np.frombuffer(grid_key, dtype=float, count=n)
    reach = KERNEL_TRUNCATION * width
    lo = np.searchsorted(wave, wave - reach, side="left")
    hi = np.searchsorted(wave, wave + reach, side="right")
    counts = hi - lo
    rows = np.repeat(np.arange(n), counts)
    cols = np.concatenate([np.arange(a, b) for a, b in zip(lo, hi)])
    vals = np.exp(-0.5 * ((wave[cols] - wave[rows]) / width) ** 2)
    return sparse.csr_matrix((vals, (rows, cols)), shape=(n, n))


def kernel_matrix(wavelength: np.ndarray, width: float) -> sparse.csr_matrix:
    """Sparse Gaussian kernel matrix ``K[i, j]`` for a sorted wavelength grid (any spacing)."""
    wave = np.ascontiguousarray(wavelength, dtype=float)
    if wave.ndim != 1 or np.any(np.diff(wave) <= 0):
        raise ValueError("wavelength grid must be one-dimensional and strictly increasing")
    if not width > 0:
        raise ValueError(f"kernel width must be positive, got {width}")
    return _kernel_matrix(wave.tobytes(), wave.size, float(width))


def pseudo_continuum(wavelength: np.ndarray, flux: np.ndarray, ivar: np.ndarray, width: float = 20.0,
                     mask: np.ndarray | None = None, mask_lines: bool = True) -> np.ndarray:
    """Ivar-weighted Gaussian-kernel pseudo-continuum.

    Parameters
    ----------
    wavelength : ndarray, shape (n_pix,)
        Rest-frame vacuum wavelength (Å), strictly increasing.
    flux, ivar : ndarray, shape (n_pix,) or (n_spec, n_pix)
        Flux and inverse variance; pixels with ``ivar <= 0`` or non-finite values get no weight.
    width : float
        Kernel width L (Å); 20 Å for DESI (paper), ~50 Å for LAMOST.
    mask : ndarray of bool, optional
        Extra pixels to give zero weight (True = excluded), broadcastable to ``flux``.
    mask_lines : bool
        Exclude Balmer-line cores and diffuse interstellar bands (default).

    Returns
    -------
    ndarray
        The continuum, same shape as ``flux``; NaN where no pixel within reach had weight.
    """
    flux = np.asarray(flux, dtype=float)
    ivar = np.asarray(ivar, dtype=float)
    one = flux.ndim == 1
    flux2, ivar2 = np.atleast_2d(flux), np.atleast_2d(ivar)
    good = np.isfinite(flux2) & np.isfinite(ivar2) & (ivar2 > 0)
    if mask is not None:
        good &= ~np.broadcast_to(np.asarray(mask, dtype=bool), good.shape)
    if mask_lines:
        good &= ~continuum_mask(wavelength)[None, :]
    w = np.where(good, ivar2, 0.0)
    wf = np.where(good, flux2 * w, 0.0)
    k = kernel_matrix(wavelength, width)
    num = (k @ wf.T).T
    den = (k @ w.T).T
    with np.errstate(invalid="ignore", divide="ignore"):
        cont = np.where(den > 0, num / np.where(den > 0, den, 1.0), np.nan)
    return cont[0] if one else cont


def normalise(wavelength: np.ndarray, flux: np.ndarray, ivar: np.ndarray, width: float = 20.0,
              mask: np.ndarray | None = None, mask_lines: bool = True
              ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Divide by the pseudo-continuum.

    Returns
    -------
    norm_flux, norm_ivar, continuum : ndarray
        ``flux / continuum``, ``ivar * continuum**2`` (0 for bad pixels, where the continuum is not
        positive, or where ``mask`` is set) and the continuum. Bad pixels keep a finite flux of 1 so
        that arrays stay NaN-free; their zero ivar is what marks them.
    """
    flux = np.asarray(flux, dtype=float)
    ivar = np.asarray(ivar, dtype=float)
    cont = pseudo_continuum(wavelength, flux, ivar, width=width, mask=mask, mask_lines=mask_lines)
    ok = np.isfinite(cont) & (cont > 0) & np.isfinite(flux) & np.isfinite(ivar) & (ivar > 0)
    if mask is not None:
        ok &= ~np.broadcast_to(np.asarray(mask, dtype=bool), ok.shape)
    safe = np.where(ok, cont, 1.0)
    norm_flux = np.where(ok, flux / safe, 1.0)
    norm_ivar = np.where(ok, ivar * safe**2, 0.0)
    return norm_flux, norm_ivar, cont
