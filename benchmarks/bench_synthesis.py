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

Run::

    python benchmarks/bench_synthesis.py                # default windows and settings
    python benchmarks/bench_synthesis.py --full         # whole DESI range (slow: ~minutes per setting)
    python benchmarks/bench_synthesis.py --set mock     # mock-library settings (flux accuracy)
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


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--full", action="store_true", help="whole DESI range instead of three windows")
    ap.add_argument("--teff", type=float, default=5900.0)
    ap.add_argument("--logg", type=float, default=4.0)
    ap.add_argument("--feh", type=float, default=-0.5)
    ap.add_argument("--labels", default="TEFF,FE_H,MG_FE,N_FE")
    ap.add_argument("--json", help="write results to this file")
    ap.add_argument("--set", choices=["steps", "cuts", "mock"], default="cuts",
                    help="'steps': 0.02/0.03/0.05/0.1 Å; 'cuts': line-strength cuts and delta at 0.02 Å; "
                         "'mock': flux accuracy of cheaper settings for mock stars")
    args = ap.parse_args()
    if args.set == "mock":
        run_mock()
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
