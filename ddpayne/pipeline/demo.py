"""``ddpayne demo``: the whole pipeline on bundled data, honest about what the data are.

1. The real Sun (SAO2010 atlas degraded to DESI resolution, written as a DESI coadd with an MWS-like
   catalogue) is read and prepared: a check of the reading and preparation chain on a real stellar
   spectrum.
2. A mock DESI survey (real-layout coadds, mwsall-like catalogue, 2MASS, reference labels, known truth) is
   generated and run through ``ddpayne run``: prepare → train → fit → extinction, distances, orbits →
   catalogue and figures; the catalogue is then validated against the truth (bias and scatter per label,
   GES completeness and purity).
3. The real Sun of step 1 is fitted with the model the demo trained (:func:`fit_sun`) and compared with the IAU
   values: Teff, log g, [Fe/H] and [Mg/Fe] with their errors, written to ``sun-fit.ecsv``.

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

from ..mock.standin import STANDIN_LABELS

log = logging.getLogger(__name__)

#: Reference points of the gradient product the demo's regularizer uses per optimiser step (a random
#: subset each step), so that the demo's training time does not grow as the product fills in.
DEMO_REFS_PER_STEP = 6
#: The physical mock library is used once it has at least this many stars.
MIN_PHYSICAL_STARS = 300


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


#: The Sun's labels the demo's fit is compared with: IAU 2015 nominal effective temperature (Resolution B3,
#: Prša et al. 2016), log g of the IAU nominal GM/R², and the zero points of the abundance scale.
SUN_REFERENCE = {"TEFF": 5772.0, "LOGG": 4.44, "FE_H": 0.0, "MG_FE": 0.0}


def fit_sun(model, out: str | os.PathLike | None = None, verbose: bool = True):
    """Fit the bundled real Sun with ``model`` and compare with :data:`SUN_REFERENCE`.

    The Sun (``ddpayne/data/sun``: SAO2010 degraded to DESI, S/N 100, with its MWS-like catalogue) is read and
    prepared as the model's training spectra were, on the model's grid, and fitted
    (:func:`ddpayne.pipeline.apply.fit_files`).

    Parameters
    ----------
    model : Emulator or path-like
        E.g. the demo's ``run/model/emulator.pt``.
    out : path-like, optional
        Folder to write ``sun-fit.ecsv`` to.
    verbose : bool
        Print the comparison.

    Returns
    -------
    astropy.table.Table
        One row per compared label the model fits: ``LABEL``, ``VALUE``, ``ERR`` (formal), ``ERR_TOT`` (formal
        and the model's systematic error; NaN when the model records none), ``REFERENCE``, ``DIFF`` (value −
        reference), ``UNIT``; ``meta`` holds the model, its grid and the fit's χ².
    """
    from astropy.table import Table

    from .apply import fit_files

    cat = fit_files([bundled("sun", "coadd-sun-snr100.fits")], model,
                    catalogue=bundled("sun", "mwsall-sun-snr100.fits"))
    row = cat[0]
    names = [n for n in SUN_REFERENCE if n in cat.colnames]
    value = np.array([float(row[n]) for n in names])
    ref = np.array([SUN_REFERENCE[n] for n in names])
    table = Table({"LABEL": names, "VALUE": value,
                   "ERR": [float(row[f"{n}_ERR"]) for n in names],
                   "ERR_TOT": [float(row[f"{n}_ERR_TOT"]) if f"{n}_ERR_TOT" in cat.colnames else np.nan
                               for n in names],
                   "REFERENCE": ref, "DIFF": value - ref,
                   "UNIT": [str(cat[n].unit or "") for n in names]})
    table.meta.update({"MODEL": str(model), "STAR": "the Sun (SAO2010 atlas degraded to DESI, S/N 100)",
                       "REFERENCE": "IAU 2015 nominal Teff, log g = 4.44, solar abundance scale",
                       "NPIXGRID": cat.meta["NPIXGRID"], "WAVEMIN": cat.meta["WAVEMIN"],
                       "WAVEMAX": cat.meta["WAVEMAX"], "N_PIX": int(row["N_PIX"]), "RCHI2": float(row["RCHI2"]),
                       "FLAG": int(row["FLAG"])})
    if out is not None:
        table.write(Path(out) / "sun-fit.ecsv", format="ascii.ecsv", overwrite=True)
    if verbose:
        print(f"   fitted on the model's {table.meta['NPIXGRID']} pixels ({table.meta['WAVEMIN']:.0f}-"
              f"{table.meta['WAVEMAX']:.0f} Å), reduced χ² {table.meta['RCHI2']:.2f}:")
        print(f"   {'label':<7}{'fit':>10}{'error':>9}{'IAU/solar':>11}{'fit - IAU':>11}")
        for r in table:
            fmt = ".0f" if r["LABEL"] == "TEFF" else ".3f"
            print(f"   {r['LABEL']:<7}{r['VALUE']:>10{fmt}}{r['ERR']:>9{fmt}}{r['REFERENCE']:>11{fmt}}"
                  f"{r['DIFF']:>+11{fmt}}  {r['UNIT']}")
        if table.meta["FLAG"]:
            from ..flags import describe

            print(f"   flags: {describe(table.meta['FLAG'])}")
        print("   (error: formal, photon noise only" + (
            "; with the model's systematic error: " + ", ".join(f"{r['LABEL']} {r['ERR_TOT']:.3g}" for r in table)
            if np.isfinite(table["ERR_TOT"]).any() else "") + ")")
    return table


def _library():
    """The physical library if it is big enough, else the analytic stand-in (and a description)."""
    from ..mock.library import MockLibrary

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
#: Ca, Si, Ni (6100-6300); Al 6696/6698; the O I 7774 triplet; the Ca II triplet and Si, Fe (8480-8700);
#: and the Hβ and Hα wings (Teff, log g; physics version 3 has their Stark profiles), the Hα core (±3.5 Å)
#: left out: the chromospheric core of a real star is deeper than any LTE model's.
PHYSICAL_WINDOWS = [[3850, 4450], [4800, 4930], [5150, 5400], [6100, 6300], [6500, 6561], [6568, 6720],
                    [7740, 7800], [8480, 8700]]
#: The analytic stand-in's lines all lie in this range.
STANDIN_WINDOW = [5000, 5450]


#: The demo's survey takes at most this many library stars (each at most once). Its training cost is set by
#: DEMO_STEPS, not by the number of stars, so a larger library gives a better model at the same cost.
MAX_STARS = 1000
#: Fraction of the mock's stars observed twice. The repeat pairs measure the precision (scatter against the
#: formal errors and the Cramér–Rao bound); with 30 pairs that measurement itself is uncertain by ±13 % and
#: more in the tails, so the demo makes a few hundred.
REPEAT_FRACTION = 0.3
#: Labels whose repeat precision the demo prints (those of the fitting targets: docs/performance_fit.rst).
PRECISION_LABELS = ("TEFF", "LOGG", "FE_H", "C_FE", "MG_FE", "CA_FE")
#: Fraction of the mock's stars in its reference-label catalogue (the training set). The rest are the
#: "survey": the demo's validation table is computed on them, stars the model has never seen.
REF_FRACTION = 0.8
#: Optimizer steps of the demo's training (batches of :data:`BATCH_SIZE`): about 6 minutes on one core,
#: whatever the library size. Measured on the physical library (303 stars): Teff scatter 121 K after 1,000
#: steps, 68 K after 5,000 and 51 K after 10,000 (docs/performance_training.rst).
DEMO_STEPS = 10_000
BATCH_SIZE = 64
#: Fraction of the training stars held out to measure the model's systematic errors.
VALIDATION_FRACTION = 0.2


def demo_epochs(n_spectra: int, quick: bool = False, validation_fraction: float = VALIDATION_FRACTION) -> int:
    """Epochs that give the demo :data:`DEMO_STEPS` optimizer steps when ``n_spectra`` are observed and
    :data:`REF_FRACTION` of them are training stars (60 when ``quick``)."""
    if quick:
        return 60
    steps_per_epoch = max(1, int(np.ceil(REF_FRACTION * (1 - validation_fraction) * n_spectra / BATCH_SIZE)))
    return max(200, round(DEMO_STEPS / steps_per_epoch))


def make_demo_survey(outdir: Path, library, n_stars: int) -> tuple[dict, int]:
    """The demo's mock DESI survey of ``n_stars`` library stars (S/N, seed, repeat and reference fractions as
    the demo's); returns :func:`ddpayne.mock.survey.make_mock_survey`'s paths and the number of spectra."""
    from astropy.table import Table

    from ..mock.survey import make_mock_survey

    paths = make_mock_survey(outdir, n_stars, snr=60.0, snr_spread=0.15, seed=7, n_per_file=n_stars // 2 + 1,
                             library=library, repeat_fraction=REPEAT_FRACTION, ref_fraction=REF_FRACTION)
    n_spectra = sum(len(Table.read(p, hdu="FIBERMAP")) for p in paths["coadds"])
    return paths, n_spectra


def _config_text(labels, quick: bool, physical: bool, n_spectra: int = 400) -> str:
    lab = "" if labels is None else "labels = [" + ", ".join(f'"{n}"' for n in labels) + "]\n"
    wr = PHYSICAL_WINDOWS if physical else STANDIN_WINDOW
    refs = ("\n[training.regularizer_options]   # passed unchanged to the regularizer plugin\n"
            f"refs_per_step = {DEMO_REFS_PER_STEP}   # a random subset of the reference points each step: "
            "a fixed cost\n") if physical else ""
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
{lab}epochs = {demo_epochs(n_spectra, quick)}   # {DEMO_STEPS} optimizer steps (paper: 10,000 epochs)
batch_size = {BATCH_SIZE}
final_learning_rate = {0.001 if quick else 0.0001}
n_hidden = 10
min_snr = 10
allow_underdetermined = true
validation_fraction = {VALIDATION_FRACTION}   # held out: they measure the model's systematic errors
threads = 1          # small per-pixel networks: a second thread gains nothing and stalls on a busy machine
{refs}
[fit]
fitter = "lm"

[output]
dir = "run"
"""


def run_demo(out: str | os.PathLike = "demo-output", quick: bool = False) -> int:
    """Run the demo; write results under ``out``; return a process exit code."""
    from astropy.table import Table

    from ..mock.validation import format_validation, ges_recovery, validate
    from .catalogue import flag_summary, read_catalogue
    from .run import Pipeline

    t0 = time.time()
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    print("ddpayne demo")
    _sun(out)

    lib, labels, why = _library()
    n_stars = min(150 if quick else MAX_STARS, len(lib))  # each library spectrum at most once
    print(f"\n2. A MOCK DESI survey of {n_stars} stars (not DESI data) from {why};")
    print(f"   {REPEAT_FRACTION:.0%} of the stars are observed twice (as DESI re-observes targets), for the "
          "repeat precision.")
    paths, n_spectra = make_demo_survey(out / "mock", lib, n_stars)
    print(f"   {REF_FRACTION:.0%} of the stars have reference labels (the training set); the others are the "
          "survey stars the model never sees, on which it is validated.")
    cfg = out / "demo.toml"
    cfg.write_text(_config_text(labels, quick, physical=labels is None, n_spectra=n_spectra))
    print(f"   written in the real DESI coadd layout to {out / 'mock'}; pipeline configuration {cfg}")
    print("   running: prepare → train → fit → extinction, distances, orbits → catalogue → figures")
    catalogue = Pipeline(cfg).run()
    cat = read_catalogue(catalogue)
    truth = Table.read(paths["truth"])
    ref_ids = np.asarray(Table.read(paths["reference"])["TARGETID"])
    in_training = np.isin(np.asarray(cat["TARGETID"]), ref_ids)
    names = list(labels) if labels else None
    table = validate(cat[~in_training], truth, labels=names)
    table.meta["STARS"] = "survey stars without reference labels (not used in training)"
    table.write(out / "validation.ecsv", format="ascii.ecsv", overwrite=True)
    train_table = validate(cat[in_training], truth, labels=names)
    train_table.meta["STARS"] = "training-set stars (reference labels; 'validation_fraction' of them held out)"
    train_table.write(out / "validation-training-stars.ecsv", format="ascii.ecsv", overwrite=True)
    comp, pur, n_true, n_sel = ges_recovery(cat, truth)
    from ..fit.cramer_rao import catalogue_precision_report
    prec = catalogue_precision_report(cat)
    n_held = int((~in_training).sum())
    print(f"\nValidation against the mock's truth on the {n_held} spectra of survey stars the model never saw "
          "(bias = median(catalogue − truth), scatter = 1.4826 MAD):")
    print(format_validation(table))
    print(f"The {int(in_training.sum())} spectra of training-set stars, for comparison (a model fits the stars it "
          "was trained on better):")
    print("   scatter " + ", ".join(f"{r['QUANTITY']} {r['SCATTER']:.3g}" for r in train_table
                                    if r["QUANTITY"] in ("TEFF", "LOGG", "FE_H", "MG_FE")))
    print("(err: formal error, photon noise only; total err: formal and the model's systematic error,\n"
          " measured on the validation stars held out of training, in quadrature. scatter/tot near 1: the\n"
          " catalogue's total errors describe the real scatter about the truth.)")
    print(f"GES selection: {n_sel} selected, {n_true} true members: completeness {comp:.2f}, purity {pur:.2f}")
    if prec is not None and prec.meta.get("N_PAIRS", 0):
        prec.write(out / "precision.ecsv", format="ascii.ecsv", overwrite=True)
        r = {str(x["LABEL"]): x for x in prec}
        shown = [n for n in PRECISION_LABELS if n in r]
        print(f"Repeat precision ({prec.meta['N_PAIRS']} pairs of spectra of one star), per label: "
              "scatter / physical Cramér–Rao bound (1 = at the bound; paper Fig. 9, ~2) and "
              "scatter / formal error (1 = honest formal errors):")
        print("   " + ", ".join(f"{n} {r[n]['REPEAT_OVER_CRB']:.2f} / {r[n]['REPEAT_OVER_ERR']:.2f}" for n in shown))
    fid = catalogue.parent / "model" / "gradient-fidelity.ecsv"
    if fid.exists():
        rho = Table.read(fid, format="ascii.ecsv")
        print(f"Model vs physical (Kurucz/MOOG) gradient spectra at the {int(rho['N_REF'].max())} reference "
              f"point(s) inside the training coverage, correlation per label (paper Fig. 4; "
              f"{fid.parent.name}/{fid.name}):")
        print("   " + ", ".join(f"{r['LABEL']} {r['RHO']:.2f}" for r in rho))
    print(f"flags set: {flag_summary(cat) or 'none'}")
    print("\n3. The real Sun of step 1 fitted with the model just trained (prepared as its training spectra, on "
          "its grid), against the IAU values:")
    if labels is not None:
        print("   (the model was trained on the analytic stand-in: these numbers test the machinery, not the "
              "physics)")
    fit_sun(catalogue.parent / "model" / "emulator.pt", out)
    print(f"\ncatalogue {catalogue}\nfigures   {catalogue.parent / 'figures'}\n"
          f"done in {time.time() - t0:.0f} s")
    return 0
