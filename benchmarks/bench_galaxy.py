"""Benchmark: N stars through extinction (star-pair) + distances + Stäckel orbits.

Usage::

    python benchmarks/bench_galaxy.py --n 100000          # the issue's target: minutes on 2 cores
    python benchmarks/bench_galaxy.py --n 5000 --baseline 200

The stars come from the mock Galaxy (:func:`ddpayne.mock.galaxy.assign_galaxy`, labels drawn here with a
simple DESI-MWS-like mix and DESI-like label errors); a brighter mock (G 9–14) is the absolute-magnitude
calibration set. The baseline, measured in the same process, is the naive way of computing the orbits:
one galpy ``actionAngleStaeckel`` call per star (Δ estimated per star), on ``--baseline`` stars,
extrapolated to N. Accuracy against the mock truth is printed too.
"""
from __future__ import annotations

import argparse
import os
import time
import warnings

import numpy as np
from astropy.table import Table, vstack

from ddpayne.fit.calibration import robust_sigma


def baseline_orbits(stars: Table, n: int) -> float:
    """Seconds per star of a per-star loop over galpy Stäckel actions + orbit parameters."""
    from galpy.actionAngle import actionAngleStaeckel, estimateDeltaStaeckel
    from galpy.potential import MWPotential2014

    from ddpayne.galaxy.coords import galactocentric
    from ddpayne.galaxy.solar import SOLAR
    sub = stars[:n]
    g = galactocentric(sub["RA"], sub["DEC"], sub["DIST"], sub["PMRA"], sub["PMDEC"], sub["RV"])
    ro, vo = SOLAR.r0, SOLAR.vc0
    t0 = time.perf_counter()
    for i in range(len(sub)):
        R, z = g["R"][i] / ro, g["Z"][i] / ro
        if not np.isfinite(R):
            continue
        delta = estimateDeltaStaeckel(MWPotential2014, R, z)
        aA = actionAngleStaeckel(pot=MWPotential2014, delta=delta, c=True)
        args = (R, g["VR"][i] / vo, g["VT"][i] / vo, z, g["VZ"][i] / vo, 0.0)
        with np.errstate(all="ignore"):
            aA(*args)
            aA.EccZmaxRperiRap(*args)
    return (time.perf_counter() - t0) / len(sub)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=100_000, help="survey stars")
    ap.add_argument("--n-cal", type=int, default=20_000, help="calibration stars (G 9-14)")
    ap.add_argument("--baseline", type=int, default=300, help="stars in the per-star baseline loop")
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()
    warnings.filterwarnings("ignore")

    from ddpayne import registry
    from ddpayne.galaxy import completeness_purity
    from ddpayne.galaxy.starpair import StarPairExtinction
    from ddpayne.mock.galaxy import assign_galaxy, observe_labels as observe, simple_labels as draw_labels

    print(f"ddpayne galaxy benchmark: N = {args.n}, calibration = {args.n_cal}, cores = {os.cpu_count()}")
    t0 = time.perf_counter()
    stars = observe(assign_galaxy(draw_labels(args.n, args.seed), seed=args.seed + 1), args.seed + 2)
    cal = observe(assign_galaxy(draw_labels(args.n_cal, args.seed + 3), seed=args.seed + 4,
                                g_range=(9.0, 14.0)), args.seed + 5)
    t_mock = time.perf_counter() - t0
    print(f"mock generation (setup, not timed below): {t_mock:.1f} s")

    timings = {}
    t = time.perf_counter()
    sp = StarPairExtinction().fit(vstack([stars, cal], metadata_conflicts="silent"))
    r = sp.estimate(stars)
    stars["EBV"], stars["EBV_ERR"] = r["EBV"], r["EBV_ERR"]
    rc = sp.estimate(cal)
    cal["EBV"], cal["EBV_ERR"] = rc["EBV"], rc["EBV_ERR"]
    timings["extinction (star-pair fit + estimate)"] = time.perf_counter() - t

    t = time.perf_counter()
    est = registry.create("distance", "spectrophotometric").train(cal)
    d = est.estimate(stars)
    for c in ("DIST", "DIST_ERR"):
        stars[c] = d[c]
    timings["distances (train + estimate)"] = time.perf_counter() - t

    t = time.perf_counter()
    orb = registry.create("orbit", "galpy").orbits(stars)
    timings["orbits (Staeckel, vectorised)"] = time.perf_counter() - t

    total = sum(timings.values())
    for k, v in timings.items():
        print(f"  {k:40s} {v:8.1f} s   {args.n / v:10.0f} stars/s")
    print(f"  {'total':40s} {total:8.1f} s   {args.n / total:10.0f} stars/s")

    per_star = baseline_orbits(stars, args.baseline)
    print(f"baseline: per-star galpy Staeckel loop {per_star * 1e3:.2f} ms/star -> "
          f"{per_star * args.n:.0f} s for N (extrapolated from {args.baseline} stars)")
    print(f"speed-up of the vectorised orbits over the per-star loop: "
          f"{per_star * args.n / timings['orbits (Staeckel, vectorised)']:.1f}x")

    ebv = np.asarray(stars["EBV"] - stars["EBV_TRUE"])
    rel = np.log(np.asarray(stars["DIST"] / stars["DIST_TRUE"]))
    ges = (orb["JPHI"] > -700) & (orb["JPHI"] < 500) & (orb["ECC"] > 0.9)
    comp, pur = completeness_purity(np.asarray(ges), np.asarray(stars["POP"]) == "ges")
    print(f"accuracy: E(B-V) bias {np.nanmedian(ebv):+.4f} std {np.nanstd(ebv):.4f} mag; "
          f"distance bias {np.nanmedian(rel):+.3f} robust scatter "
          f"{robust_sigma(rel):.3f} (ln d); "
          f"GES completeness {comp:.2f} purity {pur:.2f}")


if __name__ == "__main__":
    main()
