"""Resumable background synthesis of the gradient-spectra product and the mock library.

One job = one synthetic spectrum. The plan (``<workdir>/plan.json``) is written on the first run and reused
afterwards, so label draws and job order never change between runs. Each finished job is one small file
``<workdir>/results/<job_id>.npz`` (written atomically, ~30 KB, meant to be committed) holding

* ``flux``: the degraded, continuum-normalised spectrum on the DESI grid (float32),
* ``blanket``: the spectrum normalised to the *true* continuum, averaged in ``BLANKET_BIN`` Å vacuum bins
  from ``blanket_start`` (line blanketing for broad-band SEDs),
* ``labels`` and ``settings`` (JSON), ``seconds``, ``cpu_seconds``, ``finished`` (UTC),

and one large file ``<workdir>/hires/<job_id>.npz`` (~400 KB, kept locally, not committed) with MOOG's raw
line depths on its uniform air grid (``hires_depth``: uint16, 1e-4 units — MOOG writes 4 decimals, so this
is lossless — with ``air_start``, ``air_step`` and, for steps that do not divide MOOG's 100 Å chunks,
the segments of :func:`air_grid_segments`), from which other instruments (LAMOST) can be re-degraded.

Mock stars may use cheaper synthesis settings than the gradient product (``plan["mock_settings"]``): the
mock spectra are data whose accuracy need only be far below survey noise, while the gradient product must
keep every degraded gradient within 1 % (see docs/performance_synthesis.rst).

Each result records the synthesizer's ``physics_version`` (``physics``; files older than the field are
version 1). When the physics changes (e.g. MOOG's line list lost its H2 lines in version 2), ``run`` first
brings older results up to date, before new jobs: it asks the synthesizer from which wavelength such a
result differs (:meth:`~ddpayne.physics.synthesizer.Synthesizer.repair_from`), re-synthesises from there
with the same MOOG runs a full synthesis makes, and replaces those DESI pixels and blanketing bins (the
result notes it in ``repaired``); results the change does not touch are only re-labelled. The product
builders leave out results of older physics until then.

A killed run loses at most the jobs in flight; rerunning skips every job whose file exists. Progress and
an ETA (from the measured rate of this run) are appended to ``<workdir>/progress.log``.

Job order interleaves the gradient product and the mock library so that both grow from the start:
reference point 0 (16 jobs: base + 15 forward steps), then repeatedly 32 mock stars and the next reference
point.

Usage::

    nohup nice -n 15 ddpayne synth run --workdir work-synth --processes 2 &
    ddpayne synth status --workdir work-synth
"""
from __future__ import annotations

import datetime as _dt
import json
import logging
import multiprocessing as mp
import os
import signal
import time
from pathlib import Path

import numpy as np

from .. import __version__
from ..io.atomic import atomic_path, workdir_lock
from ..labels import LABEL_NAMES
from ..prepare.grid import desi_grid
from .degrade import degrade_to_survey
from .references import GRADIENT_STEPS, reference_points

log = logging.getLogger(__name__)

#: Settings chosen with benchmarks/bench_synthesis.py (see docs/gradients.rst).
DEFAULT_SETTINGS = {"step": 0.02, "delta": 1.0, "chunk": 100.0, "strong_reach": 40.0, "min_strength": None}
#: Cheaper settings for mock-library stars (2x faster; degraded-flux change <= 0.25 % rms, see
#: docs/performance_synthesis.rst).
DEFAULT_MOCK_SETTINGS = {"step": 0.03, "delta": 1.0, "chunk": 100.0, "strong_reach": 40.0, "min_strength": -13.0}
#: Width (Å) of the true-continuum blanketing bins stored with each result.
BLANKET_BIN = 5.0
DEFAULT_N_MOCK = 2000
DEFAULT_MOCK_SEED = 20240601
WAVE_RANGE = (3590.0, 9835.0)  # synthesised vacuum range: DESI grid + the LSF kernel reach (5.5 sigma)
PLAN_VERSION = 2


def make_plan(n_mock: int = DEFAULT_N_MOCK, mock_seed: int = DEFAULT_MOCK_SEED,
              settings: dict | None = None, synthesizer: str = "moog",
              mock_settings: dict | None = None) -> dict:
    """The job list (deterministic)."""
    from ..mock.library import draw_labels
    settings = dict(DEFAULT_SETTINGS if settings is None else settings)
    mock_settings = dict(DEFAULT_MOCK_SETTINGS if mock_settings is None else mock_settings)
    refs = reference_points()
    grad_blocks = []
    for r in refs:
        base = {n: float(r[n]) for n in LABEL_NAMES}
        block = [{"id": f"grad-r{int(r['REF_ID']):03d}-base", "kind": "grad", "ref": int(r["REF_ID"]),
                  "ref_kind": str(r["REF_KIND"]), "label": None, "labels": base}]
        for n in LABEL_NAMES:
            lab = dict(base)
            lab[n] = round(lab[n] + GRADIENT_STEPS[n], 6)
            block.append({"id": f"grad-r{int(r['REF_ID']):03d}-{n}", "kind": "grad", "ref": int(r["REF_ID"]),
                          "ref_kind": str(r["REF_KIND"]), "label": n, "labels": lab})
        grad_blocks.append(block)
    mocks = draw_labels(n_mock, seed=mock_seed)
    mock_jobs = _mock_jobs(mocks)
    jobs = list(grad_blocks[0])
    gi, mi = 1, 0
    while gi < len(grad_blocks) or mi < len(mock_jobs):
        jobs += mock_jobs[mi:mi + 32]
        mi += 32
        if gi < len(grad_blocks):
            jobs += grad_blocks[gi]
            gi += 1
    return {"version": PLAN_VERSION, "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
            "ddpayne_version": __version__, "synthesizer": synthesizer, "settings": settings,
            "mock_settings": mock_settings, "wave_range_vac": WAVE_RANGE, "instrument": {"name": "DESI", "grid": "desi_grid() 3600-9824 A 0.8 A",
                                                          "lsf": "Gaussian FWHM=lambda/R, R 2000@3600 -> 5500@9824 (linear)",
                                                          "continuum": "ddpayne.prepare.continuum.normalise L=20 A"},
            "gradient_steps": GRADIENT_STEPS, "mock_seed": mock_seed, "n_mock": n_mock,
            "n_ref": len(refs), "provenance": {}, "jobs": jobs}


def _mock_jobs(labels) -> list[dict]:
    return [{"id": f"mock-{int(m['STAR_ID']):05d}", "kind": "mock", "index": int(m["STAR_ID"]),
             "pop": str(m["POP"]), "star_kind": str(m["KIND"]),
             "labels": {n: float(m[n]) for n in LABEL_NAMES}} for m in labels]


def extend_plan(workdir: str | Path, n_mock: int) -> int:
    """Add mock stars to the plan in ``workdir`` until it holds ``n_mock``; return how many were added.

    The planned jobs and their results are untouched: the new stars are drawn from the same label
    distribution (:func:`ddpayne.mock.library.draw_labels`) with a seed of their own (the plan's
    ``mock_seed`` + the extension's number, from 1), numbered after the last planned star and queued after
    every planned job. Each extension is recorded in ``plan["mock_extensions"]``, so the whole plan stays
    reproducible. Refuses while a run works in the folder (its job list would not see the new stars).
    """
    from ..mock.library import draw_labels
    workdir = Path(workdir)
    with workdir_lock(workdir, "runner.lock"):
        plan = load_plan(workdir)
        mocks = [j for j in plan["jobs"] if j["kind"] == "mock"]
        n_add = int(n_mock) - len(mocks)
        if n_add <= 0:
            log.info("the plan already holds %d mock stars (asked for %d): nothing added", len(mocks), n_mock)
            return 0
        ext = plan.setdefault("mock_extensions", [])
        seed = int(plan["mock_seed"]) + len(ext) + 1
        first = max((j["index"] for j in mocks), default=-1) + 1
        labels = draw_labels(n_add, seed=seed)
        labels["STAR_ID"] = labels["STAR_ID"] + first
        plan["jobs"].extend(_mock_jobs(labels))
        ext.append({"seed": seed, "n": n_add, "first_star_id": first,
                    "added": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")})
        plan["n_mock"] = len(mocks) + n_add
        write_plan(workdir, plan)
    log.info("added %d mock stars (STAR_ID %d-%d, seed %d) to %s", n_add, first, first + n_add - 1, seed, workdir)
    return n_add


def plan_path(workdir: Path) -> Path:
    return Path(workdir) / "plan.json"


def write_plan(workdir: str | Path, plan: dict) -> None:
    """Write ``plan`` to ``<workdir>/plan.json`` atomically (a killed write leaves the old plan)."""
    with atomic_path(plan_path(Path(workdir))) as tmp:
        Path(tmp).write_text(json.dumps(plan, indent=1))


def load_plan(workdir: str | Path) -> dict:
    p = plan_path(Path(workdir))
    if not p.exists():
        raise FileNotFoundError(f"no synthesis plan in {workdir} "
                                f"(start one with 'ddpayne synth run --workdir {workdir}')")
    return json.loads(p.read_text())


def result_path(workdir: Path, job_id: str) -> Path:
    return Path(workdir) / "results" / f"{job_id}.npz"


def result_info(workdir: Path, job_id: str) -> dict | None:
    """The small fields of a finished result, read without its spectra: ``physics`` (the synthesizer
    ``physics_version``, 1 for results older than the field), ``settings`` (None when not stored),
    ``finished``, ``seconds`` and ``cpu_seconds``; or None if the job is not done or its file cannot be
    read (missing, empty or damaged: the job is then recomputed).

    The runner's start-up (:func:`run`), :func:`outdated_results` and :func:`status` all read a folder's
    results once through this function.
    """
    p = result_path(Path(workdir), job_id)
    try:
        with np.load(p) as z:
            return _small_fields(z)
    except Exception:   # missing, empty or damaged (EOFError, BadZipFile, ...): not a usable result
        return None


def _small_fields(z) -> dict:
    """The small fields of an open result file (``np.load``), with the defaults of older formats."""
    files = z.files
    return {"physics": int(z["physics"]) if "physics" in files else 1,
            "settings": json.loads(str(z["settings"])) if "settings" in files else None,
            "finished": str(z["finished"]) if "finished" in files else "",
            "seconds": float(z["seconds"]) if "seconds" in files else float("nan"),
            "cpu_seconds": float(z["cpu_seconds"]) if "cpu_seconds" in files else float("nan")}


def result_infos(workdir: Path, plan: dict) -> dict[str, dict | None]:
    """:func:`result_info` of every job of ``plan``, by job id."""
    return {j["id"]: result_info(workdir, j["id"]) for j in plan["jobs"]}


def hires_path(workdir: Path, job_id: str) -> Path:
    return Path(workdir) / "hires" / f"{job_id}.npz"


def job_settings(plan: dict, job: dict) -> dict:
    """The synthesis settings of one job (mock stars use ``plan["mock_settings"]`` when the plan has them)."""
    if job["kind"] == "mock" and plan.get("mock_settings"):
        return plan["mock_settings"]
    return plan["settings"]


def load_result(workdir: str | Path, job_id: str, expect_labels: dict | None = None) -> dict | None:
    """A finished job's result (``flux``, ``wavelength``, ``labels``, ``blanket``...) or None if not done.

    The high-resolution spectrum (``hires_depth``, ``air_start``, ``air_step``) is included when it is
    stored, in the result itself (format of plan version 1) or in ``<workdir>/hires/``.
    With ``expect_labels``, a result computed for other labels (a plan changed after it was made) is
    reported and treated as not done.
    """
    p = result_path(Path(workdir), job_id)
    if not p.exists():
        return None
    try:
        with np.load(p) as z:
            out = _small_fields(z)
            if out["settings"] is None:
                del out["settings"]
            out.update(flux=z["flux"].astype(float), wavelength=z["wavelength"],
                       labels=json.loads(str(z["labels"])))
            if "blanket" in z.files:
                out.update(blanket=z["blanket"].astype(float), blanket_start=float(z["blanket_start"]),
                           blanket_step=float(z["blanket_step"]))
            if "repaired" in z.files:
                out["repaired"] = str(z["repaired"])
            if "hires_depth" in z.files:
                _add_hires(out, z)
        hp = hires_path(Path(workdir), job_id)
        if "hires_depth" not in out and hp.exists():
            with np.load(hp) as hz:
                _add_hires(out, hz)
    except Exception as err:  # a damaged file: report and treat as not done
        log.warning("damaged result %s (%s): it will be recomputed", p, err)
        return None
    if expect_labels is not None:
        diff = [k for k, v in expect_labels.items() if abs(out["labels"].get(k, np.nan) - v) > 1e-9]
        if diff:
            log.warning("result %s was computed for other labels (%s) than the plan's: ignored", p, diff)
            return None
    return out


def _add_hires(out: dict, z) -> None:
    """Copy the high-resolution spectrum of an open result or hires file into ``out``."""
    out.update(hires_depth=z["hires_depth"], air_start=float(z["air_start"]), air_step=float(z["air_step"]))
    if "air_seg_index" in z.files:
        out.update(air_seg_index=z["air_seg_index"], air_seg_start=z["air_seg_start"])


def blanketing(wave_vac: np.ndarray, flux: np.ndarray, width: float = BLANKET_BIN
               ) -> tuple[float, float, np.ndarray]:
    """Mean true-continuum-normalised flux in ``width``-Å vacuum bins: (first bin start, width, means).

    Bins start at a multiple of ``width``; bins with no sample are NaN.
    """
    w = np.asarray(wave_vac, float)
    f = np.asarray(flux, float)
    start = np.floor(w[0] / width) * width
    idx = ((w - start) // width).astype(int)
    n = int(idx[-1]) + 1
    s = np.bincount(idx, weights=f, minlength=n)
    c = np.bincount(idx, minlength=n)
    with np.errstate(invalid="ignore", divide="ignore"):
        return float(start), float(width), np.where(c > 0, s / np.maximum(c, 1), np.nan)


def _write_result(workdir: Path, job_id: str, *, flux, wavelength, labels: dict, settings: dict,
                  seconds: float, cpu_seconds: float, finished: str, hires: dict | None,
                  blanket: tuple[float, float, np.ndarray] | None, physics: int,
                  repaired: str | None = None, repair_cpu_seconds: float | None = None) -> None:
    """Write a compact result (and its high-resolution companion, if given), atomically."""
    if hires is not None:
        hp = hires_path(workdir, job_id)
        hp.parent.mkdir(parents=True, exist_ok=True)
        with atomic_path(hp) as tmp:
            with open(tmp, "wb") as fh:
                np.savez_compressed(fh, **hires)
    extra = {"physics": int(physics)}
    if repaired:
        extra["repaired"] = repaired
    if repair_cpu_seconds is not None:
        extra["repair_cpu_seconds"] = float(repair_cpu_seconds)
    if blanket is not None:
        extra.update(blanket_start=blanket[0], blanket_step=blanket[1],
                     blanket=np.asarray(blanket[2], np.float32))
    out = result_path(workdir, job_id)
    with atomic_path(out) as tmp:
        with open(tmp, "wb") as fh:
            np.savez_compressed(fh, flux=np.asarray(flux, np.float32), wavelength=wavelength,
                                labels=json.dumps(labels), settings=json.dumps(settings), seconds=seconds,
                                cpu_seconds=cpu_seconds, finished=finished, **extra)


def compact(workdir: str | Path) -> int:
    """Convert results of the old format (high-resolution depths inside) to compact result + hires files.

    Returns the number of converted results. Old results carry the plan's gradient settings.
    """
    workdir = Path(workdir)
    plan = load_plan(workdir)
    n = 0
    for j in plan["jobs"]:
        p = result_path(workdir, j["id"])
        if not p.exists():
            continue
        z = np.load(p)
        if "hires_depth" not in z.files:
            continue
        res = {"hires_depth": z["hires_depth"], "air_start": float(z["air_start"]),
               "air_step": float(z["air_step"])}
        w, f = hires_spectrum(res)
        _write_result(workdir, j["id"], flux=z["flux"], wavelength=z["wavelength"],
                      labels=json.loads(str(z["labels"])), settings=plan["settings"],
                      seconds=float(z["seconds"]),
                      cpu_seconds=float(z["cpu_seconds"]) if "cpu_seconds" in z.files else float("nan"),
                      finished=str(z["finished"]), hires=res, blanket=blanketing(w, f),
                      physics=int(z["physics"]) if "physics" in z.files else 1)
        n += 1
    return n


#: Instruments a result can be re-degraded to from its stored high-resolution spectrum:
#: name -> (grid function, resolution preset, continuum kernel width L in Å).
INSTRUMENTS = {"desi": ("desi_grid", "desi", 20.0), "lamost": ("lamost_grid", "lamost", 50.0)}


def air_grid_segments(air: np.ndarray) -> dict:
    """A synthesis's air grid as uniform segments: ``air_start``, ``air_step`` and, where MOOG's chunks
    restart off the step grid (steps that do not divide the 100 Å chunks, e.g. 0.03 Å), ``air_seg_index``
    (first point of each segment) and ``air_seg_start`` (its air wavelength)."""
    air = np.asarray(air, float)
    step = float(np.round(np.median(np.diff(air)), 6))
    breaks = np.flatnonzero(np.abs(np.diff(air) - step) > 1e-6) + 1
    out = {"air_start": float(air[0]), "air_step": step}
    if breaks.size:
        out["air_seg_index"] = np.concatenate([[0], breaks]).astype(np.int64)
        out["air_seg_start"] = air[out["air_seg_index"]]
    return out


def hires_air(result: dict, n: int) -> np.ndarray:
    """The air wavelengths of a stored high-resolution spectrum of ``n`` points (inverse of
    :func:`air_grid_segments`; files written before 2026-12-02 hold one segment, which is exact for
    0.02 Å steps and drifts by 0.02 Å per 100 Å chunk for 0.03 Å steps)."""
    step = result["air_step"]
    if "air_seg_index" not in result:
        return result["air_start"] + step * np.arange(n)
    idx = np.asarray(result["air_seg_index"], int)
    starts = np.asarray(result["air_seg_start"], float)
    seg = np.searchsorted(idx, np.arange(n), side="right") - 1
    return starts[seg] + step * (np.arange(n) - idx[seg])


def hires_spectrum(result: dict) -> tuple[np.ndarray, np.ndarray]:
    """The stored MOOG spectrum of a result: (vacuum wavelength, flux normalised to the true continuum)."""
    from .airvac import air_to_vacuum
    if "hires_depth" not in result:
        raise FileNotFoundError("this result's high-resolution spectrum is not stored here (results/ keeps only "
                                "the DESI spectrum; hires/ files stay on the machine that ran the synthesis): "
                                "rerun the job to re-degrade it to another instrument")
    depth = np.asarray(result["hires_depth"], float) * 1e-4
    return air_to_vacuum(hires_air(result, depth.size)), 1.0 - depth


def degraded_flux(result: dict, instrument: str = "desi", hydrogen=None, labels: dict | None = None
                  ) -> tuple[np.ndarray, np.ndarray]:
    """(grid, normalised flux) of a result for ``instrument``: DESI's is stored, others are re-degraded
    from the high-resolution spectrum with :func:`~ddpayne.physics.degrade.degrade_to_survey`.

    ``hydrogen`` (a :class:`~ddpayne.physics.hydrogen.HydrogenCorrection`, DESI only) multiplies in the
    hydrogen correction at ``labels`` (default: the result's own labels) with
    :func:`~ddpayne.physics.hydrogen.correct_normalised`.
    """
    if instrument not in INSTRUMENTS:
        raise ValueError(f"unknown instrument {instrument!r}; known: {sorted(INSTRUMENTS)}")
    if hydrogen is not None:
        if instrument != "desi":
            raise ValueError(f"the hydrogen correction is computed on the DESI grid, not for {instrument!r}")
        from .hydrogen import correct_normalised
        if "blanket" not in result:
            raise ValueError("this result has no true-continuum blanketing bins: the hydrogen correction "
                             "cannot be applied to it (rerun its synthesis)")
        lab = result["labels"] if labels is None else labels
        factor = hydrogen.factor(lab)[0]
        flux = correct_normalised(result["wavelength"], result["flux"], factor, result["blanket_start"],
                                  result["blanket_step"], result["blanket"])
        return result["wavelength"], flux
    if instrument == "desi":
        return result["wavelength"], result["flux"]
    from ..prepare import grid as grids
    gname, res, width = INSTRUMENTS[instrument]
    g = getattr(grids, gname)()
    w, f = hires_spectrum(result)
    return g, degrade_to_survey(w, f, g, resolution=res, continuum_width=width)


# ----------------------------------------------------------------------------- workers
_SYN: dict = {}
_SYN_NAME: list = []
_SYN_TMP: list = []


def _settings_key(settings: dict) -> str:
    return json.dumps(settings, sort_keys=True)


def _init_worker(synth_name: str, settings_by_kind: dict, tmpdir: str, lock_fd: int | None = None) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if lock_fd is not None:   # the parent's workdir lock: an orphaned worker must not keep the folder locked
        try:
            os.close(lock_fd)
        except OSError:
            pass
    _SYN.clear()
    _SYN_NAME[:] = [synth_name]
    _SYN_TMP[:] = [tmpdir]
    for st in settings_by_kind.values():
        _synth_for(st)


def _synth_for(settings: dict):
    """The worker's synthesizer for ``settings`` (made once per distinct settings)."""
    key = _settings_key(settings)
    if key not in _SYN:
        from .. import registry
        _SYN[key] = registry.create("synthesizer", _SYN_NAME[0], settings=settings, workdir=_SYN_TMP[0])
    return _SYN[key]


#: A repair re-synthesises from this far (Å) below the synthesizer's ``repair_from`` wavelength, so that the
#: degradation (LSF and the 20 Å pseudo-continuum kernel) of every replaced pixel sees a complete spectrum.
REPAIR_MARGIN = 150.0


def _run_job(args):
    job, workdir, settings, repair_from = args
    t0 = time.time()
    import resource
    cpu0 = resource.getrusage(resource.RUSAGE_CHILDREN).ru_utime + time.process_time()
    try:
        syn = _synth_for(settings)
        if repair_from is not None:
            _repair_job(syn, job, Path(workdir), repair_from, t0, cpu0)
            return job["id"], time.time() - t0, None
        w, f = syn.synthesize(job["labels"], *WAVE_RANGE)
        grid = desi_grid()
        flux = degrade_to_survey(w, f, grid, resolution="desi", continuum_width=20.0)
        from .airvac import vacuum_to_air
        air = vacuum_to_air(w)
        depth = np.clip(np.round((1.0 - f) * 1e4), 0, 65535).astype(np.uint16)
        _write_result(Path(workdir), job["id"], flux=flux, wavelength=grid, labels=job["labels"],
                      settings=settings, seconds=time.time() - t0,
                      cpu_seconds=resource.getrusage(resource.RUSAGE_CHILDREN).ru_utime
                      + time.process_time() - cpu0,
                      finished=_dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
                      hires={"hires_depth": depth, **air_grid_segments(air)},
                      blanket=blanketing(w, f), physics=type(syn).physics_version)
        return job["id"], time.time() - t0, None
    except Exception as err:  # report, keep going
        return job["id"], time.time() - t0, f"{type(err).__name__}: {err}"


def _repair_job(syn, job: dict, workdir: Path, repair_from: float, t0: float, cpu0: float) -> None:
    """Bring a result of an older physics version up to date: re-synthesise the part from
    ``repair_from − REPAIR_MARGIN`` with the same MOOG runs as a full synthesis
    (:meth:`~ddpayne.physics.synthesizer.Synthesizer.synthesize_part`) and replace the DESI pixels and
    blanketing bins from ``repair_from`` on. The stale high-resolution companion is deleted."""
    import resource
    old = load_result(workdir, job["id"], expect_labels=job["labels"])
    if old is None:
        raise ValueError(f"{job['id']}: no usable result to repair")
    old_physics, finished, old_cpu = old["physics"], old["finished"], old["cpu_seconds"]
    if not np.isfinite(repair_from):   # the physics change does not touch this spectrum: only re-labelled
        with np.load(result_path(workdir, job["id"])) as zf:
            z = {k: zf[k] for k in zf.files}
        z["physics"] = np.asarray(type(syn).physics_version)
        z["repaired"] = np.asarray(f"physics {old_physics} -> {type(syn).physics_version}: unaffected")
        with atomic_path(result_path(workdir, job["id"])) as tmp:
            with open(tmp, "wb") as fh:
                np.savez_compressed(fh, **z)
        return
    w, f = syn.synthesize_part(job["labels"], *WAVE_RANGE, part_min=repair_from - REPAIR_MARGIN)
    if w[0] > repair_from - REPAIR_MARGIN + 100.0:
        raise ValueError(f"{job['id']}: the partial synthesis starts at {w[0]:.1f} Å, not before "
                         f"{repair_from - REPAIR_MARGIN + 100.0:.1f} Å")
    grid = np.asarray(old["wavelength"], float)
    part = degrade_to_survey(w, f, grid, resolution="desi", continuum_width=20.0)
    flux = np.array(old["flux"], float)
    sel = grid >= repair_from
    flux[sel] = part[sel]
    blanket = None
    if "blanket" in old:
        bs, bw, bv = blanketing(w, f)
        b_old = np.array(old["blanket"], float)
        starts = old["blanket_start"] + old["blanket_step"] * np.arange(b_old.size)
        k = np.rint((starts - bs) / bw).astype(int)
        use = (starts >= repair_from) & (k >= 0) & (k < bv.size)
        b_old[use] = bv[k[use]]
        blanket = (old["blanket_start"], old["blanket_step"], b_old)
    hires = None
    hp = hires_path(workdir, job["id"])
    if "hires_depth" in old:
        from .airvac import vacuum_to_air
        air = vacuum_to_air(w)
        depth_old = np.array(old["hires_depth"])
        air_old = hires_air(old, depth_old.size)
        k0 = int(np.argmin(np.abs(air_old - air[0])))
        grid_ok = (k0 + air.size == depth_old.size
                   and np.allclose(air_old[k0:], air, rtol=0, atol=1e-6))
        if grid_ok:   # the partial run's points are the old ones (exactly stored grids): splice the depths
            a0 = float(vacuum_to_air(np.array([repair_from]))[0])
            use = air >= a0
            depth_old[k0:][use] = np.clip(np.round((1.0 - f[use]) * 1e4), 0, 65535).astype(np.uint16)
            hires = {"hires_depth": depth_old, **{k: old[k] for k in
                                                  ("air_start", "air_step", "air_seg_index", "air_seg_start")
                                                  if k in old}}
    if hires is None and hp.exists():   # cannot be spliced exactly: dropped rather than left stale
        hp.unlink()
    cpu = resource.getrusage(resource.RUSAGE_CHILDREN).ru_utime + time.process_time() - cpu0
    now = _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")
    _write_result(workdir, job["id"], flux=flux, wavelength=grid, labels=old["labels"],
                  settings=old.get("settings", {}), seconds=old["seconds"], cpu_seconds=old_cpu,
                  finished=finished, hires=hires, blanket=blanket, physics=type(syn).physics_version,
                  repaired=f"physics {old_physics} -> {type(syn).physics_version} from {repair_from:g} A "
                           f"on {now} ({cpu:.0f} CPU-s)", repair_cpu_seconds=cpu)


def run(workdir: str | Path, processes: int = 2, n_mock: int = DEFAULT_N_MOCK, settings: dict | None = None,
        synthesizer: str = "moog", max_jobs: int | None = None, only: str | None = None) -> None:
    """Run (or resume) the plan in ``workdir``.

    Only one run may work in a folder at a time: a second one fails at once with
    :class:`ddpayne.io.atomic.WorkdirLocked` naming the holder (two runs would synthesise every job twice).
    """
    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    with workdir_lock(workdir, "runner.lock") as lock_fd:
        _run_locked(workdir, processes, n_mock, settings, synthesizer, max_jobs, only, lock_fd)


def _synthesis_provenance(plan: dict) -> dict:
    """The plan synthesizer's description of its physics, with its ``physics_version``."""
    from .. import registry
    syn = registry.create("synthesizer", plan["synthesizer"], settings=plan["settings"])
    return {**getattr(syn, "provenance", lambda: {})(), "physics_version": int(getattr(syn, "physics_version", 1))}


def _run_locked(workdir: Path, processes: int, n_mock: int, settings: dict | None, synthesizer: str,
                max_jobs: int | None, only: str | None, lock_fd: int | None = None) -> None:
    (workdir / "results").mkdir(parents=True, exist_ok=True)
    (workdir / "tmp").mkdir(exist_ok=True)
    pp = plan_path(workdir)
    if pp.exists():
        plan = json.loads(pp.read_text())
        if settings is not None and settings != plan["settings"]:
            raise ValueError(f"{pp} was made with settings {plan['settings']}, not {settings}: use another "
                             f"workdir or delete it")
    else:
        plan = make_plan(n_mock=n_mock, settings=settings, synthesizer=synthesizer)
        plan["provenance"] = _synthesis_provenance(plan)
        write_plan(workdir, plan)
    cur = current_physics(plan)
    old_prov = plan.get("provenance") or {}
    if cur is not None and old_prov and old_prov.get("physics_version", 1) != cur:
        # the physics changed since the plan was made: record the new description, keep the old one
        plan.setdefault("provenance_history", []).append(old_prov)
        plan["provenance"] = _synthesis_provenance(plan)
        write_plan(workdir, plan)
    # not done = no result file, or one that cannot be read (it is recomputed and replaced)
    infos = result_infos(workdir, plan)
    not_done = [j for j in plan["jobs"] if infos[j["id"]] is None]
    tasks = outdated_results(workdir, plan, infos) + [(j, job_settings(plan, j), None) for j in not_done]
    if only:
        tasks = [x for x in tasks if x[0]["kind"] == only]
    if max_jobs is not None:
        tasks = tasks[:max_jobs]
    jobs = [x[0] for x in tasks]
    n_repair = sum(x[2] is not None for x in tasks)
    total = len(plan["jobs"])
    done0 = total - len(not_done)
    logf = open(workdir / "progress.log", "a", buffering=1)
    logf.write(f"{_dt.datetime.now(_dt.timezone.utc):%Y-%m-%d %H:%M:%S} start: {done0}/{total} done, "
               f"{len(jobs)} to run ({n_repair} repairs of results made with older physics) on {processes} "
               f"processes, pid {os.getpid()}\n")
    if not jobs:
        logf.write("nothing to do\n")
        return
    t_start = time.time()
    n_ok = n_fail = 0
    from tqdm import tqdm
    ctx = mp.get_context("fork")
    by_kind = {k: job_settings(plan, {"kind": k}) for k in ("grad", "mock")}
    with ctx.Pool(processes, initializer=_init_worker,
                  initargs=(plan["synthesizer"], by_kind, str(workdir / "tmp"), lock_fd)) as pool:
        bar = tqdm(total=len(jobs), desc="syntheses", unit="spec", smoothing=0.05)
        n_new_ok = 0
        for i, (job_id, sec, err) in enumerate(pool.imap(
                _run_job, [(j, str(workdir), st, rf) for j, st, rf in tasks], chunksize=1)):
            bar.update(1)
            now = _dt.datetime.now(_dt.timezone.utc)
            repair = tasks[i][2] is not None
            if err is None:
                n_ok += 1
                n_new_ok += not repair
            else:
                n_fail += 1
                with open(workdir / "failures.log", "a") as fh:
                    fh.write(f"{now:%Y-%m-%d %H:%M:%S} {job_id}: {err}\n")
            elapsed = time.time() - t_start
            rate = (n_ok + n_fail) / elapsed
            remaining = len(jobs) - n_ok - n_fail
            eta_h = remaining / rate / 3600 if rate > 0 else float("nan")
            what = ("repaired" if repair else "ok") if err is None else "FAILED"
            logf.write(f"{now:%Y-%m-%d %H:%M:%S} {job_id} {what} {sec:.0f}s | "
                       f"done {done0 + n_new_ok}/{total} (this run {n_ok} ok, {n_fail} failed) | "
                       f"{3600 * rate:.0f} tasks/h wall | ETA {eta_h:.1f} h for the remaining {remaining}\n")
        bar.close()
    logf.write(f"{_dt.datetime.now(_dt.timezone.utc):%Y-%m-%d %H:%M:%S} finished this run: {n_ok} ok, "
               f"{n_fail} failed\n")


def current_physics(plan: dict) -> int | None:
    """``physics_version`` of the plan's synthesizer, or None if that plugin is not installed here."""
    from .. import registry
    try:
        return int(getattr(registry.get("synthesizer", plan["synthesizer"]), "physics_version", 1))
    except Exception:
        return None


def outdated_results(workdir: str | Path, plan: dict | None = None,
                     infos: dict[str, dict | None] | None = None) -> list[tuple[dict, dict, float | None]]:
    """Finished jobs whose result was made with an older ``physics_version`` of the plan's synthesizer.

    Returns ``(job, settings, repair_from)`` in plan order: ``settings`` are the result's own, and
    ``repair_from`` is the wavelength from which the synthesizer says the result must be re-synthesised, or
    None for a full synthesis. ``infos`` (:func:`result_infos`) saves reading the results again.
    """
    from .. import registry
    workdir = Path(workdir)
    plan = load_plan(workdir) if plan is None else plan
    infos = result_infos(workdir, plan) if infos is None else infos
    cls = registry.get("synthesizer", plan["synthesizer"])
    current = int(getattr(cls, "physics_version", 1))
    out = []
    for j in plan["jobs"]:
        info = infos.get(j["id"])
        if info is None or info["physics"] >= current:   # not done (or damaged: redone), or up to date
            continue
        st = info["settings"] if info["settings"] is not None else job_settings(plan, j)
        out.append((j, st, cls.repair_from(info["physics"], labels=j["labels"], settings=st)))
    return out


#: :func:`status` estimates each kind's cost from its most recent results (the machine's load varies).
STATUS_RECENT = 200


def status(workdir: str | Path, processes: int = 2) -> dict:
    """Counts of finished jobs by kind, the complete reference points, and what remains in CPU time.

    The cost of a job is the median ``cpu_seconds`` (MOOG included) of the :data:`STATUS_RECENT` most
    recently finished results of its kind (the median ignores the few jobs that ran while a machine was
    overloaded); the remaining CPU-hours and the wall-clock hours on ``processes`` free cores follow.
    """
    workdir = Path(workdir)
    plan = load_plan(workdir)
    infos = result_infos(workdir, plan)
    done = {jid for jid, info in infos.items() if info is not None}   # a damaged file is not done
    by_kind: dict[str, list[int]] = {}
    grad_ids: dict[int, list[str]] = {}
    for j in plan["jobs"]:
        d = by_kind.setdefault(j["kind"], [0, 0])
        d[1] += 1
        d[0] += j["id"] in done
        if j["kind"] == "grad":
            grad_ids.setdefault(j["ref"], []).append(j["id"])
    refs_complete = sorted(r for r, ids in grad_ids.items() if all(i in done for i in ids))
    kind_of = {j["id"]: j["kind"] for j in plan["jobs"]}
    timing: dict[str, list[tuple[str, float, float]]] = {}
    for jid in done:
        info = infos[jid]
        timing.setdefault(kind_of[jid], []).append((info["finished"], info["seconds"], info["cpu_seconds"]))
    cost, wall = {}, []
    for kind, rows in timing.items():
        rows.sort()
        wall += [r[1] for r in rows]
        cpu = np.array([r[2] for r in rows[-STATUS_RECENT:]])
        cost[kind] = float(np.nanmedian(cpu)) if np.isfinite(cpu).any() else None
    remaining = {k: v[1] - v[0] for k, v in by_kind.items()}
    for k in by_kind:
        cost.setdefault(k, None)
    try:
        outdated = outdated_results(workdir, plan, infos)
    except Exception:   # the synthesizer plugin is not installed here: nothing to compare with
        outdated = []
    out_by_kind: dict[str, int] = {}
    repair_units: dict[str, float] = {}   # in full-spectrum equivalents (by the re-synthesised span)
    span = WAVE_RANGE[1] - WAVE_RANGE[0]
    n_relabel = 0
    for j, _, rf in outdated:
        if rf is not None and not np.isfinite(rf):   # unaffected: only re-labelled, no synthesis
            n_relabel += 1
            continue
        out_by_kind[j["kind"]] = out_by_kind.get(j["kind"], 0) + 1
        frac = 1.0 if rf is None else float(np.clip((WAVE_RANGE[1] - rf + REPAIR_MARGIN) / span, 0.0, 1.0))
        repair_units[j["kind"]] = repair_units.get(j["kind"], 0.0) + frac
    units = {k: remaining.get(k, 0) + repair_units.get(k, 0.0) for k in set(remaining) | set(repair_units)}
    known = all(cost.get(k) is not None for k, n in units.items() if n)   # else: no estimate, not a guess
    cpu_h = sum(n * cost[k] for k, n in units.items() if n) / 3600.0 if known else None
    return {"done": {k: v[0] for k, v in by_kind.items()}, "planned": {k: v[1] for k, v in by_kind.items()},
            "outdated_physics_to_resynthesise": out_by_kind, "outdated_physics_unaffected": n_relabel,
            "reference_points_complete": len(refs_complete), "ref_ids_complete": refs_complete,
            "mean_wall_seconds_per_spectrum_per_process": float(np.nanmean(wall)) if wall else None,
            "recent_median_cpu_seconds": cost,
            "remaining_cpu_hours": None if cpu_h is None else round(cpu_h, 2),
            f"remaining_hours_on_{processes}_free_cores": None if cpu_h is None else
            round(cpu_h / max(processes, 1), 2)}


def main(argv=None):
    """Deprecated ``python -m ddpayne.physics.runner``: runs the ``ddpayne synth`` command it became."""
    from ..pipeline.cli_synth import deprecated_subcommand_alias

    return deprecated_subcommand_alias("python -m ddpayne.physics.runner",
                                       {c: ["synth", c] for c in ("run", "status", "extend", "compact")}, argv)


if __name__ == "__main__":
    raise SystemExit(main())
