"""The example third-party plugin (examples/ddpayne-boss) is found through its entry point.

``make test`` (and CI) install it with ``pip install -e examples/ddpayne-boss``, exactly as a user
installs a third-party plugin; this test fails if discovery through the entry point breaks.
"""
from __future__ import annotations

import importlib.metadata as md

import numpy as np

from ddpayne import registry
from ddpayne.io.spectra import identify_reader, read_spectra
from ddpayne.prepare.spectra import prepare_files


def test_entry_point_is_installed():
    eps = {ep.name: ep for ep in md.entry_points(group="ddpayne")}
    assert "boss" in eps, "install the example plugin: pip install -e examples/ddpayne-boss"
    assert eps["boss"].dist.name == "ddpayne-boss"


def test_boss_file_read_through_public_api():
    import ddpayne_boss

    registry.get_plugin_manager(reload=True)
    path = ddpayne_boss.example_file()
    assert identify_reader(path).name == "boss"
    s = read_spectra(path)
    assert s.meta["IS_STAR"][0] and s.meta["ID"][0] == "3586-55181-500"
    wave = s.arms["ALL"].spectral_axis.to_value("Angstrom")
    assert 3555 < wave[0] < 3565 and 10320 < wave[-1] < 10335
    batch, rejected = prepare_files([path])
    assert len(batch) == 1 and len(rejected) == 0
    good = batch.ivar[0] > 0
    assert abs(np.median(batch.flux[0][good]) - 1) < 0.03
    info = {i.name: i for i in registry.plugins()}["boss"]
    assert info.distribution == "ddpayne-boss" and info.version == "0.1.0"
