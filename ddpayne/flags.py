"""Bit flags written to the ``FLAG`` column of prepared batches and catalogues.

Every row of every output carries a ``FLAG`` integer; zero means nothing to report. Nothing is ever
silently dropped: a spectrum that cannot be used keeps its row with the reason in ``FLAG`` and the
human-readable ``FLAG_REASON``.
"""
from __future__ import annotations

import enum

import numpy as np


class Flag(enum.IntFlag):
    """Quality bits. Documented in ``docs/catalogue.rst``."""

    #: The input spectrum could not be read or had inconsistent shapes.
    BAD_INPUT = 1 << 0
    #: All pixels are masked (NaN flux, zero/negative ivar, mask bits).
    ALL_MASKED = 1 << 1
    #: The catalogue radial velocity is missing or NaN; the spectrum was not shifted to the rest frame.
    NO_RV = 1 << 2
    #: The object is not classified as a star (kept only when asked for).
    NOT_STAR = 1 << 3
    #: Too few good pixels (< 50 % of the grid) for a reliable fit.
    FEW_PIXELS = 1 << 4
    #: Median S/N below the requested threshold.
    LOW_SNR = 1 << 5
    #: The fit did not converge.
    FIT_FAILED = 1 << 8
    #: At least one label ended at the bound of the allowed range.
    AT_BOUND = 1 << 9
    #: The solution is outside the label coverage of the training set.
    OUT_OF_COVERAGE = 1 << 10
    #: qflag_chi2 >= 3: the model does not describe the spectrum (paper Eq. 4).
    CHI2_OUTLIER = 1 << 11
    #: [Fe/H] below the floor of at least one abundance (see ``ABUND_FLAG``).
    BELOW_FEH_FLOOR = 1 << 12
    #: Photometry needed for extinction missing or unusable.
    NO_PHOTOMETRY = 1 << 16
    #: Outside the control-sample coverage for intrinsic colours / absolute magnitudes.
    OUT_OF_CONTROL = 1 << 17
    #: No usable parallax (missing, negative, or low ϖ/σ_ϖ, or RUWE > 1.4): spectro-photometric distance only.
    NO_PARALLAX = 1 << 18
    #: Spectro-photometric and parallax distances disagree: a likely binary.
    DISTANCE_TENSION = 1 << 19
    #: Astrometry (proper motions) or RV missing: no orbit.
    NO_ORBIT = 1 << 20


def describe(value: int) -> str:
    """Return the names of the bits set in ``value``, joined by ``|`` (empty for 0)."""
    return "|".join(f.name for f in Flag if int(value) & int(f))


def set_flag(flags: np.ndarray, where, flag: Flag) -> None:
    """Set ``flag`` in ``flags`` (in place) where the boolean ``where`` is true."""
    flags[np.asarray(where, dtype=bool)] |= int(flag)
