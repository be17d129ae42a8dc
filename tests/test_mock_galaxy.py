"""The mock Galaxy model: determinism, survey-like observables, populations consistent with chemistry."""
import numpy as np
import pytest
from astropy.table import Table

from ddpayne import registry
from ddpayne.mock.galaxy import (POPULATIONS, assign_galaxy, gaia_parallax_error, population_probabilities,
                                 simple_labels, true_absolute_magnitudes)


def _labels(n, seed):
    t = simple_labels(n, seed)
    t["TARGETID"] = np.arange(n)
    return t


@pytest.fixture(scope="module")
def mock():
    return assign_galaxy(_labels(2000, 1), seed=2)


def test_deterministic_with_seed():
    lab = _labels(50, 3)
    a, b, c = assign_galaxy(lab, seed=4), assign_galaxy(lab, seed=4), assign_galaxy(lab, seed=5)
    for col in ("RA", "DIST_TRUE", "PARALLAX", "PHOT_G_MEAN_MAG", "RV"):
        np.testing.assert_array_equal(a[col], b[col])
        assert not np.array_equal(a[col], c[col])
    np.testing.assert_array_equal(a["POP"], b["POP"])
    np.testing.assert_array_equal(a["TARGETID"], lab["TARGETID"])    # input columns kept, same order


def test_survey_like_observables(mock):
    g = np.asarray(mock["PHOT_G_MEAN_MAG"])
    assert np.all((g > 13.95) & (g < 19.05))
    assert np.all(np.abs(mock["B"]) > 20.0)
    assert len(np.unique(mock["SOURCE_ID"])) == len(mock)
    # the dust is integrated to the star: never more than the map (to-infinity) value (to the 0.5 %
    # accuracy of the numerical line-of-sight integral)
    assert np.all(mock["EBV_TRUE"] <= mock["EBV_SFD"] * 1.005)
    assert np.median(mock["EBV_TRUE"][np.abs(mock["B"]) > 60]) < 0.05
    # Gaia-like: parallax error grows with G; RUWE mostly ~1 with a few per cent above 1.4
    assert gaia_parallax_error(19.0) > 5 * gaia_parallax_error(15.0)
    assert 0.01 < np.mean(mock["RUWE"] > 1.4) < 0.12
    # the observed parallaxes carry the Lindegren zero point (negative, tens of µas)
    zp = np.asarray(mock["PARALLAX_ZP_TRUE"])
    assert np.all((zp < 0.0) & (zp > -0.1))
    resid = np.asarray(mock["PARALLAX"] - mock["PARALLAX_TRUE"])
    assert np.mean(resid) == pytest.approx(np.mean(zp), abs=3 * np.std(resid) / np.sqrt(len(resid)))
    # each star has either nu_eff (5-parameter) or pseudocolour (6-parameter)
    p5 = np.asarray(mock["ASTROMETRIC_PARAMS_SOLVED"]) == 31
    assert np.all(np.isfinite(mock["NU_EFF_USED_IN_ASTROMETRY"][p5]))
    assert np.all(np.isfinite(mock["PSEUDOCOLOUR"][~p5]))
    # faint stars lack 2MASS (Ks > 15.5)
    ks = np.asarray(mock["KS"])
    assert np.isnan(ks).any() and np.nanmax(ks) < 15.5 + 0.5
    assert mock["DIST_TRUE"].unit == "kpc" and mock["PMRA"].unit == "mas / yr"


def test_populations_follow_chemistry_and_kinematics(mock):
    pop = np.asarray(mock["POP"])
    assert set(pop) <= set(POPULATIONS)
    feh = np.asarray(mock["FE_H"])
    mg = np.asarray(mock["MG_FE"])
    assert np.mean(np.isin(pop[feh < -1.3], ["halo", "ges"])) > 0.9
    rich = feh > -0.4
    dwarf = np.asarray(mock["LOGG"]) > 3.8
    assert np.mean(np.isin(pop[rich & dwarf], ["thin", "thick"])) > 0.85
    # luminous metal-rich giants cannot be in the disk at G > 14 and |b| > 20: halo ('splash'), never GES
    assert not np.any(pop[feh > -0.4] == "ges")
    assert mg.size == feh.size
    # the chemical prior: columns thin, thick, halo, ges
    p = population_probabilities(np.array([0.0, -0.5, -2.0, 0.0]), np.array([0.0, 0.3, 0.1, 0.3]))
    np.testing.assert_allclose(p.sum(axis=1), 1.0)
    assert p[0, 0] > 0.8 and p[1, 1] > 0.7 and p[2, 2] + p[2, 3] > 0.95 and p[3, 3] == 0.0
    # true orbits: GES radial and non-rotating, the thin disk near-circular
    t = mock.copy()
    t["DIST"], t["PMRA"], t["PMDEC"], t["RV"] = t["DIST_TRUE"], t["PMRA_TRUE"], t["PMDEC_TRUE"], t["RV_TRUE"]
    orb = registry.create("orbit", "galpy").orbits(t)
    assert np.mean(np.asarray(orb["FLAG"]) == 0) > 0.99    # bound (a barely bound one may lack an orbit)
    ges, thin = pop == "ges", pop == "thin"
    assert np.median(orb["ECC"][ges]) > 0.85
    assert abs(np.median(orb["JPHI"][ges])) < 100.0
    assert np.median(orb["ECC"][thin]) < 0.25
    assert np.median(orb["JPHI"][thin]) > 1200.0


def test_absolute_magnitudes_of_the_sun():
    m = true_absolute_magnitudes(5772.0, 4.438, 0.0)
    assert float(m["G"]) == pytest.approx(4.67, abs=0.1)         # real Sun: M_G = 4.67
    assert float(m["BP"] - m["RP"]) == pytest.approx(0.82, abs=0.1)
    giant = true_absolute_magnitudes(4700.0, 2.5, 0.0)
    assert float(giant["G"]) < float(m["G"]) - 3.0


def test_bad_labels_raise():
    with pytest.raises(ValueError, match="LOGG"):
        assign_galaxy(Table({"TEFF": [5000.0], "FE_H": [0.0]}), seed=1)
    with pytest.raises(ValueError, match="TEFF.*row 1"):
        assign_galaxy(Table({"TEFF": [5000.0, np.nan], "LOGG": [4.0, 4.0], "FE_H": [0.0, 0.0]}), seed=1)
    with pytest.raises(ValueError, match="populations"):
        assign_galaxy(_labels(3, 1), seed=1, populations=["thin", "disk", "halo"])
    forced = assign_galaxy(_labels(3, 1), seed=1, populations=["ges", "thin", "halo"])
    assert list(forced["POP"]) == ["ges", "thin", "halo"]


def test_writes_to_fits(tmp_path, mock):
    path = tmp_path / "mock.fits"
    mock.write(path)
    back = Table.read(path)
    assert back["PARALLAX"].unit == "mas"
    np.testing.assert_array_equal(back["POP"], mock["POP"])
