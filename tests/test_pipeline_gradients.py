"""The pipeline regularizes a partial-grid / fewer-label run with the matching part of the gradient product."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import ddpayne

from ddpayne.exceptions import DDPayneError
from ddpayne.physics.gradients import GradientSpectra
from ddpayne.pipeline.config import config_from_dict
from ddpayne.pipeline.run import Pipeline
from ddpayne.prepare.grid import desi_grid


@pytest.fixture()
def pipe(tmp_path):
    p = Pipeline(config_from_dict({"output": {"dir": str(tmp_path)}}))
    (p.out / "model").mkdir()
    return p


def test_matched_gradients_are_the_products_pixels(pipe):
    full = GradientSpectra.read(Path(ddpayne.__file__).parent / "data" / "gradients_desi.fits")
    cols = [full.label_index("TEFF"), full.label_index("MG_FE")]
    grid = desi_grid()
    part = grid[(grid >= 5000) & (grid <= 5450)]
    m = GradientSpectra.read(pipe._matched_gradients(part, ("TEFF", "MG_FE")))
    assert m.label_names == ("TEFF", "MG_FE") and np.array_equal(m.wavelength, part)
    lo = np.searchsorted(grid, 5000)
    expect = full.gradients[:, cols, lo:lo + part.size]
    # stored quantised: equal to the product within its int16 quantisation (1/4095 of each spectrum's max)
    tol = np.abs(full.gradients).max(axis=-1, keepdims=True)[:, cols] / 4095 * 2
    assert np.all(np.abs(m.gradients - expect) <= tol + 1e-12)


def test_mismatched_grid_or_labels_are_clear_errors(pipe):
    with pytest.raises(DDPayneError, match="another wavelength grid"):
        pipe._matched_gradients(np.linspace(5000.1, 5100.3, 50), ("TEFF",))
    pipe.cfg.training.gradients = "nowhere.fits"
    with pytest.raises(DDPayneError, match="nowhere.fits not found"):
        pipe._matched_gradients(desi_grid()[:10], ("TEFF",))
