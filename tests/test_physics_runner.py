"""The synthesis runner's plan, result files, resumption, and the product assembly commands."""
import json

import numpy as np
import pytest

from ddpayne.labels import LABEL_NAMES
from ddpayne.physics import runner
from ddpayne.physics.build_gradients import build
from ddpayne.physics.gradients import GradientSpectra
from ddpayne.physics.references import GRADIENT_STEPS, reference_points
from ddpayne.prepare.grid import desi_grid


def test_reference_points():
    t = reference_points()
    assert len(t) == 101
    assert set(t["REF_KIND"]) == {"dwarf", "subgiant", "giant", "hb"}
    assert t["FE_H"].min() == -3.0 and t["FE_H"].max() == 0.5
    # the paper's Fig. 9 star comes first, a giant second
    assert (t["TEFF"][0], t["LOGG"][0], t["FE_H"][0]) == (5900.0, 4.0, -0.5)
    assert t["REF_KIND"][1] == "giant"
    assert np.all((t["VMIC"] >= 0.5) & (t["VMIC"] <= 2.5))


def test_plan_interleaves_and_is_deterministic():
    p1 = runner.make_plan(n_mock=100)
    p2 = runner.make_plan(n_mock=100)
    assert [j["id"] for j in p1["jobs"]] == [j["id"] for j in p2["jobs"]]
    assert [j["labels"] for j in p1["jobs"]] == [j["labels"] for j in p2["jobs"]]
    ids = [j["id"] for j in p1["jobs"]]
    assert len(ids) == len(set(ids)) == 101 * 16 + 100
    assert ids[0] == "grad-r000-base" and ids[16].startswith("mock-") and ids[48] == "grad-r001-base"
    # each perturbed job differs from its base by exactly the step of its label
    base = p1["jobs"][0]["labels"]
    for j in p1["jobs"][1:16]:
        diff = {k: j["labels"][k] - base[k] for k in LABEL_NAMES if j["labels"][k] != base[k]}
        assert list(diff) == [j["label"]]
        assert diff[j["label"]] == pytest.approx(GRADIENT_STEPS[j["label"]])


def _fake_results(workdir, plan, n_ref_complete, n_mock):
    """Result files with analytic spectra (a line whose depth is linear in the labels)."""
    grid = desi_grid()
    prof = np.exp(-0.5 * ((grid - 5000.0) / 1.0) ** 2)
    coef = {n: 0.001 * (i + 1) for i, n in enumerate(LABEL_NAMES)}
    (workdir / "results").mkdir(parents=True, exist_ok=True)
    done_refs = set(range(n_ref_complete))
    mocks = 0
    for j in plan["jobs"]:
        if j["kind"] == "grad" and j["ref"] not in done_refs:
            if j["ref"] == n_ref_complete and j["label"] is None:
                pass  # an incomplete point: only the base is done
            else:
                continue
        if j["kind"] == "mock":
            if mocks >= n_mock:
                continue
            mocks += 1
        depth = 0.3 + sum(coef[n] * j["labels"][n] for n in LABEL_NAMES if n != "TEFF") \
            + coef["TEFF"] * (j["labels"]["TEFF"] - 5000) / 100.0
        flux = (1 - depth * prof).astype(np.float32)
        np.savez_compressed(runner.result_path(workdir, j["id"]), flux=flux, wavelength=grid,
                            hires_depth=np.zeros(3, np.uint16), air_start=3550.0, air_step=0.05,
                            labels=json.dumps(j["labels"]), seconds=1.0, finished="now",
                            physics=runner.current_physics(plan) or 1)
    return prof, coef


def test_build_gradients_from_results(tmp_path):
    plan = runner.make_plan(n_mock=10)
    (tmp_path / "plan.json").write_text(json.dumps(plan))
    prof, coef = _fake_results(tmp_path, plan, n_ref_complete=2, n_mock=0)
    out = tmp_path / "g.fits"
    g = build(tmp_path, out, command="test")
    assert g.n_ref == 2 and g.provenance["n_ref_planned"] == 101 and g.provenance["n_ref_included"] == 2
    assert g.label_names == LABEL_NAMES
    h = GradientSpectra.read(out)
    i = h.label_index("MG_FE")
    expect = -coef["MG_FE"] * prof
    good = ~h.mask
    np.testing.assert_allclose(h.gradients[0, i, good], expect[good], atol=2e-5)
    it = h.label_index("TEFF")
    np.testing.assert_allclose(h.gradients[1, it, good], (-coef["TEFF"] / 100.0 * prof)[good], atol=2e-7)
    assert h.mask[np.argmin(np.abs(h.wavelength - 6564.6))]  # H-alpha masked
    assert h.provenance["command"] == "test"


def test_build_gradients_nothing_done(tmp_path):
    plan = runner.make_plan(n_mock=3)
    (tmp_path / "plan.json").write_text(json.dumps(plan))
    with pytest.raises(RuntimeError, match="no reference point"):
        build(tmp_path, None)


def test_library_build_and_status(tmp_path):
    from ddpayne.mock.library import MockLibrary, build_library
    plan = runner.make_plan(n_mock=40)
    (tmp_path / "plan.json").write_text(json.dumps(plan))
    _fake_results(tmp_path, plan, n_ref_complete=1, n_mock=7)
    lib = build_library(tmp_path, tmp_path / "lib.fits", command="test")
    assert len(lib) == 7
    back = MockLibrary.read(tmp_path / "lib.fits")
    assert len(back) == 7 and back.provenance["n_planned"] == 40
    np.testing.assert_allclose(back.flux, lib.flux, atol=2.6e-5)
    assert set(back.labels["POP"]) <= {"thin", "thick", "halo", "ges"}
    st = runner.status(tmp_path)
    assert st["done"]["mock"] == 7 and st["reference_points_complete"] == 1
    # fake results take no CPU time: nothing to estimate from, and no invented number
    assert st["recent_median_cpu_seconds"] == {"grad": None, "mock": None} and st["remaining_cpu_hours"] is None


def test_status_estimates_what_remains_from_recent_costs(tmp_path, monkeypatch):
    monkeypatch.setattr(runner, "STATUS_RECENT", 5)
    plan = runner.make_plan(n_mock=40)
    (tmp_path / "plan.json").write_text(json.dumps(plan))
    (tmp_path / "results").mkdir()
    grads = [j for j in plan["jobs"] if j["kind"] == "grad"][:16]   # reference point 0, complete
    mocks = [j for j in plan["jobs"] if j["kind"] == "mock"][:10]
    for i, j in enumerate(grads + mocks):
        # the 5 oldest mock results ran slowly (a loaded machine): the median of all 10 would be 60 s, the
        # estimate uses the 5 most recent (20 s)
        cpu = 30.0 if j["kind"] == "grad" else (100.0 if i < 16 + 5 else 20.0)
        np.savez_compressed(runner.result_path(tmp_path, j["id"]), flux=np.ones(3, np.float32),
                            seconds=cpu, cpu_seconds=cpu, finished=f"2026-12-02T00:{i:02d}:00",
                            physics=runner.current_physics(plan) or 1)
    st = runner.status(tmp_path, processes=4)
    assert st["done"] == {"grad": 16, "mock": 10} and st["ref_ids_complete"] == [0]
    assert st["recent_median_cpu_seconds"] == {"grad": 30.0, "mock": 20.0}
    expect = ((101 * 16 - 16) * 30.0 + (40 - 10) * 20.0) / 3600
    assert st["remaining_cpu_hours"] == pytest.approx(expect, abs=0.01)
    assert st["remaining_hours_on_4_free_cores"] == pytest.approx(expect / 4, abs=0.01)


def test_run_skips_finished_jobs(tmp_path, monkeypatch):
    """Resumption: a rerun with every selected job already done runs nothing."""
    plan = runner.make_plan(n_mock=5)
    (tmp_path / "plan.json").write_text(json.dumps(plan))
    _fake_results(tmp_path, plan, n_ref_complete=1, n_mock=0)
    called = []
    monkeypatch.setattr(runner, "_run_job", lambda a: called.append(a))
    runner.run(tmp_path, processes=1, max_jobs=0)
    assert not called
    log = (tmp_path / "progress.log").read_text()
    assert f"17/{101 * 16 + 5} done" in log  # 16 of point 0 + the base of point 1


def test_second_run_in_same_workdir_is_refused(tmp_path, monkeypatch):
    """Two runners on one folder would synthesise every job twice: the second fails at once, naming the
    holder, and the folder is free again as soon as the first ends."""
    from ddpayne.io.atomic import WorkdirLocked, workdir_lock

    plan = runner.make_plan(n_mock=5)
    (tmp_path / "plan.json").write_text(json.dumps(plan))
    monkeypatch.setattr(runner, "_run_job", lambda a: pytest.fail("must not run"))
    with workdir_lock(tmp_path, "runner.lock"):
        with pytest.raises(WorkdirLocked, match=r"in use by pid \d+"):
            runner.run(tmp_path, processes=1, max_jobs=0)
    assert not (tmp_path / "progress.log").exists()
    runner.run(tmp_path, processes=1, max_jobs=0)  # released: runs (nothing to do)
    assert "start:" in (tmp_path / "progress.log").read_text()


def test_lock_is_released_when_its_holder_ends_even_if_a_forked_worker_lives_on(tmp_path, monkeypatch):
    """flock is shared with forked children: pool workers close their copy (``_init_worker``), so a run
    killed while a worker hangs on does not leave the folder locked."""
    import os
    import time

    from ddpayne import registry
    from ddpayne.io.atomic import WorkdirLocked, workdir_lock

    monkeypatch.setattr(registry, "create", lambda *a, **k: object())
    ready_r, ready_w = os.pipe()
    with workdir_lock(tmp_path, "runner.lock") as fd:
        pid = os.fork()
        if pid == 0:   # a pool worker: initialised as the runner initialises them, then outlives the parent
            try:
                runner._init_worker("moog", {"grad": {}}, str(tmp_path), fd)
                os.write(ready_w, b"1")
                time.sleep(30)   # killed below
            finally:
                os._exit(0)
        assert os.read(ready_r, 1) == b"1"   # the worker is initialised (and still running)
    os.close(ready_r)
    os.close(ready_w)
    try:
        with workdir_lock(tmp_path, "runner.lock"):   # the child still runs, the lock is free
            pass
    finally:
        os.kill(pid, 9)
        os.waitpid(pid, 0)
    # without the close, the child would hold it: the rule the worker initialiser follows
    with workdir_lock(tmp_path, "runner.lock"):
        pid = os.fork()
        if pid == 0:
            time.sleep(30)   # killed below
            os._exit(0)
    try:
        with pytest.raises(WorkdirLocked):
            with workdir_lock(tmp_path, "runner.lock"):
                pass
    finally:
        os.kill(pid, 9)
        os.waitpid(pid, 0)


def test_redegrade_from_hires():
    """A result's stored high-resolution spectrum re-degrades to LAMOST and back to DESI consistently."""
    from ddpayne.physics.airvac import vacuum_to_air
    from ddpayne.physics.degrade import degrade_to_survey
    from ddpayne.prepare.grid import lamost_grid
    step = 0.05
    a0 = float(vacuum_to_air(np.array([3590.0]))[0])
    air = a0 + step * np.arange(int((9835 - 3590) / step))
    from ddpayne.physics.airvac import air_to_vacuum
    vac = air_to_vacuum(air)
    flux = 1 - 0.5 * np.exp(-0.5 * ((vac - 6000.0) / 0.3) ** 2)
    depth = np.round((1 - flux) * 1e4).astype(np.uint16)
    grid = desi_grid()
    res = {"hires_depth": depth, "air_start": a0, "air_step": step, "wavelength": grid,
           "flux": degrade_to_survey(vac, 1 - depth * 1e-4, grid)}
    g, f = runner.degraded_flux(res, "lamost")
    np.testing.assert_array_equal(g, lamost_grid())
    assert np.all(np.isfinite(f))
    # LAMOST R = 1800: the 0.3 Å line is broadened to sigma = hypot(0.3, 6000/1800/2.3548)
    sig = np.hypot(0.3, 6000.0 / 1800.0 / 2.3548)
    assert 1 - f.min() == pytest.approx(0.5 * 0.3 / sig, abs=0.01)
    assert abs(g[np.argmin(f)] - 6000.0) < 1.5
    g2, f2 = runner.degraded_flux(res, "desi")
    w, fh = runner.hires_spectrum(res)
    np.testing.assert_allclose(degrade_to_survey(w, fh, grid), f2, atol=1e-9, equal_nan=True)
    with pytest.raises(ValueError, match="instrument"):
        runner.degraded_flux(res, "sdss")


def test_blanketing_bins():
    """Bin means of the true-continuum flux: exact for a step function, NaN for empty bins."""
    w = np.arange(4000.0, 4020.0, 0.02)
    f = np.where(w < 4010.0, 0.8, 1.0)
    start, width, b = runner.blanketing(w, f, width=5.0)
    assert start == 4000.0 and width == 5.0 and b.size == 4
    np.testing.assert_allclose(b, [0.8, 0.8, 1.0, 1.0])
    _, _, b2 = runner.blanketing(np.array([4000.0, 4012.0]), np.array([0.5, 0.7]), width=5.0)
    assert b2[0] == 0.5 and np.isnan(b2[1]) and b2[2] == 0.7


def test_mock_jobs_use_mock_settings():
    plan = runner.make_plan(n_mock=3)
    g = next(j for j in plan["jobs"] if j["kind"] == "grad")
    m = next(j for j in plan["jobs"] if j["kind"] == "mock")
    assert runner.job_settings(plan, g) == runner.DEFAULT_SETTINGS
    assert runner.job_settings(plan, m) == runner.DEFAULT_MOCK_SETTINGS
    old = dict(plan)
    old.pop("mock_settings")  # a version-1 plan: every job used the gradient settings
    assert runner.job_settings(old, m) == runner.DEFAULT_SETTINGS


def test_compact_moves_hires_out_and_keeps_everything(tmp_path):
    """Old-format results (hires depths inside) become compact results + hires files, losslessly."""
    plan = runner.make_plan(n_mock=2)
    (tmp_path / "plan.json").write_text(json.dumps(plan))
    job = plan["jobs"][0]
    from ddpayne.physics.airvac import vacuum_to_air
    step = 0.05
    a0 = float(vacuum_to_air(np.array([3590.0]))[0])
    depth = (np.arange(int(6245 / step)) % 7 * 100).astype(np.uint16)
    flux = np.linspace(0.9, 1.0, desi_grid().size).astype(np.float32)
    (tmp_path / "results").mkdir()
    np.savez_compressed(runner.result_path(tmp_path, job["id"]), flux=flux, wavelength=desi_grid(),
                        hires_depth=depth, air_start=a0, air_step=step, labels=json.dumps(job["labels"]),
                        seconds=3.0, cpu_seconds=2.0, finished="then")
    assert runner.compact(tmp_path) == 1
    assert runner.compact(tmp_path) == 0  # idempotent
    z = np.load(runner.result_path(tmp_path, job["id"]))
    assert "hires_depth" not in z.files and json.loads(str(z["settings"])) == plan["settings"]
    r = runner.load_result(tmp_path, job["id"], expect_labels=job["labels"])
    np.testing.assert_array_equal(r["flux"], flux)
    np.testing.assert_array_equal(r["hires_depth"], depth)  # found in hires/
    # blanketing: mean of 1 - depth over 5 Å bins (depth pattern averages to 0.03)
    inner = r["blanket"][1:-1]
    assert np.nanmax(np.abs(inner - (1 - 0.03))) < 2e-3
    # without the local hires file the result still loads, and re-degrading says why it cannot
    runner.hires_path(tmp_path, job["id"]).unlink()
    r2 = runner.load_result(tmp_path, job["id"])
    np.testing.assert_array_equal(r2["flux"], flux)
    with pytest.raises(FileNotFoundError, match="high-resolution"):
        runner.degraded_flux(r2, "lamost")


# --------------------------------------------------------------------------- physics-version repairs
class _ToySynth:
    """A synthesizer whose physics version 2 changed the spectrum only redward of 7000 Å: an extra line
    at 8000 Å (version 1 lacked it). Its result at a wavelength does not depend on the range."""

    name = "toy_repair"
    physics_version = 2
    calls: list = []

    def __init__(self, settings=None, workdir=None, version=2):
        self.version = version

    @classmethod
    def repair_from(cls, version, labels=None, settings=None):
        if version != 1:
            return None
        return float("inf") if (settings or {}).get("untouched") else 7000.0

    def synthesize(self, labels, wave_min, wave_max):
        _ToySynth.calls.append((wave_min, wave_max))
        w = np.arange(wave_min, wave_max, 0.05)
        f = 1 - 0.4 * np.exp(-0.5 * ((w - 5000.0) / 0.3) ** 2) * (1 + 0.1 * labels["FE_H"])
        if self.version >= 2:
            f = f - 0.5 * np.exp(-0.5 * ((w - 8000.0) / 0.3) ** 2)
        return w, f

    def synthesize_part(self, labels, wave_min, wave_max, part_min):
        return self.synthesize(labels, part_min, wave_max)


def _toy_plugin():
    import types

    from ddpayne.hookspecs import hookimpl
    mod = types.SimpleNamespace(__name__="toy_repair_plugin")
    mod.ddpayne_synthesizers = hookimpl(lambda: [_ToySynth])
    return mod


def test_results_of_older_physics_are_repaired_from_the_synthesizers_wavelength(tmp_path):
    """A result made with physics 1 is brought to physics 2 by re-synthesising only from the wavelength the
    synthesizer names: pixels from there on equal a full new synthesis, pixels below are kept, the result
    records what was done, the stale high-resolution file is removed, and the product leaves the point
    out until it is repaired."""
    from ddpayne import registry
    from ddpayne.physics.degrade import degrade_to_survey
    registry.register(_toy_plugin(), name="toy_repair_plugin")
    try:
        plan = runner.make_plan(n_mock=2, synthesizer="toy_repair")
        (tmp_path / "plan.json").write_text(json.dumps(plan))
        (tmp_path / "results").mkdir()
        grid = desi_grid()
        block = [j for j in plan["jobs"] if j["kind"] == "grad" and j["ref"] == 0]
        old_syn = _ToySynth(version=1)
        for j in block:
            w, f = old_syn.synthesize(j["labels"], *runner.WAVE_RANGE)
            runner._write_result(tmp_path, j["id"], flux=degrade_to_survey(w, f, grid), wavelength=grid,
                                 labels=j["labels"], settings=plan["settings"], seconds=1.0, cpu_seconds=1.0,
                                 finished="then", hires={"hires_depth": np.zeros(3, np.uint16),
                                                         "air_start": 3590.0, "air_step": 0.05},
                                 blanket=runner.blanketing(w, f), physics=1)
        mock = [j for j in plan["jobs"] if j["kind"] == "mock"][0]   # a result the change does not touch
        w, f = old_syn.synthesize(mock["labels"], *runner.WAVE_RANGE)
        mock_flux = degrade_to_survey(w, f, grid)
        runner._write_result(tmp_path, mock["id"], flux=mock_flux, wavelength=grid, labels=mock["labels"],
                             settings={"untouched": True}, seconds=1.0, cpu_seconds=1.0, finished="then",
                             hires=None, blanket=None, physics=1)
        assert runner.current_physics(plan) == 2
        todo = runner.outdated_results(tmp_path, plan)
        assert [(t[0]["id"], t[2]) for t in todo] == [(j["id"], 7000.0) for j in block] + [
            (mock["id"], float("inf"))]
        st = runner.status(tmp_path)
        assert st["outdated_physics_to_resynthesise"] == {"grad": 16}
        assert st["outdated_physics_unaffected"] == 1
        with pytest.raises(RuntimeError, match="no reference point"):   # the outdated point is left out
            build(tmp_path, None)
        import signal
        handler = signal.getsignal(signal.SIGINT)
        try:
            runner._init_worker("toy_repair", {"grad": plan["settings"]}, str(tmp_path), None)
        finally:
            signal.signal(signal.SIGINT, handler)
        _ToySynth.calls.clear()
        for j, st_, rf in todo:
            assert runner._run_job((j, str(tmp_path), st_, rf))[2] is None
        assert len(_ToySynth.calls) == 16                                              # not the mock
        assert all(a == 7000.0 - runner.REPAIR_MARGIN for a, _ in _ToySynth.calls)   # only the red part
        m = runner.load_result(tmp_path, mock["id"])
        assert m["physics"] == 2 and m["repaired"] == "physics 1 -> 2: unaffected"
        np.testing.assert_array_equal(m["flux"], mock_flux.astype(np.float32))
        j = block[3]
        r = runner.load_result(tmp_path, j["id"])
        assert r["physics"] == 2 and "physics 1 -> 2 from 7000 A" in r["repaired"]
        assert not runner.hires_path(tmp_path, j["id"]).exists()
        w, f = _ToySynth().synthesize(j["labels"], *runner.WAVE_RANGE)
        new_full = degrade_to_survey(w, f, grid)
        red = grid >= 7000.0
        np.testing.assert_allclose(r["flux"][red], new_full[red], atol=1e-6)
        assert r["flux"][np.argmin(np.abs(grid - 8000.0))] < 0.9          # the new line is there
        w1, f1 = old_syn.synthesize(j["labels"], *runner.WAVE_RANGE)
        np.testing.assert_allclose(r["flux"][~red], degrade_to_survey(w1, f1, grid)[~red], atol=1e-6)
        bs, bw, bv = runner.blanketing(w, f)
        k = np.rint((r["blanket_start"] + r["blanket_step"] * np.arange(r["blanket"].size) - bs) / bw).astype(int)
        use = (r["blanket_start"] + r["blanket_step"] * np.arange(r["blanket"].size) >= 7000.0) & (k < bv.size)
        np.testing.assert_allclose(r["blanket"][use], bv[k[use]], atol=1e-6)
        assert runner.outdated_results(tmp_path, plan) == []
        assert build(tmp_path, None).n_ref == 1
    finally:
        registry.unregister("toy_repair_plugin")



def test_damaged_result_is_redone_not_trusted(tmp_path, monkeypatch):
    """A truncated result file (a killed write on another machine, a bad checkout) counts as not done: the
    next run recomputes it instead of skipping it or stopping."""
    plan = runner.make_plan(n_mock=2)
    (tmp_path / "plan.json").write_text(json.dumps(plan))
    _fake_results(tmp_path, plan, n_ref_complete=1, n_mock=0)
    bad = runner.result_path(tmp_path, "grad-r000-MG_FE")
    bad.write_bytes(bad.read_bytes()[:100])
    assert runner.result_info(tmp_path, "grad-r000-MG_FE") is None
    seen = []
    monkeypatch.setattr(runner, "_run_job", lambda a: seen.append(a))
    runner.run(tmp_path, processes=1, max_jobs=0)
    log = (tmp_path / "progress.log").read_text()
    assert f"start: 16/{101 * 16 + 2} done" in log          # 15 good of point 0 + the base of point 1
    st = runner.status(tmp_path)                            # status agrees: the damaged file is not done
    assert st["done"]["grad"] == 16 and st["reference_points_complete"] == 0
    info = runner.result_info(tmp_path, "grad-r000-TEFF")
    assert info["finished"] == "now" and info["seconds"] == 1.0 and np.isnan(info["cpu_seconds"])
    assert info["physics"] == (runner.current_physics(plan) or 1) and info["settings"] is None


def test_run_on_a_fresh_folder_writes_the_plan(tmp_path, monkeypatch):
    """The first run in an empty folder makes and writes the plan, with the synthesizer's physics version."""
    from ddpayne import registry
    registry.register(_toy_plugin(), name="toy_repair_plugin")
    try:
        runner.run(tmp_path, processes=1, n_mock=3, max_jobs=0, synthesizer="toy_repair")
        plan = runner.load_plan(tmp_path)
        assert plan["synthesizer"] == "toy_repair" and plan["provenance"]["physics_version"] == 2
        assert len(plan["jobs"]) == 101 * 16 + 3
    finally:
        registry.unregister("toy_repair_plugin")


def test_hires_air_grid_survives_chunk_restarts():
    """At 0.03 Å MOOG's 100 Å chunks restart off the step grid (100/0.03 is not whole): the stored segments
    give back every air wavelength exactly, where one uniform grid would drift by 0.02 Å per chunk."""
    step = 0.03
    chunks = [np.round(4999.98 + 100.0 * k + step * np.arange(3334), 6) for k in range(5)]
    air = np.concatenate(chunks)
    seg = runner.air_grid_segments(air)
    assert seg["air_step"] == step and seg["air_seg_index"].tolist() == [0, 3334, 6668, 10002, 13336]
    np.testing.assert_allclose(runner.hires_air(seg, air.size), air, rtol=0, atol=1e-9)
    one = {"air_start": seg["air_start"], "air_step": step}            # the old, single-segment record
    assert np.abs(runner.hires_air(one, air.size) - air).max() > 0.07
    uniform = 3590.0 + 0.02 * np.arange(5000)
    assert "air_seg_index" not in runner.air_grid_segments(uniform)


def test_extend_plan_adds_new_stars_and_keeps_the_planned_ones(tmp_path):
    """Growing the mock library (issue 4 wants ~3600 training stars) must not change a planned star or
    its result: new stars get new numbers and a recorded seed, and queue after everything planned."""
    from ddpayne.io.atomic import WorkdirLocked, workdir_lock
    plan = runner.make_plan(n_mock=5)
    (tmp_path / "plan.json").write_text(json.dumps(plan))
    assert runner.extend_plan(tmp_path, 12) == 7
    new = runner.load_plan(tmp_path)
    assert new["jobs"][:len(plan["jobs"])] == plan["jobs"]
    mocks = [j for j in new["jobs"] if j["kind"] == "mock"]
    assert [j["index"] for j in mocks] == list(range(12))
    assert len({j["id"] for j in new["jobs"]}) == len(new["jobs"])
    assert new["n_mock"] == 12
    assert new["mock_extensions"][0]["seed"] == plan["mock_seed"] + 1
    assert new["mock_extensions"][0]["first_star_id"] == 5
    # the added stars are not a copy of the first ones, and the labels are the seeded draw
    assert mocks[5]["labels"] != mocks[0]["labels"]
    other = tmp_path / "other"
    other.mkdir()
    (other / "plan.json").write_text(json.dumps(plan))
    runner.extend_plan(other, 12)
    assert [j["labels"] for j in runner.load_plan(other)["jobs"]] == [j["labels"] for j in new["jobs"]]
    # a second extension uses the next seed; asking for fewer stars than planned adds nothing
    assert runner.extend_plan(tmp_path, 14) == 2
    assert runner.load_plan(tmp_path)["mock_extensions"][1]["seed"] == plan["mock_seed"] + 2
    assert runner.extend_plan(tmp_path, 3) == 0
    assert len(runner.load_plan(tmp_path)["jobs"]) == len(new["jobs"]) + 2
    # refused while a run holds the folder
    with workdir_lock(tmp_path, "runner.lock"):
        with pytest.raises(WorkdirLocked):
            runner.extend_plan(tmp_path, 20)
    assert len(runner.load_plan(tmp_path)["jobs"]) == len(new["jobs"]) + 2
