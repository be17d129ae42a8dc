"""The plugin system: discovery through entry points, selection by name, broken plugins."""
from __future__ import annotations

import importlib.metadata as md
import types
import warnings

import pytest

from ddpayne import registry
from ddpayne.exceptions import PluginNotFoundError
from ddpayne.hookspecs import hookimpl
from ddpayne.io.readers import SpectrumReader

BUILTIN_ENTRY_POINTS = {"desi", "lamost", "mlp", "kurucz", "fitters", "distances", "galpy", "moog"}


def test_builtins_are_entry_points():
    eps = {ep.name: ep.value for ep in md.entry_points(group="ddpayne")}
    assert BUILTIN_ENTRY_POINTS <= set(eps)
    # built-ins are top-level packages, not modules of the core
    assert all(not eps[name].startswith("ddpayne.") for name in BUILTIN_ENTRY_POINTS)


def test_readers_are_found_by_name():
    readers = registry.available("reader")
    assert {"desi", "lamost"} <= set(readers)
    assert issubclass(registry.get("reader", "desi"), SpectrumReader)
    assert registry.create("reader", "lamost").survey == "LAMOST"


def test_unknown_name_lists_what_exists():
    with pytest.raises(PluginNotFoundError, match="available: .*desi"):
        registry.get("reader", "nosuchsurvey")
    with pytest.raises(ValueError, match="unknown plugin kind"):
        registry.available("telescope")


def test_core_does_not_import_plugins():
    import pathlib
    import re

    core = pathlib.Path(registry.__file__).parent
    offenders = [str(p) for p in core.rglob("*.py")
                 if re.search(r"^\s*(from|import)\s+ddpayne_\w+", p.read_text(), re.M)]
    assert offenders == []


def test_plugins_report_versions():
    infos = {i.name: i for i in registry.plugins()}
    assert infos["desi"].version and infos["desi"].distribution == "ddpayne"
    assert infos["desi"].provides == {"reader": ["desi"]}


def test_broken_entry_point_warns_and_is_skipped(monkeypatch):
    good = md.entry_points(group="ddpayne")
    broken = md.EntryPoint(name="broken_thirdparty", value="ddpayne_no_such_module_xyz",
                           group="ddpayne")

    def fake_entry_points(group=None, **kw):
        assert group == "ddpayne"
        return list(good) + [broken]

    monkeypatch.setattr(registry.metadata, "entry_points", fake_entry_points)
    with pytest.warns(registry.PluginLoadWarning, match="broken_thirdparty"):
        registry.get_plugin_manager(reload=True)
    assert "desi" in registry.available("reader")
    monkeypatch.undo()
    registry.get_plugin_manager(reload=True)


def test_hook_that_raises_is_skipped_with_warning():
    bad = types.ModuleType("bad_plugin")

    @hookimpl
    def ddpayne_readers():
        raise RuntimeError("boom")

    bad.ddpayne_readers = ddpayne_readers
    registry.register(bad, name="bad_plugin")
    try:
        with pytest.warns(registry.PluginLoadWarning, match="bad_plugin.*boom"):
            found = registry.available("reader")
        assert "desi" in found
    finally:
        registry.unregister("bad_plugin")


def test_register_by_hand():
    class ToyReader(SpectrumReader):
        name = "toy"

        @classmethod
        def identify(cls, path):
            return False

        def read(self, path, catalogue=None, rows=None):
            raise AssertionError

    mod = types.ModuleType("toy_plugin")

    @hookimpl
    def ddpayne_readers():
        return [ToyReader]

    mod.ddpayne_readers = ddpayne_readers
    registry.register(mod, name="toy_plugin")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            assert registry.get("reader", "toy") is ToyReader
    finally:
        registry.unregister("toy_plugin")
    assert "toy" not in registry.available("reader")
