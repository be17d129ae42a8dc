"""Atomic and molecular line lists: which species absorbs where, for naming spectral features.

The core never reads a line list itself. A plugin provides one as a :class:`LineList` through the
``ddpayne_line_lists`` hook (the ``moog`` plugin offers ``linemake``, the cleaned linemake list MOOG
synthesises with), or a user gives a table file (:func:`load_line_list`). Lines are identified by MOOG
species codes (``26.0`` Fe I, ``20.1`` Ca II, ``607.0`` CN): the integer part is the atomic number of an
atom or the two-digit atomic numbers of a molecule's atoms, the first decimal the ionisation stage.

**Line strength index.** To name the *strongest* line near a wavelength, lines are ranked by the weak-line
strength index

.. math:: s = \\log\\varepsilon_\\odot(X) + \\log gf - \\theta\\,\\chi, \\qquad \\theta = 5040\\,{\\rm K}/T_{\\rm eff}

(the equivalent width of a weak line on the linear part of the curve of growth scales as
:math:`gf\\,\\varepsilon\\,10^{-\\theta\\chi}`; Gray, *The Observation and Analysis of Stellar
Photospheres*, ch. 16), with solar abundances of Asplund et al. (2009). A molecule counts its
rarest atom, minus :data:`MOLECULE_PENALTY` dex per further atom for the small fraction of atoms bound in
it; hydrogen
lines, saturated with broad Stark wings, are raised by :data:`HYDROGEN_BOOST` dex. The index ignores
ionisation balance and saturation: it names features, it does not model them.
"""
from __future__ import annotations

import abc
import logging
import os
from pathlib import Path
from typing import ClassVar

import numpy as np
from astropy.table import Table

log = logging.getLogger(__name__)

#: Chemical symbols by atomic number (index 0 unused).
SYMBOLS: tuple[str, ...] = (
    "_", "H", "He", "Li", "Be", "B", "C", "N", "O", "F", "Ne", "Na", "Mg", "Al", "Si", "P", "S", "Cl",
    "Ar", "K", "Ca", "Sc", "Ti", "V", "Cr", "Mn", "Fe", "Co", "Ni", "Cu", "Zn", "Ga", "Ge", "As", "Se",
    "Br", "Kr", "Rb", "Sr", "Y", "Zr", "Nb", "Mo", "Tc", "Ru", "Rh", "Pd", "Ag", "Cd", "In", "Sn", "Sb",
    "Te", "I", "Xe", "Cs", "Ba", "La", "Ce", "Pr", "Nd", "Pm", "Sm", "Eu", "Gd", "Tb", "Dy", "Ho", "Er",
    "Tm", "Yb", "Lu", "Hf", "Ta", "W", "Re", "Os", "Ir", "Pt", "Au", "Hg", "Tl", "Pb", "Bi", "Po", "At",
    "Rn", "Fr", "Ra", "Ac", "Th", "Pa", "U",
)

#: Solar abundances log ε (H = 12): Asplund et al. (2009, ARA&A 47, 481), photospheric where given,
#: meteoritic otherwise.
SOLAR_LOG_EPS: dict[str, float] = {
    "H": 12.00, "He": 10.93, "Li": 1.05, "Be": 1.38, "B": 2.70, "C": 8.43, "N": 7.83, "O": 8.69,
    "F": 4.56, "Ne": 7.93, "Na": 6.24, "Mg": 7.60, "Al": 6.45, "Si": 7.51, "P": 5.41, "S": 7.12,
    "Cl": 5.50, "Ar": 6.40, "K": 5.03, "Ca": 6.34, "Sc": 3.15, "Ti": 4.95, "V": 3.93, "Cr": 5.64,
    "Mn": 5.43, "Fe": 7.50, "Co": 4.99, "Ni": 6.22, "Cu": 4.19, "Zn": 4.56, "Ga": 3.04, "Ge": 3.65,
    "As": 2.30, "Se": 3.34, "Br": 2.54, "Kr": 3.25, "Rb": 2.52, "Sr": 2.87, "Y": 2.21, "Zr": 2.58,
    "Nb": 1.46, "Mo": 1.88, "Ru": 1.75, "Rh": 0.91, "Pd": 1.57, "Ag": 0.94, "Cd": 1.71, "In": 0.80,
    "Sn": 2.04, "Sb": 1.01, "Te": 2.18, "I": 1.55, "Xe": 2.24, "Cs": 1.08, "Ba": 2.18, "La": 1.10,
    "Ce": 1.58, "Pr": 0.72, "Nd": 1.42, "Sm": 0.96, "Eu": 0.52, "Gd": 1.07, "Tb": 0.30, "Dy": 1.10,
    "Ho": 0.48, "Er": 0.92, "Tm": 0.10, "Yb": 0.84, "Lu": 0.10, "Hf": 0.85, "Ta": -0.12, "W": 0.85,
    "Re": 0.26, "Os": 1.40, "Ir": 1.38, "Pt": 1.62, "Au": 0.92, "Hg": 1.17, "Tl": 0.90, "Pb": 1.75,
    "Bi": 0.65, "Th": 0.02, "U": -0.54,
}

#: dex subtracted from a molecule's rarest atom in the strength index, per atom beyond the first.
MOLECULE_PENALTY = 4.0
#: dex added to hydrogen lines in the strength index.
HYDROGEN_BOOST = 4.0

#: Columns of a line-list table (:meth:`LineList.lines`).
LINE_COLUMNS = ("WAVE_AIR", "WAVE_VAC", "SPECIES", "LOGGF", "EP")


class LineList(abc.ABC):
    """Interface of a line-list provider (returned by the ``ddpayne_line_lists`` hook).

    Attributes
    ----------
    name : str
        Selection name (class attribute), e.g. ``"linemake"``.
    """

    name: ClassVar[str] = ""

    @abc.abstractmethod
    def lines(self, wave_min: float, wave_max: float) -> Table:
        """Lines with vacuum wavelength in ``[wave_min, wave_max]`` (Å).

        Returns
        -------
        astropy.table.Table
            Columns ``WAVE_AIR``, ``WAVE_VAC`` (Å), ``SPECIES`` (MOOG code, float), ``LOGGF``, ``EP``
            (lower excitation potential, eV), sorted by ``WAVE_VAC``.
        """


def species_atoms(code: float) -> tuple[int, ...]:
    """Atomic numbers of the atoms of MOOG species ``code`` (``607.0`` -> ``(6, 7)``, ``26.1`` -> ``(26,)``)."""
    z = int(np.floor(float(code) + 1e-9))
    if z < 100:
        return (z,)
    digits = str(z)
    if len(digits) % 2:
        digits = "0" + digits
    return tuple(int(digits[i:i + 2]) for i in range(0, len(digits), 2))


def species_name(code: float) -> str:
    """Readable name of MOOG species ``code``: ``'Fe I'``, ``'Ca II'``, ``'CN'``, ``'MgH'``, ``'H2O'``."""
    atoms = species_atoms(code)
    if len(atoms) == 1:
        stage = round((float(code) - atoms[0]) * 10) + 1
        return f"{SYMBOLS[atoms[0]]} {'I' * stage if stage <= 3 else stage}"
    counts: dict[str, int] = {}
    for z in sorted(atoms, key=lambda a: (a != 1, a)):     # molecules conventionally end in H, C first
        counts[SYMBOLS[z]] = counts.get(SYMBOLS[z], 0) + 1
    heavy = [s for s in counts if s != "H"]
    order = heavy + (["H"] if "H" in counts else [])
    name = "".join(s + (str(counts[s]) if counts[s] > 1 else "") for s in order)
    return {"OH2": "H2O"}.get(name, name)


def species_elements(code: float) -> tuple[str, ...]:
    """Chemical symbols in species ``code`` (each once): ``607.0`` -> ``('C', 'N')``."""
    return tuple(dict.fromkeys(SYMBOLS[z] for z in species_atoms(code)))


def line_strength(lines: Table, teff: float = 5000.0) -> np.ndarray:
    """The strength index ``s`` (module docstring) of every line of ``lines`` at ``teff`` (K)."""
    codes = np.asarray(lines["SPECIES"], dtype=float)
    uniq, inv = np.unique(codes, return_inverse=True)
    base = np.empty(uniq.size)
    for k, code in enumerate(uniq):
        atoms = species_atoms(code)
        eps = min(SOLAR_LOG_EPS.get(SYMBOLS[z], 0.0) for z in atoms)
        if len(atoms) > 1:
            eps -= MOLECULE_PENALTY * (len(atoms) - 1)
        elif atoms[0] == 1:
            eps += HYDROGEN_BOOST
        base[k] = eps
    theta = 5040.0 / float(teff)
    return base[inv.ravel()] + np.asarray(lines["LOGGF"], float) - theta * np.asarray(lines["EP"], float)


def _standardise(table: Table, source: str) -> Table:
    """Check a user's line table and give it the :data:`LINE_COLUMNS`."""
    from .airvac import air_to_vacuum, vacuum_to_air

    names = {c.upper(): c for c in table.colnames}
    missing = [c for c in ("SPECIES", "LOGGF", "EP") if c not in names]
    if not ("WAVE_AIR" in names or "WAVE_VAC" in names):
        missing.insert(0, "WAVE_AIR or WAVE_VAC")
    if missing:
        raise ValueError(f"line list {source} lacks column(s) {missing}; it has {table.colnames}")
    out = Table()
    if "WAVE_VAC" in names:
        out["WAVE_VAC"] = np.asarray(table[names["WAVE_VAC"]], float)
        out["WAVE_AIR"] = (np.asarray(table[names["WAVE_AIR"]], float) if "WAVE_AIR" in names
                           else vacuum_to_air(out["WAVE_VAC"]))
    else:
        out["WAVE_AIR"] = np.asarray(table[names["WAVE_AIR"]], float)
        out["WAVE_VAC"] = air_to_vacuum(out["WAVE_AIR"])
    for c in ("SPECIES", "LOGGF", "EP"):
        out[c] = np.asarray(table[names[c]], float)
    out = out[LINE_COLUMNS]
    out.sort("WAVE_VAC")
    return out


def load_line_list(source: str | os.PathLike | Table | LineList | None = None,
                   wave_range: tuple[float, float] = (3000.0, 11000.0)) -> Table | None:
    """A line list as a table with :data:`LINE_COLUMNS`, sorted by vacuum wavelength.

    Parameters
    ----------
    source : None, str, path, Table or LineList
        ``None``: the first installed line-list plugin (``linemake`` preferred), or None if there is
        none. A name: that plugin (``ddpayne plugins`` lists them). A path: a table file (ECSV, FITS, …
        anything ``Table.read`` reads) with columns ``WAVE_AIR`` or ``WAVE_VAC`` (Å), ``SPECIES`` (MOOG
        code), ``LOGGF`` and ``EP`` (eV). A Table or a LineList instance is used as it is.
    wave_range : (float, float)
        Vacuum wavelengths (Å) kept.

    Raises
    ------
    FileNotFoundError, ValueError
        A path that does not exist, or a table without the columns (naming them).
    """
    from .. import registry

    if source is None:
        found = registry.available("linelist")
        if not found:
            log.info("no line-list plugin is installed: features are not identified")
            return None
        name = "linemake" if "linemake" in found else min(found)
        source = found[name]()
    elif isinstance(source, str) and source in registry.available("linelist"):
        source = registry.create("linelist", source)
    if isinstance(source, LineList):
        table = source.lines(*wave_range)
        return _standardise(table, f"plugin {source.name!r}")
    if isinstance(source, Table):
        table, what = source, "table"
    else:
        path = Path(source)
        if not path.exists():
            raise FileNotFoundError(f"line list {path} does not exist (give a table file or one of the "
                                    f"line-list plugins {sorted(registry.available('linelist'))})")
        table, what = Table.read(path), str(path)
    out = _standardise(table, what)
    keep = (out["WAVE_VAC"] >= wave_range[0]) & (out["WAVE_VAC"] <= wave_range[1])
    return out[keep]


__all__ = [
    "LINE_COLUMNS",
    "SOLAR_LOG_EPS",
    "LineList",
    "line_strength",
    "load_line_list",
    "species_atoms",
    "species_elements",
    "species_name",
]
