"""The LAMOST reader on real files of both layouts."""
from __future__ import annotations

import gzip

import numpy as np
import pytest
from astropy.io import fits

from ddpayne import registry
from ddpayne.exceptions import SpectrumFileError
from ddpayne.flags import Flag
from ddpayne.io.spectra import identify_reader
from ddpayne.prepare.spectra import prepare_files

C_KMS = 299792.458


@pytest.fixture(scope="module")
def reader():
    return registry.create("reader", "lamost")


def test_every_file_is_identified_with_its_layout(lamost_files, reader):
    layouts = {}
    for path in lamost_files:
        assert identify_reader(path).name == "lamost"
        s = reader.read(path)
        layouts[path.name] = s.extra["layout"]
        wave = s.arms["ALL"].spectral_axis.to_value("Angstrom")
        assert 3690 < wave[0] < 3710 and 9090 < wave[-1] < 9105
        # log-linear sampling: constant step in log10(λ) of 1e-4
        assert np.allclose(np.diff(np.log10(wave)), 1e-4, rtol=1e-3)
    assert layouts["spec-57287-KP193637N444141V03_sp10-161.fits.gz"] == "DR5-7 image"
    assert layouts["spec-58397-EG014118N254444M01_sp03-031.fits"] == "DR5-7 image"
    assert layouts["spec-60591-LN042429N340750BM01_sp01-001.fits.gz"] == "DR8+ COADD table"


def test_layout_is_detected_from_content_not_name(lamost_files, reader, tmp_path):
    src = [p for p in lamost_files if "57287" in p.name][0]
    renamed = tmp_path / "whatever.fits"
    renamed.write_bytes(gzip.decompress(src.read_bytes()))
    assert reader.identify(renamed)
    assert reader.read(renamed).extra["layout"] == "DR5-7 image"


def test_rv_from_header_redshift(lamost_files, reader):
    path = [p for p in lamost_files if "57287" in p.name][0]
    z = fits.getheader(path)["Z"]
    s = reader.read(path)
    assert s.meta["RV"][0] == pytest.approx(z * C_KMS)
    assert s.meta["ID"][0] == str(fits.getheader(path)["OBSID"])


def test_stars_kept_qso_rejected(lamost_files):
    batch, rejected = prepare_files(lamost_files)
    assert len(batch) + len(rejected) == len(lamost_files)
    assert list(rejected["FLAG_REASON"]) == ["CLASS is 'QSO', not STAR"]
    assert batch.provenance["continuum_width"] == 50.0
    g5 = batch[list(batch.ids).index("1247301001")]
    good = g5.ivar[0] > 0
    assert good.mean() > 0.95
    assert abs(np.median(g5.flux[0][good]) - 1) < 0.03  # normalised
    assert g5.meta["SNR"][0] > 50


def test_corrupt_lamost_file(lamost_files, reader, tmp_path):
    src = [p for p in lamost_files if "58397" in p.name][0]
    with fits.open(src) as h:
        fits.PrimaryHDU(h[0].data[:, :10].T.copy(), header=h[0].header).writeto(tmp_path / "bad.fits")
    with pytest.raises(SpectrumFileError, match=r"bad.fits: primary image has shape \(10, 5\)"):
        reader.read(tmp_path / "bad.fits")


def test_all_zero_ivar_is_flagged(lamost_files, tmp_path):
    src = [p for p in lamost_files if "58397" in p.name][0]
    with fits.open(src) as h:
        data = h[0].data.copy()
        data[1] = 0.0
        fits.PrimaryHDU(data, header=h[0].header).writeto(tmp_path / "zero-ivar.fits")
    batch, _ = prepare_files([tmp_path / "zero-ivar.fits"])
    assert batch.meta["FLAG"][0] & Flag.ALL_MASKED
