"""``ddpayne run`` end to end on a small mock DESI survey whose truth is known.

The library here is analytic (:mod:`ddpayne.mock.standin`: Gaussian lines, continuum-normalised like
real spectra) so that the test is fast and independent of the MOOG synthesis products; the mock survey
around it is the real thing: DESI-layout coadds, an mwsall-like catalogue, 2MASS and reference labels.
Training is deliberately small (4 labels, 563 pixels, 10-neuron networks, 200 epochs of batches of 64,
learning rate 0.01 → 0.001), so the label tolerances below are those of a briefly trained model (its
validation χ² per pixel reaches ≈ 1.1), not of DD-Payne at full settings.
"""
from __future__ import annotations

import numpy as np
import pytest
from astropy.io import fits
from astropy.table import Table

from ddpayne.flags import Flag
from ddpayne.mock.validation import format_validation, ges_recovery, validate
from ddpayne.pipeline.catalogue import read_catalogue
from ddpayne.pipeline.cli import main

LABELS = ("TEFF", "LOGG", "FE_H", "MG_FE")


@pytest.fixture(scope="module")
def mock(tmp_path_factory):
    from ddpayne.mock.standin import analytic_library
    from ddpayne.mock.survey import make_mock_survey

    root = tmp_path_factory.mktemp("pipeline")
    lib = analytic_library(300, LABELS, seed=3)
    # 10 % of the stars observed twice (a second 'sv3' coadd with the same TARGETIDs), as DESI does
    paths = make_mock_survey(root / "mock", 300, snr=80, seed=5, n_per_file=150, library=lib,
                             repeat_fraction=0.1)
    # one corrupted file in the input: the run must go on and report it
    (root / "mock" / "coadd-main-bright-99999.fits").write_bytes(b"SIMPLE  =                    T" + b" " * 50)
    (root / "run.toml").write_text(f"""
[data]
spectra = ["mock/coadd-*.fits"]
catalogue = "mock/mwsall-mock.fits"
labels = "mock/reference-labels-mock.fits"
photometry = "mock/twomass-mock.fits"
[prepare]
wave_range = [5000, 5450]
[training]
regularizer = "none"
labels = {list(LABELS)!r}
epochs = 200
batch_size = 64
final_learning_rate = 0.001
n_hidden = 10
min_snr = 10
[output]
dir = "out"
formats = ["ecsv"]
""".replace("'", '"'))
    assert main(["run", str(root / "run.toml")]) == 0
    return root, paths


def test_catalogue_rows_columns_units(mock):
    root, paths = mock
    cat = read_catalogue(root / "out" / "catalogue.fits")
    truth = Table.read(paths["truth"])
    n_rep = int((truth["N_OBS"] == 2).sum())
    assert 15 < n_rep < 50
    assert len(cat) == 300 + n_rep             # one row per spectrum, repeats included
    tid, counts = np.unique(np.asarray(cat["TARGETID"]), return_counts=True)
    assert len(tid) == 300 and (counts == 2).sum() == n_rep
    for name in (*LABELS, *(f"{n}_ERR" for n in LABELS), *(f"{n}_CRB" for n in LABELS), "CRB_REF", "CHI2", "QFLAG_CHI2", "FLAG", "EBV", "DIST",
                 "DIST_ERR", "JR", "JPHI", "JZ", "ECC", "RAPO", "GES", "SNR", "RV", "RA", "DEC"):
        assert name in cat.colnames, name
    assert cat["TEFF"].unit == "K" and str(cat["FE_H"].unit) == "dex" and cat["DIST"].unit == "kpc"
    assert cat["JPHI"].unit == "kpc km / s"
    # columns carried over from the survey's inputs get their units too
    assert cat["PARALLAX"].unit == "mas" and cat["PMRA"].unit == "mas / yr"
    assert cat["PHOT_G_MEAN_MAG"].unit == "mag" and str(cat["RVS_FEH"].unit) == "dex"
    # the MWS RVS pipeline's parameters survive beside ddpayne's own (paper Fig. 6 compares them)
    assert cat["RVS_TEFF"].unit == "K" and not np.allclose(cat["RVS_TEFF"], cat["TEFF"])
    dimensionless = {"ID", "TARGETID", "SOURCE_ID", "OBJTYPE", "REF_ID", "REF_CAT", "MWS_TARGET", "COADD_NUMEXP",
                     "SOURCE_FILE", "SN_B", "SN_R", "SN_Z", "SURVEY", "PROGRAM", "PRIMARY", "RVS_WARN", "SUCCESS",
                     "ASTROMETRIC_PARAMS_SOLVED", "SPECTYPE", "FLAG", "FLAG_REASON", "SNR_B", "SNR_R", "SNR_Z",
                     "SNR", "N_GOOD_PIX", "COVAR", "CHI2", "RCHI2", "N_PIX", "QFLAG_CHI2", "STATUS", "CONVERGED",
                     "N_ITER", "BEST_START", "COVERAGE_DIST", "ABUND_FLAG", "BOUND_MASK", "CRB_REF", "N_COLOURS",
                     "ZP_FALLBACK", "ECC", "GES", "RUWE", "HEALPIX"}
    missing = [c for c in cat.colnames if cat[c].unit is None and c not in dimensionless]
    assert not missing, f"columns without a unit: {missing}"
    # physical Cramér–Rao bounds: finite, positive, in the label's unit, from a reference point of the
    # committed product (their values are checked in tests/test_cramer_rao.py)
    from ddpayne.physics.gradients import GradientSpectra
    n_ref = GradientSpectra.read(root / "out" / "model" / "gradients.fits").n_ref
    assert cat["TEFF_CRB"].unit == "K" and np.isfinite(cat["TEFF_CRB"]).mean() > 0.99
    good = np.isfinite(cat["FE_H_CRB"])
    assert np.all(cat["FE_H_CRB"][good] > 0)
    assert set(np.asarray(cat["CRB_REF"])[good]) <= set(range(n_ref))
    # the order of BOUND_MASK bits and COVAR axes travels with the file
    assert cat.meta["LABELS"] == list(LABELS)
    with fits.open(root / "out" / "catalogue.fits") as h:
        prov = dict(zip(h["PROVENANCE"].data["KEY"], h["PROVENANCE"].data["VALUE"]))
        assert '"regularizer": "none"' in prov["config"] and '"mlp"' in prov["plugins"]
        rejected = Table(h["REJECTED"].data)
    assert any("99999" in str(s) and f & Flag.BAD_INPUT for s, f in zip(rejected["SOURCE_FILE"],
                                                                        rejected["FLAG"]))
    assert (root / "out" / "catalogue.ecsv").exists()
    figures = sorted(p.name for p in (root / "out" / "figures").glob("*.png"))
    assert {"fig03_loss.png", "fig04_gradient.png", "fig05_kiel.png", "fig06_reference.png", "fig07_mgfe_feh.png",
            "fig09_precision_crb.png", "fig10_distance_xz.png", "fig11_ges.png"} <= set(figures)


def test_catalogue_opens_without_warnings_and_every_column_is_documented(mock):
    """Any FITS reader: no warning from Table.read of any HDU, a TCOMM on every column; and every column
    of this demo-like catalogue is listed in docs/catalogue.rst with the unit it carries."""
    import warnings

    from catalogue_docs import undocumented

    path = mock[0] / "out" / "catalogue.fits"
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for hdu in ("CATALOGUE", "REJECTED", "PROVENANCE"):   # (without hdu= astropy notes there are three)
            Table.read(path, hdu=hdu)
        cat = read_catalogue(path)
    with fits.open(path) as h:
        for hdu in h[1:]:
            assert all(hdu.header.get(f"TCOMM{k}") for k in range(1, hdu.header["TFIELDS"] + 1)), hdu.name
    assert all(cat[c].description for c in cat.colnames)
    assert not undocumented({c: cat[c].unit for c in cat.colnames})


def test_gradient_fidelity_is_measured_for_the_trained_model(mock):
    """The train stage compares the model's gradient spectra with the bundled physical product (paper
    Fig. 4), also when it trained without the regularizer: one row per label, at the reference points
    inside the training coverage, on the run's own pixels."""
    from ddpayne.model.diagnostics import gradient_correlation
    from ddpayne.physics.gradients import GradientSpectra
    from ddpayne_mlp.emulator import MLPEmulator

    root, _ = mock
    rho = Table.read(root / "out" / "model" / "gradient-fidelity.ecsv", format="ascii.ecsv")
    assert list(rho["LABEL"]) == list(LABELS)
    assert np.all(rho["N_REF"] >= 1) and np.all(np.isfinite(rho["RHO"])) and np.all(np.abs(rho["RHO"]) <= 1)
    grads = GradientSpectra.read(root / "out" / "model" / "gradients.fits")
    assert grads.wavelength.min() >= 5000 and grads.wavelength.max() <= 5450
    # the file holds what the diagnostic gives for the saved model and its training labels
    emu = MLPEmulator.load(root / "out" / "model" / "emulator.pt")
    tl = Table.read(root / "out" / "model" / "training-labels.ecsv", format="ascii.ecsv")
    again = gradient_correlation(emu, grads, train_labels=np.column_stack([np.asarray(tl[n], float) for n in LABELS]))
    assert np.allclose(again["RHO"], rho["RHO"], rtol=1e-6, atol=1e-9)


def test_labels_match_truth(mock):
    root, paths = mock
    cat = read_catalogue(root / "out" / "catalogue.fits")
    truth = Table.read(paths["truth"])
    v = validate(cat, truth, labels=list(LABELS))
    print(format_validation(v))
    stats = {r["QUANTITY"]: r for r in v}
    assert all(stats[n]["N"] == len(cat) for n in LABELS)
    # total errors (formal ⊕ the systematic error measured on the held-out validation stars) describe the
    # scatter about the truth, which the formal errors alone underestimate for a briefly trained model
    sys = Table.read(root / "out" / "model" / "systematics.ecsv")
    assert list(sys["LABEL"]) == list(LABELS) and np.all(sys["N"] >= 20)
    for n in LABELS:
        tot = np.asarray(cat[f"{n}_ERR_TOT"], float)
        assert np.all(tot[np.isfinite(tot)] >= np.asarray(cat[f"{n}_ERR"], float)[np.isfinite(tot)])
        ratio = stats[n]["SCATTER"] / np.nanmedian(tot)
        print(n, "scatter / total error", round(ratio, 2))
        assert 0.5 < ratio < 1.6, (n, ratio)
    # a briefly trained 4-label model at S/N 80 (module docstring); measured in development: scatter
    # 80 K, 0.10, 0.08, 0.04 dex with formal errors 64 K, 0.06, 0.06, 0.025 dex. Bounds ~1.8x those.
    assert stats["TEFF"]["SCATTER"] < 150 and abs(stats["TEFF"]["BIAS"]) < 50
    assert stats["LOGG"]["SCATTER"] < 0.2 and abs(stats["LOGG"]["BIAS"]) < 0.06
    assert stats["FE_H"]["SCATTER"] < 0.15 and abs(stats["FE_H"]["BIAS"]) < 0.05
    assert stats["MG_FE"]["SCATTER"] < 0.07 and abs(stats["MG_FE"]["BIAS"]) < 0.03
    # formal errors are of the size of the scatter (within a factor 2.5 for a briefly trained model)
    for n in LABELS:
        assert stats[n]["SCATTER"] < 2.5 * stats[n]["MEDIAN_ERR"]
    # distances and extinction come from the galaxy stage
    assert abs(stats["DIST (relative)"]["BIAS"]) < 0.1 and stats["DIST (relative)"]["SCATTER"] < 0.3
    assert stats["EBV"]["SCATTER"] < 0.08
    completeness, purity, n_true, n_sel = ges_recovery(cat, truth)
    assert n_true > 0 and 0 <= completeness <= 1


def test_rerun_skips_finished_stages(mock, monkeypatch):
    root, _ = mock
    import ddpayne.model.training as training

    def boom(*a, **k):
        raise AssertionError("training must not rerun when nothing changed")

    monkeypatch.setattr(training, "train_emulator", boom)
    before = (root / "out" / "fit.fits").stat().st_mtime
    assert main(["run", str(root / "run.toml")]) == 0
    assert (root / "out" / "fit.fits").stat().st_mtime == before


def test_new_model_refits_and_rederives(mock, monkeypatch):
    """A model that changed since the fit (e.g. retrained) makes the fit and the later stages rerun, without
    reusing per-file parts fitted with the old model; training itself is not redone."""
    import os

    import ddpayne.model.training as training
    root, _ = mock
    monkeypatch.setattr(training, "train_emulator", lambda *a, **k: (_ for _ in ()).throw(
        AssertionError("training must not rerun")))
    out = root / "out"
    fit_before = (out / "fit.fits").stat().st_mtime_ns
    derived_before = (out / "derived.fits").stat().st_mtime_ns
    model = out / "model" / "emulator.pt"
    st = model.stat()
    os.utime(model, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))   # "a new model"
    (out / "fit.fits.parts" / "stale-marker").write_text("x")
    assert main(["run", str(root / "run.toml")]) == 0
    assert (out / "fit.fits").stat().st_mtime_ns != fit_before
    assert (out / "derived.fits").stat().st_mtime_ns != derived_before
    assert not (out / "fit.fits.parts" / "stale-marker").exists()


def test_missing_labels_is_a_clear_error(tmp_path, sun_dir, capsys, caplog):
    cfg = tmp_path / "run.toml"
    cfg.write_text(f'[data]\nspectra = ["{sun_dir / "coadd-sun-snr100.fits"}"]\n'
                   f'catalogue = "{sun_dir / "mwsall-sun-snr100.fits"}"\n[output]\ndir = "o"\n')
    assert main(["run", str(cfg)]) == 2
    assert "[data] labels" in caplog.text     # "... give reference labels to train on ([data] labels) ..."


def test_failed_calibration_keeps_the_model(mock, monkeypatch, caplog):
    """If the systematic errors cannot be measured, the trained model is kept and the catalogue has formal
    errors only (no <LABEL>_ERR_TOT), with a warning that says so."""
    import logging

    from ddpayne.pipeline.run import Pipeline

    root, _ = mock
    cfg = (root / "run.toml").read_text().replace('dir = "out"', 'dir = "out-nocal"').replace(
        "epochs = 200", "epochs = 20").replace('formats = ["ecsv"]', "figures = false")
    (root / "nocal.toml").write_text(cfg)

    def fail(*a, **k):
        raise ValueError("no usable validation fits")

    monkeypatch.setattr(Pipeline, "_calibrate", fail)
    with caplog.at_level(logging.WARNING, logger="ddpayne.pipeline.run"):
        assert main(["run", str(root / "nocal.toml")]) == 0
    assert "systematic errors could not be measured" in caplog.text
    assert (root / "out-nocal" / "model" / "emulator.pt").exists()
    cat = read_catalogue(root / "out-nocal" / "catalogue.fits")
    assert "TEFF_ERR" in cat.colnames and "TEFF_ERR_TOT" not in cat.colnames


def test_gradients_command(mock, tmp_path, caplog):
    """``ddpayne gradients MODEL`` gives the same per-label correlations as the train stage, draws Fig. 4,
    and refuses a file that is not a gradient product with a clear message."""
    root, _ = mock
    model = root / "out" / "model" / "emulator.pt"
    table, figure = tmp_path / "rho.ecsv", tmp_path / "fig04.png"
    assert main(["gradients", str(model), "--table", str(table), "--figure", str(figure),
                 "--label", "FE_H"]) == 0
    rho = Table.read(table, format="ascii.ecsv")
    stage = Table.read(root / "out" / "model" / "gradient-fidelity.ecsv", format="ascii.ecsv")
    assert list(rho["LABEL"]) == list(stage["LABEL"])
    # the stage reads its own re-encoded copy of the product (float16 on the run's pixels): not bit-identical
    assert np.allclose(rho["RHO"], stage["RHO"], rtol=0, atol=2e-3) and list(rho["N_REF"]) == list(stage["N_REF"])
    assert figure.stat().st_size > 10_000
    not_gradients = root / "mock" / "mwsall-mock.fits"
    assert main(["gradients", str(model), "--gradients", str(not_gradients)]) == 2
    assert "not a ddpayne gradient-spectra file" in caplog.text
    assert main(["gradients", str(tmp_path / "missing.pt")]) == 2
    assert "missing.pt does not exist" in caplog.text
