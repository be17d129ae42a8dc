"""``ddpayne synth`` / ``ddpayne build``: every command parses, delegates to the function it names, plugins add
commands through the ``ddpayne_cli_commands`` hook, and the retired entry points still work (issue 22)."""
from __future__ import annotations

import subprocess
import sys
import types

import pytest

from ddpayne import registry
from ddpayne.hookspecs import hookimpl
from ddpayne.pipeline.cli import build_parser, main

CORE_COMMANDS = [["synth"], ["synth", "run"], ["synth", "status"], ["synth", "extend"], ["synth", "compact"],
                 ["synth", "hydrogen"], ["build"], ["build", "gradients"], ["build", "library"],
                 ["build", "mock-survey"]]
MOOG_COMMANDS = [["build", "extinction-table"], ["synth", "sed-convergence"], ["synth", "sed-gravity"]]


def _has_moog_commands() -> bool:
    return any(i.plugin_name == "moog"
               for i in registry.get_plugin_manager().hook.ddpayne_cli_commands.get_hookimpls())


@pytest.mark.parametrize("words", CORE_COMMANDS + MOOG_COMMANDS, ids=" ".join)
def test_help_parses(words, capsys):
    if words in MOOG_COMMANDS and not _has_moog_commands():
        pytest.skip("the moog plugin is not installed")
    with pytest.raises(SystemExit) as exc:
        main([*words, "--help"])
    assert exc.value.code == 0
    assert f"usage: ddpayne {' '.join(words)}" in capsys.readouterr().out


def test_options_parse():
    p = build_parser()
    a = p.parse_args(["build", "library", "--hydrogen", "h.fits", "--instrument", "lamost"])
    assert (a.hydrogen, a.instrument, a.workdir, a.out) == ("h.fits", "lamost", "work-synth", None)
    a = p.parse_args(["build", "gradients", "--hydrogen", "h.fits"])
    assert a.hydrogen == "h.fits"
    a = p.parse_args(["synth", "hydrogen", "--nodes", "30", "--max-minutes", "90"])
    assert (a.nodes, a.max_minutes, a.synthesizer) == (30, 90.0, None)
    assert a.out.endswith("hydrogen_desi.fits")
    a = p.parse_args(["synth", "run", "--processes", "1", "--only", "grad"])
    assert (a.processes, a.only, a.n_mock, a.max_jobs) == (1, "grad", None, None)
    with pytest.raises(SystemExit):
        p.parse_args(["synth", "hydrogen"])          # --nodes is required
    with pytest.raises(SystemExit):
        p.parse_args(["build"])                       # a command is required


def test_build_library_delegates(monkeypatch, tmp_path, capsys):
    from ddpayne.mock import library
    from ddpayne.physics import runner

    seen = {}
    monkeypatch.setattr(runner, "plan_path", lambda workdir: tmp_path / "plan.json")
    (tmp_path / "plan.json").write_text("{}")
    monkeypatch.setattr(library, "build_library", lambda *a, **k: seen.update(args=a, **k) or [0, 0, 0])
    argv = ["build", "library", "--workdir", str(tmp_path), "--out", "lib.fits", "--hydrogen", "h.fits"]
    assert main(argv) == 0
    assert seen["args"] == (str(tmp_path), "lib.fits")
    assert seen["hydrogen"] == "h.fits" and seen["instrument"] == "desi"
    assert seen["command"].startswith("ddpayne build library --workdir")
    assert "3 stars written to lib.fits" in capsys.readouterr().out


def test_build_gradients_delegates(monkeypatch, tmp_path):
    from ddpayne.physics import build_gradients, runner

    seen = {}
    monkeypatch.setattr(runner, "plan_path", lambda workdir: tmp_path / "plan.json")
    (tmp_path / "plan.json").write_text("{}")
    product = types.SimpleNamespace(n_ref=5, provenance={"n_ref_planned": 101})
    monkeypatch.setattr(build_gradients, "build", lambda *a, **k: seen.update(args=a, **k) or product)
    assert main(["build", "gradients", "--workdir", str(tmp_path), "--hydrogen", "h.fits"]) == 0
    assert seen["args"] == (str(tmp_path), build_gradients.DEFAULT_PRODUCT)
    assert seen["hydrogen"] == "h.fits"


def test_synth_hydrogen_delegates(monkeypatch):
    from astropy.table import Table

    from ddpayne.mock.library import MockLibrary
    from ddpayne.physics import hydrogen_build

    seen = {}
    monkeypatch.setattr(MockLibrary, "read", classmethod(lambda cls, path=None: types.SimpleNamespace(
        labels=Table({"TEFF": [5000.0]}))))
    monkeypatch.setattr(hydrogen_build, "candidate_labels", lambda lib, ref: ("candidates", len(lib), len(ref)))
    monkeypatch.setattr(hydrogen_build, "build_hydrogen", lambda *a, **k: seen.update(args=a, **k) or [1, 2])
    assert main(["synth", "hydrogen", "--out", "h.fits", "--nodes", "12", "--max-minutes", "2"]) == 0
    out, candidates, n = seen["args"]
    assert (out, n, seen["max_seconds"]) == ("h.fits", 12, 120.0)
    assert candidates[:2] == ("candidates", 1) and candidates[2] > 50     # library + the reference points
    assert "synthesizer" not in seen and "processes" not in seen           # build_hydrogen's defaults
    seen.clear()
    assert main(["synth", "hydrogen", "--nodes", "3", "--processes", "2"]) == 0
    assert seen["processes"] == 2 and seen["max_seconds"] is None and str(seen["args"][0]).endswith(
        "hydrogen_desi.fits")


def test_missing_plan_is_one_line(tmp_path, caplog):
    for words in (["synth", "status"], ["build", "library"], ["build", "gradients"]):
        assert main([*words, "--workdir", str(tmp_path / "none")]) == 2
        assert "start one with 'ddpayne synth run" in caplog.text


class _Plugin:
    """A plugin adding one command; and one whose hook fails."""

    def __init__(self, fail=False):
        self.fail = fail

    @hookimpl
    def ddpayne_cli_commands(self, groups):
        if self.fail:
            raise RuntimeError("broken plugin")
        p = groups["build"].add_parser("probe-table", help="a test plugin's product")
        p.add_argument("--size", type=int, default=3)
        p.set_defaults(func=lambda args: print(f"probe {args.size}") or 0)


def test_plugin_commands(capsys):
    registry.register(_Plugin(), name="probe-ok")
    registry.register(_Plugin(fail=True), name="probe-broken")
    try:
        with pytest.warns(registry.PluginLoadWarning, match="probe-broken.*broken plugin"):
            assert main(["build", "probe-table", "--size", "7"]) == 0
        assert "probe 7" in capsys.readouterr().out
    finally:
        registry.unregister("probe-ok")
        registry.unregister("probe-broken")


def test_deprecated_aliases_in_process(monkeypatch, capsys):
    from ddpayne.mock import survey

    seen = {}
    monkeypatch.setattr(survey, "make_mock_survey", lambda *a, **k: seen.update(args=a, **k) or {"truth": "t"})
    assert survey.main(["out", "--n-stars", "4", "--snr", "20"]) == 0
    assert seen["args"][:3] == ("out", 4, 20.0)
    err = capsys.readouterr().err
    assert "'python -m ddpayne.mock.survey' is deprecated: use 'ddpayne build mock-survey'" in err
    sed = pytest.importorskip("ddpayne_moog.sed")
    assert sed.main(["nothing"]) == 2
    assert "'build-table' -> 'ddpayne build extinction-table'" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exc:
        sed.main(["build-table", "--help"])
    assert exc.value.code == 0
    out = capsys.readouterr()
    assert "usage: ddpayne build extinction-table" in out.out and "deprecated" in out.err


@pytest.mark.parametrize("module, argv", [("ddpayne.mock.survey", ["--help"]),
                                          ("ddpayne.physics.runner", ["status", "--help"]),
                                          ("ddpayne.physics.build_gradients", ["--help"]),
                                          ("ddpayne.mock.library", ["build", "--help"])])
def test_old_entry_points_still_work(module, argv):
    r = subprocess.run([sys.executable, "-m", module, *argv], capture_output=True, text=True, timeout=120, check=False)
    assert r.returncode == 0, r.stderr
    assert "usage:" in r.stdout
