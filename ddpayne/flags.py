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
    #: Too few good pixels (< 50 % of the pixels the model fits) for a reliable fit.
    FEW_PIXELS = 1 << 4
    #: Median S/N below the requested threshold.
    LOW_SNR = 1 << 5
    #: A spectrograph arm is missing from the file (e.g. no ``B_FLUX`` HDU): its pixels are not fitted.
    MISSING_ARM = 1 << 6
    #: The survey catalogue holds several rows for this target that disagree (e.g. two VRAD values) and
    #: nothing (survey, program, PRIMARY) decides between them: the RV used may be wrong.
    AMBIGUOUS_CATALOGUE = 1 << 7
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


#: Readable reason of each bit set after the preparation, by the fit and derive stages (the preparation
#: writes its reasons where it sets a bit, with the details of the spectrum).
STAGE_REASONS = {
    Flag.FIT_FAILED: "the fit did not converge",
    Flag.AT_BOUND: "a label ended at the bound of its allowed range (see BOUND_MASK)",
    Flag.OUT_OF_COVERAGE: "the solution lies outside the training set's label coverage (see COVERAGE_DIST)",
    Flag.CHI2_OUTLIER: "QFLAG_CHI2 >= 3: the model does not describe the spectrum",
    Flag.BELOW_FEH_FLOOR: "[Fe/H] below the floor of at least one abundance (see ABUND_FLAG)",
    Flag.NO_PHOTOMETRY: "photometry needed for the extinction missing or unusable",
    Flag.OUT_OF_CONTROL: "outside the control sample's coverage (intrinsic colours, absolute magnitudes)",
    Flag.NO_PARALLAX: "no usable parallax: spectro-photometric distance only",
    Flag.DISTANCE_TENSION: "spectro-photometric and parallax distances disagree (a likely binary)",
    Flag.NO_ORBIT: "astrometry or RV missing: no orbit",
}


def join_reasons(*reasons: str) -> str:
    """Join non-empty reasons with ``'; '``, each once, in order."""
    out: list[str] = []
    for r in reasons:
        r = str(r).strip()
        if r and r not in out:
            out.append(r)
    return "; ".join(out)


def stage_reason(value: int) -> str:
    """The readable reasons of the fit- and derive-stage bits set in ``value`` (:data:`STAGE_REASONS`),
    joined by ``'; '`` (empty when none is set)."""
    return join_reasons(*(text for bit, text in STAGE_REASONS.items() if int(value) & int(bit)))


def set_flag(flags: np.ndarray, where, flag: Flag) -> None:
    """Set ``flag`` in ``flags`` (in place) where the boolean ``where`` is true."""
    flags[np.asarray(where, dtype=bool)] |= int(flag)
