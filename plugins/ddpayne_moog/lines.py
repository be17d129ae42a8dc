"""The cleaned linemake list (:mod:`ddpayne_moog.linelist`) offered to the core as a line list.

The core names spectral features with it (``ddpayne inspect``, :mod:`ddpayne.fit.information`) through the
``ddpayne_line_lists`` hook, without importing this plugin.
"""
from __future__ import annotations

import numpy as np
from astropy.table import Table

from ddpayne.physics.airvac import air_to_vacuum
from ddpayne.physics.lines import LineList


class LinemakeLines(LineList):
    """linemake (Placco et al. 2021) as cleaned for MOOG: the lines the physical spectra were made with."""

    name = "linemake"

    def lines(self, wave_min: float, wave_max: float) -> Table:
        from .linelist import load_linelist

        d = load_linelist()
        vac = air_to_vacuum(d["wave"])
        keep = (vac >= wave_min) & (vac <= wave_max)
        order = np.argsort(vac[keep], kind="stable")
        return Table({"WAVE_AIR": d["wave"][keep][order], "WAVE_VAC": vac[keep][order],
                      "SPECIES": d["species"][keep][order], "LOGGF": d["loggf"][keep][order],
                      "EP": d["ep"][keep][order]})
