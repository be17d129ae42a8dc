"""The committed DESI gradient product and mock library: format, provenance and physics sanity.

Gradient spectra of the first reference point (Teff 5900 K, logg 4.0, [Fe/H] -0.5, the paper's Fig. 9 star)
must respond where the element has known strong features (physics-backends.md; Ting et al. 2019 Fig. 2).
"""
from pathlib import Path

import numpy as np
import pytest

from ddpayne.labels import LABEL_NAMES
from ddpayne.physics.gradients import GradientSpectra
from ddpayne.prepare.grid import desi_grid

DATA = Path(__file__).resolve().parent.parent / "ddpayne" / "data"
PRODUCT = DATA / "gradients_desi.fits"
LIBRARY = DATA / "mock_library.fits"

#: (label, vacuum wavelength of a feature it controls, half-width Å): Mg b, Ca II 8544, Ca I 4227,
#: G band (CH), CN 3883 band head, Mn I 4031-35, Al I 3945/3962, O I 7774 triplet, Fe I 5372 (Fe)
FEATURES = [("MG_FE", 5185.0, 2.0), ("CA_FE", 8544.4, 2.0), ("CA_FE", 4227.9, 1.5), ("C_FE", 4314.0, 10.0),
            ("N_FE", 3884.0, 4.0), ("MN_FE", 4034.0, 3.0), ("AL_FE", 3962.6, 1.5),
            ("O_FE", 7774.0, 3.0), ("FE_H", 5372.9, 1.0)]

pytestmark = pytest.mark.skipif(not PRODUCT.exists(), reason="the gradient product is not committed yet")


@pytest.fixture(scope="module")
def product():
    return GradientSpectra.read(PRODUCT)


def test_product_format(product):
    assert product.label_names == LABEL_NAMES
    np.testing.assert_array_equal(product.wavelength, desi_grid())
    assert product.n_ref >= 1
    prov = product.provenance
    assert prov["n_ref_included"] == product.n_ref and prov["n_ref_planned"] == 101
    assert "command" in prov and "synthesis_settings" in prov
    assert np.all(np.isfinite(product.gradients[:, :, ~product.mask]))
    # hydrogen lines masked
    for lam in (6564.6, 4862.7, 8752.9):
        assert product.mask[np.argmin(np.abs(product.wavelength - lam))]


@pytest.mark.parametrize("label, lam, half", FEATURES)
def test_gradients_respond_at_known_lines(product, label, lam, half):
    """More abundance -> deeper line: a negative gradient at the feature, larger than elsewhere."""
    r = 0  # the Fig. 9 reference star
    g = product.gradients[r, product.label_index(label)]
    w = product.wavelength
    near = (np.abs(w - lam) < half) & ~product.mask
    far = ~product.mask & (np.abs(w - lam) > 50)
    assert g[near].min() < 0
    assert np.abs(g[near]).max() > 3 * np.median(np.abs(g[far])), label


def test_teff_gradient_sign(product):
    """Hotter -> weaker neutral-metal lines: Teff gradient positive in the Fe I 5372 core (per K)."""
    w = product.wavelength
    g = product.gradients[0, product.label_index("TEFF")]
    i = np.argmin(np.abs(w - 5372.9))
    assert g[i] > 0


@pytest.mark.skipif(not LIBRARY.exists(), reason="the mock library is not committed yet")
def test_mock_library_committed():
    from ddpayne.mock.library import MockLibrary
    lib = MockLibrary.read(LIBRARY)
    assert len(lib) >= 1
    np.testing.assert_array_equal(lib.wavelength, desi_grid())
    good = np.isfinite(lib.flux)
    assert good.mean() > 0.99
    # normalised by the L = 20 Å pseudo-continuum: in the crowded blue of cool metal-rich stars that
    # continuum is about half the true one, so the flux reaches ~2 there
    assert np.all((lib.flux[good] > -0.05) & (lib.flux[good] < 3.0))
    assert abs(np.median(lib.flux[good]) - 1) < 0.05
    assert lib.provenance["n_stars"] == len(lib)


def test_product_masks_every_hydrogen_line_moog_cannot_model():
    """MOOG has no Stark wings: the product masks the Balmer lines down to the series limit (H11-H80 at
    ±3 Å, 3646-3775 Å; H11 at 3771.70 Å vacuum), the Paschen lines, and nothing between them."""
    from ddpayne.physics.build_gradients import HIGHER_BALMER_VAC, product_mask
    assert HIGHER_BALMER_VAC[0] == pytest.approx(3771.70, abs=0.1)   # Rydberg formula vs NIST, < 1/8 pixel
    w = np.array([3620.0, 3649.5, 3655.0, 3700.0, 3735.4, 3751.3, 3771.7, 3783.0, 3799.0, 4000.0, 6564.6,
                  8667.4, 8542.1])
    np.testing.assert_array_equal(product_mask(w), [False, True, True, True, True, True, True, False, True,
                                                     False, True, True, False])
