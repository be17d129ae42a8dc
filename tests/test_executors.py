"""The survey executor: one task per file, resumable parts, atomic streaming merge, bad files."""
from __future__ import annotations

import functools
import os
import signal
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest

from ddpayne import registry
from ddpayne.fit.results import read_result_table
from ddpayne.fit.testing import LineEmulator, mock_batch
from ddpayne.io.batch import SpectrumBatch
from ddpayne.pipeline.executors import merge_parts, run_fit

WL = np.arange(4000.0, 4300.0, 0.8)
SIZES = (5, 7, 3, 6)


def make_emulator():
    return LineEmulator(WL, n_lines=60, seed=2)


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    d = tmp_path_factory.mktemp("inputs")
    emu = make_emulator()
    rng = np.random.default_rng(0)
    files = []
    for k, n in enumerate(SIZES):
        lab = (np.array([5900.0, 4.0, 1.2, -0.5] + [0.1] * 11)
               + rng.normal(0, 1, (n, 15)) * np.array([300, 0.3, 0.2, 0.3] + [0.1] * 11))
        b = mock_batch(emu, lab, snr=60 + 20 * k, seed=k, ids=[f"file{k}-star{i}" for i in range(n)])
        b.meta["TARGETID"] = np.arange(n) + 1000 * k
        p = d / f"batch-{k}.fits"
        b.write(p)
        files.append(p)
    return files


def all_ids():
    return [f"file{k}-star{i}" for k, n in enumerate(SIZES) for i in range(n)]


def test_serial_run_matches_direct_fit(inputs, tmp_path):
    out = tmp_path / "labels.fits"
    s = run_fit(inputs, out, make_emulator, backend="serial", keep_meta=["TARGETID"], progress=False)
    assert s.output == out and s.n_rows == sum(SIZES) and not s.failed and s.n_skipped == 0
    t = read_result_table(out)
    assert list(t["ID"]) == all_ids()
    assert list(t["TARGETID"][:2]) == [1000 * 0, 1] and str(t["SOURCE_FILE"][0]).endswith("batch-0.fits")
    direct = registry.create("fitter", "lm").fit(make_emulator(), SpectrumBatch.read(inputs[1]))
    rows = t[SIZES[0]:SIZES[0] + SIZES[1]]
    for name in ("TEFF", "MG_FE", "CHI2", "TEFF_ERR"):
        assert np.allclose(rows[name], direct[name], rtol=1e-9)
    assert np.allclose(np.asarray(rows["COVAR"]), np.asarray(direct["COVAR"]), rtol=1e-6)
    assert t.meta["LABELS"][0] == "TEFF" and str(t["TEFF"].unit) == "K"
    # rerun: nothing to do, same catalogue
    s2 = run_fit(inputs, out, make_emulator, backend="serial", keep_meta=["TARGETID"], progress=False)
    assert s2.n_skipped == len(inputs) and s2.n_rows_new == 0 and s2.n_rows == sum(SIZES)
    assert list(read_result_table(out)["ID"]) == all_ids()


def test_killed_run_resumes_without_duplicates_or_losses(inputs, tmp_path):
    out = tmp_path / "labels.fits"
    script = tmp_path / "run.py"
    script.write_text(textwrap.dedent(f"""
        import time
        import numpy as np
        from ddpayne.io.batch import SpectrumBatch
        from ddpayne.fit.testing import LineEmulator
        from ddpayne.pipeline.executors import run_fit

        def slow_loader(path):
            if path.endswith("batch-2.fits"):
                time.sleep(600)          # the run is killed while this file is in flight
            return SpectrumBatch.read(path)

        run_fit({[str(p) for p in inputs]!r}, {str(out)!r},
                lambda: LineEmulator(np.arange(4000.0, 4300.0, 0.8), n_lines=60, seed=2),
                loader=slow_loader, progress=False)
    """))
    proc = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    parts_dir = out.with_name(out.name + ".parts")
    deadline = time.time() + 300
    while time.time() < deadline:
        if parts_dir.exists() and len(list(parts_dir.glob("[0-9]*.fits"))) >= 2:
            break
        if proc.poll() is not None:
            pytest.fail(f"run exited early: {proc.stderr.read().decode()[-2000:]}")
        time.sleep(0.2)
    else:
        proc.kill()
        pytest.fail("first two parts never appeared")
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert not out.exists()
    assert sorted(p.name[:6] for p in parts_dir.glob("[0-9]*.fits")) == ["000000", "000001"]
    # a kill may leave a half-written temporary (never a half-written part); the next run removes it
    (parts_dir / ".000002-batch-2-x.fits.abc.tmp.fits").write_bytes(b"half")
    s = run_fit(inputs, out, make_emulator, progress=False)
    assert not list(parts_dir.glob(".*tmp*"))
    assert s.n_skipped == 2 and s.n_fitted_files == 2 and s.n_rows_new == SIZES[2] + SIZES[3]
    t = read_result_table(out)
    assert list(t["ID"]) == all_ids()              # no duplicated, no lost rows, input order


def test_bad_file_is_reported_and_the_run_continues(inputs, tmp_path):
    bad = tmp_path / "broken.fits"
    bad.write_bytes(b"this is not a FITS file")
    files = [inputs[0], bad, inputs[1]]
    out = tmp_path / "labels.fits"
    s = run_fit(files, out, make_emulator, progress=False)
    assert list(s.failed) == [str(bad)] and "broken.fits" in s.failed[str(bad)]
    t = read_result_table(out)
    assert len(t) == SIZES[0] + SIZES[1]
    # the bad file gets no part: fixing it and rerunning fits only it
    SpectrumBatch.read(inputs[2]).write(bad, overwrite=True)
    s2 = run_fit(files, out, make_emulator, progress=False)
    assert s2.n_fitted_files == 1 and not s2.failed and s2.n_rows == SIZES[0] + SIZES[2] + SIZES[1]


def test_merge_recomputes_qflag_over_the_whole_catalogue(inputs, tmp_path):
    out = tmp_path / "labels.fits"
    run_fit(inputs, out, make_emulator, progress=False, fitter_options={"qflag_n_per_bin": 500})
    parts = sorted(out.with_name(out.name + ".parts").glob("*.fits"))
    # each part alone has < 20 stars: no per-file qflag; the merged catalogue (21 stars, one bin) has one
    assert all(np.all(np.isnan(read_result_table(p)["QFLAG_CHI2"])) for p in parts)
    t = read_result_table(out)
    chi2 = np.asarray(t["CHI2"])
    med = np.median(chi2)
    assert np.allclose(t["QFLAG_CHI2"], (chi2 - med) / np.mean(np.abs(chi2 - med)))
    n = merge_parts(parts[::-1], tmp_path / "reversed.fits")
    assert n == sum(SIZES)
    assert list(read_result_table(tmp_path / "reversed.fits")["ID"][:SIZES[3]]) == all_ids()[-SIZES[3]:]


def test_device_request_without_gpu_falls_back_to_cpu(inputs, tmp_path):
    import torch

    if torch.cuda.is_available():
        pytest.skip("a GPU is present: the CPU fallback path is not taken")
    with pytest.warns(RuntimeWarning, match="CUDA is not available"):
        s = run_fit(inputs[:1], tmp_path / "x.fits", make_emulator, device="cuda", progress=False)
    assert s.n_rows == SIZES[0]


def test_unknown_backend(inputs, tmp_path):
    with pytest.raises(ValueError, match="backend"):
        run_fit(inputs, tmp_path / "x.fits", functools.partial(make_emulator), backend="spark")
