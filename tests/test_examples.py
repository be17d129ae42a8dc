"""The scripts in examples/ run as documented (small sizes), one after the other as a user would."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from astropy.table import Table

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def run(script: str, *args, cwd: Path) -> str:
    res = subprocess.run([sys.executable, str(EXAMPLES / script), *map(str, args)], cwd=cwd,
                         capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, f"{script} failed:\n{res.stdout[-2000:]}\n{res.stderr[-3000:]}"
    return res.stdout


@pytest.fixture(scope="module")
def prepared(tmp_path_factory):
    """A small prepared mock survey (analytic stand-in spectra) and its reference labels."""
    from ddpayne.mock.standin import analytic_library
    from ddpayne.mock.survey import make_mock_survey
    from ddpayne.prepare.spectra import prepare_files

    root = tmp_path_factory.mktemp("examples")
    lib = analytic_library(240, ("TEFF", "LOGG", "FE_H", "MG_FE"), seed=2)
    paths = make_mock_survey(root / "mock", 240, snr=80, seed=3, n_per_file=120, library=lib)
    files = []
    for i, coadd in enumerate(paths["coadds"]):
        batch, _ = prepare_files([coadd], catalogue=paths["mwsall"])
        keep = (batch.wavelength >= 5000) & (batch.wavelength <= 5450)
        f = root / f"prepared-{i}.fits"
        batch.select_pixels(keep).write(f)
        files.append(f)
    return root, files, paths


def test_read_desi_healpix_default(tmp_path):
    out = run("read_desi_healpix.py", cwd=tmp_path)
    assert "1 stars prepared, 0 spectra rejected" in out
    for arm in ("B", "R", "Z"):
        assert arm in out


def test_train_fit_plot_chain(prepared):
    root, files, paths = prepared
    out = run("train_custom.py", *files, "--labels", paths["reference"], "--epochs", 80,
              "--out", root / "model.pt", cwd=root)
    assert (root / "model.pt").exists() and "saved" in out
    out = run("fit_saved_model.py", root / "model.pt", *files, "--out", root / "fit.fits", cwd=root)
    assert "240 spectra fitted" in out
    from ddpayne.fit.results import read_result_table
    fit = read_result_table(root / "fit.fits")
    truth = Table.read(paths["truth"])
    pos = {t: i for i, t in enumerate(np.asarray(truth["TARGETID"]))}
    t = truth[[pos[x] for x in np.asarray(fit["TARGETID"])]]
    # an 80-epoch model: labels follow the truth, loosely
    # (measured in development: rho = 0.94, 0.97, 0.96, 0.91 for TEFF, LOGG, FE_H, MG_FE)
    for n in ("TEFF", "LOGG", "FE_H", "MG_FE"):
        assert np.corrcoef(fit[n], t[n])[0, 1] > 0.85, n
    out = run("plot_catalogue.py", root / "fit.fits", root / "figs", cwd=root)
    assert any(p.suffix == ".png" for p in (root / "figs").iterdir())
