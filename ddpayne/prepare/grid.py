"""Wavelength grids that spectra are merged onto (rest-frame vacuum Å)."""
from __future__ import annotations

import numpy as np

#: DESI's common wavelength solution: 3600–9824 Å in 0.8 Å steps (B, R and Z arms share it).
DESI_WAVE_MIN, DESI_WAVE_MAX, DESI_WAVE_STEP = 3600.0, 9824.0, 0.8


def desi_grid() -> np.ndarray:
    """The merged DESI grid: 7781 pixels from 3600 to 9824 Å at 0.8 Å (vacuum, rest frame)."""
    n = int(round((DESI_WAVE_MAX - DESI_WAVE_MIN) / DESI_WAVE_STEP)) + 1
    return DESI_WAVE_MIN + DESI_WAVE_STEP * np.arange(n)


def log_linear_grid(wave_min: float, wave_max: float, dloglam: float = 1e-4) -> np.ndarray:
    """A grid uniform in log10(λ) (LAMOST, SDSS: ``dloglam = 1e-4``, i.e. 69 km/s per pixel)."""
    n = int(np.floor((np.log10(wave_max) - np.log10(wave_min)) / dloglam)) + 1
    return 10 ** (np.log10(wave_min) + dloglam * np.arange(n))


def lamost_grid() -> np.ndarray:
    """The grid LAMOST low-resolution spectra are merged onto here: 3800–8900 Å, log-linear 1e-4."""
    return log_linear_grid(3800.0, 8900.0)
