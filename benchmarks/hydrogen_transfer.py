"""Error of carrying the hydrogen correction over to other metal lines (the ratio approximation).

The correction C = F_{H+m}/F_m is computed with one set of metal lines and applied to another. This
measures the error in PySME alone: C computed at v_mic = 1 km/s is applied to the metals-only spectrum at
v_mic = 2 km/s (metal lines up to ~30 % stronger, more than MOOG and PySME differ by) and compared with
the full H + metals synthesis at v_mic = 2 km/s, after degrading to DESI resolution, in the Hβ and Hγ
windows of a solar-type dwarf and a warm subgiant.

Usage::

    python benchmarks/hydrogen_transfer.py
"""
import numpy as np

from ddpayne.physics.degrade import convolve_to_grid
from ddpayne.prepare.grid import desi_grid


def main():
    from ddpayne_pysme.synth import SmeSynthesizer
    g = desi_grid()
    h, m = SmeSynthesizer(hydrogen=True), SmeSynthesizer(hydrogen=False)
    for star in ({"TEFF": 5772.0, "LOGG": 4.44, "FE_H": 0.0}, {"TEFF": 6300.0, "LOGG": 3.8, "FE_H": -0.5}):
        for lo, hi in ((4790.0, 4935.0), (4270.0, 4415.0)):
            pix = (g > lo + 5) & (g < hi - 5)
            conv = {}
            for vmic in (1.0, 2.0):
                lab = {**star, "VMIC": vmic}
                conv[vmic] = [convolve_to_grid(*s.synthesize(lab, lo, hi), g[pix]) for s in (h, m)]
            c = conv[1.0][0] / conv[1.0][1]
            approx, exact = conv[2.0][1] * c, conv[2.0][0]
            metal_change = conv[2.0][1] - conv[1.0][1]
            err = approx - exact
            print(f"Teff {star['TEFF']:.0f} logg {star['LOGG']} [Fe/H] {star['FE_H']:+.1f}, {lo:.0f}-{hi:.0f} A: "
                  f"metal lines changed by {np.sqrt(np.mean(metal_change ** 2)):.4f} rms; transfer error "
                  f"{np.sqrt(np.mean(err ** 2)):.4f} rms, {np.abs(err).max():.4f} max")


if __name__ == "__main__":
    main()
