"""Label recovery of a fidelity-run model on mock stars it never saw.

``benchmarks/science_training.py`` trains the paper-like model (40 neurons, 3627 of the library's stars);
``benchmarks/fidelity_merge.py --save-model`` joins the strided parts into the full-grid model. This
script takes such a model and fits the library stars the training did not pick (the same seeded draw,
so they are disjoint from the training and validation stars), at fixed S/N with Gaussian noise, with
the ``lm`` fitter. Per label it reports the bias and robust scatter against the true labels, the
median formal error, the ratio scatter / formal error and the floor (the scatter the noise does not
explain), for the stars inside the training label box (the ones a user would keep) and for all, and
the scatter against the physical Cramér–Rao bound (each star's noise, the Kurucz gradient spectra of
its nearest reference point; the paper's Fig. 9 finds the scatter about twice the bound).

Usage::

    python benchmarks/fidelity_fit.py work-fidelity-full/fidelity-joined.pt --snr 30,100 \\
        --out work-fidelity-full

A model trained on every K-th pixel (one part) works too: the spectra are cut to its pixels.
"""
from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from pathlib import Path

import numpy as np
from astropy.table import Table

sys.path.insert(0, str(Path(__file__).resolve().parent))
from science_training import label_array, noisy_batch, training_pick  # noqa: E402

from ddpayne import registry  # noqa: E402
from ddpayne.fit.calibration import robust_sigma  # noqa: E402
from ddpayne.labels import LABEL_NAMES  # noqa: E402
from ddpayne.model.emulator import load_emulator  # noqa: E402

log = logging.getLogger("fidelity_fit")


def unseen_stars(lib, n_train: int, seed: int) -> np.ndarray:
    """Positions in ``lib`` of the stars the fidelity run did not draw for training."""
    _, pick = training_pick(lib, n_train, seed)
    return np.setdiff1d(np.arange(len(lib)), pick)


def recovery_table(fit: Table, truth: np.ndarray, names, inside: np.ndarray,
                   crb: np.ndarray | None = None) -> Table:
    """Per label: bias, robust scatter, median formal error, their ratio and the floor, in the box and all.

    ``FLOOR`` is ``sqrt(scatter² − error²)`` (0 when the noise explains the scatter): the part of the
    scatter that comes from the model, which the paper adds to the formal errors as a systematic term.
    With ``crb`` (n, n_label: the physical Cramér–Rao bound of each spectrum) also its median ``CRB``
    and ``SCATTER / CRB`` (paper Fig. 9: about 2).
    """
    rows = []
    usable = np.asarray(fit["STATUS"]) <= 1
    for k, name in enumerate(names):
        d = np.asarray(fit[name], float) - truth[:, k]
        err = np.asarray(fit[f"{name}_ERR"], float)
        row = {"LABEL": name}
        for tag, sel in (("IN", usable & inside), ("ALL", usable)):
            row[f"BIAS_{tag}"] = float(np.median(d[sel]))
            row[f"SCATTER_{tag}"] = float(robust_sigma(d[sel]))
            row[f"ERR_{tag}"] = float(np.median(err[sel]))
            row[f"RATIO_{tag}"] = row[f"SCATTER_{tag}"] / row[f"ERR_{tag}"]
            # the scatter the noise does not explain: the model's own error (a systematic floor)
            excess = row[f"SCATTER_{tag}"] ** 2 - row[f"ERR_{tag}"] ** 2
            row[f"FLOOR_{tag}"] = float(np.sqrt(max(excess, 0.0)))
            if crb is not None:
                row[f"CRB_{tag}"] = float(np.nanmedian(crb[sel, k]))
                row[f"OVER_CRB_{tag}"] = row[f"SCATTER_{tag}"] / row[f"CRB_{tag}"]
        rows.append(row)
    return Table(rows=rows)


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("model", help="a saved model (fidelity.pt of a run, or the joined model)")
    ap.add_argument("--library", default=None, help="mock library FITS (default: the committed one)")
    ap.add_argument("--gradients", default=None,
                    help="gradient-spectra FITS for the physical Cramér–Rao bound "
                         "(default: the committed one)")
    ap.add_argument("--n-train", type=int, default=3627, help="as given to science_training.py")
    ap.add_argument("--seed", type=int, default=0, help="as given to science_training.py")
    ap.add_argument("--snr", type=lambda t: [float(v) for v in t.split(",") if v], default=[30.0, 100.0],
                    help="S/N per pixel of the mock spectra, comma-separated")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--out", default=None, help="folder for fidelity-fit-snr*.ecsv and the summary")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO)
    import torch

    from ddpayne.fit.cramer_rao import crb_per_spectrum
    from ddpayne.mock.library import MockLibrary
    from ddpayne.physics.build_gradients import DEFAULT_PRODUCT
    from ddpayne.physics.gradients import GradientSpectra

    torch.set_num_threads(args.threads)
    lib = MockLibrary.read(args.library)
    emu = load_emulator(args.model)
    cols = np.flatnonzero(np.isin(lib.wavelength, emu.wavelength))
    if cols.size != emu.n_pix:
        raise SystemExit(f"{args.model}: {emu.n_pix - cols.size} of the model's pixels are not pixels of the "
                         f"library's grid")
    idx = unseen_stars(lib, args.n_train, args.seed)
    if not idx.size:
        raise SystemExit(f"the library's {len(lib)} stars were all drawn for training "
                         f"(--n-train {args.n_train})")
    names = list(emu.label_names)
    grads = GradientSpectra.read(args.gradients or DEFAULT_PRODUCT).matched_to(
        emu.wavelength, what=f"the model {args.model}")
    truth = label_array(lib.labels[idx], names)
    inside = np.all((truth >= emu.label_min) & (truth <= emu.label_max), axis=1)
    print(f"{idx.size} unseen stars, {int(inside.sum())} inside the training label box; model "
          f"{emu.n_pix} pixels, {emu.n_hidden} neurons", flush=True)
    fitter = registry.create("fitter", "lm")
    ids = np.asarray(lib.labels["STAR_ID"])[idx] if "STAR_ID" in lib.labels.colnames else idx
    out = Path(args.out) if args.out else None
    if out:
        out.mkdir(parents=True, exist_ok=True)
    summary = {"command": " ".join(["python benchmarks/fidelity_fit.py"] +
                                   (sys.argv[1:] if argv is None else list(argv))),
               "model": str(args.model), "n_pix": int(emu.n_pix), "n_unseen": int(idx.size),
               "n_inside": int(inside.sum()), "snr": {}}
    for snr in args.snr:
        rng = np.random.default_rng(args.seed + int(snr))
        batch = noisy_batch(lib.flux[idx][:, cols], lib.wavelength[cols], np.full(idx.size, snr), ids, rng)
        t0 = time.time()
        fit = fitter.fit(emu, batch)
        secs = time.time() - t0
        # the bound from the physics of each star's nearest reference point, with its own noise
        crb, _ = crb_per_spectrum(grads, truth, batch.ivar, names)
        tab = recovery_table(fit, truth, names, inside, crb)
        n_bad = int((np.asarray(fit["STATUS"]) > 1).sum())
        tab.meta.update({"SNR": snr, "N_UNSEEN": int(idx.size), "N_INSIDE": int(inside.sum()),
                         "N_FAILED": n_bad, "MODEL": str(args.model), "SECONDS": secs})
        for c in tab.colnames[1:]:
            tab[c].format = ".4g"
        print(f"S/N {snr:g}: {idx.size} fits in {secs:.1f} s, {n_bad} failed "
              f"(median chi2/pixel {np.median(np.asarray(fit['RCHI2'])):.3f})")
        print(tab)
        if out:
            tab.write(out / f"fidelity-fit-snr{snr:g}.ecsv", format="ascii.ecsv", overwrite=True)
        summary["snr"][f"{snr:g}"] = {"seconds": secs, "n_failed": n_bad,
                                      "median_rchi2": float(np.median(np.asarray(fit["RCHI2"]))),
                                      "scatter_inside": {r["LABEL"]: r["SCATTER_IN"] for r in tab},
                                      "bias_inside": {r["LABEL"]: r["BIAS_IN"] for r in tab},
                                      "scatter_over_err_inside": {r["LABEL"]: r["RATIO_IN"] for r in tab},
                                      "floor_inside": {r["LABEL"]: r["FLOOR_IN"] for r in tab},
                                      "scatter_over_crb_inside": {r["LABEL"]: r["OVER_CRB_IN"] for r in tab}}
    if out:
        (out / "fidelity-fit-summary.json").write_text(json.dumps(summary, indent=2))
    return summary


if __name__ == "__main__":
    main()
