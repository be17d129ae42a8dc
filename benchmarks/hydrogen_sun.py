"""The synthetic Sun with and without the hydrogen correction, against the real Sun (docs/hydrogen.rst).

Synthesises the Sun (IAU labels) with MOOG over the DESI range (the mock library's settings), computes the
hydrogen correction at the same labels with PySME (:func:`ddpayne.physics.hydrogen.correction_at`), and
writes ``tests/data/sun_synthetic_hydrogen.npz`` (the degraded MOOG flux relative to the true continuum
and ln C on the DESI grid, used by ``tests/test_hydrogen.py``) and ``docs/figures/hydrogen_sun.png``.
With ``--product`` it also reports the product's interpolated correction at the Sun.

Usage::

    python benchmarks/hydrogen_sun.py [--product ddpayne/data/hydrogen_desi.fits]
"""
import argparse
import logging
import time

import numpy as np

from ddpayne.physics.degrade import convolve_to_grid
from ddpayne.physics.hydrogen import HydrogenCorrection, correction_at, window_pixels
from ddpayne.physics.runner import DEFAULT_MOCK_SETTINGS
from ddpayne.physics.sun_check import real_sun, wing_rms
from ddpayne.prepare.grid import desi_grid

SUN = {"TEFF": 5772.0, "LOGG": 4.44, "FE_H": 0.0, "VMIC": 1.0}
OUT = "tests/data/sun_synthetic_hydrogen.npz"


def synthesise(grid):
    from ddpayne_moog.synth import MoogSynthesizer
    from ddpayne_pysme.synth import SmeSynthesizer
    t = time.time()
    w, f = MoogSynthesizer(settings=DEFAULT_MOCK_SETTINGS).synthesize(SUN, grid[0] - 10, grid[-1] + 10)
    moog = convolve_to_grid(w, f, grid)
    t_moog = time.time() - t
    t = time.time()
    base = (MoogSynthesizer(settings=DEFAULT_MOCK_SETTINGS),
            MoogSynthesizer(settings=DEFAULT_MOCK_SETTINGS, hydrogen=False))
    logc = correction_at(SmeSynthesizer(hydrogen=True), SmeSynthesizer(hydrogen=False), SUN, grid, base=base)
    print(f"MOOG {t_moog:.0f} s, hydrogen correction {time.time() - t:.0f} s")
    np.savez_compressed(OUT, wave=grid, moog_flux=moog.astype(np.float32), pixels=window_pixels(grid),
                        log_correction=logc.astype(np.float32))


def figure(wave, sun, old, new, path="docs/figures/hydrogen_sun.png"):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    panels = [(6564.61, 45), (4862.68, 35), (4341.69, 28), (4102.89, 28), (8630.0, 160)]
    names = ["Hα", "Hβ", "Hγ", "Hδ", "P12–P16 (with the Ca II triplet)"]
    fig, axes = plt.subplots(len(panels), 1, figsize=(8, 12))
    for ax, (c, half), name in zip(axes, panels, names):
        s = np.abs(wave - c) <= half
        ax.plot(wave[s], sun[s], "k", lw=1.2, label="real Sun (SAO2010 at DESI resolution)")
        ax.plot(wave[s], old[s], color="tab:orange", lw=0.9, label="MOOG, no hydrogen wings (physics 2)")
        ax.plot(wave[s], new[s], color="tab:blue", lw=0.9, label="MOOG × PySME hydrogen correction")
        ax.set_title(name, fontsize=9)
        ax.set_ylabel("flux / continuum")
    axes[0].legend(fontsize=7, loc="lower left")
    axes[-1].set_xlabel("vacuum wavelength (Å)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--product", help="also compare the product's interpolated correction")
    ap.add_argument("--reuse", action="store_true", help="reuse the stored synthesis, only report")
    args = ap.parse_args()
    logging.basicConfig(level=logging.WARNING)
    grid = desi_grid()
    if not args.reuse:
        synthesise(grid)
    d = np.load(OUT)
    factor = np.ones(grid.size)
    factor[d["pixels"]] = np.exp(d["log_correction"])
    old = d["moog_flux"].astype(float)
    new = old * factor
    wave, sun = real_sun()
    old_s, new_s = np.interp(wave, grid, old), np.interp(wave, grid, new)
    t_old, t_new = wing_rms(wave, old_s, sun), wing_rms(wave, new_s, sun)
    t_new["RMS_NO_WINGS"] = t_old["RMS"]
    if args.product:
        p = HydrogenCorrection.read(args.product)
        t_new["RMS_INTERPOLATED"] = wing_rms(wave, np.interp(wave, grid, old * p.factor(SUN)[0]), sun)["RMS"]
    t_new.pprint(max_width=-1)
    figure(wave, sun, old_s, new_s)


if __name__ == "__main__":
    main()
