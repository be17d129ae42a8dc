"""An analytic "stellar physics" for testing the DD-Payne model, with exactly known gradients.

A normalised spectrum is a product of Gaussian absorption lines on a 1-Å grid (5000–5080 Å). Each
element's lines respond only to its own abundance: Fe lines to FE_H, Mg lines to FE_H + MG_FE (i.e.
[Mg/H]); all lines weaken with TEFF (non-linearly, each line at its own rate, like lines of different
excitation potential) and widen with LOGG (pressure broadening). Two of the
Mg lines are blended with Fe lines, as at low resolution. The model gives training spectra and the
exact gradient spectra (a finite difference of the model itself, as the Kurucz product is), so a
trained emulator can be checked against the truth.

Other test files import the helpers from here.
"""
from __future__ import annotations

import numpy as np
from astropy.table import Table

from ddpayne.io.batch import SpectrumBatch
from ddpayne.physics.gradients import GradientSpectra

LABELS = ("TEFF", "LOGG", "FE_H", "MG_FE")
WAVE = np.arange(5000.0, 5080.5, 1.0)
FE_LINES = np.array([5006.0, 5014.5, 5027.0, 5041.0, 5049.5, 5066.0])
MG_LINES = np.array([5020.0, 5034.0, 5041.8, 5059.0])   # 5041.8 blends with Fe 5041.0
MG_LINES[3] = 5066.7                                    # and this one with Fe 5066.0
STEPS = np.array([100.0, 0.1, 0.1, 0.1])


#: Temperature sensitivity of each line (as of lines of different excitation potential): it breaks the
#: Teff–abundance degeneracy, as in real spectra.
FE_TEFF = np.array([0.5, 3.0, 1.5, 2.5, 1.0, 3.5])
MG_TEFF = np.array([1.0, 3.0, 2.0, 0.5])


def _depth(strength, teff, c):
    t = (teff - 5500.0) / 1000.0
    return 0.75 / (1.0 + np.exp(-(strength - c * t - 0.3 * t ** 2)))


def toy_flux(labels: np.ndarray, wave: np.ndarray = WAVE) -> np.ndarray:
    """Normalised flux of the toy model for labels ``(n, 4)`` in :data:`LABELS` order."""
    lab = np.atleast_2d(np.asarray(labels, dtype=float))
    teff, logg, feh, mgfe = lab.T
    sigma = 0.9 + 0.25 * (logg - 3.0)                       # Å, (n,)
    out = np.ones((lab.shape[0], wave.size))
    for c, kt in zip(FE_LINES, FE_TEFF):
        d = _depth(2.0 * (feh + 0.7), teff, kt)
        out *= 1 - d[:, None] * np.exp(-0.5 * ((wave[None] - c) / sigma[:, None]) ** 2)
    for c, kt in zip(MG_LINES, MG_TEFF):
        d = _depth(2.0 * (feh + mgfe + 0.5), teff, kt)
        out *= 1 - d[:, None] * np.exp(-0.5 * ((wave[None] - c) / (1.1 * sigma[:, None])) ** 2)
    return out


def toy_gradients(ref_labels: np.ndarray, steps: np.ndarray = STEPS) -> GradientSpectra:
    """Forward-difference gradient spectra of the toy model at ``ref_labels``."""
    ref = np.atleast_2d(ref_labels)
    base = toy_flux(ref)
    pert = np.stack([toy_flux(ref + steps[k] * np.eye(len(LABELS))[k]) for k in range(len(LABELS))], 1)
    return GradientSpectra.from_spectra(WAVE, ref, steps, base, pert, LABELS,
                                        provenance={"source": "toy analytic model (tests)"})


def random_labels(n: int, rng, mg_trend: bool = False, scatter: float = 0.02) -> np.ndarray:
    """Labels of ``n`` stars; with ``mg_trend`` MG_FE follows FE_H tightly (a correlated sample)."""
    teff = rng.uniform(4600, 6400, n)
    logg = rng.uniform(2.0, 4.6, n)
    feh = rng.uniform(-1.5, 0.3, n)
    if mg_trend:
        mgfe = mg_of_feh(feh) + rng.normal(0, scatter, n)
    else:
        mgfe = rng.uniform(-0.2, 0.5, n)
    return np.column_stack([teff, logg, feh, mgfe])


def mg_of_feh(feh):
    """The [Mg/Fe]–[Fe/H] trend of the correlated sample."""
    return np.clip(0.1 - 0.25 * np.asarray(feh), -0.1, 0.5)


def toy_batch(labels: np.ndarray, snr: float, rng, ids=None) -> SpectrumBatch:
    """Noisy toy spectra as a SpectrumBatch (constant S/N per pixel)."""
    flux = toy_flux(labels)
    sigma = 1.0 / snr
    noisy = flux + rng.normal(0, sigma, flux.shape)
    ivar = np.full(flux.shape, 1 / sigma**2)
    n = len(labels)
    meta = Table({"ID": np.array([f"s{i}" for i in range(n)] if ids is None else ids),
                  "SNR": np.full(n, snr)})
    return SpectrumBatch(WAVE, noisy, ivar, meta)


def ref_grid(mg_trend: bool = False) -> np.ndarray:
    """Reference points inside the toy training coverage (a small Teff–logg–[Fe/H] grid)."""
    pts = []
    for teff in (4900, 5500, 6100):
        for logg in (2.5, 3.5, 4.3):
            for feh in (-1.2, -0.5, 0.1):
                pts.append((teff, logg, feh, mg_of_feh(feh) if mg_trend else 0.15))
    return np.array(pts)


# ---------------------------------------------------------------------------------- tests of the toy
def test_toy_lines_respond_only_to_their_element():
    rng = np.random.default_rng(1)
    g = toy_gradients(random_labels(5, rng))
    mg = g.gradients[:, LABELS.index("MG_FE")]
    far_from_mg = np.all(np.abs(WAVE[:, None] - MG_LINES[None]) > 6, axis=1)
    assert np.abs(mg[:, far_from_mg]).max() < 1e-4          # Mg has ~no effect on pure Fe pixels
    assert np.abs(mg).max() > 0.05
    fe = g.gradients[:, LABELS.index("FE_H")]
    assert np.all(fe.min(axis=1) < -0.05)                     # more Fe -> deeper lines


def test_toy_flux_is_normalised():
    rng = np.random.default_rng(2)
    f = toy_flux(random_labels(20, rng))
    assert np.all((f > 0) & (f <= 1))
    assert np.allclose(f[:, 0], 1, atol=2e-3)               # continuum at the edge
