"""``ddpayne demo``: the whole pipeline on bundled data, honest about what the data are.

1. The real Sun (SAO2010 atlas degraded to DESI resolution, written as a DESI coadd with an MWS-like
   catalogue) is read and prepared: a check of the reading and preparation chain on a real stellar
   spectrum.
2. A mock DESI survey (real-layout coadds, mwsall-like catalogue, 2MASS, reference labels, known truth) is
   generated and run through ``ddpayne run``: prepare → train → fit → extinction, distances, orbits →
   catalogue and figures; the catalogue is then validated against the truth (bias and scatter per label,
   GES completeness and purity).

The mock's spectra come from the committed physical library (ATLAS9 + MOOG, ``ddpayne/data/
mock_library.fits``) once it holds enough stars to train on (:data:`MIN_PHYSICAL_STARS`). Until then an
*analytic stand-in* is used (:mod:`ddpayne.mock.standin`: Gaussian absorption lines whose depths depend on
Teff, log g, [Fe/H] and [Mg/Fe]) and the demo says so. To run in minutes on a laptop the
demo trains small networks on part of the grid; ``examples/config.toml`` shows a full run.
"""
from __future__ import annotations

import logging
import os
import time
from importlib import resources
from pathlib import Path

import numpy as np

log = logging.getLogger(__name__)

#: The physical mock library is used once it has at least this many stars.
MIN_PHYSICAL_STARS = 300
from ..mock.standin import STANDIN_LABELS  # noqa: E402


def bundled(*parts: str) -> Path:
    """Path of a file shipped in ``ddpayne/data``."""
    return Path(str(resources.files("ddpayne").joinpath("data", *parts)))


def _sun(out: Path) -> None:
    from ..prepare.spectra import prepare_files

    print("1. The real Sun (SAO2010 solar atlas) degraded to DESI resolution and written as a DESI coadd at")
    print("   S/N 100 with an MWS-like catalogue: a real stellar spectrum, not a DESI observation.")
    batch, rejected = prepare_files([bundled("sun", "coadd-sun-snr100.fits")],
                                    catalogue=bundled("sun", "mwsall-sun-snr100.fits"))
    if batch is None:
        print("   could not be prepared:", list(rejected["FLAG_REASON"]))
        return
    batch.write(out / "prepared-sun.fits", overwrite=True)
    m = batch.meta
    good = batch.ivar[0] > 0
    print(f"   prepared on {batch.wavelength.size} pixels ({batch.wavelength[0]:.0f}-{batch.wavelength[-1]:.0f} Å, "
          f"rest frame, vacuum); RV {m['RV'][0]:+.1f} km/s; S/N B/R/Z {m['SNR_B'][0]:.0f}/{m['SNR_R'][0]:.0f}/"
          f"{m['SNR_Z'][0]:.0f}; {good.sum()} good pixels; median normalised flux "
          f"{np.median(batch.flux[0][good]):.3f}")


def _library():
    """The physical library if it is big enough, else the analytic stand-in (and a description)."""
    from ..mock.library import MockLibrary, draw_labels

    try:
        physical = MockLibrary.read(None)
    except (OSError, FileNotFoundError):
        physical = None
    n_phys = len(physical) if physical is not None else 0
    planned = physical.provenance.get("n_planned", "?") if physical is not None else "?"
    if physical is not None and n_phys >= MIN_PHYSICAL_STARS:
        return physical, None, (f"the physical library: {n_phys} stars synthesised with ATLAS9 + MOOG "
                                f"(of {planned} planned)")
    from ..mock.standin import analytic_library

    lib = analytic_library(400, STANDIN_LABELS, seed=11)
    why = (f"an ANALYTIC STAND-IN library (Gaussian lines depending on {', '.join(STANDIN_LABELS)}): the "
           f"physical ATLAS9 + MOOG library holds {n_phys} of {planned} planned stars so far, fewer than the "
           f"{MIN_PHYSICAL_STARS} needed to train on")
    return lib, STANDIN_LABELS, why


#: Wavelength windows of the physical demo (rest-frame vacuum Å): lines of every one of the 15 labels —
#: CN 3883 / Al 3944, 3961 / Ca II H&K, CH G band, Mn, Cr, Ti, Fe (blue); Mg b, Fe, Ni, Ti (green);
#: Ca, Si, Ni (6100-6300); Al 6696/6698; the O I 7774 triplet; the Ca II triplet and Si, Fe (8480-8700).
PHYSICAL_WINDOWS = [[3850, 4450], [5150, 5400], [6100, 6300], [6640, 6720], [7740, 7800], [8480, 8700]]
#: The analytic stand-in's lines all lie in this range.
STANDIN_WINDOW = [5000, 5450]


def _config_text(labels, quick: bool, physical: bool) -> str:
    lab = "" if labels is None else "labels = [" + ", ".join(f'"{n}"' for n in labels) + "]\n"
    wr = PHYSICAL_WINDOWS if physical else STANDIN_WINDOW
    return f"""# written by `ddpayne demo`
[data]
spectra = ["mock/coadd-*.fits"]
catalogue = "mock/mwsall-mock.fits"
labels = "mock/reference-labels-mock.fits"
photometry = "mock/twomass-mock.fits"

[prepare]
wave_range = {wr}   # part of the grid, to train in minutes on a laptop

[training]
regularizer = "{'kurucz' if physical else 'none'}"
{lab}epochs = {60 if quick else 200}
batch_size = 64
final_learning_rate = 0.001
n_hidden = 10
min_snr = 10
allow_underdetermined = true

[fit]
fitter = "lm"

[output]
dir = "run"
"""


def run_demo(out: str | os.PathLike = "demo-output", quick: bool = False) -> int:
    """Run the demo; write results under ``out``; return a process exit code."""
    from astropy.table import Table

    from ..mock.survey import make_mock_survey
    from ..mock.validation import format_validation, ges_recovery, validate
    from .catalogue import flag_summary, read_catalogue
    from .run import Pipeline

    t0 = time.time()
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    print("ddpayne demo")
    _sun(out)

    lib, labels, why = _library()
    n_stars = min(150 if quick else 400, len(lib))  # each library spectrum at most once
    print(f"\n2. A MOCK DESI survey of {n_stars} stars (not DESI data) from {why};")
    print("   10 % of the stars are observed twice (as DESI re-observes targets), for the repeat precision.")
    paths = make_mock_survey(out / "mock", n_stars, snr=60.0, snr_spread=0.15, seed=7,
                             n_per_file=n_stars // 2 + 1, library=lib, repeat_fraction=0.1)
    cfg = out / "demo.toml"
    cfg.write_text(_config_text(labels, quick, physical=labels is None))
    print(f"   written in the real DESI coadd layout to {out / 'mock'}; pipeline configuration {cfg}")
    print("   running: prepare → train → fit → extinction, distances, orbits → catalogue → figures")
    catalogue = Pipeline(cfg).run()
    cat = read_catalogue(catalogue)
    truth = Table.read(paths["truth"])
    table = validate(cat, truth, labels=list(labels) if labels else None)
    table.write(out / "validation.ecsv", format="ascii.ecsv", overwrite=True)
    comp, pur, n_true, n_sel = ges_recovery(cat, truth)
    from ..fit.cramer_rao import catalogue_precision_report
    prec = catalogue_precision_report(cat)
    print(f"\nValidation against the mock's truth ({len(cat)} stars; bias = median(catalogue − truth), "
          "scatter = 1.4826 MAD):")
    print(format_validation(table))
    print("(scatter/err near 1: the formal errors describe the real scatter.)")
    print(f"GES selection: {n_sel} selected, {n_true} true members: completeness {comp:.2f}, purity {pur:.2f}")
    if prec is not None and prec.meta.get("N_PAIRS", 0):
        prec.write(out / "precision.ecsv", format="ascii.ecsv", overwrite=True)
        r = {str(x["LABEL"]): x for x in prec}
        shown = [n for n in ("TEFF", "LOGG", "FE_H", "MG_FE") if n in r]
        print(f"Repeat precision ({prec.meta['N_PAIRS']} pairs) in units of the physical Cramér–Rao bound: "
              + ", ".join(f"{n} {r[n]['REPEAT_OVER_CRB']:.1f}" for n in shown)
              + " (1 = at the bound; Fig. 9)")
    print(f"flags set: {flag_summary(cat) or 'none'}")
    print(f"\ncatalogue {catalogue}\nfigures   {catalogue.parent / 'figures'}\n"
          f"done in {time.time() - t0:.0f} s")
    return 0
