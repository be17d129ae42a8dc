"""Reference label points of the gradient-spectra product, and the finite-difference steps.

No isochrone package with offline data is available (MIST needs a download), so the points follow a
documented *empirical* locus in (Teff, logg) per [Fe/H], with shapes from the Gaia-ESO/APOGEE Kiel
diagrams and MIST 10 Gyr isochrones as qualitative guides:

* **dwarf** (main sequence): Teff 4600, 5000, 5400, 5800 K and the turn-off
  Teff_TO = 6000 − 250 [Fe/H] K (clipped to 6000–6600 K), logg_MS(Teff) = 4.60 − 1.0e-4 (Teff − 4600)
  (turn-off logg ≈ 4.1–4.4);
* **subgiant**: logg 3.9 and 3.6 at Teff = Teff_TO − 300 K and Teff_TO − 600 K;
* **giant** (RGB): logg 3.2, 2.6, 2.0, 1.4 with Teff_RGB(logg) = 4550 + 250 (logg − 2.5) − 150 [Fe/H] K
  (metal-poor giants are hotter);
* **hb**: red clump (Teff 4750 + 100 ([Fe/H] < −0.25), logg 2.45) for [Fe/H] ≥ −1, blue-ish horizontal
  branch (Teff 5600 − 250 ([Fe/H] + 1), logg 2.6) below, clipped to 4800–6700 K;

for [Fe/H] = −3.0, −2.5, −2.0, −1.5, −1.0, −0.5, 0.0, +0.5 (12 points each: 96) plus five extra points
at the paper's Fig. 9 star and other well-populated places: 101 points. Abundances at each point:
[α/Fe] (O, Mg, Si, Ca, Ti) = 0.4 for [Fe/H] ≤ −1 declining linearly to 0 at [Fe/H] = 0 (and 0 above);
other [X/Fe] = 0; VMIC from :func:`vmic_relation`.
"""
from __future__ import annotations

import numpy as np
from astropy.table import Table

from ..labels import LABEL_NAMES

#: Finite-difference steps (physical units) for each label.
GRADIENT_STEPS: dict[str, float] = {
    "TEFF": 100.0, "LOGG": 0.2, "VMIC": 0.25, "FE_H": 0.1,
    **{name: 0.2 for name in LABEL_NAMES[4:]},
}
ALPHA_ELEMENT_LABELS = ("O_FE", "MG_FE", "SI_FE", "CA_FE", "TI_FE")
FEH_GRID = (-3.0, -2.5, -2.0, -1.5, -1.0, -0.5, 0.0, 0.5)


def vmic_relation(teff, logg):
    """Microturbulence (km/s) from Teff and logg.

    Giants (logg ≤ 3.5): ξ = 2.478 − 0.325 logg (Holtzman et al. 2015, APOGEE DR12);
    dwarfs (logg ≥ 3.9): ξ = 1.0 + 3.3e-4 (Teff − 5500) − 0.3 (logg − 4.0) (≈ 0.96 km/s for the Sun,
    close to e.g. Bensby et al. 2014); linear blend in between; clipped to [0.5, 2.5].
    """
    teff = np.asarray(teff, float)
    logg = np.asarray(logg, float)
    giant = 2.478 - 0.325 * logg
    dwarf = 1.0 + 3.3e-4 * (teff - 5500.0) - 0.3 * (logg - 4.0)
    w = np.clip((logg - 3.5) / 0.4, 0.0, 1.0)
    return np.clip((1 - w) * giant + w * dwarf, 0.5, 2.5)


def alpha_trend(feh):
    """Mean [α/Fe] of a point on the reference loci: 0.4 below [Fe/H] = −1, → 0 at [Fe/H] = 0."""
    feh = np.asarray(feh, float)
    return np.clip(-0.4 * feh, 0.0, 0.4)


def _locus(feh: float) -> list[tuple[str, float, float]]:
    pts = []
    teff_to = float(np.clip(6000.0 - 250.0 * feh, 6000.0, 6600.0))
    for t in (4600.0, 5000.0, 5400.0, 5800.0, teff_to):
        pts.append(("dwarf", t, 4.60 - 1.0e-4 * (t - 4600.0)))
    pts.append(("subgiant", teff_to - 300.0, 3.9))
    pts.append(("subgiant", teff_to - 600.0, 3.6))
    for g in (3.2, 2.6, 2.0, 1.4):
        pts.append(("giant", 4550.0 + 250.0 * (g - 2.5) - 150.0 * feh, g))
    if feh >= -1.0:
        pts.append(("hb", 4750.0 + (100.0 if feh < -0.25 else 0.0), 2.45))
    else:
        pts.append(("hb", float(np.clip(5600.0 - 250.0 * (feh + 1.0), 4800.0, 6700.0)), 2.6))
    return pts


#: Extra points: the paper's Fig. 9 star first, then a giant, a solar twin, a metal-poor turn-off star and a
#: metal-poor giant.
EXTRA_POINTS = (("dwarf", 5900.0, 4.0, -0.5), ("giant", 4800.0, 2.5, -0.5), ("dwarf", 5777.0, 4.44, 0.0),
                ("dwarf", 6200.0, 4.1, -1.2), ("giant", 4500.0, 1.8, -1.5))


def reference_points() -> Table:
    """The 101 reference points: columns ``REF_ID``, ``REF_KIND`` and the 15 labels, in priority order
    (points nearest the centre of the DESI MWS distribution first, so partial products are useful)."""
    rows = [(k, t, g, f) for (k, t, g, f) in EXTRA_POINTS]
    for feh in FEH_GRID:
        rows += [(k, t, g, feh) for (k, t, g) in _locus(feh)]
    kind = np.array([r[0] for r in rows])
    teff = np.array([r[1] for r in rows])
    logg = np.array([r[2] for r in rows])
    feh = np.array([r[3] for r in rows])
    # priority: the extras, then by distance from (5900 K, 4.0, -0.5) scaled by (500 K, 1 dex, 0.75 dex),
    # with giants' distance measured from (4800 K, 2.5) so both branches fill in early
    d_dwarf = np.hypot(np.hypot((teff - 5900) / 500, (logg - 4.0) / 1.0), (feh + 0.5) / 0.75)
    d_giant = np.hypot(np.hypot((teff - 4800) / 500, (logg - 2.5) / 1.0), (feh + 0.5) / 0.75)
    dist = np.minimum(d_dwarf, d_giant)
    dist[:len(EXTRA_POINTS)] = -1.0 + 0.01 * np.arange(len(EXTRA_POINTS))
    order = np.argsort(dist, kind="stable")
    t = Table()
    t["REF_ID"] = np.arange(len(rows))
    t["REF_KIND"] = kind[order]
    t["TEFF"] = teff[order]
    t["LOGG"] = np.round(logg[order], 3)
    t["VMIC"] = np.round(vmic_relation(teff[order], logg[order]), 3)
    t["FE_H"] = feh[order]
    alpha = alpha_trend(feh[order])
    for name in LABEL_NAMES[4:]:
        t[name] = alpha if name in ALPHA_ELEMENT_LABELS else np.zeros(len(rows))
    return t
