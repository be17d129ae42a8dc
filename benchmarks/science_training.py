"""Science validation of the DD-Payne model on the mock DESI library (issue 4 targets).

1. *Gradient fidelity.* Train on a paper-like set (default 3627 stars drawn from the mock library, S/N
   uniform in 20–150, noise added with a seed) with the Kurucz regularizer, then report the per-label
   Pearson ρ between model and physical gradient spectra at the reference points inside the training
   coverage (target: ρ >= 0.9 for every label with a real signal). The regularizer trains at those
   points, so ρ there shows that the penalty works; ``--holdout-refs N`` keeps N inside points away from
   it and reports ρ at them separately, and ``--coverage-margins`` adds the points just past a label's
   training edge (outside the regularizer's strict box, so also not trained at): the independent tests.
2. *Does the regularizer matter?* Train on a small set (default 300 stars) whose [Mg/Fe] is tightly tied
   to [Fe/H] (library stars within ``--tie`` dex of a linear [Mg/Fe]([Fe/H]) relation), once with the
   Kurucz regularizer and once without; recover [Mg/Fe] of held-out stars that break the relation
   (|offset| > ``--break`` dex) at S/N 50 by a χ² scan over [Mg/Fe] with the other labels at their
   true values, and report the recovered departure from the relation (slope, correlation) and the
   [Mg/Fe] rms error of both models.

Usage (once ``ddpayne/data/mock_library.fits`` and ``ddpayne/data/gradients_desi.fits`` exist)::

    python benchmarks/science_training.py --epochs 2000 --out work-science

``--pixel-stride K`` trains on every K-th pixel of the grid only. The loss is a sum of per-pixel terms
(χ² and the regularizer's Σ_k D_k |Δf'_k| of each pixel), every pixel has its own network and Adam's
update is per parameter, so each trained pixel evolves exactly as in a full-grid run; what differs is
only the random initial weights and the epoch kept as best (chosen on the summed validation loss). ρ over
the strided pixels is then an estimate of the full-grid ρ at 1/K of the cost, which makes the 40-neuron
fidelity run possible on a CPU. ``--pixel-offset J`` starts the stride at pixel J: the K runs with
J = 0, …, K−1 (independent processes, on as many cores or machines as there are) together train every
pixel of the grid, and ``benchmarks/fidelity_merge.py`` joins their models into the full-grid model and
measures ρ on it.

Writes the models, histories, the ρ table, and the figures (Fig. 3 loss, Fig. 4 [Mg/Fe] gradient) to
``--out``. Runtime scales with epochs (see docs/performance_training.rst for the time per epoch).
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

from ddpayne.io.batch import SpectrumBatch
from ddpayne.labels import LABEL_NAMES
from ddpayne.model.diagnostics import gradient_correlation, reference_coverage
from ddpayne.model.training import TrainingSettings, train_emulator
from ddpayne.physics.gradients import GradientSpectra

log = logging.getLogger("science_training")


def noisy_batch(flux: np.ndarray, wave: np.ndarray, snr: np.ndarray, ids, rng) -> SpectrumBatch:
    """Add Gaussian noise at per-star S/N; uncovered (NaN) pixels get ivar 0."""
    sigma = 1.0 / np.asarray(snr, float)[:, None]
    good = np.isfinite(flux)
    noisy = np.where(good, flux + rng.normal(0, 1, flux.shape) * sigma, 0.0)
    ivar = np.where(good, 1.0 / sigma**2 * np.ones_like(flux), 0.0)
    meta = Table({"ID": np.asarray(ids).astype(str), "STAR_ID": np.asarray(ids).astype(str),
                  "SNR": np.asarray(snr, float)})
    return SpectrumBatch(wave, noisy.astype(np.float32), ivar.astype(np.float32), meta)


def label_array(tab: Table, names) -> np.ndarray:
    return np.column_stack([np.asarray(tab[n], float) for n in names])


def mg_scan(emu, flux, ivar, labels, k_mg: int, lo: float, hi: float, n: int = 121) -> np.ndarray:
    """χ² scan over [Mg/Fe] with the other labels fixed at ``labels``."""
    grid = np.linspace(lo, hi, n)
    out = np.empty(len(labels))
    for i in range(len(labels)):
        x = np.repeat(labels[i:i + 1], n, axis=0)
        x[:, k_mg] = grid
        chi2 = (((emu.predict(x) - flux[i]) ** 2) * ivar[i]).sum(axis=1)
        out[i] = grid[np.argmin(chi2)]
    return out


def independent_scatter(lab: np.ndarray) -> dict:
    """Each label's scatter that the other labels do not predict (the data's own leverage on its gradient).

    A least-squares fit of label k on the other labels (linear) plus TEFF², LOGG² and TEFF·LOGG (the
    Kiel-diagram curvature); returns ``{label: [std, residual std]}``. A label mostly predicted by the
    others (v_mic by log g and Teff) gives the data term little to tell its lines from theirs.
    """
    t, g = lab[:, 0] / 1000.0, lab[:, 1]
    out = {}
    for k, name in enumerate(LABEL_NAMES):
        others = np.delete(lab, k, axis=1)
        curv = {0: [g**2], 1: [t**2]}.get(k, [t**2, g**2, t * g])   # curvature of the other Kiel labels
        x = np.column_stack([np.ones(len(lab)), others] + curv)
        coef = np.linalg.lstsq(x, lab[:, k], rcond=None)[0]
        out[name] = [float(lab[:, k].std()), float((lab[:, k] - x @ coef).std())]
    return out


def holdout_references(grads, lab: np.ndarray, n_holdout: int, seed: int):
    """Keep ``n_holdout`` (``--holdout-refs``) reference points inside the coverage away from the regularizer.

    Returns the product the regularizer trains on and the indices (into ``grads``) of the held-out
    points, drawn with their own seed so that the training stars do not change.
    """
    if not n_holdout:
        return grads, np.array([], dtype=int)
    gi = [grads.label_index(n) for n in LABEL_NAMES]
    inside = np.flatnonzero(reference_coverage(grads.ref_labels[:, gi], LABEL_NAMES, lab.min(axis=0),
                                               lab.max(axis=0), train_labels=lab) == 0)
    if inside.size < 2 * n_holdout:
        raise SystemExit(f"only {inside.size} reference points lie inside the training coverage: cannot hold "
                         f"out {n_holdout} and train on at least as many")
    held = np.sort(np.random.default_rng(seed + 7).choice(inside, n_holdout, replace=False))
    keep = np.setdiff1d(np.arange(grads.n_ref), held)
    log.info("holding out reference points %s from the regularizer", held.tolist())
    return grads.subset(refs=keep), held


def reg_options(grads, args) -> dict:
    """Options of the Kurucz regularizer: the product, and the reference subset per step if asked."""
    opts = {"gradients": grads}
    if args.refs_per_step:
        opts["refs_per_step"] = int(args.refs_per_step)
    if args.reg_weights:
        opts["weights"] = dict(args.reg_weights)
    return opts


def report_rho(emu, grads, lab: np.ndarray, held: np.ndarray, margins, out: Path, meta: dict,
               heading: str):
    """ρ tables of a trained model: the inside points, the held-out ones and the edge points.

    Writes ``fidelity-rho*.ecsv`` to ``out``, prints them, and returns the tables and a summary dict of
    the points the regularizer did not train at.
    """
    rho = gradient_correlation(emu, grads, train_labels=lab)
    rho.meta.update(meta)
    rho.write(out / "fidelity-rho.ecsv", format="ascii.ecsv", overwrite=True)
    print(heading)
    print(rho)
    independent = {}
    if held.size:   # inside the coverage, but never seen by the regularizer: an independent test
        unseen = gradient_correlation(emu, grads.subset(refs=held), train_labels=lab)
        unseen.meta.update(rho.meta, HELD_OUT=",".join(map(str, held)))
        unseen.write(out / "fidelity-rho-heldout.ecsv", format="ascii.ecsv", overwrite=True)
        print(f"the {held.size} held-out reference points (regularizer never trained at them):")
        print(unseen)
        independent["held_out"] = {r["LABEL"]: float(r["RHO"]) for r in unseen}
        independent["held_out"]["N_REF_INSIDE"] = int(unseen["N_REF"].max())
    widened = {}
    gi = [grads.label_index(n) for n in LABEL_NAMES]
    strict = reference_coverage(grads.ref_labels[:, gi], LABEL_NAMES, emu.label_min, emu.label_max,
                                train_labels=lab) == 0
    for m in margins:   # the strict box excludes points just past a label's training edge
        wide = gradient_correlation(emu, grads, train_labels=lab, margin=m)
        wide.meta.update(rho.meta, MARGIN=float(m))
        wide.write(out / f"fidelity-rho-margin{m:g}.ecsv", format="ascii.ecsv", overwrite=True)
        print(f"coverage box widened by {m:g} of each label's range on both sides:")
        print(wide)
        widened[f"{m:g}"] = {r["LABEL"]: float(r["RHO"]) for r in wide}
        widened[f"{m:g}"]["N_REF_INSIDE"] = int(wide["N_REF"].max())
        # the points only the widened box admits: the regularizer (strict box) did not train at them
        extra = np.flatnonzero(~strict & (reference_coverage(
            grads.ref_labels[:, gi], LABEL_NAMES, emu.label_min, emu.label_max, train_labels=lab,
            margin=m) == 0))
        if extra.size:
            edge = gradient_correlation(emu, grads.subset(refs=extra), train_labels=lab, margin=m)
            edge.write(out / f"fidelity-rho-margin{m:g}-untrained.ecsv", format="ascii.ecsv", overwrite=True)
            print(f"of which the {extra.size} points outside the strict box (not trained at):")
            print(edge)
            independent[f"edge_margin{m:g}"] = {r["LABEL"]: float(r["RHO"]) for r in edge}
            independent[f"edge_margin{m:g}"]["N_REF_INSIDE"] = int(edge["N_REF"].max())
    return rho, widened, independent


def training_pick(lib, n_train: int, seed: int):
    """The fidelity run's training stars: (its random generator, positions in ``lib``)."""
    rng = np.random.default_rng(seed)
    n = min(n_train, len(lib))
    return rng, rng.choice(len(lib), n, replace=False)


def fidelity(lib, grads, args, out: Path) -> dict:
    rng, pick = training_pick(lib, args.n_train, args.seed)
    n = pick.size
    snr = rng.uniform(20, 150, n)
    ids = np.asarray(lib.labels["STAR_ID"])[pick] if "STAR_ID" in lib.labels.colnames else pick
    batch = noisy_batch(lib.flux[pick], lib.wavelength, snr, ids, rng)
    lab = label_array(lib.labels[pick], LABEL_NAMES)
    train_grads, held = holdout_references(grads, lab, args.holdout_refs, args.seed)
    epochs = args.epochs
    if args.time_budget:   # time a few epochs, then fit the run into the budget (a lent GPU has minutes)
        t0 = time.time()
        probe = TrainingSettings(epochs=6, seed=args.seed, device=args.device, num_threads=args.threads,
                                 progress=False, allow_underdetermined=args.allow_underdetermined)
        secs = []
        train_emulator(batch, lab, LABEL_NAMES, regularizer_options=reg_options(train_grads, args),
                       emulator_options={"n_hidden": args.hidden}, settings=probe,
                       callback=lambda epoch, row: secs.append(row["seconds"]))
        probe_total = time.time() - t0
        per_epoch = float(np.median(secs[1:]))            # the first epoch warms up
        setup = max(probe_total - sum(secs), 0.0)          # paid again by the real run
        left = args.time_budget - probe_total - setup
        epochs = max(10, min(args.epochs, int(0.85 * left / per_epoch)))
        print(f"time budget {args.time_budget:.0f} s: {per_epoch:.3f} s per epoch, {setup:.1f} s of setup "
              f"-> {epochs} epochs", flush=True)
    s = TrainingSettings(epochs=epochs, seed=args.seed, device=args.device,
                         checkpoint_every=max(1, epochs // 20), num_threads=args.threads,
                         allow_underdetermined=args.allow_underdetermined)
    emu, hist = train_emulator(batch, lab, LABEL_NAMES, regularizer_options=reg_options(train_grads, args),
                               emulator_options={"n_hidden": args.hidden}, settings=s,
                               checkpoint_dir=out / "fidelity-ckpt", output=out / "fidelity.pt")
    hist.write(out / "fidelity-history.ecsv", format="ascii.ecsv", overwrite=True)
    meta = {"N_TRAIN": int(n), "EPOCHS": int(epochs), "N_HIDDEN": int(args.hidden),
            "UNDERDETERMINED_ALLOWED": bool(args.allow_underdetermined),
            "PIXEL_STRIDE": int(args.pixel_stride), "PIXEL_OFFSET": int(args.pixel_offset),
            "N_PIX": int(lib.wavelength.size)}
    heading = (f"{n} training stars, {epochs} epochs, {args.hidden} neurons, {lib.wavelength.size} pixels "
               f"(every {args.pixel_stride}th of the grid)")
    rho, widened, independent = report_rho(emu, grads, lab, held, args.coverage_margins, out, meta, heading)
    from ddpayne.plots.training import plot_gradient_comparison, plot_loss_history

    plot_loss_history(hist).savefig(out / "fig03_loss.png", dpi=120)
    plot_gradient_comparison(emu, grads, "MG_FE", ref=0).savefig(out / "fig04_mgfe_gradient.png", dpi=120)
    result = {r["LABEL"]: float(r["RHO"]) for r in rho}
    scatter = independent_scatter(lab)
    print("label std and the part the other labels do not predict:",
          ", ".join(f"{k} {v[0]:.3g}/{v[1]:.3g}" for k, v in scatter.items()))
    result["label_std_and_independent_std"] = scatter
    result["N_REF_INSIDE"] = int(rho["N_REF"].max())
    if widened:
        result["widened_margin"] = widened
    if independent:
        result["not_trained_at"] = independent
    return result


def regularizer_matters(lib, grads, args, out: Path) -> dict:
    rng = np.random.default_rng(args.seed + 1)
    feh = np.asarray(lib.labels["FE_H"], float)
    mg = np.asarray(lib.labels["MG_FE"], float)
    coef = np.polyfit(feh, mg, 1)
    resid = mg - np.polyval(coef, feh)
    tied = np.flatnonzero(np.abs(resid) < args.tie)
    breaking = np.flatnonzero(np.abs(resid) > args.break_)
    if tied.size < args.n_small or breaking.size < 10:
        raise SystemExit(f"library has {tied.size} stars within {args.tie} dex of the [Mg/Fe]-[Fe/H] "
                         f"relation and {breaking.size} breaking it by > {args.break_} dex: need "
                         f"{args.n_small} and 10")
    train = rng.choice(tied, args.n_small, replace=False)
    test = rng.choice(breaking, min(args.n_test, breaking.size), replace=False)
    snr = rng.uniform(20, 150, train.size)
    batch = noisy_batch(lib.flux[train], lib.wavelength, snr, train, rng)
    lab = label_array(lib.labels[train], LABEL_NAMES)
    tb = noisy_batch(lib.flux[test], lib.wavelength, np.full(test.size, 50.0), test, rng)
    tlab = label_array(lib.labels[test], LABEL_NAMES)
    k = LABEL_NAMES.index("MG_FE")
    dep_test = resid[test]
    result = {"relation": coef.tolist(), "n_train": int(train.size), "n_test": int(test.size),
              "tie_dex": args.tie, "break_dex": args.break_,
              "train_corr_feh_mgfe": float(np.corrcoef(feh[train], mg[train])[0, 1]),
              "train_departure_rms": float(np.sqrt(np.mean(resid[train] ** 2))),
              "test_departure_rms": float(np.sqrt(np.mean(dep_test ** 2)))}
    print(f"training set: {train.size} stars, corr([Fe/H], [Mg/Fe]) = {result['train_corr_feh_mgfe']:.3f}, "
          f"departure rms {result['train_departure_rms']:.3f} dex; test set: {test.size} stars, departure rms "
          f"{result['test_departure_rms']:.3f} dex", flush=True)
    for reg in ("kurucz", "none"):
        t0 = time.time()
        s = TrainingSettings(epochs=args.epochs, seed=args.seed, device=args.device,
                             allow_underdetermined=True, num_threads=args.threads,
                             checkpoint_every=max(1, args.epochs // 20))
        emu, hist = train_emulator(batch, lab, LABEL_NAMES, regularizer=reg,
                                   regularizer_options=reg_options(grads, args) if reg == "kurucz" else None,
                                   emulator_options={"n_hidden": args.small_hidden}, settings=s,
                                   checkpoint_dir=out / f"small-{reg}-ckpt", output=out / f"small-{reg}.pt")
        fit = mg_scan(emu, tb.flux, tb.ivar, tlab, k, emu.label_min[k] - 0.3, emu.label_max[k] + 0.3)
        dep_true = tlab[:, k] - np.polyval(coef, tlab[:, 3])
        dep_fit = fit - np.polyval(coef, tlab[:, 3])
        result[reg] = {
            "mg_rms": float(np.sqrt(np.mean((fit - tlab[:, k]) ** 2))),
            "departure_slope": float(np.sum(dep_fit * dep_true) / np.sum(dep_true**2)),
            "departure_corr": float(np.corrcoef(dep_fit, dep_true)[0, 1]),
            "train_seconds": time.time() - t0,
        }
        print(reg, result[reg], flush=True)
    return result


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--library", default=None, help="mock library FITS (default: the committed one)")
    ap.add_argument("--gradients", default=None, help="gradient-spectra FITS (default: the committed one)")
    ap.add_argument("--out", default="work-science")
    ap.add_argument("--epochs", type=int, default=2000)
    ap.add_argument("--n-train", type=int, default=3627)
    ap.add_argument("--n-small", type=int, default=300)
    ap.add_argument("--n-test", type=int, default=200)
    ap.add_argument("--hidden", type=int, default=40, help="neurons of the paper-like model")
    ap.add_argument("--small-hidden", type=int, default=10, help="neurons for the 300-star models")
    ap.add_argument("--tie", type=float, default=0.03)
    ap.add_argument("--break", dest="break_", type=float, default=0.12)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--time-budget", type=float, default=None,
                    help="seconds for the fidelity training: fewer epochs than --epochs if they would not fit")
    ap.add_argument("--pixel-stride", type=int, default=1,
                    help="train on every K-th pixel of the grid only (each pixel has its own network, so the "
                         "per-pixel results, hence rho, are those of a full-grid run at 1/K of the cost)")
    ap.add_argument("--pixel-offset", type=int, default=0,
                    help="with --pixel-stride K: start at pixel J (0 <= J < K); the K runs with J = 0..K-1 "
                         "cover the whole grid and benchmarks/fidelity_merge.py joins them into one model")
    ap.add_argument("--refs-per-step", type=int, default=None,
                    help="regularizer reference points per step (default: all, the paper's loss)")
    ap.add_argument("--allow-underdetermined", action="store_true",
                    help="train the paper-like model even if the training spectra + gradient constraints "
                         "are fewer than its free parameters per pixel (a library smaller than ~2400 stars "
                         "at 40 neurons)")
    ap.add_argument("--coverage-margins", type=lambda t: [float(v) for v in t.split(",") if v], default=[0.05],
                    help="also report rho with the coverage box widened by these fractions of each label's "
                         "range (comma-separated; the strict box, margin 0, is always reported): reference "
                         "points at [Ca/Fe] = [Ti/Fe] = 0.40 lie a few hundredths of a dex past the library's "
                         "largest values and the strict box leaves them out")
    ap.add_argument("--reg-weights", default=None,
                    type=lambda t: [(k.strip(), float(v)) for k, v in (kv.split("=") for kv in t.split(",") if kv)],
                    help="per-label regularizer weights D_k overriding the defaults, e.g. VMIC=50,LOGG=50")
    ap.add_argument("--holdout-refs", type=int, default=0,
                    help="keep this many reference points inside the training coverage away from the "
                         "regularizer and report rho at them separately (an independent test of the "
                         "gradients; rho at the trained points only shows that the penalty works)")
    ap.add_argument("--skip-fidelity", action="store_true")
    ap.add_argument("--skip-small", action="store_true")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO)
    from ddpayne.mock.library import MockLibrary
    from ddpayne.physics.build_gradients import DEFAULT_PRODUCT

    lib = MockLibrary.read(args.library)
    grads = GradientSpectra.read(args.gradients or DEFAULT_PRODUCT)
    if not 0 <= args.pixel_offset < max(args.pixel_stride, 1):
        raise SystemExit(f"--pixel-offset {args.pixel_offset} must lie in 0..{args.pixel_stride - 1}")
    if args.pixel_stride > 1:   # every K-th pixel: the same per-pixel networks as a full-grid run
        cut = slice(args.pixel_offset, None, args.pixel_stride)
        wave = lib.wavelength[cut]
        lib = MockLibrary(wave, lib.flux[:, cut], lib.labels, lib.provenance)
        grads = grads.matched_to(wave, what=f"every {args.pixel_stride}th pixel of the DESI grid "
                                            f"from pixel {args.pixel_offset}")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    argv = sys.argv[1:] if argv is None else list(argv)
    summary = {"command": " ".join(["python benchmarks/science_training.py"] + argv),
               "library": repr(lib), "gradients": repr(grads), "gradients_sha256": grads.checksum()}
    if not args.skip_fidelity:
        summary["rho"] = fidelity(lib, grads, args, out)
    if not args.skip_small:
        summary["regularizer_matters"] = regularizer_matters(lib, grads, args, out)
    (out / "summary.json").write_text(json.dumps(summary, indent=2))
    print(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()
