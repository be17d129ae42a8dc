"""Star-pair E(B−V) on a mock sample whose truth is known (ddpayne.mock.galaxy)."""
import numpy as np
import pytest
from astropy.table import Table

from ddpayne.flags import Flag
from ddpayne.galaxy.starpair import StarPairExtinction
from ddpayne.mock.galaxy import assign_galaxy, observe_labels, simple_labels


@pytest.fixture(scope="module")
def mock():
    # observed labels: the truth plus DESI-like errors
    return observe_labels(assign_galaxy(simple_labels(3000, 11), seed=12), 13, keep_truth=True)


@pytest.fixture(scope="module")
def model(mock):
    # control = the low-extinction high-latitude stars of the same mock, de-reddened with the map value
    return StarPairExtinction().fit(mock, ebv_column="EBV_SFD")


def test_recovers_true_reddening(mock, model):
    res = model.estimate(mock)
    assert len(res) == len(mock)
    d = np.asarray(res["EBV"] - mock["EBV_TRUE"])
    inside = (np.asarray(res["FLAG"]) & int(Flag.OUT_OF_CONTROL)) == 0
    assert inside.mean() > 0.95
    # measured: bias ~ -0.001 mag, scatter ~ 0.028 mag (paper: typical error 0.02 mag)
    assert abs(np.median(d[inside])) < 0.006
    assert np.std(d[inside]) < 0.04
    # the quoted errors describe the scatter
    pull = d[inside] / np.asarray(res["EBV_ERR"])[inside]
    assert 0.7 < np.std(pull) < 1.3
    # reddened stars too (the coefficients are iterated with E(B-V))
    red = inside & (np.asarray(mock["EBV_TRUE"]) > 0.15)
    assert red.sum() > 20
    assert abs(np.median(d[red])) < 0.015


def test_missing_photometry_is_flagged_not_dropped(mock, model):
    t = mock[:6].copy()
    t["PHOT_BP_MEAN_MAG"][0] = np.nan                 # no BP-RP: 2MASS colours may remain
    for c in ("PHOT_BP_MEAN_MAG", "J", "H", "KS"):    # nothing usable at all
        t[c][1] = np.nan
    t["TEFF"][2] = np.nan                              # no labels -> no intrinsic colour
    t["TEFF"][3] = 9500.0                              # far outside the control coverage
    res = model.estimate(t)
    assert len(res) == 6
    flag = np.asarray(res["FLAG"])
    assert flag[0] & int(Flag.NO_PHOTOMETRY)
    assert flag[1] & int(Flag.NO_PHOTOMETRY) and np.isnan(res["EBV"][1])
    assert flag[2] & int(Flag.OUT_OF_CONTROL) and np.isnan(res["EBV"][2])
    assert flag[3] & int(Flag.OUT_OF_CONTROL)
    assert np.isfinite(res["EBV"][4]) and np.isfinite(res["EBV"][5])


def test_uses_fewer_colours_without_2mass(mock, model):
    t = mock[:50].copy()
    for c in ("J", "H", "KS"):
        t[c] = np.nan
    res = model.estimate(t)
    assert np.all(np.asarray(res["N_COLOURS"]) == 1)
    full = model.estimate(mock[:50])
    assert np.all(np.asarray(full["EBV_ERR"]) <= np.asarray(res["EBV_ERR"]) + 1e-12)


def test_control_errors():
    with pytest.raises(ValueError, match="EBV_SFD"):
        StarPairExtinction().fit(Table({"TEFF": [5000.0], "LOGG": [4.0], "FE_H": [0.0]}))
    with pytest.raises(RuntimeError, match="fit"):
        StarPairExtinction().estimate(Table({"TEFF": [5000.0], "LOGG": [4.0], "FE_H": [0.0]}))
