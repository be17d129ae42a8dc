"""How the demo's accuracy depends on its training budget (optimizer steps), measured in one process.

Writes the demo's mock survey (the same library, seed, S/N and reference fraction as ``ddpayne demo``),
then runs the whole pipeline once per training budget (``--steps``, e.g. ``1000,10000``; the first is
the baseline) with the demo's other settings, and prints for each: the training time, and the scatter
about the truth and the ratio of that scatter to the catalogue's total errors on the survey stars the
model never saw, with ratios of scatter against the baseline.

Usage::

    python benchmarks/demo_training.py --steps 1000,10000 --out work-demo-training

The figures and command are recorded in docs/performance_training.rst ("The demo's training budget").
"""
from __future__ import annotations

import argparse
import logging
import time
from pathlib import Path

import numpy as np
from astropy.table import Table

SHOWN = ("TEFF", "LOGG", "FE_H", "MG_FE", "CA_FE")


def main(argv=None) -> int:
    from ddpayne.mock.validation import validate
    from ddpayne.pipeline import demo
    from ddpayne.pipeline.catalogue import read_catalogue
    from ddpayne.pipeline.run import Pipeline

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--steps", default="1000,10000", help="comma-separated optimizer-step budgets")
    ap.add_argument("--refs-per-step", default=None,
                    help="comma-separated regularizer reference points per step to compare (0: all), at each budget")
    ap.add_argument("--out", default="work-demo-training")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    lib, labels, why = demo._library()
    if labels is not None:
        raise SystemExit(f"this benchmark needs the physical library; found {why}")
    paths, n_spectra = demo.make_demo_survey(out / "mock", lib, min(demo.MAX_STARS, len(lib)))
    truth = Table.read(paths["truth"])
    ref_ids = np.asarray(Table.read(paths["reference"])["TARGETID"])
    results = []
    refs_list = [int(r) for r in args.refs_per_step.split(",")] if args.refs_per_step else [demo.DEMO_REFS_PER_STEP]
    for steps, refs in [(int(s), r) for s in args.steps.split(",") for r in refs_list]:
        demo.DEMO_STEPS = steps
        demo.DEMO_REFS_PER_STEP = refs
        run = out / f"steps-{steps}-refs-{refs}"
        run.mkdir(exist_ok=True)
        cfg = run / "demo.toml"
        text = demo._config_text(None, False, physical=True, n_spectra=n_spectra)
        cfg.write_text(text.replace('"mock/', f'"{(out / "mock").resolve()}/'))
        t0 = time.perf_counter()
        cat = read_catalogue(Pipeline(cfg).run())
        seconds = time.perf_counter() - t0
        held = ~np.isin(np.asarray(cat["TARGETID"]), ref_ids)
        v = {str(r["QUANTITY"]): r for r in validate(cat[held], truth)}
        results.append((f"{steps} optimizer steps, {refs or 'all'} reference points per step", seconds,
                        int(held.sum()), v))
    base = results[0][3]
    print(f"library: {why}; {n_spectra} spectra, reference fraction {demo.REF_FRACTION}")
    for name, seconds, n_held, v in results:
        print(f"\n{name}: pipeline {seconds:.0f} s; {n_held} held-out survey spectra")
        print(f"  {'label':<7} {'scatter':>9} {'vs base':>8} {'scatter/median tot':>19}")
        for n in SHOWN:
            r = v[n]
            print(f"  {n:<7} {r['SCATTER']:>9.4g} {r['SCATTER'] / base[n]['SCATTER']:>8.2f} "
                  f"{r['SCATTER'] / r['MEDIAN_ERR_TOT']:>19.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
