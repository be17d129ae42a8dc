"""Benchmark: synthesis settings (step, line-strength cut) vs. accuracy of degraded gradient spectra.

For a reference star (default Teff 5900 K, logg 4.0, [Fe/H] −0.5, the paper's Fig. 9 point) this computes
forward-difference gradient spectra for a few labels with MOOG at each setting, degrades them to DESI
(R(λ) preset 'desi', 0.8 Å grid, L = 20 Å pseudo-continuum) and reports, per label,

    rms(g_setting − g_reference) / rms(g_reference)

over unmasked (non-hydrogen) pixels, plus the time per 1000 Å of synthesis. The reference setting is
the finest (0.02 Å, no cut), measured in the same process.

``--set mock`` instead compares the degraded *flux* of two mock-library stars (a cool giant and a dwarf)
at cheaper settings with the reference, in 3900–4500 Å, with the MOOG CPU time of each setting
(the accuracy that matters for mock spectra, which are data rather than gradients).

``--set reuse`` measures chunk reuse for the [X/Fe] steps of the gradient product
(:meth:`ddpayne_moog.synth.MoogSynthesizer.synthesize_reusing`): for reference points of the committed
plan (``work-synth/plan.json``) it synthesises the base (checked against the committed base result),
re-synthesises each [X/Fe] step re-running MOOG only in sub-chunks that the element's lines (strength
proxy ≥ threshold) can reach, degrades it like the runner, and prints per label the rms of
(reused − full) degraded gradient / rms(full gradient) against the *committed* full step results, with the
MOOG CPU time of both. It also prints a cheap screening estimate for several thresholds (no MOOG): the
fraction of each committed gradient's rms lying farther than 40 Å from every sensitive sub-chunk.

``--set build`` compares the two MOOG builds (:func:`ddpayne_moog.build.moog_binary`): for jobs of the
committed plan it synthesises the whole DESI range with the ``stock`` and the ``fast`` build (vectorised
line-opacity sum, :mod:`ddpayne_moog.vectorvoigt`) one after the other in the same process, and prints the
MOOG CPU time of each, their ratio, the number of MOOG depths (four decimals, as the runner stores them)
that differ, and the largest change of the degraded DESI flux, also against the committed result.

Run::

    python benchmarks/bench_synthesis.py                # default windows and settings
    python benchmarks/bench_synthesis.py --full         # whole DESI range (slow: ~minutes per setting)
    python benchmarks/bench_synthesis.py --set mock     # mock-library settings (flux accuracy)
    python benchmarks/bench_synthesis.py --set reuse --refs 0,1,4 --threshold -15 --sub-chunk 25
    python benchmarks/bench_synthesis.py --set build --jobs grad-r000-base,grad-r001-MG_FE,mock-00005
"""
from __future__ import annotations

import argparse
import json
import time

import numpy as np

from ddpayne.physics.degrade import degrade_to_survey
from ddpayne.prepare.grid import desi_grid
from ddpayne.prepare.masks import hydrogen_mask
from ddpayne_moog.synth import MoogSynthesizer, SynthSettings

STEPS = {"TEFF": 100.0, "FE_H": 0.1, "MG_FE": 0.2, "C_FE": 0.2, "N_FE": 0.2, "CA_FE": 0.2, "VMIC": 0.25}


def run(windows, labels, settings_list, label_list):
    grid = desi_grid()
    results = []
    ref_grad = None
    for name, st in settings_list:
        syn = MoogSynthesizer(st)
        grads, t_total, wl_total = {}, 0.0, 0.0
        for (a, b) in windows:
            g_sel = (grid > a + 150) & (grid < b - 150)  # away from window edges (continuum kernel)
            t0 = time.perf_counter()
            w, f0 = syn.synthesize(labels, a, b)
            t_total += time.perf_counter() - t0
            wl_total += b - a
            d0 = degrade_to_survey(w, f0, grid)
            for lab in label_list:
                pert = dict(labels)
                pert[lab] = pert.get(lab, 0.0 if lab != "VMIC" else 1.0) + STEPS[lab]
                t0 = time.perf_counter()
                w1, f1 = syn.synthesize(pert, a, b)
                t_total += time.perf_counter() - t0
                wl_total += b - a
                d1 = degrade_to_survey(w1, f1, grid)
                grads.setdefault(lab, []).append(((d1 - d0) / STEPS[lab])[g_sel])
        grads = {k: np.concatenate(v) for k, v in grads.items()}
        wsel = np.concatenate([grid[(grid > a + 150) & (grid < b - 150)] for a, b in windows])
        good = ~hydrogen_mask(wsel)
        row = {"setting": name, **st.as_dict(), "sec_per_1000A": 1000 * t_total / wl_total}
        if ref_grad is None:
            ref_grad = grads
        for lab in label_list:
            r = ref_grad[lab][good]
            row[f"rel_rms_{lab}"] = float(np.sqrt(np.mean((grads[lab][good] - r) ** 2)) /
                                        np.sqrt(np.mean(r ** 2)))
        results.append(row)
        print(json.dumps(row), flush=True)
    base = results[0]["sec_per_1000A"]
    print("\nsetting            s/1000Å  speed-up  " + "  ".join(f"{lab:>8s}" for lab in label_list))
    for r in results:
        print(f"{r['setting']:18s} {r['sec_per_1000A']:7.2f}  {base / r['sec_per_1000A']:7.2f}x  "
              + "  ".join(f"{100 * r[f'rel_rms_{lab}']:7.2f}%" for lab in label_list))
    return results


MOCK_STARS = {  # mock-00005 and mock-00040 of the committed plan (work-synth/plan.json)
    "cool giant": {"TEFF": 4855.8, "LOGG": 2.433, "FE_H": 0.0113, "VMIC": 1.6},
    "dwarf": {"TEFF": 6072.4, "LOGG": 4.5283, "FE_H": -0.7838, "VMIC": 1.1},
}
MOCK_SETTINGS = [("0.02 reference", SynthSettings()), ("0.03", SynthSettings(step=0.03)),
                 ("0.02 cut -13", SynthSettings(min_strength=-13.0)),
                 ("0.03 cut -13", SynthSettings(step=0.03, min_strength=-13.0)),
                 ("0.04 cut -13", SynthSettings(step=0.04, min_strength=-13.0))]


def run_mock(window=(3900.0, 4500.0)):
    """Degraded-flux change and MOOG CPU time of cheaper settings, for the MOCK_STARS."""
    import resource

    def cpu():
        r = resource.getrusage(resource.RUSAGE_CHILDREN)
        return r.ru_utime + r.ru_stime

    stars = dict(MOCK_STARS)
    try:  # the full 15 labels of those stars, from the committed plan
        from ddpayne.physics.runner import load_plan
        jobs = {j["id"]: j["labels"] for j in load_plan("work-synth")["jobs"]}
        stars = {"cool giant": jobs["mock-00005"], "dwarf": jobs["mock-00040"]}
    except (FileNotFoundError, KeyError):
        pass
    grid = desi_grid()
    sel = (grid > window[0] + 150) & (grid < window[1] - 150)
    for star, labels in stars.items():
        ref = None
        for name, st in MOCK_SETTINGS:
            syn = MoogSynthesizer(st)
            c0 = cpu()
            w, f = syn.synthesize(labels, *window)
            c = cpu() - c0
            d = degrade_to_survey(w, f, grid)[sel]
            ref = d if ref is None else ref
            diff = d - ref
            print(f"{star:10s} {name:16s} MOOG CPU {c:6.1f} s  flux change rms {100 * np.sqrt(np.mean(diff ** 2)):.3f} %"
                  f"  max {100 * np.abs(diff).max():.3f} %", flush=True)


ABUNDANCE_STEP_LABELS = ("C_FE", "N_FE", "O_FE", "MG_FE", "AL_FE", "SI_FE", "CA_FE", "TI_FE", "CR_FE",
                         "MN_FE", "NI_FE")


def _cpu() -> float:
    import resource
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime + time.process_time()


def _sensitive_pixels(plan_subs, grid, pad):
    from ddpayne.physics.airvac import air_to_vacuum
    sens = np.zeros(grid.size, bool)
    for subs in plan_subs:
        for a, b, x in subs:
            if x:
                va, vb = air_to_vacuum(np.array([a, b]))
                sens |= (grid >= va - pad) & (grid <= vb + pad)
    return sens


def run_reuse(refs, threshold, sub_chunk, screen=(-11.0, -12.0, -13.0, -14.0, -15.0), workdir="work-synth",
              labels=ABUNDANCE_STEP_LABELS, same_atmosphere=True, json_out=None):
    """Accuracy and CPU saving of chunk reuse for [X/Fe] steps, against the committed full results."""
    from ddpayne.physics.build_gradients import product_mask
    from ddpayne.physics.runner import WAVE_RANGE, load_plan, load_result
    from ddpayne.physics.airvac import vacuum_to_air
    from ddpayne_moog.synth import alpha_of
    plan = load_plan(workdir)
    jobs = {j["id"]: j for j in plan["jobs"]}
    syn = MoogSynthesizer(SynthSettings(**plan["settings"]))
    rows = []
    for r in refs:
        bid = f"grad-r{r:03d}-base"
        bjob, bres = jobs[bid], load_result(workdir, bid)
        if bres is None:
            raise SystemExit(f"{bid} has no committed result in {workdir}")
        grid = bres["wavelength"]
        good = ~product_mask(grid) & np.isfinite(bres["flux"])
        # screening (no MOOG): gradient rms farther than 40 Å from every sensitive sub-chunk
        for lab in labels:
            sres = load_result(workdir, f"grad-r{r:03d}-{lab}")
            g = ((sres["flux"] - bres["flux"]) / plan["gradient_steps"][lab])[good]
            est = []
            for t in screen:
                subs = syn.reuse_plan(jobs[f"grad-r{r:03d}-{lab}"]["labels"], lab, *WAVE_RANGE, t, sub_chunk)
                far = ~_sensitive_pixels(subs, grid, 40.0)[good]
                est.append(f"{t:g}: {100 * np.sqrt(np.sum(g[far] ** 2) / np.sum(g ** 2)):5.2f} %")
            print(f"screen r{r:03d} {bjob['ref_kind']:6s} {lab:6s} far-from-sensitive rms fraction  "
                  + "  ".join(est), flush=True)
        c0 = _cpu()
        w, f = syn.synthesize(bjob["labels"], *WAVE_RANGE)
        cpu_full = _cpu() - c0
        base_flux = degrade_to_survey(w, f, grid, resolution="desi", continuum_width=20.0)
        dbase = float(np.nanmax(np.abs(base_flux.astype(np.float32) - bres["flux"])))
        bl = bjob["labels"]
        print(f"r{r:03d} {bjob['ref_kind']} (Teff {bl['TEFF']:.0f}, logg {bl['LOGG']}, [Fe/H] {bl['FE_H']}): "
              f"base MOOG CPU {cpu_full:.1f} s; recomputed base vs committed max |dflux| {dbase:.2e}",
              flush=True)
        depth = np.clip(np.round((1.0 - f) * 1e4), 0, 65535).astype(np.uint16)
        air0 = float(vacuum_to_air(w[:1])[0])
        for lab in labels:
            sjob = jobs[f"grad-r{r:03d}-{lab}"]
            sres = load_result(workdir, sjob["id"])
            step = plan["gradient_steps"][lab]
            g_full = (sres["flux"] - bres["flux"])[good] / step
            if same_atmosphere and alpha_of(sjob["labels"]) != alpha_of(bjob["labels"]):
                row = {"ref": r, "kind": bjob["ref_kind"], "label": lab, "reused": False,
                       "reason": "atmosphere [alpha/M] changes", "frac_run": 1.0, "cpu_full": cpu_full,
                       "cpu_reuse": cpu_full, "rel_rms": 0.0}
            else:
                c0 = _cpu()
                w1, f1, info = syn.synthesize_reusing(
                    sjob["labels"], *WAVE_RANGE, base_labels=bjob["labels"], label=lab, base_depth=depth,
                    base_air_start=np.round(air0, 6), threshold=threshold, sub_chunk=sub_chunk,
                    same_atmosphere=same_atmosphere)
                cpu = _cpu() - c0
                flux = degrade_to_survey(w1, f1, grid, resolution="desi", continuum_width=20.0)
                flux = flux.astype(np.float32)
                g = (flux - bres["flux"])[good] / step
                row = {"ref": r, "kind": bjob["ref_kind"], "label": lab, "reused": info["reused"],
                       "frac_run": info["angstrom_run"] / info["angstrom_total"], "runs": info["runs"],
                       "cpu_full": cpu_full, "cpu_reuse": cpu,
                       "rel_rms": float(np.sqrt(np.mean((g - g_full) ** 2)) / np.sqrt(np.mean(g_full ** 2)))}
            rows.append(row)
            print(f"  {lab:6s} reused {str(row['reused']):5s} Å re-run {100 * row['frac_run']:5.1f} %  "
                  f"CPU {row['cpu_reuse']:5.1f} s of {cpu_full:5.1f} s  "
                  f"rms(reused - full)/rms(full) {100 * row['rel_rms']:.3f} %", flush=True)
    n_jobs = 16
    saved = sum(x["cpu_full"] - x["cpu_reuse"] for x in rows)
    total = sum(x["cpu_full"] for x in rows) / len(labels) * n_jobs
    print(f"\nthreshold {threshold}, sub-chunk {sub_chunk} Å: worst rms ratio "
          f"{100 * max(x['rel_rms'] for x in rows):.3f} %; CPU saved {saved:.0f} s of {total:.0f} s for the "
          f"{len(refs)} points' {n_jobs} jobs each ({100 * saved / total:.1f} % of the gradient product's "
          f"cost)")
    if json_out:
        with open(json_out, "w") as fh:
            json.dump(rows, fh, indent=1)
    return rows


def run_build(job_ids, workdir="work-synth", repeats=1):
    """MOOG CPU time and output of the ``stock`` and ``fast`` builds on full-range jobs of the plan."""
    from ddpayne.physics import runner as R
    plan = R.load_plan(workdir)
    jobs = {j["id"]: j for j in plan["jobs"]}
    grid = desi_grid()
    tot = {"stock": 0.0, "fast": 0.0}
    for jid in job_ids:
        job = jobs[jid]
        st = R.job_settings(plan, job)
        out = {}
        for _ in range(repeats):
            for build in ("stock", "fast"):
                syn = MoogSynthesizer(st, build=build)
                c0 = _cpu()
                w, f = syn.synthesize(job["labels"], *R.WAVE_RANGE)
                c = _cpu() - c0
                tot[build] += c
                depth = np.clip(np.round((1.0 - f) * 1e4), 0, 65535).astype(np.int64)
                out[build] = (depth, degrade_to_survey(w, f, grid, resolution="desi", continuum_width=20.0))
                print(f"{jid:18s} {build:5s} CPU {c:6.1f} s", flush=True)
        nd = int(np.count_nonzero(out["fast"][0] != out["stock"][0]))
        dmax = int(np.abs(out["fast"][0] - out["stock"][0]).max())
        df = np.nanmax(np.abs(out["fast"][1] - out["stock"][1]))
        msg = (f"{jid:18s} depths differing {nd} of {out['fast'][0].size} (max {dmax}e-4); "
               f"DESI flux max |fast - stock| {df:.1e}")
        committed = R.load_result(workdir, jid)
        if committed is not None:
            msg += f", |fast - committed| {np.nanmax(np.abs(out['fast'][1] - committed['flux'])):.1e} (float32)"
        print(msg, flush=True)
    print(f"MOOG CPU, all jobs: stock {tot['stock']:.1f} s, fast {tot['fast']:.1f} s, "
          f"fast/stock {tot['fast'] / tot['stock']:.3f} ({tot['stock'] / tot['fast']:.2f}x faster)")
    return tot


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--full", action="store_true", help="whole DESI range instead of three windows")
    ap.add_argument("--teff", type=float, default=5900.0)
    ap.add_argument("--logg", type=float, default=4.0)
    ap.add_argument("--feh", type=float, default=-0.5)
    ap.add_argument("--labels", default="TEFF,FE_H,MG_FE,N_FE")
    ap.add_argument("--json", help="write results to this file")
    ap.add_argument("--refs", default="0,1,4", help="--set reuse: reference point ids of the committed plan")
    ap.add_argument("--threshold", type=float, default=-15.0, help="--set reuse: line-strength threshold")
    ap.add_argument("--sub-chunk", type=float, default=25.0, help="--set reuse: sub-chunk width (Å)")
    ap.add_argument("--workdir", default="work-synth", help="--set reuse: the synthesis run's directory")
    ap.add_argument("--jobs", default="grad-r000-base,grad-r001-MG_FE,mock-00005",
                    help="--set build: job ids of the committed plan")
    ap.add_argument("--repeats", type=int, default=1, help="--set build: syntheses per build and job")
    ap.add_argument("--set", choices=["steps", "cuts", "mock", "reuse", "build"], default="cuts",
                    help="'steps': 0.02/0.03/0.05/0.1 Å; 'cuts': line-strength cuts and delta at 0.02 Å; "
                         "'mock': flux accuracy of cheaper settings for mock stars; 'reuse': chunk reuse for "
                         "[X/Fe] steps; 'build': the fast MOOG build against the stock one")
    args = ap.parse_args()
    if args.set == "build":
        run_build(args.jobs.split(","), workdir=args.workdir, repeats=args.repeats)
        return
    if args.set == "mock":
        run_mock()
        return
    if args.set == "reuse":
        run_reuse([int(x) for x in args.refs.split(",")], args.threshold, args.sub_chunk,
                  workdir=args.workdir, json_out=args.json)
        return
    windows = [(3600.0, 9824.0)] if args.full else [(3750.0, 4450.0), (4950.0, 5450.0), (8300.0, 8800.0)]
    labels = {"TEFF": args.teff, "LOGG": args.logg, "FE_H": args.feh, "VMIC": 1.1,
              "MG_FE": 0.2, "SI_FE": 0.2, "CA_FE": 0.2, "TI_FE": 0.2, "O_FE": 0.2}
    sets = {
        "steps": [("0.02 reference", SynthSettings(step=0.02)), ("0.03", SynthSettings(step=0.03)),
                  ("0.05", SynthSettings(step=0.05)), ("0.10", SynthSettings(step=0.10))],
        "cuts": [("0.02 reference", SynthSettings(step=0.02)),
                 ("0.02 cut -13", SynthSettings(step=0.02, min_strength=-13.0)),
                 ("0.02 cut -12", SynthSettings(step=0.02, min_strength=-12.0)),
                 ("0.02 delta 0.5", SynthSettings(step=0.02, delta=0.5)),
                 ("0.02 cut -12 delta 0.5", SynthSettings(step=0.02, delta=0.5, min_strength=-12.0)),
                 ("0.02 cut -11", SynthSettings(step=0.02, min_strength=-11.0))],
    }
    settings_list = sets[args.set]
    res = run(windows, labels, settings_list, args.labels.split(","))
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(res, fh, indent=1)


if __name__ == "__main__":
    main()
