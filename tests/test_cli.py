"""The command line: plugins listing, prepare, demo."""
from __future__ import annotations

import subprocess
import sys

from ddpayne.io.batch import SpectrumBatch
from ddpayne.pipeline.cli import main


def test_plugins_lists_builtins(capsys):
    assert main(["plugins"]) == 0
    out = capsys.readouterr().out
    for name in ("desi", "lamost"):
        assert name in out
    assert "readers:" in out and "0.1.0" in out


def test_console_script_runs():
    r = subprocess.run([sys.executable, "-m", "ddpayne.pipeline.cli", "--version"],
                       capture_output=True, text=True)
    assert r.returncode == 0 and "ddpayne" in r.stdout


def test_prepare_writes_batch(tmp_path, lamost_files, capsys):
    out = tmp_path / "prep.fits"
    assert main(["prepare", *map(str, lamost_files), "-o", str(out)]) == 0
    b = SpectrumBatch.read(out)
    assert len(b) == len(lamost_files) - 1  # the QSO is rejected
    assert "1 rejected" in capsys.readouterr().out
