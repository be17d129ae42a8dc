"""The synthesis against the real Sun in its hydrogen-line wings (``docs/hydrogen.rst``).

The real Sun (``ddpayne/data/sun/sun-normalised.npz``: the SAO2010 atlas degraded to DESI resolution and
normalised by an upper envelope) is compared with a synthetic solar spectrum degraded the same way
(relative to the true continuum) in the inner and outer wings of Hα, Hβ, Hγ, Hδ and the Paschen lines
P12–P16. Line cores (±2 Å) are left out: LTE cannot make the chromospheric Hα core, and the same holds
for the Ca II triplet cores next to P13, P15 and P16 (±2 Å left out too).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
from astropy.table import Table

from ..prepare.masks import BALMER_VAC, PASCHEN_VAC

#: The bundled real Sun at DESI resolution.
SUN_FILE = Path(__file__).resolve().parent.parent / "data" / "sun" / "sun-normalised.npz"
#: Ca II infrared triplet (vacuum Å), whose cores are left out of the Paschen windows.
CA_TRIPLET_VAC = np.array([8500.36, 8544.44, 8664.52])
#: Core half-width (Å) left out of every window.
CORE = 2.0
#: (name, centres, inner and outer ranges of the distance from the centre) in Å.
WING_WINDOWS = (
    ("H_ALPHA", BALMER_VAC[:1], (CORE, 15.0), (15.0, 40.0)),
    ("H_BETA", BALMER_VAC[1:2], (CORE, 12.0), (12.0, 30.0)),
    ("H_GAMMA", BALMER_VAC[2:3], (CORE, 10.0), (10.0, 25.0)),
    ("H_DELTA", BALMER_VAC[3:4], (CORE, 10.0), (10.0, 25.0)),
    ("P12_P16", PASCHEN_VAC[3:8], (CORE, 6.0), (6.0, 12.0)),
)


def real_sun() -> tuple[np.ndarray, np.ndarray]:
    """(vacuum wavelength, normalised flux) of the bundled real Sun, the three DESI arms joined."""
    d = np.load(SUN_FILE, allow_pickle=False)
    wave = np.concatenate([d[f"{a}_wave"] for a in "BRZ"])
    flux = np.concatenate([d[f"{a}_flux"] for a in "BRZ"])
    order = np.argsort(wave, kind="stable")
    return wave[order], flux[order]


def wing_pixels(wave: np.ndarray, centres: np.ndarray, span: tuple[float, float]) -> np.ndarray:
    """Pixels with ``span[0] < |λ − c| ≤ span[1]`` for some centre, outside every core (±:data:`CORE`)
    of the centres and of the Ca II triplet."""
    wave = np.asarray(wave, float)
    d = np.min(np.abs(wave[:, None] - np.asarray(centres)[None, :]), axis=1)
    sel = (d > span[0]) & (d <= span[1])
    cores = np.concatenate([BALMER_VAC, PASCHEN_VAC, CA_TRIPLET_VAC])
    sel &= np.min(np.abs(wave[:, None] - cores[None, :]), axis=1) > CORE
    return sel


def wing_rms(wave: np.ndarray, model: np.ndarray, sun: np.ndarray) -> Table:
    """rms of ``sun − model`` in the inner and outer wing windows of each line.

    Returns a Table with columns ``LINE``, ``PART`` ('inner'/'outer'), ``N_PIX``, ``RMS``.
    """
    rows = []
    good = np.isfinite(model) & np.isfinite(sun)
    for name, centres, inner, outer in WING_WINDOWS:
        for part, span in (("inner", inner), ("outer", outer)):
            sel = wing_pixels(wave, centres, span) & good
            rms = float(np.sqrt(np.mean((sun[sel] - model[sel]) ** 2))) if sel.any() else np.nan
            rows.append((name, part, int(sel.sum()), rms))
    return Table(rows=rows, names=("LINE", "PART", "N_PIX", "RMS"))
