"""multiprocessing and dask.distributed backends give the same catalogue as the serial one.

Each starts worker processes that import torch (~10-20 s on a 2-core machine): marked slow.
"""
from __future__ import annotations

import functools

import numpy as np
import pytest

from ddpayne.fit.results import read_result_table
from ddpayne.fit.testing import LineEmulator, mock_batch
from ddpayne.pipeline.executors import run_fit

WL = np.arange(4000.0, 4200.0, 0.8)


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    d = tmp_path_factory.mktemp("backends")
    factory = functools.partial(LineEmulator, WL, n_lines=40, seed=1)
    emu = factory()
    rng = np.random.default_rng(1)
    files = []
    for k in range(3):
        lab = np.array([5900.0, 4.0, 1.2, -0.5] + [0.1] * 11) + rng.normal(0, 0.05, (4, 15))
        p = d / f"in{k}.fits"
        mock_batch(emu, lab, snr=80, seed=k, ids=[f"{k}-{i}" for i in range(4)]).write(p)
        files.append(p)
    serial = read_result_table(run_fit(files, d / "serial.fits", factory, progress=False).output)
    return files, factory, serial, d


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["multiprocessing", "dask"])
def test_parallel_backend_equals_serial(setup, backend):
    files, factory, serial, d = setup
    if backend == "dask":
        pytest.importorskip("distributed", reason="the dask backend needs the ddpayne[dask] extra")
    s = run_fit(files, d / f"{backend}.fits", factory, backend=backend, n_workers=2, progress=False)
    assert not s.failed and s.n_rows == 12
    t = read_result_table(s.output)
    assert list(t["ID"]) == list(serial["ID"])
    for name in ("TEFF", "FE_H", "CHI2"):
        assert np.allclose(t[name], serial[name], rtol=1e-9)
