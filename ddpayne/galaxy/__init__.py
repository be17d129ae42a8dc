"""ddpayne.galaxy: from stellar labels to the Galaxy.

Extinction coefficients (:mod:`.extinction`), star-pair reddening (:mod:`.starpair`), the distance and
orbit interfaces (:mod:`.distances`, :mod:`.orbits`; implementations are plugins), solar parameters
(:mod:`.solar`), population selections (:mod:`.selection`) and the one-call :func:`derive`.
"""
from .derive import derive
from .selection import GES_ZHANG2024, RangeSelection, completeness_purity, select

__all__ = ["derive", "select", "completeness_purity", "RangeSelection", "GES_ZHANG2024"]
