"""The linemake line list in PySME's form, with the quantum numbers SME needs to build hydrogen lines.

SME computes a hydrogen line's Stark, self, radiative and Doppler profile only when its line-list row
carries the principal quantum numbers (lower in ``gamqst``, upper in ``gamvw``); linemake lists none, so
they are derived from the Rydberg formula, 1/λ_vac = R_H (1/n_l² − 1/n_u²), for the Balmer (n_l = 2),
Paschen (3) and Brackett (4) series. An H I row that matches no transition is left out (and counted).
Molecules keep their linemake strengths with the isotopologue scaling of the ``moog`` plugin (SME knows
one species per molecule).
"""
from __future__ import annotations

import logging

import numpy as np

from ddpayne.physics.airvac import air_to_vacuum

log = logging.getLogger(__name__)

#: Rydberg constant for hydrogen (cm⁻¹, vacuum wavenumbers).
RYDBERG_H = 109677.583
#: Largest mismatch accepted when identifying an H I line, ``N_TOLERANCE × n_upper + 0.01``: linemake's
#: low members match to < 0.01, its series-limit members (n ≈ 40–80) sit up to ~0.2 from an integer.
N_TOLERANCE = 0.004
ELEMENTS = ("H He Li Be B C N O F Ne Na Mg Al Si P S Cl Ar K Ca Sc Ti V Cr Mn Fe Co Ni Cu Zn Ga Ge As Se "
            "Br Kr Rb Sr Y Zr Nb Mo Tc Ru Rh Pd Ag Cd In Sn Sb Te I Xe Cs Ba La Ce Pr Nd Pm Sm Eu Gd Tb Dy "
            "Ho Er Tm Yb Lu Hf Ta W Re Os Ir Pt Au Hg Tl Pb Bi Po At Rn Fr Ra Ac Th Pa U").split()
MOLECULES = {106: "CH", 107: "NH", 108: "OH", 112: "MgH", 114: "SiH", 126: "FeH", 606: "C2", 607: "CN",
             608: "CO", 10108: "H2O"}


def species_name(code: float) -> str:
    """SME species name (``"Fe 1"``, ``"Ca 2"``, ``"CN 1"``) of a MOOG species code (26.0, 20.1, 607.0)."""
    z = int(np.floor(code))
    if z < 100:
        return f"{ELEMENTS[z - 1]} {int(round((code - z) * 10)) + 1}"
    if z not in MOLECULES:
        raise ValueError(f"no SME name for the MOOG molecule code {code}")
    return f"{MOLECULES[z]} 1"


def hydrogen_levels(wave_air: np.ndarray) -> np.ndarray:
    """(n_lower, n_upper) of H I lines at air wavelengths ``wave_air``; (0, 0) where none matches."""
    sigma = 1e8 / air_to_vacuum(np.atleast_1d(np.asarray(wave_air, float)))
    out = np.zeros((sigma.size, 2), int)
    for i, s in enumerate(sigma):
        for nl in (2, 3, 4):
            x = 1.0 / nl ** 2 - s / RYDBERG_H
            if x <= 0:
                continue
            nu = 1.0 / np.sqrt(x)
            if abs(nu - round(nu)) < N_TOLERANCE * round(nu) + 0.01 and round(nu) > nl:
                out[i] = nl, int(round(nu))
                break
    return out


def sme_linelist(lines: dict, loggf: np.ndarray, lo_air: float, hi_air: float, hydrogen: bool = True):
    """A PySME ``LineList`` (short format, air wavelengths) of the lines in ``[lo_air, hi_air]``.

    Parameters
    ----------
    lines : dict
        The linemake list (:func:`ddpayne_moog.linelist.load_linelist`).
    loggf : ndarray
        Per-star log gf (isotopologue scaling applied), aligned with ``lines``.
    lo_air, hi_air : float
        Air range (Å) of the lines to pass.
    hydrogen : bool
        Include the H I lines (False: metals and molecules only).
    """
    import pandas as pd
    from pysme.linelist.linelist import LineList
    a, b = np.searchsorted(lines["wave"], [lo_air, hi_air])
    sp = lines["species"][a:b]
    is_h = np.isclose(sp, 1.0)
    levels = np.zeros((sp.size, 2), int)
    if hydrogen:
        levels[is_h] = hydrogen_levels(lines["wave"][a:b][is_h])
        unmatched = is_h & (levels[:, 0] == 0)
        if unmatched.any():
            log.warning("%d H I line(s) match no Balmer/Paschen/Brackett transition and are left out",
                        int(unmatched.sum()))
        keep = ~unmatched
    else:
        keep = ~is_h
    names = [species_name(c) for c in sp[keep]]
    frame = pd.DataFrame({"species": names, "wlcent": lines["wave"][a:b][keep],
                          "excit": lines["ep"][a:b][keep], "gflog": loggf[a:b][keep], "gamrad": 0.0,
                          "gamqst": levels[keep, 0].astype(float), "gamvw": levels[keep, 1].astype(float),
                          "atom_number": 1.0,
                          "ionization": np.array([float(n.split()[1]) for n in names])})
    return LineList(frame, lineformat="short", medium="air")
