"""ddpayne.galaxy: from stellar labels to the Galaxy.

Extinction coefficients (:mod:`.extinction`), star-pair reddening (:mod:`.starpair`), the distance and
orbit interfaces (:mod:`.distances`, :mod:`.orbits`; implementations are plugins), solar parameters
(:mod:`.solar`), population selections (:mod:`.selection`) and the one-call :func:`derive`.
"""
from .derive import derive
from .extinction import ExtinctionTable, compute_table, default_table
from .selection import GES_ZHANG2024, SELECTIONS, RangeSelection, completeness_purity, select
from .solar import SOLAR, SolarParameters
from .starpair import StarPairExtinction

__all__ = ["derive", "select", "completeness_purity", "RangeSelection", "GES_ZHANG2024", "SELECTIONS",
           "StarPairExtinction", "ExtinctionTable", "compute_table", "default_table", "SOLAR",
           "SolarParameters"]
