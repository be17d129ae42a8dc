"""Wavelength windows excluded from the pseudo-continuum or from the fit (vacuum Å, rest frame).

Balmer and Paschen line centres: NIST vacuum wavelengths. Diffuse interstellar bands: the strong DIBs
of Hobbs et al. (2008), converted to vacuum.
"""
from __future__ import annotations

import numpy as np

#: Balmer-line centres (vacuum Å): Hα … H10.
BALMER_VAC = np.array([6564.61, 4862.68, 4341.69, 4102.89, 3971.20, 3890.17, 3836.49, 3798.98])
#: Paschen-line centres (vacuum Å) that fall in DESI's Z arm: P9 … P17.
PASCHEN_VAC = np.array([9231.55, 9017.39, 8865.22, 8752.88, 8667.40, 8600.75, 8547.73, 8504.83,
                        8469.58])
#: Strong diffuse interstellar bands (vacuum Å).
DIB_VAC = np.array([4429.3, 5781.6, 5798.8, 6198.7, 6285.8, 6615.6, 8623.1])

#: Half-width (Å) masked around Balmer-line cores in the continuum estimate.
BALMER_CORE_HALF_WIDTH = 8.0
#: Half-width (Å) masked around DIBs.
DIB_HALF_WIDTH = 4.0
#: Half-width (Å) of hydrogen-line windows excluded from gradient regularization and mock-vs-model
#: comparisons (MOOG lacks Stark wings).
HYDROGEN_HALF_WIDTH = 15.0


def window_mask(wavelength: np.ndarray, centres: np.ndarray, half_width: float) -> np.ndarray:
    """Boolean array, True where ``wavelength`` lies within ``half_width`` of any centre."""
    wavelength = np.asarray(wavelength, dtype=float)
    out = np.zeros(wavelength.shape, dtype=bool)
    for c in np.atleast_1d(centres):
        out |= np.abs(wavelength - c) <= half_width
    return out


def continuum_mask(wavelength: np.ndarray, balmer_half_width: float = BALMER_CORE_HALF_WIDTH,
                   dib_half_width: float = DIB_HALF_WIDTH) -> np.ndarray:
    """Pixels given zero weight in the pseudo-continuum: Balmer cores and DIBs (paper §2.2)."""
    return (window_mask(wavelength, BALMER_VAC, balmer_half_width)
            | window_mask(wavelength, DIB_VAC, dib_half_width))


def hydrogen_mask(wavelength: np.ndarray, half_width: float = HYDROGEN_HALF_WIDTH) -> np.ndarray:
    """Pixels near Balmer or Paschen lines (True = masked)."""
    return window_mask(wavelength, np.concatenate([BALMER_VAC, PASCHEN_VAC]), half_width)
