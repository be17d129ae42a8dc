"""Named, documented population selections on catalogue columns.

The Gaia-Enceladus-Sausage (GES) selection of Zhang et al. (2024, eq. 7) is :data:`GES_ZHANG2024`:
``−700 < J_φ < 500 kpc km/s`` and ``e > 0.9`` (J_φ = L_z positive for prograde orbits, see
:mod:`ddpayne.galaxy.coords`). Make another with :class:`RangeSelection` or
:func:`dataclasses.replace`, e.g. ``replace(GES_ZHANG2024, cuts={"JPHI": (-500, 500), "ECC": (0.8, None)})``,
and register it in :data:`SELECTIONS` to use it by name.

Examples
--------
>>> from astropy.table import Table
>>> from ddpayne.galaxy.selection import select
>>> t = Table({"JPHI": [0.0, 1800.0, -800.0], "ECC": [0.95, 0.1, 0.97]})
>>> select(t, "ges").tolist()
[True, False, False]
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from astropy.table import Table


@dataclass(frozen=True)
class RangeSelection:
    """Rows whose columns all lie strictly inside open ranges.

    Attributes
    ----------
    name : str
        Short name (also the catalogue column written by :func:`ddpayne.galaxy.derive`).
    cuts : dict
        ``{column: (low, high)}``; ``None`` for an open end. Bounds are exclusive; NaN fails.
    description, reference : str
        What it selects and where it comes from.
    """

    name: str
    cuts: dict = field(default_factory=dict)
    description: str = ""
    reference: str = ""

    def __call__(self, table: Table) -> np.ndarray:
        """Boolean mask of the selected rows of ``table``.

        Raises
        ------
        KeyError
            Naming a missing column.
        """
        mask = np.ones(len(table), dtype=bool)
        for col, (lo, hi) in self.cuts.items():
            if col not in table.colnames:
                raise KeyError(f"selection {self.name!r} needs column {col!r}; table has {table.colnames}")
            c = table[col]
            v = np.ma.asarray(c, dtype=float).filled(np.nan) if hasattr(c, "mask") else \
                np.asarray(c, dtype=float)
            ok = np.isfinite(v)
            if lo is not None:
                ok &= v > lo
            if hi is not None:
                ok &= v < hi
            mask &= ok
        return mask


#: The paper's kinematic GES selection (Zhang et al. 2024, eq. 7).
GES_ZHANG2024 = RangeSelection(
    name="GES",
    cuts={"JPHI": (-700.0, 500.0), "ECC": (0.9, None)},
    description="Gaia-Enceladus-Sausage: low angular momentum, high eccentricity orbits",
    reference="Zhang et al. 2024, eq. 7 (after Belokurov et al. 2018; Helmi et al. 2018)",
)

#: Selections available by name.
SELECTIONS: dict[str, RangeSelection] = {"ges": GES_ZHANG2024}


def get_selection(selection: str | RangeSelection) -> RangeSelection:
    """A selection object from its name in :data:`SELECTIONS` (or the object itself)."""
    if isinstance(selection, RangeSelection) or callable(selection):
        return selection
    try:
        return SELECTIONS[selection.lower()]
    except KeyError:
        raise ValueError(f"unknown selection {selection!r}; known: {sorted(SELECTIONS)}") from None


def select(table: Table, selection: str | RangeSelection = "ges") -> np.ndarray:
    """Boolean mask of the rows of ``table`` in ``selection`` (a name or a :class:`RangeSelection`)."""
    return np.asarray(get_selection(selection)(table), dtype=bool)


def completeness_purity(selected, truth) -> tuple[float, float]:
    """Completeness (selected true members / true members) and purity (true members / selected)."""
    selected = np.asarray(selected, bool)
    truth = np.asarray(truth, bool)
    tp = np.sum(selected & truth)
    comp = tp / truth.sum() if truth.sum() else float("nan")
    pur = tp / selected.sum() if selected.sum() else float("nan")
    return float(comp), float(pur)
