"""Accuracy of the hydrogen-correction product: leave-one-out interpolation error and window edges.

For each node, ln C predicted from the other nodes minus the computed one (≈ relative flux error), per
correction window: the rms over pixels and nodes, the 95th percentile of each node's largest error, and
the largest; nodes outside the others' convex hull are extrapolations and reported apart. Also the
largest |ln C| within 10 Å of each window edge over all nodes (the truncation of the windows).

Usage::

    python benchmarks/hydrogen_cv.py [ddpayne/data/hydrogen_desi.fits]
"""
import sys

import numpy as np
from scipy.spatial import Delaunay, QhullError

from ddpayne.physics.hydrogen import WINDOWS_VAC, HydrogenCorrection, scaled_coordinates


def main(path="ddpayne/data/hydrogen_desi.fits"):
    p = HydrogenCorrection.read(path)
    res = p.cross_validate()
    x = scaled_coordinates(p.nodes)
    inside = np.zeros(len(p), bool)
    for i in range(len(p)):
        others = np.delete(x, i, axis=0)
        try:
            inside[i] = Delaunay(others).find_simplex(x[i]) >= 0
        except QhullError:   # too few or degenerate nodes: no hull
            inside[i] = False
    w = p.wavelength[p.pixels]
    print(f"{len(p)} nodes ({inside.sum()} inside the others' hull); ln C interpolation error "
          "(leave one out), inside / all nodes:")
    print(f"{'window (A)':>14} {'rms':>8} {'p95 max':>8} {'max':>8} | {'rms':>8} {'max':>8} | "
          f"{'max |lnC|':>9} {'edge |lnC|':>10}")
    for lo, hi in WINDOWS_VAC:
        s = (w >= lo) & (w <= hi)
        r_in, r_all = res[inside][:, s], res[:, s]
        edge = s & ((w < lo + 15) | (w > hi - 15))
        print(f"{lo:6.0f}-{hi:6.0f} {np.sqrt(np.mean(r_in ** 2)) if inside.any() else np.nan:8.4f} "
              f"{np.percentile(np.abs(r_in).max(axis=1), 95) if inside.any() else np.nan:8.4f} "
              f"{np.abs(r_in).max() if inside.any() else np.nan:8.4f} | {np.sqrt(np.mean(r_all ** 2)):8.4f} "
              f"{np.abs(r_all).max():8.4f} | {np.abs(p.log_correction[:, s]).max():9.3f} "
              f"{np.abs(p.log_correction[:, edge]).max():10.4f}")


if __name__ == "__main__":
    main(*sys.argv[1:])
