"""Extinction coefficients: known values, E(B−V) and Teff dependence, custom SEDs, file round trip, and
the committed table from ATLAS9 + MOOG line-blanketed SEDs (ddpayne/data/extinction_f99_moog.fits)."""
import astropy.units as u
import numpy as np
import pytest

from ddpayne.galaxy.extinction import (BANDS, MOOG_TABLE_PATH, ExtinctionTable, blackbody_sed,
                                       blackbody_table, compute_table, default_table, extinction_coefficients)


@pytest.fixture(scope="module")
def tab():
    return default_table()


def test_solar_type_coefficients_match_published(tab):
    # Published for solar-type stars, F99 R_V = 3.1 (e.g. Casagrande et al. 2021; Yuan et al. 2013):
    # A_G/E(B-V) ~ 2.6, A_Ks/E(B-V) ~ 0.35 at low reddening.
    r = tab.coefficients(5800.0, 0.0, 0.01)
    assert abs(float(r["G"]) - 2.6) < 0.15
    assert abs(float(r["KS"]) - 0.35) < 0.05
    # passband order: bluer bands are more extinguished
    vals = [float(r[b]) for b in ("BP", "G", "RP", "J", "H", "KS")]
    assert all(a > b for a, b in zip(vals, vals[1:]))


def test_ks_coefficient_matches_narrow_band_limit(tab):
    # Ks is narrow and the F99 curve is smooth there: A_Ks/E(B-V) ~ R_V * A(lambda_eff)/A_V, to 3 %.
    from dust_extinction.parameter_averages import F99
    narrow = 3.1 * float(F99(Rv=3.1)(2.16 * u.micron))
    assert float(tab.coefficients(5800.0, 0.0, 0.0)["KS"]) == pytest.approx(narrow, rel=0.03)


def test_coefficients_depend_on_reddening_and_teff(tab):
    r_low = tab.coefficients(5800.0, 0.0, 0.01)
    r_high = tab.coefficients(5800.0, 0.0, 1.0)
    # broad Gaia bands: several-per-cent decrease of R_G at E(B-V)=1 (redder reddened SED)
    change = 1.0 - float(r_high["G"]) / float(r_low["G"])
    assert 0.03 < change < 0.2
    # the narrow near-infrared bands barely change
    assert abs(1.0 - float(r_high["KS"]) / float(r_low["KS"])) < 0.01
    # hotter stars: the G band is weighted to the blue, larger R_G
    assert float(tab.coefficients(6500.0, 0.0, 0.01)["G"]) > float(tab.coefficients(4000.0, 0.0, 0.01)["G"])


def test_vectorised_and_nan_safe(tab):
    teff = np.array([4500.0, 5800.0, np.nan, 20000.0])
    r = extinction_coefficients(teff, np.zeros(4), np.array([0.0, 0.1, 0.1, 0.1]))
    assert r["G"].shape == (4,)
    assert np.isnan(r["G"][2])
    # outside the grid: clipped to the edge, finite
    assert np.isfinite(r["G"][3])
    a = tab.extinction(5800.0, 0.0, 0.2)
    assert float(a["G"]) == pytest.approx(0.2 * float(tab.coefficients(5800.0, 0.0, 0.2)["G"]))


def test_custom_sed_gives_metallicity_dependence():
    # A toy 'line-blanketed' SED: metal-rich stars lose blue flux. The same code path then yields
    # [Fe/H]-dependent coefficients (the blackbody default has none).
    def sed(teff, feh, wave):
        bb = blackbody_sed(teff, feh, wave)
        blanket = 1.0 - 0.3 * (10.0 ** np.asarray(feh)[:, None]) * np.exp(-((wave - 4000.0) / 600.0) ** 2)
        return bb * np.clip(blanket, 0.05, None)

    t = compute_table(sed, teff=[5000.0, 6000.0], feh=[-2.0, 0.0], ebv=[0.0, 0.5])
    rich = float(t.coefficients(5500.0, 0.0, 0.0)["BP"])
    poor = float(t.coefficients(5500.0, -2.0, 0.0)["BP"])
    assert rich < poor          # less blue flux -> smaller effective A_BP/E(B-V)
    assert t.meta["sed"] == "sed"
    flat = blackbody_table()
    assert float(flat.coefficients(5500.0, 0.0, 0.0)["BP"]) == pytest.approx(
        float(flat.coefficients(5500.0, -2.0, 0.0)["BP"]))


@pytest.mark.parametrize("name", ["ext.npz", "ext.fits"])
def test_table_round_trip(tmp_path, tab, name):
    path = tmp_path / name
    tab.save(path)
    back = ExtinctionTable.load(path)
    assert back.bands == BANDS
    np.testing.assert_allclose(back.coeff, tab.coeff, rtol=1e-6)     # FITS stores float32
    assert back.meta == tab.meta
    assert back.meta["law"] == "F99"
    bad = tmp_path / ("bad" + path.suffix)
    bad.write_bytes(b"not a table")
    with pytest.raises(ValueError, match="bad" + path.suffix):
        ExtinctionTable.load(bad)


def test_blackbody_matches_the_real_solar_sed_in_gaia_bands():
    """The default blackbody SEDs against the real Sun (SAO2010, tests/data; blackbody-extended beyond
    3560-9870 Å): R_G, R_BP, R_RP agree to 1.5 % (measured 0.8 %, 0.2 %, 0.3 %), and the real Sun gives the
    published A_G/E(B-V) ~ 2.6."""
    from pathlib import Path
    d = np.load(Path(__file__).parent / "data" / "sun_sao2010_sed.npz")
    w, f = d["wavelength"].astype(float), d["flux"].astype(float)

    def sun(teff, feh, wave):
        bb = blackbody_sed(np.array([5772.0]), None, wave)[0]
        s_lo = np.median(f[:10]) / np.interp(w[:10].mean(), wave, bb)
        s_hi = np.median(f[-10:]) / np.interp(w[-10:].mean(), wave, bb)
        sed = np.where(wave < w[0], bb * s_lo, np.where(wave > w[-1], bb * s_hi, np.interp(wave, w, f)))
        return np.tile(sed, (np.size(teff), 1))

    real = compute_table(sun, teff=[5700.0, 5800.0], feh=[0.0, 0.5], ebv=[0.0, 1.0])
    bb = blackbody_table()
    for e in (0.0, 1.0):
        a, b = real.coefficients(5772.0, 0.0, e), bb.coefficients(5772.0, 0.0, e)
        for band in ("G", "BP", "RP"):
            assert float(a[band]) == pytest.approx(float(b[band]), rel=0.015)
    assert float(real.coefficients(5772.0, 0.0, 0.0)["G"]) == pytest.approx(2.6, abs=0.05)
