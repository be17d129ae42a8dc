"""Air ↔ vacuum wavelength conversion.

The refractive index of standard air (15 °C, 101 325 Pa, 0.045 % CO2) is taken from Morton (2000,
ApJS 130, 403, eq. 8), which uses the Birch & Downs (1994) update of Edlén's formula and agrees with
Ciddor (1996, Appl. Opt. 35, 1566) to better than 1e-9 in the optical:

.. math:: n - 1 = 8.34254\\times10^{-5} + \\frac{2.406147\\times10^{-2}}{130 - s^2}
          + \\frac{1.5998\\times10^{-4}}{38.9 - s^2},\\qquad s = 10^4/\\lambda_{\\rm vac}\\ [\\mu m^{-1}]

``λ_air = λ_vac / n``. The inverse is solved by fixed-point iteration, so the two functions are exact
inverses of each other (to < 1e-8 Å). Valid above 2000 Å (below, vacuum wavelengths are used anyway).
"""
from __future__ import annotations

import numpy as np


def refractive_index(wave_vac: np.ndarray) -> np.ndarray:
    """Refractive index of standard air at vacuum wavelength ``wave_vac`` (Å), Morton (2000)."""
    s2 = (1e4 / np.asarray(wave_vac, dtype=float)) ** 2
    return 1.0 + 8.34254e-5 + 2.406147e-2 / (130.0 - s2) + 1.5998e-4 / (38.9 - s2)


def vacuum_to_air(wave_vac: np.ndarray) -> np.ndarray:
    """Convert vacuum wavelengths (Å) to air wavelengths (Å)."""
    w = np.asarray(wave_vac, dtype=float)
    if np.any(w < 2000.0):
        raise ValueError("air/vacuum conversion is only defined here above 2000 Å")
    return w / refractive_index(w)


def air_to_vacuum(wave_air: np.ndarray) -> np.ndarray:
    """Convert air wavelengths (Å) to vacuum wavelengths (Å) (iterative inverse of :func:`vacuum_to_air`)."""
    a = np.asarray(wave_air, dtype=float)
    if np.any(a < 2000.0):
        raise ValueError("air/vacuum conversion is only defined here above 2000 Å")
    v = a * refractive_index(a)
    for _ in range(4):
        v = a * refractive_index(v)
    return v
