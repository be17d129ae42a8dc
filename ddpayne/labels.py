"""The stellar labels that ddpayne measures, their units and conventions.

Labels are named as in the catalogue columns: ``TEFF`` (K), ``LOGG`` (dex, cgs), ``VMIC`` (km/s),
``FE_H`` (dex) and ``X_FE`` (dex) for the eleven elements of Zhang et al. (2024), table 1.
"""
from __future__ import annotations

import astropy.units as u

#: The 15 labels fitted to DESI spectra, in the paper's order.
LABEL_NAMES: tuple[str, ...] = (
    "TEFF", "LOGG", "VMIC", "FE_H",
    "C_FE", "N_FE", "O_FE", "MG_FE", "AL_FE", "SI_FE", "CA_FE", "TI_FE", "CR_FE", "MN_FE", "NI_FE",
)

#: The [X/Fe] abundance labels.
ABUNDANCE_LABELS: tuple[str, ...] = LABEL_NAMES[4:]

#: Units of each label, for catalogue columns.
LABEL_UNITS: dict[str, u.UnitBase] = {
    "TEFF": u.K, "LOGG": u.dex(u.cm / u.s**2), "VMIC": u.km / u.s,
    **{name: u.dex for name in LABEL_NAMES[3:]},
}

#: Plain-text unit strings (FITS-compatible) for each label.
LABEL_UNIT_STRINGS: dict[str, str] = {
    "TEFF": "K", "LOGG": "dex", "VMIC": "km/s", **{name: "dex" for name in LABEL_NAMES[3:]},
}

#: [Fe/H] below which an abundance is not trusted (paper, section 4.1): -1.5 for N and Ti, -2 otherwise.
FE_H_FLOORS: dict[str, float] = {
    name: (-1.5 if name in ("N_FE", "TI_FE") else -2.0) for name in ABUNDANCE_LABELS
}


def element_of(label: str) -> str:
    """Return the chemical symbol of an abundance label, e.g. ``'MG_FE'`` -> ``'Mg'``."""
    if label == "FE_H":
        return "Fe"
    if not label.endswith("_FE"):
        raise ValueError(f"{label!r} is not an abundance label")
    return label[:-3].capitalize()


def validate_label_names(names) -> tuple[str, ...]:
    """Check that every name is a known label; return them as a tuple.

    Raises
    ------
    ValueError
        Naming the unknown labels and listing the known ones.
    """
    names = tuple(names)
    unknown = [n for n in names if n not in LABEL_NAMES]
    if unknown:
        raise ValueError(f"unknown label name(s) {unknown}; known labels are {list(LABEL_NAMES)}")
    return names
