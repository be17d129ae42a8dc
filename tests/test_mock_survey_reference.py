"""The mock survey reproduces a stored reference (same seed -> same files, within float tolerance).

``tests/data/mock_survey_reference.npz`` was written by this module (``python
tests/test_mock_survey_reference.py --write``) from :func:`ddpayne.mock.survey.make_mock_survey` *before* the
function was split into named steps (issue 22); the test shows the steps reproduce it. The library is
rebuilt from labels stored in the file (so a change of ``draw_labels`` does not move it) with one analytic
absorption line; the Galaxy places come from :func:`ddpayne.mock.galaxy.assign_galaxy` and the bundled
extinction table, so a deliberate change of either needs the reference rewritten (and says so here).
"""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits
from astropy.table import Table

from ddpayne.labels import LABEL_NAMES

REFERENCE = Path(__file__).parent / "data" / "mock_survey_reference.npz"
#: Two surveys through every branch: repeats, S/N spread, a partial reference catalogue, two files per
#: survey; and more stars than the library (spectra reused).
CASES = {"a": {"n_stars": 10, "snr": 80.0, "seed": 5, "n_per_file": 6, "snr_spread": 0.1, "repeat_fraction": 0.4,
               "ref_fraction": 0.7},
         "b": {"n_stars": 15, "snr": 40.0, "seed": 11, "n_per_file": 20, "background": 0.1}}
#: Every n-th pixel of the arm spectra is stored.
STRIDE = 97


def _library(ref):
    from ddpayne.mock.library import MockLibrary
    from ddpayne.prepare.grid import desi_grid

    grid = desi_grid()
    labels = Table({n: ref[f"label_{n}"] for n in ("STAR_ID", "POP", "KIND", *LABEL_NAMES)})
    flux = np.tile(1 - 0.5 * np.exp(-0.5 * ((grid - 6000.0) / 1.2) ** 2), (len(labels), 1)).astype(np.float32)
    return MockLibrary(grid, flux, labels, {"note": "analytic reference library"})


def _numbers(paths) -> dict[str, np.ndarray]:
    """The numbers a survey is compared on: strided arm spectra and every numeric catalogue column."""
    out = {}
    for path in paths["coadds"]:
        with fits.open(path) as h:
            for a in "BRZ":
                for part in ("FLUX", "IVAR", "MASK"):
                    out[f"{path.name}:{a}_{part}"] = np.asarray(h[f"{a}_{part}"].data[:, ::STRIDE])
            out[f"{path.name}:FIBERMAP:TARGETID"] = np.asarray(h["FIBERMAP"].data["TARGETID"])
    with fits.open(paths["mwsall"]) as h:
        hdus = {k: h[k].data for k in ("RVTAB", "FIBERMAP", "SCORES", "GAIA")}
        tables = {f"mwsall:{k}": v for k, v in hdus.items()}
        for key in ("twomass", "reference", "truth"):
            tables[key] = fits.getdata(paths[key], 1)
        for key, data in tables.items():
            for c in data.columns.names:
                col = np.asarray(data[c])
                out[f"{key}:{c}"] = col if col.dtype.kind in "biuf" else col.astype(str)
    return out


def _survey(tmp_path, name, ref):
    from ddpayne.mock.survey import make_mock_survey

    return make_mock_survey(tmp_path / name, library=_library(ref), **CASES[name])


def write_reference(path=REFERENCE):  # pragma: no cover - run by hand
    import tempfile

    from ddpayne.mock.library import draw_labels

    labels = draw_labels(12, seed=3)
    ref = {f"label_{c}": np.asarray(labels[c]) for c in ("STAR_ID", "POP", "KIND", *LABEL_NAMES)}
    with tempfile.TemporaryDirectory() as tmp:
        for name in CASES:
            for key, value in _numbers(_survey(Path(tmp), name, ref)).items():
                ref[f"{name}/{key}"] = value
    np.savez_compressed(path, **ref)
    print(f"wrote {path} ({len(ref)} arrays)")


@pytest.mark.parametrize("name", sorted(CASES))
def test_survey_reproduces_reference(tmp_path, name):
    with np.load(REFERENCE) as f:
        ref = dict(f)
    got = _numbers(_survey(tmp_path, name, ref))
    want = {k.split("/", 1)[1]: v for k, v in ref.items() if k.startswith(f"{name}/")}
    assert sorted(got) == sorted(want)
    for key, value in want.items():
        if value.dtype.kind in "US":
            np.testing.assert_array_equal(got[key], value, err_msg=key)
        else:   # float tolerance: the black body and constants come from astropy since the reference
            scale = np.nanmax(np.abs(value), initial=0.0) if value.size else 0.0
            np.testing.assert_allclose(got[key], value, rtol=2e-6, atol=1e-7 * scale, err_msg=key)


if __name__ == "__main__" and "--write" in sys.argv:  # pragma: no cover
    write_reference()
