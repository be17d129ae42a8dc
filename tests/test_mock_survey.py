"""The mock DESI survey writer: real coadd layout, specutils-readable, noise at the requested S/N, RVs."""
import numpy as np
import pytest
from astropy.io import fits
from astropy.table import Table

from ddpayne.labels import LABEL_NAMES
from ddpayne.mock.library import MockLibrary, draw_labels
from ddpayne.mock.survey import ARMS, C_KMS, make_mock_survey
from ddpayne.prepare.grid import desi_grid

LINE = 6000.0


@pytest.fixture(scope="module")
def library():
    grid = desi_grid()
    labels = draw_labels(12, seed=3)
    flux = np.tile(1 - 0.5 * np.exp(-0.5 * ((grid - LINE) / 1.2) ** 2), (12, 1)).astype(np.float32)
    return MockLibrary(grid, flux, labels, {"note": "analytic test library"})


@pytest.fixture(scope="module")
def survey(library, tmp_path_factory):
    out = tmp_path_factory.mktemp("mock")
    return make_mock_survey(out, n_stars=10, snr=80.0, seed=5, n_per_file=6, library=library)


def test_files_and_layout(survey):
    assert len(survey["coadds"]) == 2
    with fits.open(survey["coadds"][0]) as h:
        names = [x.name for x in h]
        for a in ARMS:
            for part in ("WAVELENGTH", "FLUX", "IVAR", "MASK", "RESOLUTION"):
                assert f"{a}_{part}" in names
        assert "FIBERMAP" in names and "SCORES" in names and "INFIL000" in h[0].header
        assert h["B_WAVELENGTH"].data.size == 2751 and h["R_WAVELENGTH"].data.size == 2326
        assert h["Z_WAVELENGTH"].data.size == 2881
        assert h["B_FLUX"].header["BUNIT"] == "10**-17 erg/(s cm2 Angstrom)"
        assert h["FIBERMAP"].data["TARGETID"].dtype.kind == "i"
        assert h["FIBERMAP"].data["TARGETID"].dtype.itemsize == 8
        assert h["B_RESOLUTION"].data.shape == (6, 11, 2751)
        np.testing.assert_allclose(h["Z_WAVELENGTH"].data[[0, -1]], [7520.0, 9824.0])


def test_specutils_reads_it(survey):
    from specutils import SpectrumList
    sl = SpectrumList.read(str(survey["coadds"][0]), format="DESI coadd")
    assert len(sl) == 3
    assert sl[0].flux.shape == (6, 2751)
    assert str(sl[0].spectral_axis.unit) == "Angstrom"


def test_rv_and_snr(survey):
    truth = Table.read(survey["truth"])
    rv = Table.read(survey["mwsall"], hdu="RVTAB")
    assert np.all(rv["RR_SPECTYPE"] == "STAR")
    np.testing.assert_array_equal(rv["TARGETID"], truth["TARGETID"])
    with fits.open(survey["coadds"][0]) as h:
        w = h["R_WAVELENGTH"].data
        for i in range(6):
            f, iv = h["R_FLUX"].data[i], h["R_IVAR"].data[i]
            # median per-pixel S/N in R equals the requested 80 (noise realisation: a few %)
            assert np.median(f * np.sqrt(iv)) == pytest.approx(80.0, rel=0.05)
            # the line sits at its Doppler-shifted position
            shifted = LINE * (1 + truth["RV_TRUE"][i] / C_KMS)
            near = np.abs(w - shifted) < 6
            cont = np.median(f[(np.abs(w - shifted) > 10) & (np.abs(w - shifted) < 30)])
            depth = 1 - f[near] / cont
            centroid = np.sum(w[near] * depth) / np.sum(depth)
            assert centroid == pytest.approx(shifted, abs=0.3)
            assert 1 - f[near].min() / cont == pytest.approx(0.5 * 1.2 / np.hypot(1.2, 0.0), abs=0.12)


def test_catalogues(survey):
    ref = Table.read(survey["reference"])
    truth = Table.read(survey["truth"])
    for n in LABEL_NAMES:
        assert n in ref.colnames and f"{n}_ERR" in ref.colnames
    d = np.asarray(ref["FE_H"]) - np.asarray(truth["FE_H"])
    assert np.all(np.abs(d) < 5 * ref["FE_H_ERR"])
    gaia = Table.read(survey["mwsall"], hdu="GAIA")
    assert len(gaia) == 10 and "PARALLAX_ERROR" in gaia.colnames
    tm = Table.read(survey["twomass"])
    assert {"J", "H", "KS"} <= set(tm.colnames)


def test_seeded(library, tmp_path):
    a = make_mock_survey(tmp_path / "a", 3, snr=30, seed=9, library=library)
    b = make_mock_survey(tmp_path / "b", 3, snr=30, seed=9, library=library)
    fa = fits.getdata(a["coadds"][0], "B_FLUX")
    fb = fits.getdata(b["coadds"][0], "B_FLUX")
    np.testing.assert_array_equal(fa, fb)
    with pytest.raises(ValueError, match="snr"):
        make_mock_survey(tmp_path / "c", 3, snr=-1, seed=9, library=library)


def test_read_by_desi_reader(survey):
    """The project's own DESI reader reads the mock coadds and joins the mwsall-like catalogue."""
    from ddpayne import registry
    if "desi" not in registry.available("reader"):
        pytest.skip("DESI reader plugin not installed")
    reader = registry.create("reader", "desi")
    cat = reader.read_catalogue(survey["mwsall"])
    spectra = reader.read(survey["coadds"][0], catalogue=cat)
    truth = Table.read(survey["truth"])
    assert len(spectra.meta) == 6
    np.testing.assert_array_equal(np.asarray(spectra.meta["TARGETID"]), truth["TARGETID"][:6])


def test_repeat_observations(tmp_path):
    """Repeats: same TARGETID and truth, a second 'sv3' coadd, new noise, aligned mwsall rows."""
    from astropy.io import fits
    from astropy.table import Table

    from ddpayne.mock.standin import analytic_library
    from ddpayne.mock.survey import make_mock_survey
    from ddpayne.prepare.spectra import prepare_files

    lib = analytic_library(40, ("TEFF", "LOGG", "FE_H", "MG_FE"), seed=3)
    base = make_mock_survey(tmp_path / "a", 40, snr=50, seed=5, n_per_file=25, library=lib)
    p = make_mock_survey(tmp_path / "b", 40, snr=50, seed=5, n_per_file=25, library=lib, repeat_fraction=0.25)
    truth = Table.read(p["truth"])
    n_rep = int((truth["N_OBS"] == 2).sum())
    assert 3 <= n_rep <= 20
    assert sorted(x.name for x in p["coadds"] if "sv3" in x.name)
    # the main-survey files are unchanged by asking for repeats (own random stream)
    with fits.open(base["coadds"][0]) as a, fits.open(p["coadds"][0]) as b:
        assert np.array_equal(a["R_FLUX"].data, b["R_FLUX"].data)
    with fits.open(p["mwsall"]) as h:
        assert {len(h[n].data) for n in ("RVTAB", "FIBERMAP", "SCORES", "GAIA")} == {40 + n_rep}
    batch, rejected = prepare_files(p["coadds"], catalogue=p["mwsall"])
    assert len(batch) == 40 + n_rep and len(rejected) == 0
    tid = np.asarray(batch.meta["TARGETID"])
    dup = [t for t in np.unique(tid) if (tid == t).sum() == 2]
    assert len(dup) == n_rep
    i, j = np.flatnonzero(tid == dup[0])
    assert {str(batch.meta["SURVEY"][i]), str(batch.meta["SURVEY"][j])} == {"main", "sv3"}
    good = (batch.ivar[i] > 0) & (batch.ivar[j] > 0)
    d = (batch.flux[i] - batch.flux[j])[good] / np.sqrt(1 / batch.ivar[i][good] + 1 / batch.ivar[j][good])
    assert 0.7 < np.std(d) < 1.3      # same star, independent noise
