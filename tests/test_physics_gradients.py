"""Tests of the gradient-spectra container and its FITS format."""
import numpy as np
import pytest
from astropy.io import fits

from ddpayne.physics.gradients import GradientSpectra


def _make(n_ref=3, labels=("TEFF", "LOGG", "FE_H", "MG_FE"), n_pix=200, seed=1):
    rng = np.random.default_rng(seed)
    wave = np.linspace(5000.0, 5200.0, n_pix)
    ref = np.column_stack([rng.uniform(4500, 6500, n_ref), rng.uniform(1, 4.5, n_ref),
                           rng.uniform(-2, 0, n_ref), rng.uniform(0, 0.4, n_ref)])[:, :len(labels)]
    steps = np.array([100.0, 0.2, 0.1, 0.1])[:len(labels)]
    base = 1.0 - 0.3 * np.exp(-0.5 * ((wave - 5100) / 1.5) ** 2) * np.ones((n_ref, 1))
    # perturbed: line depth changes linearly with the label, so the gradient is known exactly
    dd = np.array([1e-4, -0.02, 0.05, 0.03])[:len(labels)]
    prof = np.exp(-0.5 * ((wave - 5100) / 1.5) ** 2)
    pert = base[:, None, :] - (dd * steps)[None, :, None] * prof[None, None, :]
    return wave, ref, steps, base, pert, labels, dd, prof


def test_from_spectra_gradient_values():
    wave, ref, steps, base, pert, labels, dd, prof = _make()
    g = GradientSpectra.from_spectra(wave, ref, steps, base, pert, labels)
    assert g.gradients.shape == (3, 4, 200)
    np.testing.assert_allclose(g.gradients[1], -dd[:, None] * prof[None, :], atol=1e-12)
    assert g.provenance["difference"] == "forward"


def test_central_difference():
    wave, ref, steps, base, pert, labels, dd, prof = _make()
    minus = 2 * base[:, None, :] - pert
    g = GradientSpectra.from_spectra(wave, ref, steps, base, pert, labels, minus_flux=minus)
    np.testing.assert_allclose(g.gradients[0], -dd[:, None] * prof[None, :], atol=1e-12)
    assert g.provenance["difference"] == "central"


def test_round_trip(tmp_path):
    wave, ref, steps, base, pert, labels, dd, prof = _make()
    mask = np.zeros(wave.size, bool)
    mask[:10] = True
    g = GradientSpectra.from_spectra(wave, ref, steps, base, pert, labels, mask=mask,
                                     ref_kind=["dwarf", "giant", "hb"],
                                     provenance={"instrument": "DESI", "command": "x"})
    p = g.write(tmp_path / "g.fits")
    h = GradientSpectra.read(p)
    assert h.label_names == g.label_names
    np.testing.assert_array_equal(h.wavelength, g.wavelength)
    np.testing.assert_array_equal(h.mask, mask)
    np.testing.assert_array_equal(h.ref_labels, g.ref_labels)
    np.testing.assert_array_equal(h.steps, g.steps)
    assert list(h.ref_kind) == ["dwarf", "giant", "hb"]
    assert h.provenance["instrument"] == "DESI"
    # uniform quantisation to +-4095 levels of each spectrum's maximum: error <= half a level
    scale = np.max(np.abs(g.gradients), axis=-1, keepdims=True)
    assert np.max(np.abs(h.gradients - g.gradients) / scale) <= 0.5 / 4095 + 1e-12
    np.testing.assert_allclose(h.base_flux, g.base_flux, rtol=1e-6)
    assert h.checksum() == g.checksum()
    assert fits.getheader(p)["GRADSHA"] == g.checksum()


def test_checksum_changes_with_content():
    wave, ref, steps, base, pert, labels, *_ = _make()
    g1 = GradientSpectra.from_spectra(wave, ref, steps, base, pert, labels)
    pert2 = pert.copy()
    pert2[0, 0, 100] -= 0.01
    g2 = GradientSpectra.from_spectra(wave, ref, steps, base, pert2, labels)
    assert g1.checksum() != g2.checksum()


def test_subset():
    wave, ref, steps, base, pert, labels, *_ = _make()
    g = GradientSpectra.from_spectra(wave, ref, steps, base, pert, labels, ref_kind=["dwarf", "giant", "dwarf"])
    s = g.subset(labels=["MG_FE", "TEFF"], refs="dwarf")
    assert s.label_names == ("MG_FE", "TEFF")
    assert s.gradients.shape == (2, 2, wave.size)
    np.testing.assert_array_equal(s.gradients[1, 0], g.gradients[2, 3])
    np.testing.assert_array_equal(s.ref_labels[:, 1], g.ref_labels[[0, 2], 0])
    with pytest.raises(KeyError, match="VMIC"):
        g.subset(labels=["VMIC"])
    with pytest.raises(KeyError, match="hb"):
        g.subset(refs=["hb"])


def test_matched_to_a_subset_of_the_grid():
    """A run on windows of the survey grid regularizes with exactly those pixels of the product."""
    wave, ref, steps, base, pert, labels, *_ = _make()
    g = GradientSpectra.from_spectra(wave, ref, steps, base, pert, labels)
    pick = np.r_[10:40, 120:150]
    m = g.matched_to(wave[pick], ["FE_H", "TEFF"], what="two windows")
    assert m.label_names == ("FE_H", "TEFF") and m.n_pix == pick.size
    np.testing.assert_array_equal(m.gradients[:, 0], g.gradients[:, 2][:, pick])
    np.testing.assert_array_equal(m.base_flux, g.base_flux[:, pick])
    np.testing.assert_array_equal(m.mask, g.mask[pick])
    assert m.provenance["matched_to"] == "two windows"
    with pytest.raises(ValueError, match="another wavelength grid than the model"):
        g.matched_to(wave[pick] + 0.3, what="the model")
    with pytest.raises(KeyError, match="VMIC"):
        g.matched_to(wave[pick], ["VMIC"])


def test_bad_shapes_and_names():
    wave, ref, steps, base, pert, labels, *_ = _make()
    with pytest.raises(ValueError, match="unknown label"):
        GradientSpectra.from_spectra(wave, ref, steps, base, pert, ("TEFF", "LOGG", "FE_H", "MGFE"))
    with pytest.raises(ValueError, match="perturbed_flux"):
        GradientSpectra.from_spectra(wave, ref, steps, base, pert[:, :, :-1], labels)
    with pytest.raises(ValueError, match="ref_labels"):
        GradientSpectra.from_spectra(wave, ref[:, :3], steps, base, pert, labels)
    with pytest.raises(ValueError, match="steps"):
        GradientSpectra.from_spectra(wave, ref, steps[:3], base, pert, labels)


def test_read_wrong_file(tmp_path):
    p = tmp_path / "x.fits"
    fits.PrimaryHDU(np.zeros(3)).writeto(p)
    with pytest.raises(ValueError, match="not a ddpayne gradient"):
        GradientSpectra.read(p)
    q = tmp_path / "y.fits"
    q.write_bytes(b"garbage" * 100)
    with pytest.raises(ValueError, match="y.fits"):
        GradientSpectra.read(q)
