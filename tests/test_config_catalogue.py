"""Pipeline configuration and the catalogue writer."""
from __future__ import annotations

import numpy as np
import pytest
from astropy.io import fits
from astropy.table import Table

from ddpayne.flags import Flag
from ddpayne.pipeline.catalogue import build_catalogue, flag_summary, read_catalogue, write_catalogue
from ddpayne.pipeline.config import ConfigError, config_from_dict, load_config, write_config


def test_defaults_and_paths(tmp_path):
    (tmp_path / "a1.fits").write_bytes(b"x")
    (tmp_path / "a2.fits").write_bytes(b"x")
    cfg_file = tmp_path / "run.toml"
    cfg_file.write_text('[data]\nspectra = ["a*.fits"]\n[training]\nepochs = 5\n')
    cfg = load_config(cfg_file)
    assert [p.name for p in cfg.spectrum_files()] == ["a1.fits", "a2.fits"]
    assert cfg.training.epochs == 5 and cfg.training.batch_size == 512
    assert cfg.fit.fitter == "lm" and cfg.output_dir == tmp_path / "ddpayne-output"
    write_config(cfg, tmp_path / "copy.toml")
    again = load_config(tmp_path / "copy.toml")
    assert again.to_dict() == cfg.to_dict()
    assert again.digest("training") == cfg.digest("training")
    cfg.training.epochs = 6
    assert again.digest("training") != cfg.digest("training")


@pytest.mark.parametrize("doc, message", [
    ({"trainig": {}}, r"unknown section\(s\) \['trainig'\]"),
    ({"training": {"epoch": 3}}, r"\[training\] unknown key\(s\) \['epoch'\]"),
    ({"training": {"epochs": "many"}}, r"\[training\] epochs = 'many': expected int"),
    ({"fit": {"executor": "slurm"}}, r"\[fit\] executor = 'slurm'"),
    ({"training": {"labels": ["TEFF", "MG_H"]}}, r"\[training\] labels: unknown label name\(s\) \['MG_H'\]"),
    ({"training": {"threads": -1}}, r"\[training\] threads = -1"),
])
def test_bad_config_is_named(doc, message):
    with pytest.raises(ConfigError, match=message):
        config_from_dict(doc)


def test_bad_toml_names_file(tmp_path):
    f = tmp_path / "broken.toml"
    f.write_text("[data\nspectra = 1")
    with pytest.raises(ConfigError, match="broken.toml: invalid TOML"):
        load_config(f)
    with pytest.raises(ConfigError, match="missing.toml: no such configuration file"):
        load_config(tmp_path / "missing.toml")
    cfg = config_from_dict({"data": {"spectra": ["nothing-*.fits"]}}, base=tmp_path)
    with pytest.raises(ConfigError, match="matches no file"):
        cfg.spectrum_files()


def test_catalogue_join_units_flags_provenance(tmp_path):
    meta = Table({"ID": ["1", "2"], "RA": [10.0, 11.0], "SNR": [50.0, 20.0],
                  "FLAG": np.array([0, int(Flag.NO_RV)]), "IS_STAR": [True, True]})
    fit = Table({"ID": ["1", "2"], "TEFF": [5800.0, 4500.0], "TEFF_ERR": [20.0, 30.0],
                 "FE_H": [-0.5, -1.0], "FLAG": np.array([int(Flag.AT_BOUND), 0])})
    gal = Table({"ID": ["1", "2"], "DIST": [1.2, 3.4], "GES": [False, True]})
    cat = build_catalogue(meta, fit, gal)
    assert list(cat["FLAG"]) == [int(Flag.AT_BOUND), int(Flag.NO_RV)]
    assert "IS_STAR" not in cat.colnames
    assert str(cat["TEFF"].unit) == "K" and str(cat["DIST"].unit) == "kpc"
    assert cat["TEFF_ERR"].description == "formal uncertainty of TEFF"
    rej = Table({"ID": ["3"], "SOURCE_FILE": ["f.fits"], "FLAG": [int(Flag.NOT_STAR)],
                 "FLAG_REASON": ["RR_SPECTYPE is 'GALAXY', not STAR"]})
    out = tmp_path / "cat.fits"
    write_catalogue(cat, out, provenance={"model_sha": "abc123", "config": {"fit": {"fitter": "lm"}}},
                    rejected=rej, formats=["ecsv"])
    back = read_catalogue(out)
    assert list(back["ID"]) == ["1", "2"] and back["TEFF"].unit == "K" and str(back["FE_H"].unit) == "dex"
    with fits.open(out) as h:
        assert h[0].header["DDPVERS"] and h[0].header["FLAGB02"] == "NO_RV"
        assert h["REJECTED"].data["FLAG_REASON"][0].startswith("RR_SPECTYPE")
        prov = dict(zip(h["PROVENANCE"].data["KEY"], h["PROVENANCE"].data["VALUE"]))
        assert '"fitter": "lm"' in prov["config"]
    assert (tmp_path / "cat.ecsv").exists()
    assert flag_summary(cat) == {"NO_RV": 1, "AT_BOUND": 1}


def test_catalogue_rejects_misaligned_stage():
    meta = Table({"ID": ["1", "2"], "FLAG": [0, 0]})
    with pytest.raises(ValueError, match="not in the order"):
        build_catalogue(meta, Table({"ID": ["2", "1"], "TEFF": [1.0, 2.0]}))
    with pytest.raises(ValueError, match="1 rows for 2 spectra"):
        build_catalogue(meta, Table({"ID": ["1"], "TEFF": [1.0]}))


def test_label_figures_render():
    from ddpayne.plots.labels import abundance_density, abundance_panels, compare_reference, kiel_diagram

    rng = np.random.default_rng(1)
    n = 300
    cat = Table({"TEFF": rng.uniform(4000, 7000, n), "LOGG": rng.uniform(1, 5, n),
                 "FE_H": rng.uniform(-2.5, 0.4, n), "MG_FE": rng.normal(0.1, 0.1, n),
                 "AL_FE": rng.normal(0, 0.1, n), "FLAG": np.zeros(n, int), "ABUND_FLAG": np.zeros(n, int)})
    cat["SP_TEFF"] = cat["TEFF"] + rng.normal(0, 50, n)
    for fig in (kiel_diagram(cat), compare_reference(cat, {"TEFF": "SP_TEFF"}),
                abundance_density(cat), abundance_panels(cat)):
        assert len(fig.axes) >= 1
    assert "offset" in compare_reference(cat, {"TEFF": "SP_TEFF"}).axes[0].texts[0].get_text()


def test_configuration_docs_are_generated_from_the_code():
    from pathlib import Path

    from ddpayne.pipeline.config import reference_rst

    page = Path(__file__).parent.parent / "docs" / "configuration.rst"
    assert page.read_text() == reference_rst(), (
        "docs/configuration.rst is stale: python -c \"from ddpayne.pipeline.config import reference_rst; "
        "open('docs/configuration.rst','w').write(reference_rst())\"")


@pytest.mark.parametrize("value, ok", [
    ([5000, 5450], True), ([[3850, 4450], [5150, 5400]], True), ([], True),
    ([5450, 5000], False), ([[3850, 4450], [5400]], False), ([[3850, 4450], 5000], False), ("red", False),
])
def test_wave_range_forms(value, ok):
    doc = {"prepare": {"wave_range": value}}
    if ok:
        cfg = config_from_dict(doc)
        w = cfg.prepare.windows()
        assert len(w) == (0 if not value else 1 if not isinstance(value[0], list) else len(value))
    else:
        with pytest.raises(ConfigError, match=r"\[prepare\] wave_range"):
            config_from_dict(doc)


def test_prepare_windows_keep_the_full_continuum(tmp_path, sun_dir):
    """Windows: only their pixels are kept, normalised as in the full spectrum (100 Å margin)."""
    from ddpayne.io.batch import SpectrumBatch
    from ddpayne.pipeline.run import Pipeline

    def prepared(wave_range):
        d = tmp_path / str(len(wave_range))
        d.mkdir()
        cfg = d / "run.toml"
        cfg.write_text(f'[data]\nspectra = ["{sun_dir / "coadd-sun-snr100.fits"}"]\n'
                       f'catalogue = "{sun_dir / "mwsall-sun-snr100.fits"}"\n'
                       f'[prepare]\nwave_range = {wave_range}\n[output]\ndir = "o"\n')
        (path,) = Pipeline(cfg).prepare()
        return SpectrumBatch.read(path)

    full = prepared([])
    win = prepared([[4000, 4100], [8450, 8700]])
    w = win.wavelength
    assert np.all(((w >= 4000) & (w <= 4100)) | ((w >= 8450) & (w <= 8700)))
    assert w.size == (((full.wavelength >= 4000) & (full.wavelength <= 4100)) |
                      ((full.wavelength >= 8450) & (full.wavelength <= 8700))).sum()
    idx = np.searchsorted(full.wavelength, w)
    good = (win.ivar[0] > 0) & (full.ivar[0, idx] > 0)
    assert np.max(np.abs(win.flux[0][good] - full.flux[0, idx][good])) < 2e-3
    assert "wave_range" in win.provenance.get("pixel_selection", "")


def test_fifteen_label_catalogue_writes_clean_header(tmp_path):
    """All 15 labels' LABELnn keywords fit in a FITS card (no truncation warning) and read back in order."""
    import warnings

    from astropy.io.fits.verify import VerifyWarning

    from ddpayne.labels import LABEL_NAMES
    from ddpayne.pipeline.catalogue import fitted_labels

    cat = build_catalogue(Table({"ID": ["1"], "FLAG": [0]}),
                          Table({"ID": ["1"], **{n: [0.1] for n in LABEL_NAMES}, "FLAG": [0]}))
    cat.meta["LABELS"] = list(LABEL_NAMES)
    with warnings.catch_warnings():
        warnings.simplefilter("error", VerifyWarning)
        write_catalogue(cat, tmp_path / "cat.fits")
    assert fitted_labels(read_catalogue(tmp_path / "cat.fits")) == list(LABEL_NAMES)


def test_upstream_identity_is_short_for_many_files(tmp_path):
    """The digest of a stage's upstream files names the checkpoint folder: it must stay one short path
    component for a survey of thousands of files, and change when any file changes."""
    import os

    from ddpayne.pipeline.run import Pipeline

    files = [tmp_path / f"coadd-main-bright-{i:05d}.fits" for i in range(2000)]
    for f in files:
        f.write_bytes(b"x")
    ident = Pipeline._upstream(*files)
    assert len(ident) <= 32 and "/" not in ident and "|" not in ident
    (tmp_path / f"checkpoints-{ident}").mkdir()          # a valid folder name
    st = files[1234].stat()
    os.utime(files[1234], ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))
    assert Pipeline._upstream(*files) != ident


def test_threads_do_not_change_the_stage_digest():
    """Thread counts change speed, not results: changing them must not retrain or refit."""
    a = config_from_dict({"training": {"epochs": 10}})
    b = config_from_dict({"training": {"epochs": 10, "threads": 1}, "fit": {"threads": 2}})
    c = config_from_dict({"training": {"epochs": 11}})
    assert a.digest("training", "fit") == b.digest("training", "fit") != c.digest("training", "fit")
    assert b.training.threads == 1 and b.fit.threads == 2


def test_column_normalised_density_blanks_sparse_columns():
    """Fig. 7's column-normalised panel: a [Fe/H] column with one star is blank, not the darkest pixel."""
    from ddpayne.plots.labels import abundance_density

    rng = np.random.default_rng(2)
    feh = np.r_[rng.normal(-0.3, 0.05, 200), -2.5]
    cat = Table({"FE_H": feh, "MG_FE": rng.normal(0.1, 0.05, feh.size), "FLAG": np.zeros(feh.size, np.int64)})
    img = np.asarray(abundance_density(cat, min_column=5).axes[1].images[0].get_array(), float)
    col = int((-2.5 + 3) / 3.6 * 60)                  # the lone star's [Fe/H] column (60 bins over -3..0.6)
    assert np.all(np.isnan(img[:, col]))
    assert np.nanmax(img) < 0.5 and np.isfinite(img).any()


def test_catalogue_is_clean_fits_and_round_trips_units(tmp_path):
    """Every HDU reads without a warning; every column has a TCOMM; 'dex' (not FITS) is not a TUNIT but
    ends the description, and read_catalogue restores it."""
    import warnings

    import astropy.units as u

    from ddpayne.pipeline.catalogue import fits_unit

    meta = Table({"ID": ["1", "2"], "RA": [10.0, 11.0], "FLAG": np.array([0, 0]),
                  "SOME_SURVEY_COLUMN": np.array([1.0, 2.0]), "OBJ": np.array(["a", "b"], dtype=object)})
    fit = Table({"ID": ["1", "2"], "TEFF": [5800.0, 4500.0], "FE_H": [-0.5, -1.0], "MG_FE_ERR": [0.1, 0.2],
                 "JPHI": [1000.0, 20.0], "FLAG": np.array([0, 0])})
    cat = build_catalogue(meta, fit)
    cat["JPHI"].unit = "kpc km/s"
    rej = Table({"ID": ["3"], "SOURCE_FILE": ["f.fits"], "FLAG": [int(Flag.NOT_STAR)], "FLAG_REASON": ["x"]})
    out = tmp_path / "cat.fits"
    write_catalogue(cat, out, provenance={"config": {"a": 1}}, rejected=rej)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for hdu in (1, "CATALOGUE", "REJECTED", "PROVENANCE"):
            Table.read(out, hdu=hdu)
        back = read_catalogue(out)
    with fits.open(out) as h:
        for hdu in h[1:]:
            n = hdu.header["TFIELDS"]
            assert all(hdu.header.get(f"TCOMM{k}") for k in range(1, n + 1)), hdu.name
            units = [hdu.header[f"TUNIT{k}"] for k in range(1, n + 1) if f"TUNIT{k}" in hdu.header]
            assert all(fits_unit(un) for un in units), units
        assert "dex" not in [v for k, v in h["CATALOGUE"].header.items() if k.startswith("TUNIT")]
    assert back["FE_H"].unit == u.dex and back["MG_FE_ERR"].unit == u.dex and back["TEFF"].unit == u.K
    assert back["FE_H"].description == "stellar label FE_H"
    assert back["JPHI"].unit == u.kpc * u.km / u.s
    assert back["SOME_SURVEY_COLUMN"].description == "column carried over from the survey input"
    assert fits_unit("dex") is None and fits_unit("km/s") == "km s-1" and fits_unit(None) is None
