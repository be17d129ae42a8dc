"""Join the strided gradient-fidelity runs into the full-grid model and measure ρ on the whole grid.

``benchmarks/science_training.py --pixel-stride K --pixel-offset J`` trains the paper-like model on
every K-th pixel from pixel J. Each pixel has its own network and the loss is a sum of per-pixel terms,
so the K runs J = 0, …, K−1 (with the same seed, stars, epochs and regularizer settings) together train
every pixel of the grid as one full-grid run would, up to the random initial weights and the epoch kept
as best in each run. This script joins their models (:meth:`MLPEmulator.join`) and computes the ρ
tables of ``science_training.py`` (inside, held-out and edge reference points) on the joined model and
the full product; it also prints the spread of ρ between the parts.

Usage (the parts' settings must be given again where they differ from the defaults)::

    python benchmarks/fidelity_merge.py work-fid-o0 work-fid-o1 ... work-fid-o9 --holdout-refs 6 \\
        --out work-fidelity-full

``--save-model`` also writes the joined model, for ``benchmarks/fidelity_fit.py`` (label recovery of
the library stars the training never saw).
"""
from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

import numpy as np
from astropy.table import Table

sys.path.insert(0, str(Path(__file__).resolve().parent))
from science_training import holdout_references, label_array, report_rho, training_pick  # noqa: E402

from ddpayne.labels import LABEL_NAMES  # noqa: E402
from ddpayne.model.emulator import load_emulator  # noqa: E402
from ddpayne.physics.gradients import GradientSpectra  # noqa: E402

log = logging.getLogger("fidelity_merge")


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("parts", nargs="+", help="output folders of the strided science_training.py runs")
    ap.add_argument("--library", default=None, help="mock library FITS (default: the committed one)")
    ap.add_argument("--gradients", default=None, help="gradient-spectra FITS (default: the committed one)")
    ap.add_argument("--n-train", type=int, default=3627)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--holdout-refs", type=int, default=0)
    ap.add_argument("--coverage-margins", type=lambda t: [float(v) for v in t.split(",") if v],
                    default=[0.05])
    ap.add_argument("--out", default="work-fidelity-full")
    ap.add_argument("--save-model", action="store_true",
                    help="also save the joined model as OUT/fidelity-joined.pt (for fidelity_fit.py)")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO)
    from ddpayne.mock.library import MockLibrary
    from ddpayne.physics.build_gradients import DEFAULT_PRODUCT

    lib = MockLibrary.read(args.library)
    grads = GradientSpectra.read(args.gradients or DEFAULT_PRODUCT)
    parts = [Path(p) for p in args.parts]
    models = [load_emulator(p / "fidelity.pt") for p in parts]
    part_rho = [Table.read(p / "fidelity-rho.ecsv", format="ascii.ecsv") for p in parts]
    for p, t in zip(parts, part_rho):
        if t.meta.get("N_TRAIN") != min(args.n_train, len(lib)):
            raise SystemExit(f"{p}: trained on {t.meta.get('N_TRAIN')} stars, not the "
                             f"{min(args.n_train, len(lib))} of --n-train {args.n_train}")
    emu = type(models[0]).join(models)
    covered = np.isin(lib.wavelength, emu.wavelength)
    if not np.all(np.isin(emu.wavelength, lib.wavelength)):
        raise SystemExit("the parts' pixels are not pixels of the library's grid")
    print(f"{len(parts)} parts, {emu.n_pix} of the grid's {lib.wavelength.size} pixels "
          f"({covered.mean():.1%})", flush=True)
    grads = grads.matched_to(emu.wavelength, what=f"the {len(parts)} joined parts")
    _, pick = training_pick(lib, args.n_train, args.seed)
    lab = label_array(lib.labels[pick], LABEL_NAMES)
    _, held = holdout_references(grads, lab, args.holdout_refs, args.seed)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    meta = dict(part_rho[0].meta)
    meta.update({"N_PIX": int(emu.n_pix), "N_PARTS": len(parts), "PIXEL_STRIDE": 1,
                 "PARTS": ",".join(str(p) for p in parts)})
    meta.pop("PIXEL_OFFSET", None)
    heading = (f"joined model: {meta.get('N_TRAIN')} training stars, {meta.get('EPOCHS')} epochs, "
               f"{emu.n_hidden} neurons, {emu.n_pix} pixels")
    rho, widened, independent = report_rho(emu, grads, lab, held, args.coverage_margins, out, meta,
                                           heading)
    spread = {}
    for name in rho["LABEL"]:
        vals = [float(t["RHO"][list(t["LABEL"]).index(name)]) for t in part_rho]
        spread[str(name)] = [min(vals), max(vals)]
    print("rho of the parts alone (inside points), min-max:",
          ", ".join(f"{k} {v[0]:.3f}-{v[1]:.3f}" for k, v in spread.items()))
    summary = {"command": " ".join(["python benchmarks/fidelity_merge.py"] +
                                   (sys.argv[1:] if argv is None else list(argv))),
               "n_pix": int(emu.n_pix), "grid_fraction": float(covered.mean()),
               "rho": {str(r["LABEL"]): float(r["RHO"]) for r in rho},
               "N_REF_INSIDE": int(rho["N_REF"].max()),
               "widened_margin": widened, "not_trained_at": independent,
               "parts_rho_min_max": spread}
    if args.save_model:
        emu.save(out / "fidelity-joined.pt")
        summary["model"] = str(out / "fidelity-joined.pt")
    (out / "summary.json").write_text(json.dumps(summary, indent=2))
    print(json.dumps(summary, indent=2))
    return summary


if __name__ == "__main__":
    main()
