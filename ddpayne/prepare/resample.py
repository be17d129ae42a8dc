"""Resampling spectra onto another wavelength grid, keeping track of bad pixels.

Linear interpolation of flux, f = (1 − t) f_j + t f_{j+1}. Its exact per-pixel variance,
(1 − t)² σ_j² + t² σ_{j+1}², is smaller than the input's (half of it at t = ½) because neighbouring output
pixels now share noise (covariance t (1 − t) σ²). Every χ² in ddpayne treats pixels as independent, so that
variance would overstate the information: on a grid of the input's spacing a fit of a spectrum feature
wider than a pixel would get formal errors too small by up to √2 (by √(π/2)^½ ≈ 1.25 on average over
sub-pixel shifts), and repeat spectra of a star at different radial velocities would scatter by more than
their errors. The output variance is therefore the *linearly interpolated* input variance,

    σ² = (1 − t) σ_j² + t σ_{j+1}²,

which is what the sum of the per-pixel variance and the neighbour covariances comes to for features broader
than a pixel (the regime of survey spectra, whose line-spread function spans ≥ 2 pixels), so that formal
errors of fitted labels match the scatter over noise realisations (``tests/test_prepare.py``). A new pixel
is bad (ivar 0) when either neighbouring input pixel is bad or it lies outside the input coverage.
"""
from __future__ import annotations

import numpy as np


def resample(wave_in: np.ndarray, flux: np.ndarray, ivar: np.ndarray, wave_out: np.ndarray
             ) -> tuple[np.ndarray, np.ndarray]:
    """Resample ``flux`` and ``ivar`` from ``wave_in`` to ``wave_out``.

    Parameters
    ----------
    wave_in : ndarray, shape (n_in,) or (n_spec, n_in)
        Input wavelengths (increasing); one row per spectrum when each has its own (e.g. after a
        rest-frame shift).
    flux, ivar : ndarray, shape (n_spec, n_in)
    wave_out : ndarray, shape (n_out,)

    Returns
    -------
    flux_out, ivar_out : ndarray, shape (n_spec, n_out)
        Bad or uncovered output pixels have ``ivar_out == 0`` and ``flux_out == 0`` (NaN-free).
    """
    flux = np.atleast_2d(np.asarray(flux, dtype=float))
    ivar = np.atleast_2d(np.asarray(ivar, dtype=float))
    n_spec, n_in = flux.shape
    wave_in = np.asarray(wave_in, dtype=float)
    waves = np.broadcast_to(wave_in, (n_spec, n_in)) if wave_in.ndim == 1 else wave_in
    wave_out = np.asarray(wave_out, dtype=float)
    good = np.isfinite(flux) & np.isfinite(ivar) & (ivar > 0)
    var = np.where(good, 1.0 / np.where(good, ivar, 1.0), 0.0)
    fl = np.where(good, flux, 0.0)
    out_f = np.zeros((n_spec, wave_out.size))
    out_i = np.zeros((n_spec, wave_out.size))
    for s in range(n_spec):  # one vectorised interpolation per spectrum (not per pixel)
        w = waves[s]
        j = np.searchsorted(w, wave_out, side="right") - 1
        inside = (j >= 0) & (j < n_in - 1)
        j = np.clip(j, 0, n_in - 2)
        t = (wave_out - w[j]) / (w[j + 1] - w[j])
        ok = inside & good[s, j] & good[s, j + 1]
        f = (1 - t) * fl[s, j] + t * fl[s, j + 1]
        v = (1 - t) * var[s, j] + t * var[s, j + 1]   # information-conserving (module docstring)
        out_f[s] = np.where(ok, f, 0.0)
        out_i[s] = np.where(ok & (v > 0), 1.0 / np.where(v > 0, v, 1.0), 0.0)
    return out_f, out_i
