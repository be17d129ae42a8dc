"""The DESI reader on real DESI EDR files (which hold no stars) and on the Sun in DESI format."""
from __future__ import annotations

import shutil

import numpy as np
import pytest
from astropy.io import fits
from astropy.table import Table
from specutils import SpectrumList

from ddpayne import registry
from ddpayne.exceptions import SpectrumFileError, UnknownFormatError
from ddpayne.flags import Flag
from ddpayne.io.spectra import identify_reader, read_spectra
from ddpayne.prepare.spectra import prepare_files


@pytest.fixture(scope="module")
def reader():
    return registry.create("reader", "desi")


def test_every_desi_file_is_identified_and_read(desi_files, reader):
    assert len(desi_files) == 4
    for path in desi_files:
        assert identify_reader(path).name == "desi"
        s = reader.read(path)
        n = len(s.meta)
        assert set(s.arms) == {"B", "R", "Z"}
        for arm, (lo, hi, npix) in {"B": (3600, 5800, 2751), "R": (5760, 7620, 2326),
                                    "Z": (7520, 9824, 2881)}.items():
            spec = s.arms[arm]
            wave = spec.spectral_axis.to_value("Angstrom")
            assert wave.size == npix and wave[0] == pytest.approx(lo) and wave[-1] == pytest.approx(hi)
            assert np.allclose(np.diff(wave), 0.8)
            assert spec.flux.shape == (n, npix)
            assert spec.flux.unit.is_equivalent("erg / (s cm2 Angstrom)")
            assert s.resolution[arm].shape == (n, 11, npix)


def test_matches_specutils_loader(desi_files, reader):
    path = [p for p in desi_files if p.name.startswith("coadd-sv3")][0]
    ours = reader.read(path)
    theirs = SpectrumList.read(path, format="DESI coadd")
    for spec in theirs:
        arm = spec.meta["band"].upper()
        np.testing.assert_array_equal(ours.arms[arm].flux.value, spec.flux.value)
        np.testing.assert_array_equal(ours.arms[arm].uncertainty.array, spec.uncertainty.array)
        np.testing.assert_array_equal(ours.arms[arm].spectral_axis.value, spec.spectral_axis.value)


def test_chunks_equal_whole(desi_files, reader):
    path = [p for p in desi_files if p.name.startswith("coadd-5")][0]
    whole = reader.read(path)
    chunks = list(reader.iter_chunks(path, chunk_size=2))
    assert [len(c) for c in chunks] == [2, 2, 1]
    np.testing.assert_array_equal(np.concatenate([c.arms["Z"].flux.value for c in chunks]),
                                  whole.arms["Z"].flux.value)
    assert list(np.concatenate([c.meta["ID"] for c in chunks])) == list(whole.meta["ID"])


def test_non_star_files_are_rejected_with_reason(desi_files):
    batch, rejected = prepare_files(desi_files)
    assert batch is None
    n_rows = sum(len(fits.getdata(p, "FIBERMAP")) for p in desi_files)
    assert len(rejected) == n_rows  # every row is accounted for
    assert all(r for r in rejected["FLAG_REASON"])
    assert any("sky fibre" in r for r in rejected["FLAG_REASON"])
    assert any("negative TARGETID" in r for r in rejected["FLAG_REASON"])


def test_catalogue_classifies_and_keeps_stars(desi_files, reader):
    path = [p for p in desi_files if p.name.startswith("coadd-sv3")][0]
    tid = fits.getdata(path, "FIBERMAP")["TARGETID"]
    cat = Table({"TARGETID": [tid[2], tid[4]], "RR_SPECTYPE": ["STAR", "GALAXY"],
                 "VRAD": [-40.0, np.nan], "VRAD_ERR": [1.0, np.nan]})
    s = reader.read(path, catalogue=cat)
    assert list(s.meta["IS_STAR"]) == [False, False, True, False, False]
    assert s.meta["RV"][2] == -40.0
    assert "GALAXY" in s.meta["FLAG_REASON"][4]
    assert "not in the MWS catalogue" in s.meta["FLAG_REASON"][0]
    batch, rejected = prepare_files([path], catalogue=cat)
    assert list(batch.meta["ID"]) == [str(tid[2])]
    assert len(rejected) == 4


def test_galaxy_coadd_with_catalogue_yields_no_stars(desi_files):
    path = [p for p in desi_files if "special" in p.name][0]
    tid = fits.getdata(path, "FIBERMAP")["TARGETID"]
    cat = Table({"TARGETID": tid, "RR_SPECTYPE": ["GALAXY"], "VRAD": [np.nan]})
    batch, rejected = prepare_files([path], catalogue=cat)
    assert batch is None and "GALAXY" in rejected["FLAG_REASON"][0]


def test_sun_is_read_and_prepared(sun_dir):
    batch, rejected = prepare_files([sun_dir / "coadd-sun-snr100.fits"],
                                    catalogue=sun_dir / "mwsall-sun-snr100.fits")
    assert len(batch) == 1 and len(rejected) == 0
    truth = Table.read(sun_dir / "truth-sun-snr100.csv")
    assert batch.meta["RV"][0] == pytest.approx(truth["VRAD_CAT"][0])
    assert batch.meta["FLAG"][0] == 0
    # the prepared Sun equals the noiseless solar atlas normalised the same way, within the noise
    from ddpayne.prepare.continuum import normalise
    from ddpayne.prepare.resample import resample

    ref = np.load(sun_dir / "sun-normalised.npz")
    grid = batch.wavelength
    num, den = np.zeros(grid.size), np.zeros(grid.size)
    for arm in "BRZ":
        f, i = resample(ref[f"{arm}_wave"], ref[f"{arm}_flux"][None], np.ones((1, ref[f"{arm}_wave"].size)),
                        grid)
        num += (i * f)[0]
        den += i[0]
    model = np.where(den > 0, num / np.where(den > 0, den, 1), 0)
    mflux, mivar, _ = normalise(grid, model, (den > 0).astype(float) * 1e4)
    ok = (batch.ivar[0] > 0) & (mivar > 0) & (grid > 3700) & (grid < 9700)
    pull = (batch.flux[0][ok] - mflux[ok]) * np.sqrt(batch.ivar[0][ok])
    # the residual is noise plus a small RV-interpolation error: pulls close to unit width
    assert 0.8 < np.std(pull) < 1.3
    assert abs(np.mean(pull)) < 0.1


def test_mws_catalogue_reading(sun_dir, tmp_path, reader):
    cat = reader.read_catalogue(sun_dir / "mwsall-sun-snr100.fits")
    assert list(cat["RR_SPECTYPE"]) == ["STAR"]
    bad = tmp_path / "mwsall-bad.fits"
    t = Table({"TARGETID": [1], "VRAD": [0.0]})
    fits.HDUList([fits.PrimaryHDU(), fits.BinTableHDU(t, name="RVTAB")]).writeto(bad)
    with pytest.raises(SpectrumFileError, match=r"mwsall-bad.fits: RVTAB lacks .*RR_SPECTYPE"):
        reader.read_catalogue(bad)
    # the RVS and SP pipelines' own parameters are kept under their own names (beside ddpayne's labels)
    both = tmp_path / "mwsall-rvs-sp.fits"
    rvt = Table({"TARGETID": [1, 2], "RR_SPECTYPE": ["STAR", "STAR"], "VRAD": [0.0, 1.0],
                 "TEFF": [5000.0, 6000.0], "LOGG": [4.5, 4.0], "FEH": [-0.5, 0.0]})
    spt = Table({"TEFF": [5100.0, 5900.0], "LOGG": [4.4, 4.1], "FEH": [-0.4, -0.1], "ALPHAFE": [0.2, 0.0]})
    fits.HDUList([fits.PrimaryHDU(), fits.BinTableHDU(rvt, name="RVTAB"),
                  fits.BinTableHDU(spt, name="SPTAB")]).writeto(both)
    cat = reader.read_catalogue(both)
    assert list(cat["RVS_TEFF"]) == [5000.0, 6000.0] and list(cat["SP_FEH"]) == [-0.4, -0.1]
    assert "TEFF" not in cat.colnames and "SP_ALPHAFE" in cat.colnames


# --- corrupted inputs ---------------------------------------------------------------------------

def test_truncated_file_gives_clear_error(desi_files, tmp_path, reader):
    src = [p for p in desi_files if p.name.startswith("coadd-sv3")][0]
    cut = tmp_path / "coadd-truncated.fits"
    cut.write_bytes(src.read_bytes()[: src.stat().st_size // 3])
    with pytest.raises(SpectrumFileError, match="coadd-truncated.fits"):
        reader.read(cut)
    batch, rejected = prepare_files([cut, src])  # the batch goes on
    assert any("coadd-truncated.fits" in r and f == Flag.BAD_INPUT
               for r, f in zip(rejected["FLAG_REASON"], rejected["FLAG"]))
    assert len(rejected) == 1 + 5


def test_non_fits_file(tmp_path):
    junk = tmp_path / "notes.fits"
    junk.write_text("this is not FITS")
    with pytest.raises(UnknownFormatError, match="notes.fits: text file, not FITS .*remove it from the input"):
        read_spectra(junk)


def test_missing_hdu_and_shape_mismatch(desi_files, tmp_path, reader):
    src = [p for p in desi_files if p.name.startswith("coadd-5")][0]
    with fits.open(src) as h:
        no_ivar = fits.HDUList([x.copy() for x in h if x.name != "R_IVAR"])
        no_ivar.writeto(tmp_path / "no-ivar.fits")
        wrong = fits.HDUList([x.copy() for x in h])
        wrong["Z_IVAR"].data = wrong["Z_IVAR"].data[:, :100]
        wrong.writeto(tmp_path / "wrong-shape.fits")
    with pytest.raises(SpectrumFileError, match=r"no-ivar.fits: arm R: missing HDU\(s\) \['R_IVAR'\]"):
        reader.read(tmp_path / "no-ivar.fits")
    with pytest.raises(SpectrumFileError, match="wrong-shape.fits: arm Z: FLUX .* IVAR .* shapes differ"):
        reader.read(tmp_path / "wrong-shape.fits")


def test_all_nan_and_zero_ivar_spectra_are_flagged_not_dropped(sun_dir, tmp_path):
    src = sun_dir / "coadd-sun-snr100.fits"
    with fits.open(src) as h:
        h2 = fits.HDUList([x.copy() for x in h])
    for arm in "BRZ":
        h2[f"{arm}_FLUX"].data = np.full_like(h2[f"{arm}_FLUX"].data, np.nan)
    h2.writeto(tmp_path / "coadd-nan.fits")
    batch, rejected = prepare_files([tmp_path / "coadd-nan.fits"],
                                    catalogue=sun_dir / "mwsall-sun-snr100.fits")
    assert len(batch) == 1
    assert batch.meta["FLAG"][0] & Flag.ALL_MASKED
    assert "all pixels masked" in batch.meta["FLAG_REASON"][0]
    assert np.all(batch.ivar == 0) and np.all(np.isfinite(batch.flux))


def test_nan_rv_is_flagged(sun_dir):
    cat = Table.read(sun_dir / "mwsall-sun-snr100.fits", hdu="RVTAB")
    cat["VRAD"] = np.nan
    batch, _ = prepare_files([sun_dir / "coadd-sun-snr100.fits"], catalogue=cat)
    assert batch.meta["FLAG"][0] & Flag.NO_RV
    assert "observed frame" in batch.meta["FLAG_REASON"][0]
