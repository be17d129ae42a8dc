"""Building a training set: cross-match by TARGETID / Gaia SOURCE_ID / sky position, cuts, reports."""
from __future__ import annotations

import astropy.units as u
import numpy as np
import pytest
from astropy.table import Table

from ddpayne.io.batch import SpectrumBatch
from ddpayne.model.training import TrainingSetError
from ddpayne.model.trainingset import build_training_set

WAVE = np.linspace(5000, 5010, 11)


def spectra():
    """Six spectra of five stars (star 102 observed twice)."""
    meta = Table({
        "ID": ["a", "b", "c", "d", "e", "f"],
        "TARGETID": np.array([101, 102, 102, 103, 104, 105], dtype=np.int64),
        "SOURCE_ID": np.array([9001, 9002, 9002, 9003, 9004, 9999], dtype=np.int64),
        "TARGET_RA": [10.0, 20.0, 20.0, 30.0, 40.0, 50.0],
        "TARGET_DEC": [-5.0, 0.0, 0.0, 5.0, 10.0, 15.0],
        "SNR": [50.0, 30.0, 10.0, 80.0, 25.0, 60.0],
        "FLAG": [0, 0, 0, 0, 4, 0],
    })
    n = len(meta)
    return SpectrumBatch(WAVE, np.ones((n, WAVE.size)), np.ones((n, WAVE.size)), meta)


def catalogue():
    """Reference labels; star 103 has no [Fe/H]; 105 is absent; coordinates offset by < 0.5 arcsec."""
    off = 0.3 / 3600
    return Table({
        "TARGETID": np.array([104, 103, 102, 101], dtype=np.int64),
        "GAIA_SOURCE_ID": np.array([9004, 9003, 9002, 9001], dtype=np.int64),
        "RA": [40.0 + off, 30.0, 20.0 - off, 10.0 + off], "DEC": [10.0, 5.0 + off, 0.0, -5.0],
        "TEFF": [5000.0, 5500.0, 6000.0, 4800.0], "LOGG": [4.5, 4.0, 3.5, 2.5],
        "FE_H": [0.0, np.nan, -0.5, -1.0], "FE_H_ERR": [0.05, 0.05, 0.2, 0.04],
    })


def check_common(ts, report):
    assert list(report["ID"]) == ["a", "b", "c", "d", "e", "f"]      # every input has a row
    reasons = dict(zip(report["ID"], report["REASON"]))
    assert reasons["a"] == "" and reasons["b"] == ""
    assert "SNR=10 < 20" in reasons["c"]
    assert "NaN label(s) FE_H" in reasons["d"]
    assert "FLAG=4" in reasons["e"]
    assert reasons["f"] != ""
    assert list(ts.batch.ids) == ["a", "b"]
    np.testing.assert_array_equal(ts.labels, [[4800.0, 2.5, -1.0], [6000.0, 3.5, -0.5]])
    assert ts.label_names == ("TEFF", "LOGG", "FE_H")


def test_match_by_targetid():
    ts = build_training_set(spectra(), catalogue())
    check_common(ts, ts.report)
    assert "no catalogue row with TARGETID=105" in ts.report["REASON"][5]
    assert list(ts.star_ids) == ["101", "102"]
    t = ts.label_table()
    assert t["TEFF"].unit == u.K and list(t["ID"]) == ["a", "b"]


def test_match_by_gaia_source_id():
    ts = build_training_set(spectra(), catalogue(), match="SOURCE_ID")
    check_common(ts, ts.report)
    assert "GAIA_SOURCE_ID=9999" in ts.report["REASON"][5]


def test_match_by_sky_position_with_tolerance():
    ts = build_training_set(spectra(), catalogue(), match="sky", tolerance=1 * u.arcsec)
    check_common(ts, ts.report)
    sep = np.asarray(ts.report["SEPARATION"])
    assert sep[0] == pytest.approx(0.3 * np.cos(np.radians(5.0)), rel=1e-3)
    assert "no catalogue star within 1 arcsec" in ts.report["REASON"][5]
    with pytest.raises(TrainingSetError, match="no catalogue star within 0.1 arcsec"):  # offsets 0.3"
        build_training_set(spectra(), catalogue(), match="sky", tolerance=0.1 * u.arcsec)


def test_label_error_and_range_cuts():
    ts = build_training_set(spectra(), catalogue(), max_label_error={"FE_H": 0.1})
    assert list(ts.batch.ids) == ["a"]
    assert "FE_H_ERR=0.2 > 0.1" in ts.report["REASON"][1]
    ts = build_training_set(spectra(), catalogue(), label_ranges={"TEFF": (4900, 7000)})
    assert list(ts.batch.ids) == ["b"]
    assert "TEFF=4.8e+03 outside" in ts.report["REASON"][0]


def test_nan_labels_error_mode_and_bad_columns():
    with pytest.raises(TrainingSetError, match=r"NaN reference labels.*d \(FE_H\)"):
        build_training_set(spectra(), catalogue(), nan_labels="error")
    with pytest.raises(TrainingSetError, match="lacks label columns.*MG_FE"):
        build_training_set(spectra(), catalogue(), label_names=["TEFF", "MG_FE"])
    cat = catalogue()
    cat.remove_columns(["RA", "DEC"])
    with pytest.raises(TrainingSetError, match="RA/Dec"):
        build_training_set(spectra(), cat, match="sky")
    with pytest.raises(TrainingSetError, match="FE_H_ERR|TEFF_ERR"):
        build_training_set(spectra(), catalogue(), max_label_error=0.1)
    with pytest.raises(TrainingSetError, match="no spectrum passes"):
        build_training_set(spectra(), catalogue(), min_snr=1000)


def test_training_set_trains_with_star_grouping():
    from ddpayne.model.training import TrainingSettings

    rng = np.random.default_rng(0)
    n = 40
    meta = Table({"ID": [f"s{i}" for i in range(n)], "TARGETID": np.arange(n) // 2,
                  "SNR": np.full(n, 50.0)})
    cat = Table({"TARGETID": np.arange(n // 2), "TEFF": rng.uniform(4500, 6500, n // 2),
                 "FE_H": rng.uniform(-1, 0.3, n // 2)})
    flux = 1 - 0.1 * rng.uniform(size=(n, WAVE.size))
    batch = SpectrumBatch(WAVE, flux, np.full(flux.shape, 100.0), meta)
    ts = build_training_set(batch, cat)
    assert len(ts) == n
    emu, hist = ts.train(regularizer="none", emulator_options={"n_hidden": 3},
                         settings=TrainingSettings(epochs=1, progress=False, validation_fraction=0.25))
    assert emu.provenance["n_stars"] == 20 and emu.provenance["n_val"] == 10   # pairs stay together
