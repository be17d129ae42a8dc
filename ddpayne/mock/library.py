"""The mock spectral library: labels with a DESI-MWS-like distribution and their noiseless spectra.

**Label distribution** (:func:`draw_labels`, seeded):

Populations (column ``POP``) with weights thin 0.50, thick 0.27, halo 0.13, GES-like accreted 0.10:

* [Fe/H]: thin N(−0.15, 0.22), thick N(−0.55, 0.25), halo N(−1.6, 0.45), GES N(−1.25, 0.3), clipped to
  [−2.5, +0.4].
* [α/Fe] trend (Mg, Si, Ca, Ti, O): thin 0.02 − 0.08 [Fe/H] (≈0–0.1); thick 0.30 below [Fe/H] = −0.6 declining
  to 0.12 at +0.1; halo 0.32; GES (low-α accreted) 0.30 at [Fe/H] = −2 declining to 0.05 at −0.8. Element
  amplitudes: O 1.0, Mg 1.0, Si 0.8, Ca 0.7, Ti 0.6 times the trend, each with 0.05 dex intrinsic scatter.
* Others: [C/Fe] 0 ± 0.08 (giants −0.15 after the first dredge-up), [N/Fe] 0 ± 0.1 (giants +0.25),
  [Al/Fe] 0.5 × trend ± 0.08 (GES −0.15), [Cr/Fe] 0 ± 0.05, [Mn/Fe] 0.12 [Fe/H] − 0.02 ± 0.06 (GES −0.1
  lower), [Ni/Fe] 0 ± 0.05 (GES −0.1).
* Evolutionary stage (column ``KIND``): 62 % dwarfs/turn-off, 12 % subgiants, 20 % RGB giants, 6 % HB/red
  clump, placed on the loci of :mod:`ddpayne.physics.references` (turn-off Teff − 250 [Fe/H]) with scatter:
  dwarfs Teff U(4600, Teff_TO) ± 60 K; subgiants logg U(3.5, 4.0); giants logg U(1.2, 3.3) with
  Teff_RGB(logg) ± 80 K; HB as the reference HB points ± 100 K, ± 0.15 dex.
* VMIC = :func:`ddpayne.physics.references.vmic_relation` + N(0, 0.1), clipped to [0.5, 2.5].

The library file (``ddpayne/data/mock_library.fits``) holds the noiseless normalised spectra on the
DESI grid (uint16 scaled by 20000: 2.5e-5 precision, up to 3.27) and the true labels; it is built from the
synthesis runner's results by ``ddpayne build library``.
"""
from __future__ import annotations

import datetime as _dt
import json
import logging
from pathlib import Path

import numpy as np
from astropy.io import fits
from astropy.table import Table

from ..io.atomic import atomic_path
from ..labels import LABEL_NAMES, LABEL_UNIT_STRINGS
from ..physics.references import vmic_relation

log = logging.getLogger(__name__)

POP_WEIGHTS = {"thin": 0.50, "thick": 0.27, "halo": 0.13, "ges": 0.10}
KIND_WEIGHTS = {"dwarf": 0.62, "subgiant": 0.12, "giant": 0.20, "hb": 0.06}
FEH_RANGE = (-2.5, 0.4)

#: Default committed library path.
DEFAULT_LIBRARY = Path(__file__).resolve().parent.parent / "data" / "mock_library.fits"
#: Stored flux = round(flux × FLUX_SCALE) as uint16.
FLUX_SCALE = 20000.0


def _alpha_trend(pop: np.ndarray, feh: np.ndarray) -> np.ndarray:
    thin = 0.02 - 0.08 * feh
    thick = np.interp(feh, [-0.6, 0.1], [0.30, 0.12])
    halo = np.full_like(feh, 0.32)
    ges = np.interp(feh, [-2.0, -0.8], [0.30, 0.05])
    out = np.select([pop == "thin", pop == "thick", pop == "halo", pop == "ges"], [thin, thick, halo, ges])
    return np.clip(out, -0.05, 0.45)


def draw_labels(n: int, seed: int = 0) -> Table:
    """Draw ``n`` stars' labels (seeded). Columns: ``STAR_ID``, ``POP``, ``KIND`` and the 15 labels."""
    if n < 0:
        raise ValueError("n must be non-negative")
    rng = np.random.default_rng(seed)
    pops = rng.choice(list(POP_WEIGHTS), size=n, p=list(POP_WEIGHTS.values()))
    kinds = rng.choice(list(KIND_WEIGHTS), size=n, p=list(KIND_WEIGHTS.values()))
    mu = {"thin": (-0.15, 0.22), "thick": (-0.55, 0.25), "halo": (-1.6, 0.45), "ges": (-1.25, 0.3)}
    feh = np.array([rng.normal(*mu[p]) for p in pops])
    feh = np.clip(feh, *FEH_RANGE)
    teff = np.empty(n)
    logg = np.empty(n)
    teff_to = np.clip(6000.0 - 250.0 * feh, 6000.0, 6600.0)
    for i, k in enumerate(kinds):
        if k == "dwarf":
            t = rng.uniform(4600.0, teff_to[i])
            teff[i] = t + rng.normal(0, 60)
            logg[i] = 4.60 - 1.0e-4 * (t - 4600.0) + rng.normal(0, 0.08)
        elif k == "subgiant":
            g = rng.uniform(3.5, 4.0)
            teff[i] = teff_to[i] - 300.0 - 600.0 * (3.9 - g) + rng.normal(0, 80)
            logg[i] = g
        elif k == "giant":
            g = rng.uniform(1.2, 3.3)
            teff[i] = 4550.0 + 250.0 * (g - 2.5) - 150.0 * feh[i] + rng.normal(0, 80)
            logg[i] = g
        else:
            if feh[i] >= -1.0:
                teff[i] = 4750.0 + (100.0 if feh[i] < -0.25 else 0.0) + rng.normal(0, 100)
                logg[i] = 2.45 + rng.normal(0, 0.15)
            else:
                teff[i] = np.clip(5600.0 - 250.0 * (feh[i] + 1.0), 4800.0, 6700.0) + rng.normal(0, 100)
                logg[i] = 2.6 + rng.normal(0, 0.15)
    teff = np.clip(teff, 4000.0, 7000.0)
    logg = np.clip(logg, 0.8, 4.9)
    vmic = np.clip(vmic_relation(teff, logg) + rng.normal(0, 0.1, n), 0.5, 2.5)
    alpha = _alpha_trend(pops, feh)
    giant = logg < 3.3
    ges = pops == "ges"
    lab = {
        "TEFF": teff, "LOGG": logg, "VMIC": vmic, "FE_H": feh,
        "C_FE": rng.normal(0, 0.08, n) - 0.15 * giant,
        "N_FE": rng.normal(0, 0.10, n) + 0.25 * giant,
        "O_FE": 1.0 * alpha + rng.normal(0, 0.05, n),
        "MG_FE": 1.0 * alpha + rng.normal(0, 0.05, n),
        "AL_FE": 0.5 * alpha + rng.normal(0, 0.08, n) - 0.15 * ges,
        "SI_FE": 0.8 * alpha + rng.normal(0, 0.05, n),
        "CA_FE": 0.7 * alpha + rng.normal(0, 0.05, n),
        "TI_FE": 0.6 * alpha + rng.normal(0, 0.05, n),
        "CR_FE": rng.normal(0, 0.05, n),
        "MN_FE": 0.12 * feh - 0.02 + rng.normal(0, 0.06, n) - 0.10 * ges,
        "NI_FE": rng.normal(0, 0.05, n) - 0.10 * ges,
    }
    t = Table()
    t["STAR_ID"] = np.arange(n, dtype=np.int64)
    t["POP"] = pops.astype("U5")
    t["KIND"] = kinds.astype("U8")
    for name in LABEL_NAMES:
        t[name] = np.round(lab[name], 4 if name != "TEFF" else 1)
        t[name].unit = LABEL_UNIT_STRINGS[name]
    t.meta["SEED"] = seed
    return t


class MockLibrary:
    """Noiseless normalised spectra on a survey grid with their true labels.

    Attributes
    ----------
    wavelength : ndarray (n_pix,)
    flux : ndarray (n_star, n_pix) float32, NaN where not covered
    labels : astropy Table (``STAR_ID``, ``POP``, ``KIND`` + 15 labels)
    provenance : dict
    """

    def __init__(self, wavelength, flux, labels: Table, provenance: dict | None = None):
        self.wavelength = np.asarray(wavelength, float)
        self.flux = np.asarray(flux, np.float32)
        if self.flux.ndim != 2 or self.flux.shape[1] != self.wavelength.size:
            raise ValueError(f"flux must have shape (n_star, {self.wavelength.size}), got {self.flux.shape}")
        if len(labels) != self.flux.shape[0]:
            raise ValueError(f"{len(labels)} label rows for {self.flux.shape[0]} spectra")
        missing = [n for n in LABEL_NAMES if n not in labels.colnames]
        if missing:
            raise ValueError(f"labels table lacks columns {missing}")
        self.labels = labels
        self.provenance = dict(provenance or {})

    def __len__(self) -> int:
        return self.flux.shape[0]

    def __repr__(self) -> str:
        return f"MockLibrary({len(self)} stars, {self.wavelength.size} px)"

    def write(self, path: str | Path) -> Path:
        """Write FITS: WAVELENGTH (float64), FLUX (uint16 = round(flux × FLUX_SCALE), 65535 = no data,
        GZIP-tile-compressed: precision 2.5e-5 for flux in [0, 3.27]), LABELS (table), PROVENANCE (JSON)."""
        path = Path(path)
        prim = fits.PrimaryHDU()
        prim.header["DDPMOCK"] = (2, "ddpayne mock library format version")
        prim.header["NSTAR"] = len(self)
        f = np.asarray(self.flux, float)
        ok = np.isfinite(f)
        if np.any(ok & ((f < 0) | (f * FLUX_SCALE > 65534))):
            raise ValueError(f"flux outside [0, {65534 / FLUX_SCALE:.3f}] cannot be stored")
        q = np.where(ok, np.round(np.where(ok, f, 0) * FLUX_SCALE), 65535).astype(np.uint16)
        flux = fits.CompImageHDU(q, name="FLUX", compression_type="GZIP_2")
        flux.header["FSCALE"] = (FLUX_SCALE, "flux = FLUX / FSCALE; 65535 = no data")
        wave = fits.ImageHDU(self.wavelength, name="WAVELENGTH")
        wave.header["BUNIT"] = "Angstrom"
        tab = Table(self.labels, copy=True)
        for c in tab.colnames:  # 'dex' is not a FITS unit: abundance/logg columns are written unitless
            if str(tab[c].unit) == "dex" or "dex(" in str(tab[c].unit):
                tab[c].unit = None
        lab = fits.BinTableHDU(tab, name="LABELS")
        prov = fits.BinTableHDU(Table({"JSON": [json.dumps(self.provenance, default=str, sort_keys=True)]}),
                                name="PROVENANCE")
        with atomic_path(path) as tmp:
            fits.HDUList([prim, wave, flux, lab, prov]).writeto(tmp)
        return path

    @classmethod
    def read(cls, path: str | Path | None = None) -> "MockLibrary":
        """Read a library file (default: the committed ``ddpayne/data/mock_library.fits``)."""
        path = Path(path) if path is not None else DEFAULT_LIBRARY
        if not path.exists():
            raise FileNotFoundError(f"mock library {path} does not exist; build it with "
                                    f"'ddpayne build library'")
        with fits.open(path) as hdul:
            if "DDPMOCK" not in hdul[0].header:
                raise ValueError(f"{path} is not a ddpayne mock library (no DDPMOCK key)")
            wave = np.asarray(hdul["WAVELENGTH"].data, float)
            q = np.asarray(hdul["FLUX"].data)
            scale = float(hdul["FLUX"].header["FSCALE"])
            flux = np.where(q == 65535, np.nan, q / scale).astype(np.float32)
            labels = Table(hdul["LABELS"].data)
            for name in LABEL_NAMES:
                labels[name].unit = LABEL_UNIT_STRINGS[name]
            prov = json.loads(str(hdul["PROVENANCE"].data["JSON"][0]))
        for c in ("POP", "KIND"):
            if c in labels.colnames:
                labels[c] = [str(s).strip() for s in labels[c]]
        return cls(wave, flux, labels, prov)


def build_library(workdir: str | Path, out: str | Path = DEFAULT_LIBRARY, command: str | None = None,
                  instrument: str = "desi", hydrogen=None) -> MockLibrary:
    """Collect the finished mock-star syntheses in ``workdir`` into a library file (``instrument='lamost'``
    re-degrades the stored high-resolution spectra to LAMOST).

    ``hydrogen`` (a path or :class:`~ddpayne.physics.hydrogen.HydrogenCorrection`) applies the hydrogen
    correction to every spectrum; the library's ``physics_version`` then counts it
    (:func:`~ddpayne.physics.hydrogen.product_physics_version`).
    """
    from ..physics import hydrogen as hyd
    from ..physics.runner import current_physics, degraded_flux, load_plan, load_result
    hydrogen = hyd.load(hydrogen, instrument)
    workdir = Path(workdir)
    plan = load_plan(workdir)
    jobs = [j for j in plan["jobs"] if j["kind"] == "mock"]
    physics = current_physics(plan)
    found = [(j, r) for j in jobs if (r := load_result(workdir, j["id"], expect_labels=j["labels"])) is not None]
    if physics is None and found:   # the synthesizer plugin is not installed: the newest version present
        physics = max(r["physics"] for _, r in found)
    rows, fluxes, wave = [], [], None
    n_outdated = 0
    for j, r in found:
        if r["physics"] < physics:   # left out until the runner repairs it
            n_outdated += 1
            continue
        w, f = degraded_flux(r, instrument, hydrogen=hydrogen)
        wave = w if wave is None else wave
        fluxes.append(f)
        rows.append(j)
    if not rows:
        raise RuntimeError(f"no finished mock-star syntheses in {workdir}")
    t = Table()
    t["STAR_ID"] = np.array([j["index"] for j in rows], dtype=np.int64)
    t["POP"] = [j["pop"] for j in rows]
    t["KIND"] = [j["star_kind"] for j in rows]
    for name in LABEL_NAMES:
        t[name] = [j["labels"][name] for j in rows]
        t[name].unit = LABEL_UNIT_STRINGS[name]
    if n_outdated:
        log.warning("%d finished mock stars were made with an older physics version and are left out until "
                    "the runner repairs them", n_outdated)
    prov = {"n_stars": len(rows), "n_planned": len(jobs), "label_seed": plan["mock_seed"],
            "label_extensions": plan.get("mock_extensions", []),
            "physics_version": hyd.product_physics_version(physics, hydrogen is not None),
            "n_outdated_left_out": n_outdated,
            "hydrogen": hyd.provenance_entry(hydrogen),
            "instrument": plan["instrument"] if instrument == "desi" else instrument,
            "synthesis": plan["provenance"],
            "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
            "command": command or "ddpayne.mock.library.build_library"}
    lib = MockLibrary(wave, np.array(fluxes), t, prov)
    lib.write(out)
    log.info("mock library: %d of %d planned stars -> %s", len(rows), len(jobs), out)
    return lib


def main(argv=None):
    """Deprecated ``python -m ddpayne.mock.library``: runs ``ddpayne build library``."""
    from ..pipeline.cli_synth import deprecated_subcommand_alias

    return deprecated_subcommand_alias("python -m ddpayne.mock.library", {"build": ["build", "library"]}, argv)


if __name__ == "__main__":
    raise SystemExit(main())
