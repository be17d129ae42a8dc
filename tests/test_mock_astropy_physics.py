"""The mock's black bodies and constants come from astropy and agree with the hand-written ones they replaced."""
import numpy as np
import pytest


def _planck_by_hand(wave, teff):
    """The formula removed from ddpayne.mock.survey: 1 / (λ⁵ (exp(c₂/λT) − 1)), λ in cm, c₂ = 1.4387769 cm K."""
    lam = np.asarray(wave, float) * 1e-8
    return 1.0 / lam**5 / np.expm1(1.4387769 / (lam * teff))


@pytest.mark.parametrize("teff", [3500.0, 5772.0, 9000.0])
def test_survey_blackbody_shape(teff):
    from ddpayne.mock.survey import blackbody_flambda

    wave = np.linspace(3600.0, 9824.0, 500)
    ratio = blackbody_flambda(wave, teff) / _planck_by_hand(wave, teff)
    # one constant factor (2hc² and the Å/cm unit) at every wavelength, to the digits of c₂ (1.4387769 by
    # hand, 1.43877688 from CODATA 2018: x/(1 - e^-x) × 2e-8 = 2e-7 at x = hc/λkT = 7)
    np.testing.assert_allclose(ratio / ratio[0], 1.0, rtol=5e-7)
    assert np.all(np.isfinite(blackbody_flambda(np.array([1000.0, 3000.0]), 2500.0)))


def test_speed_of_light():
    from ddpayne.mock.survey import C_KMS

    assert C_KMS == pytest.approx(299792.458, rel=1e-15)


def test_moog_sed_speed_of_light():
    sed = pytest.importorskip("ddpayne_moog.sed")
    assert sed.C_KMS == pytest.approx(299792.458, rel=1e-15)


def test_galaxy_blackbody_magnitudes():
    """Absolute magnitudes of a 1 R_sun black body: astropy's B_λ, R_sun and pc against the cgs numbers."""
    from ddpayne.galaxy.extinction import BANDS, _band_mags
    from ddpayne.mock.galaxy import AB_MINUS_VEGA, _bb_mag_table

    teff, mags = _bb_mag_table()
    wave = np.arange(3000.0, 26000.1, 5.0)
    h, c, k, rsun, pc = 6.62607015e-27, 2.99792458e10, 1.380649e-16, 6.957e10, 3.0856776e18
    t = teff[::40, None]
    lam = wave[None, :] * 1e-8
    flux = np.pi * 2 * h * c**2 / lam**5 / np.expm1(h * c / (lam * k * t)) * 1e-8 * (rsun / (10 * pc)) ** 2
    by_hand = _band_mags(flux, wave, BANDS) - np.array([AB_MINUS_VEGA[b] for b in BANDS])
    np.testing.assert_allclose(mags[::40], by_hand, atol=1e-7)
    # the Sun as a black body: M_G near +4.6 (the real Sun: 4.67)
    assert mags[np.argmin(np.abs(teff - 5775.0)), list(BANDS).index("G")] == pytest.approx(4.6, abs=0.25)
