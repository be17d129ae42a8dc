"""Mock label distribution and the library container."""
import numpy as np
import pytest

from ddpayne.labels import LABEL_NAMES
from ddpayne.mock.library import KIND_WEIGHTS, MockLibrary, draw_labels
from ddpayne.prepare.grid import desi_grid


@pytest.fixture(scope="module")
def labels():
    return draw_labels(4000, seed=11)


def test_seeded_and_complete(labels):
    again = draw_labels(4000, seed=11)
    for n in LABEL_NAMES:
        np.testing.assert_array_equal(labels[n], again[n])
        assert np.all(np.isfinite(labels[n]))
    assert not np.array_equal(draw_labels(50, seed=12)["TEFF"], labels["TEFF"][:50])


def test_desi_mws_like_distribution(labels):
    kind = np.array(labels["KIND"])
    for k, w in KIND_WEIGHTS.items():   # fractions within 3 sigma of the binomial expectation
        assert abs(np.mean(kind == k) - w) < 3 * np.sqrt(w * (1 - w) / len(kind))
    assert labels["FE_H"].min() >= -2.5 and labels["FE_H"].max() <= 0.4
    assert np.mean(labels["FE_H"] < -1.0) > 0.1          # a real halo / accreted component
    dw = kind == "dwarf"
    assert np.median(labels["LOGG"][dw]) > 4.0
    assert np.median(labels["LOGG"][kind == "giant"]) < 3.0
    assert np.all((labels["TEFF"] >= 4000) & (labels["TEFF"] <= 7000))
    assert np.all((labels["VMIC"] >= 0.5) & (labels["VMIC"] <= 2.5))


def test_alpha_trend_and_scatter(labels):
    feh, mg = np.asarray(labels["FE_H"]), np.asarray(labels["MG_FE"])
    pop = np.array(labels["POP"])
    # metal-poor halo stars are alpha-enhanced, solar-metallicity thin-disc stars are not
    assert np.median(mg[(pop == "halo") & (feh < -1.2)]) > 0.25
    assert abs(np.median(mg[(pop == "thin") & (feh > -0.1)])) < 0.08
    # GES: lower [Mg/Fe] than the halo at the same [Fe/H]
    sel = (feh > -1.3) & (feh < -0.9)
    assert np.median(mg[sel & (pop == "ges")]) < np.median(mg[sel & (pop == "halo")]) - 0.05
    # abundances are not a deterministic function of [Fe/H]: independent scatter per element
    r = np.corrcoef(mg - np.asarray(labels["SI_FE"]) * 1.25, feh)[0, 1]
    assert abs(r) < 0.3
    assert np.std(np.asarray(labels["CR_FE"])) == pytest.approx(0.05, rel=0.15)


def test_library_roundtrip_and_errors(tmp_path):
    grid = desi_grid()
    lab = draw_labels(4, seed=1)
    flux = np.random.default_rng(0).uniform(0.3, 1.0, (4, grid.size)).astype(np.float32)
    flux[1, :5] = np.nan
    lib = MockLibrary(grid, flux, lab, {"x": 1})
    p = lib.write(tmp_path / "lib.fits")
    back = MockLibrary.read(p)
    np.testing.assert_allclose(back.flux, flux, atol=2.6e-5, equal_nan=True)
    assert list(back.labels["POP"]) == list(lab["POP"])
    np.testing.assert_allclose(back.labels["FE_H"], lab["FE_H"])
    with pytest.raises(ValueError, match="shape"):
        MockLibrary(grid[:-1], flux, lab)
    with pytest.raises(ValueError, match="label rows"):
        MockLibrary(grid, flux[:3], lab)
    with pytest.raises(FileNotFoundError, match="build"):
        MockLibrary.read(tmp_path / "missing.fits")
