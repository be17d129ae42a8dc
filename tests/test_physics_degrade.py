"""Tests of air/vacuum conversion and instrument degradation against analytic answers."""
import numpy as np
import pytest

from ddpayne.physics.airvac import air_to_vacuum, refractive_index, vacuum_to_air
from ddpayne.physics.degrade import (FWHM_TO_SIGMA, apply_resolution_matrix, convolve_to_grid,
                                     degrade_to_survey, desi_resolution, gaussian_resolution_matrix,
                                     pixel_average)
from ddpayne.prepare.grid import desi_grid


def test_air_vacuum_known_lines():
    # NIST: H-alpha 6562.797 air = 6564.610 vac; Mg b 5183.604 air = 5185.048 vac; Ca II 8542.09 -> 8544.44
    vac = air_to_vacuum(np.array([6562.797, 5183.604, 8542.091]))
    np.testing.assert_allclose(vac, [6564.610, 5185.048, 8544.438], atol=0.003)


def test_air_vacuum_inverse():
    w = np.linspace(3500, 10000, 1000)
    np.testing.assert_allclose(vacuum_to_air(air_to_vacuum(w)), w, atol=1e-8)
    n = refractive_index(5000.0)
    assert 1.000278 < n < 1.000280   # standard air at 5000 Å
    with pytest.raises(ValueError):
        air_to_vacuum(np.array([1000.0]))


def test_gaussian_line_convolution_analytic():
    # a Gaussian absorption line convolved with a Gaussian LSF stays Gaussian: widths add in quadrature,
    # the equivalent width is conserved
    wh = np.arange(4950.0, 5050.0, 0.01)
    s0, depth = 0.15, 0.6
    f = 1 - depth * np.exp(-0.5 * ((wh - 5000.0) / s0) ** 2)
    grid = np.arange(4980.0, 5020.0, 0.1)
    R = 4000.0
    c = convolve_to_grid(wh, f, grid, resolution=R)
    st = np.hypot(s0, 5000.0 / R * FWHM_TO_SIGMA)
    expect = 1 - depth * s0 / st * np.exp(-0.5 * ((grid - 5000.0) / st) ** 2)
    assert np.max(np.abs(c - expect)) < 2e-4
    ew = np.sum(1 - c) * 0.1
    assert ew == pytest.approx(depth * s0 * np.sqrt(2 * np.pi), rel=1e-4)


def test_degrade_to_survey_normalised_line():
    grid = desi_grid()
    wh = np.arange(3550.0, 9880.0, 0.05)
    cont = 1.0 + 0.3 * (wh - 6000) / 3000  # sloped continuum: the pseudo-continuum removes it
    f = cont * (1 - 0.5 * np.exp(-0.5 * ((wh - 6000.0) / 0.2) ** 2))
    out = degrade_to_survey(wh, f, grid, resolution="desi", continuum_width=20.0)
    assert out.shape == grid.shape and np.all(np.isfinite(out))
    far = np.abs(grid - 6000) > 60
    assert np.max(np.abs(out[far & (grid > 3800) & (grid < 9600)] - 1)) < 2e-3
    # before normalisation: the analytic convolved line on the sloped continuum
    conv = degrade_to_survey(wh, f, grid, resolution="desi", normalise_continuum=False)
    st = np.hypot(0.2, 6000 / desi_resolution(grid) * FWHM_TO_SIGMA)
    c_grid = 1.0 + 0.3 * (grid - 6000) / 3000
    expect = c_grid * (1 - 0.5 * 0.2 / st * np.exp(-0.5 * ((grid - 6000.0) / st) ** 2))
    assert np.max(np.abs(conv - expect)[(grid > 3700) & (grid < 9700)]) < 2e-4
    # after: exactly the data path's normalisation of that spectrum
    from ddpayne.prepare.continuum import normalise
    ref, _, _ = normalise(grid, conv, np.ones_like(conv), width=20.0)
    np.testing.assert_allclose(out, ref, atol=1e-12)
    # the line depresses the pseudo-continuum at its centre by EW / (sqrt(2 pi) L) (the kernel-weighted
    # mean); the normalised depth follows from that exactly
    i = np.argmin(np.abs(grid - 6000))
    ew = 0.5 * 0.2 * np.sqrt(2 * np.pi)
    cont_centre = 1 - ew / (np.sqrt(2 * np.pi) * 20.0)
    assert out[i] == pytest.approx((1 - 0.5 * 0.2 / st[i]) / cont_centre, abs=5e-4)


def test_resolution_matrix_matches_gaussian():
    arm = np.arange(5000.0, 5100.0, 0.8)
    rdata = gaussian_resolution_matrix(arm, resolution=3000.0, ndiag=11)
    assert rdata.shape == (11, arm.size)
    wh = np.arange(4990.0, 5110.0, 0.01)
    f = 1 - 0.4 * np.exp(-0.5 * ((wh - 5050.0) / 0.1) ** 2)
    out = apply_resolution_matrix(wh, f, arm, rdata)
    # equivalent width is conserved by a row-normalised matrix (pixel-averaged input)
    ew_in = np.sum(1 - pixel_average(wh, f, arm)) * 0.8
    ew_out = np.nansum(1 - out) * 0.8
    assert ew_out == pytest.approx(ew_in, rel=1e-3)
    assert np.all(np.isfinite(out[10:-10]))
    with pytest.raises(ValueError, match="RESOLUTION"):
        apply_resolution_matrix(wh, f, arm[:-1], rdata)


def test_bad_resolution():
    with pytest.raises(ValueError, match="preset"):
        convolve_to_grid(np.arange(10.0) + 5000, np.ones(10), np.arange(3.0) + 5003, resolution="hubble")


def test_resolution_matrices_equal_gaussian_path():
    """With Gaussian RESOLUTION matrices the matrix path agrees with the Gaussian-LSF path."""
    from ddpayne.mock.survey import ARMS, arm_wavelength
    from ddpayne.physics.degrade import degrade_with_resolution_matrices
    grid = desi_grid()
    wh = np.arange(3580.0, 9840.0, 0.02)
    f = np.ones_like(wh)
    for c in (4500.0, 5775.0, 6000.0, 7560.0, 9000.0):
        f -= 0.6 * np.exp(-0.5 * ((wh - c) / 0.15) ** 2)
    arms = {a: (arm_wavelength(a), gaussian_resolution_matrix(arm_wavelength(a), "desi")) for a in ARMS}
    m = degrade_with_resolution_matrices(wh, f, arms, grid)
    g = degrade_to_survey(wh, f, grid, resolution="desi")
    ok = np.isfinite(m) & np.isfinite(g) & (grid > 3620) & (grid < 9800)
    assert ok.mean() > 0.98
    # pixel averaging and the 11-diagonal truncation differ slightly from point sampling
    assert np.max(np.abs(m[ok] - g[ok])) < 0.02
    assert np.sqrt(np.mean((m[ok] - g[ok]) ** 2)) < 2e-3
