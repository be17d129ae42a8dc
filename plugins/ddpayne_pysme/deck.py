"""ATLAS9 atmospheres as the Kurucz decks that PySME reads (``pysme.atmosphere.krzfile.KrzFile``).

The atmosphere is the one the ``moog`` plugin synthesises with (:func:`ddpayne_moog.atmosphere.interpolate`:
Castelli & Kurucz ODFNEW, interpolated at fixed depth index), written in the ATLAS ``READ DECK6`` layout
with RHOX, T, P, Ne and κ_Ross. The deck's abundance table only serves PySME to derive the mass density
from the gas pressure (mean molecular weight); the synthesis abundances are set separately.
"""
from __future__ import annotations

import os
import tempfile

import numpy as np

#: Kurucz number fractions of H and He in the ATLAS9 ODFNEW decks.
H_FRACTION, HE_FRACTION = 0.92040, 0.07834


def deck_text(atm, solar_h12: np.ndarray) -> str:
    """The ``READ DECK6`` text of an interpolated atmosphere.

    Parameters
    ----------
    atm : ddpayne_moog.atmosphere.Atmosphere
        The interpolated model (72 depths).
    solar_h12 : ndarray, shape (>= 99,)
        Solar abundances log ε (H = 12) by atomic number - 1, scaled by ``atm.metal`` in the deck.
    """
    head = [f"TEFF   {atm.teff:.0f}.  GRAVITY {atm.logg:.5f} LTE",
            f"TITLE  [{atm.metal:+.2f}] VTURB=2  L/H=1.25 NOVER NEW ODF",
            " OPACITY IFOP 1 1 1 1 1 1 1 1 1 1 1 1 1 0 1 0 0 0 0 0",
            " CONVECTION ON   1.25 TURBULENCE OFF  0.00  0.00  0.00  0.00",
            f"ABUNDANCE SCALE {10 ** atm.metal:9.5f} ABUNDANCE CHANGE 1 {H_FRACTION:.5f} 2 {HE_FRACTION:.5f}"]
    eps = np.nan_to_num(np.asarray(solar_h12, float)[:99], nan=-8.0)
    pairs = [(z, eps[z - 1] - 12.0 + np.log10(H_FRACTION)) for z in range(3, 100)]
    for i in range(0, len(pairs), 6):
        head.append(" ABUNDANCE CHANGE " + " ".join(f"{z:2d} {v:6.2f}" for z, v in pairs[i:i + 6]))
    head.append(f"READ DECK6 {atm.rhox.size} RHOX,T,P,XNE,ABROSS,ACCRAD,VTURB, FLXCNV,VCONV,VELSND")
    rows = [f" {r:.8E} {t:8.1f} {p:.3E} {ne:.3E} {k:.3E} 0.000E+00 2.000E+05 0.000E+00 0.000E+00 0.000E+00"
            for r, t, p, ne, k in zip(atm.rhox, atm.temperature, atm.pressure, atm.edensity, atm.kappa_ross)]
    return "\n".join(head + rows) + "\n"


def sme_atmosphere(atm, solar_h12: np.ndarray):
    """A PySME atmosphere object (``method='embedded'``) for an interpolated ATLAS9 model."""
    from pysme.atmosphere.krzfile import KrzFile
    fd, path = tempfile.mkstemp(suffix=".krz", prefix="ddpayne-")
    try:
        with os.fdopen(fd, "w") as fh:
            fh.write(deck_text(atm, solar_h12))
        out = KrzFile(path)
    finally:
        os.unlink(path)
    out.method = "embedded"
    return out
