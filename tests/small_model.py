"""A small model trained by ``ddpayne run`` on a mock DESI survey in ~20 s, for the tests of applying saved
models to new spectra (tests/test_apply.py, tests/test_demo_sun.py).

The library is the analytic stand-in (:mod:`ddpayne.mock.standin`: lines between 5000 and 5450 Å); the model is
trained on two windows of the DESI grid with a continuum width other than the reader's default (25 Å, DESI's
is 20 Å), so that a model applied with anything but its own preparation gives other spectra.
"""
from __future__ import annotations

from pathlib import Path

import pytest

LABELS = ("TEFF", "LOGG", "FE_H", "MG_FE")
WINDOWS = [[5000.0, 5200.0], [5250.0, 5450.0]]
CONTINUUM_WIDTH = 25.0


@pytest.fixture(scope="module", autouse=True)
def one_torch_thread():
    """Torch on one thread for the module: on a busy 2-core machine its default threads wait on each other
    (these tests take ~10 s on one thread and ~100 s with the default when other jobs hold the cores)."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def train_small_model(root: Path, n_stars: int = 120, fit: bool = False) -> dict:
    """Make a mock survey under ``root`` and train (and, with ``fit``, fit) it with ``ddpayne run``.

    Returns
    -------
    dict
        ``model`` (the saved emulator), ``coadds``, ``catalogue`` (mwsall), ``config``, ``out`` (run folder).
    """
    from ddpayne.mock.standin import analytic_library
    from ddpayne.mock.survey import make_mock_survey
    from ddpayne.pipeline.run import Pipeline

    root = Path(root)
    lib = analytic_library(n_stars, LABELS, seed=3)
    paths = make_mock_survey(root / "mock", n_stars, snr=80, seed=5, n_per_file=n_stars // 2, library=lib,
                             repeat_fraction=0.0)
    labels = ", ".join(f'"{n}"' for n in LABELS)
    config = root / "run.toml"
    config.write_text(f"""
[data]
spectra = ["mock/coadd-*.fits"]
catalogue = "mock/mwsall-mock.fits"
labels = "mock/reference-labels-mock.fits"
[prepare]
wave_range = {WINDOWS}
continuum_width = {CONTINUUM_WIDTH}
[training]
regularizer = "none"
labels = [{labels}]
epochs = 40
batch_size = 32
final_learning_rate = 0.001
n_hidden = 5
min_snr = 10
threads = 1
validation_fraction = 0.2
[derive]
enabled = false
[output]
dir = "out"
figures = false
""")
    Pipeline(config).run(["prepare", "train", "fit"] if fit else ["prepare", "train"])
    return {"model": root / "out" / "model" / "emulator.pt", "coadds": sorted(paths["coadds"]),
            "catalogue": paths["mwsall"], "config": config, "out": root / "out"}
