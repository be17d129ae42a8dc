"""Which lines pull the real Sun's [Fe/H] low: per-line χ² of MOOG solar syntheses against the real Sun.

The real Sun (``ddpayne/data/sun/sun-normalised.npz``) and MOOG solar syntheses at a few ([Fe/H], v_mic)
(mock-library settings; ``--grid``: an npz of ``wave`` and ``f_<feh>_<vmic>`` fluxes on the DESI grid,
relative to the true continuum, made by ``--make``) are both normalised with the data path's 20 Å
pseudo-continuum — what the fit sees — and compared at S/N 100 with hydrogen lines (±25 Å) left out.
Prints χ² per wavelength region for each synthesis, then the lines whose pixels favour the offset model
(a lower [Fe/H] / higher v_mic) most over the IAU one: Δχ² = χ²(true) − χ²(offset) per line window
(±1.2 Å around local minima of the true-label model), with the strongest linemake line there, and the
line-depth ratio Sun/model.

Usage::

    python benchmarks/sun_lines.py --make /tmp/moog_grid.npz    # ~5 MOOG syntheses
    python benchmarks/sun_lines.py --grid /tmp/moog_grid.npz
    python benchmarks/sun_lines.py --si-test     # features of high-excitation Si I lines with and without them
"""
import argparse

import numpy as np

from ddpayne.physics.sun_check import real_sun
from ddpayne.prepare.continuum import pseudo_continuum
from ddpayne.prepare.grid import desi_grid
from ddpayne.prepare.masks import BALMER_VAC, PASCHEN_VAC, window_mask

MODELS = [(0.0, 1.0), (-0.2, 1.0), (-0.2, 1.5), (0.0, 1.5), (-0.1, 1.25)]
REGIONS = [(3850, 4400), (4400, 5000), (5000, 5600), (5600, 6400), (6400, 7600), (7600, 8800), (8800, 9800)]


def make(path):
    from ddpayne_moog.synth import MoogSynthesizer

    from ddpayne.physics.degrade import convolve_to_grid
    from ddpayne.physics.runner import DEFAULT_MOCK_SETTINGS
    g = desi_grid()
    m = MoogSynthesizer(settings=DEFAULT_MOCK_SETTINGS)
    out = {}
    for feh, vmic in MODELS:
        w, f = m.synthesize(dict(TEFF=5772, LOGG=4.44, FE_H=feh, VMIC=vmic), g[0] - 10, g[-1] + 10)
        out[f"f_{feh:+.2f}_{vmic:.2f}"] = convolve_to_grid(w, f, g)
    np.savez(path, wave=g, **out)


def normalised(wave, flux):
    good = np.isfinite(flux)
    cont = pseudo_continuum(wave, np.where(good, flux, 1.0), good.astype(float))
    return flux / cont


def strongest_line(lines, centre):
    """The strongest atomic linemake line (species, vacuum Å) within 1 Å of ``centre`` by the strength
    proxy (molecules are left out: the proxy does not rank them against atoms reliably)."""
    sel = (np.abs(lines["vac"] - centre) < 1.0) & (lines["species"] < 100)
    if not sel.any():
        return "-"
    k = np.flatnonzero(sel)[np.argmax(lines["proxy"][sel])]
    return f"{lines['species'][k]:g} {lines['vac'][k]:.2f} (log gf {lines['loggf'][k]:+.2f})"


def solar_lines():
    """linemake lines with vacuum wavelengths and the solar strength proxy."""
    from ddpayne_moog.linelist import load_linelist
    from ddpayne_moog.synth import line_strength_proxy

    from ddpayne.labels import LABEL_NAMES
    from ddpayne.physics.airvac import air_to_vacuum
    lines = dict(load_linelist())
    lab = {n: 0.0 for n in LABEL_NAMES}
    lab.update(TEFF=5772.0, LOGG=4.44, VMIC=1.0)
    lines["proxy"] = line_strength_proxy(lines, lab)
    lines["vac"] = air_to_vacuum(lines["wave"])
    return lines


def report(path, n_lines=25):
    d = np.load(path)
    g = d["wave"]
    wave, sun = real_sun()
    sun_g = normalised(g, np.interp(g, wave, sun))
    mods = {k: normalised(g, d[k].astype(float)) for k in d.files if k.startswith("f_")}
    sigma = 0.01
    use = ~window_mask(g, np.r_[BALMER_VAC, PASCHEN_VAC], 25.0) & (g > 3850) & np.isfinite(sun_g)
    print("chi2 / pixel of the real Sun against MOOG syntheses (pseudo-continuum normalised, S/N 100):")
    print(f"{'model':>14} " + " ".join(f"{a}-{b}".rjust(10) for a, b in REGIONS) + "      all")
    for k, m in mods.items():
        row = []
        for a, b in REGIONS:
            s = use & (g >= a) & (g < b)
            row.append(np.mean(((sun_g[s] - m[s]) / sigma) ** 2))
        print(f"{k:>14} " + " ".join(f"{x:10.1f}" for x in row) + f" {np.mean(((sun_g[use] - m[use]) / sigma) ** 2):8.1f}")
    true, off = mods["f_+0.00_1.00"], mods["f_-0.20_1.50"]
    dchi = np.where(use, ((sun_g - true) ** 2 - (sun_g - off) ** 2) / sigma ** 2, 0.0)
    # line windows around local minima of the true-label model
    mins = np.flatnonzero((true[1:-1] < true[:-2]) & (true[1:-1] <= true[2:]) & (true[1:-1] < 0.97)) + 1
    rows = []
    for i in mins:
        s = np.abs(g - g[i]) <= 1.2
        rows.append((dchi[s].sum(), g[i], (1 - sun_g[i]) / max(1 - true[i], 1e-3), 1 - true[i]))
    rows.sort(reverse=True)
    lines = solar_lines()
    total = dchi.sum()
    print(f"\nDelta chi2 = chi2(IAU labels) - chi2([Fe/H] -0.2, vmic 1.5) = {total:.0f} over {use.sum()} pixels;"
          f" the {n_lines} lines that favour the offset model most:")
    print(f"{'vac A':>9} {'dchi2':>7} {'depth model':>11} {'Sun/model':>9}  strongest atomic line (species, vac A)")
    for dc, w0, ratio, depth in rows[:n_lines]:
        print(f"{w0:9.2f} {dc:7.1f} {depth:11.3f} {ratio:9.2f}  {strongest_line(lines, w0)}")
    depth = np.array([r[3] for r in rows])
    ratio = np.array([r[2] for r in rows])
    for lo, hi in ((0.03, 0.1), (0.1, 0.2), (0.2, 0.4), (0.4, 1.0)):
        s = (depth >= lo) & (depth < hi)
        print(f"lines of model depth {lo:.2f}-{hi:.2f}: {s.sum():4d}, median depth ratio Sun/model "
              f"{np.median(ratio[s]):.3f}, summed dchi2 {sum(r[0] for r, k in zip(rows, s) if k):.0f}")


def si_test(windows=((5480, 5510, 5495.2), (5330, 5345, 5339.2), (6020, 6040, 6031.2))):
    """Depth of three features the Sun lacks, with and without linemake's Si I lines of χ > 5.5 eV."""
    from ddpayne_moog.synth import MoogSynthesizer

    from ddpayne.physics.degrade import convolve_to_grid
    from ddpayne.physics.runner import DEFAULT_MOCK_SETTINGS
    g = desi_grid()
    wave, sun = real_sun()
    lab = {"TEFF": 5772.0, "LOGG": 4.44, "FE_H": 0.0, "VMIC": 1.0}
    full = MoogSynthesizer(settings=DEFAULT_MOCK_SETTINGS)
    cut = MoogSynthesizer(settings=DEFAULT_MOCK_SETTINGS)
    drop = np.isclose(cut.lines["species"], 14.0) & (cut.lines["ep"] > 5.5)
    cut.use_lines({k: v[~drop] for k, v in cut.lines.items()})
    print(f"leaving out {drop.sum()} Si I lines of excitation > 5.5 eV:")
    for lo, hi, c in windows:
        pix = (g > lo + 4) & (g < hi - 4)
        i = np.argmin(np.abs(g[pix] - c))
        a = convolve_to_grid(*full.synthesize(lab, lo, hi), g[pix])[i]
        b = convolve_to_grid(*cut.synthesize(lab, lo, hi), g[pix])[i]
        print(f"  {c:.1f} A: Sun {np.interp(c, wave, sun):.3f}, MOOG {a:.3f}, without them {b:.3f}")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--make")
    ap.add_argument("--grid")
    ap.add_argument("--si-test", action="store_true")
    args = ap.parse_args()
    if args.si_test:
        si_test()
    if args.make:
        make(args.make)
    if args.grid or args.make:
        report(args.grid or args.make)


if __name__ == "__main__":
    main()
