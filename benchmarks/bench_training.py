"""Benchmark: one DD-Payne training epoch on the paper's problem size.

3627 stars × the DESI merged grid (7781 pixels), 15 labels, two hidden layers of 40 neurons, batches of
512 (paper §3.2–3.3). Everything is measured in this process, on this machine:

1. the batched emulator's epoch through the real trainer (``train_emulator``), data term only
   (``regularizer='none'``), over several epochs, with the process RSS after each epoch (peak memory
   must not grow with epochs);
2. the same epoch with the Kurucz regularizer (101 reference points × 15 labels; synthetic gradient
   spectra of the right shape), finite-difference (default) and analytic model derivatives;
3. a naive baseline: one ``torch.nn.Sequential`` per pixel trained in a Python loop over pixels (its
   own Adam per pixel, same batches). It is timed on a subset of pixels and scaled to 7781 (printed);
4. a dense float32 matmul (4096²) for the machine's attainable FLOP rate, and the batched epoch's
   achieved FLOP rate as a fraction of it.

Usage::

    python benchmarks/bench_training.py [--epochs 3] [--naive-pixels 150] [--threads N] [--quick]
                                        [--analytic] [--skip-regularizer]

``--quick`` uses 1000 pixels (for a smoke run). Prints a summary table at the end.
"""
from __future__ import annotations

import argparse
import resource
import time

import numpy as np
import psutil
import torch

from ddpayne.labels import LABEL_NAMES
from ddpayne.io.batch import SpectrumBatch
from ddpayne.model.training import TrainingSettings, train_emulator
from ddpayne.physics.gradients import GradientSpectra
from ddpayne.prepare.grid import desi_grid
from astropy.table import Table

N_STARS = 3627
N_HIDDEN = 40
BATCH = 512


def make_data(n_pix: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    wave = desi_grid()[:n_pix] if n_pix < 7781 else desi_grid()
    lo = np.array([3800, 0.5, 0.5, -3.5] + [-0.5] * 11, float)
    hi = np.array([7500, 5.0, 3.0, 0.5] + [0.8] * 11, float)
    labels = lo + rng.uniform(0, 1, (N_STARS, 15)) * (hi - lo)
    # a spectrum-like flux: lines whose depth follows a few labels (content does not matter for timing)
    centres = rng.uniform(wave[0], wave[-1], 400)
    depth = 0.3 * rng.uniform(0, 1, 400)
    prof = np.zeros(wave.size)
    for c, d in zip(centres, depth):
        prof += d * np.exp(-0.5 * ((wave - c) / 1.2) ** 2)
    scale = 1 + 0.3 * (labels[:, 3] + 1)[:, None]
    flux = np.clip(1 - prof[None] * scale, 0.05, 1) + rng.normal(0, 0.01, (N_STARS, wave.size))
    ivar = np.full(flux.shape, 1e4, np.float32)
    meta = Table({"ID": np.arange(N_STARS).astype(str), "SNR": np.full(N_STARS, 100.0)})
    batch = SpectrumBatch(wave, flux.astype(np.float32), ivar, meta)
    ref = lo + rng.uniform(0.1, 0.9, (101, 15)) * (hi - lo)
    steps = np.array([100, 0.1, 0.1] + [0.1] * 12)
    grads = rng.normal(0, 0.01, (101, 15, wave.size)) / np.where(np.arange(15) == 0, 100, 1)[None, :, None]
    g = GradientSpectra(wave, LABEL_NAMES, ref, steps, grads, np.ones((101, wave.size)))
    return batch, labels, g


def rss_mb() -> float:
    return psutil.Process().memory_info().rss / 2**20


def gpu_peak_mb(device: str) -> float:
    """Peak GPU memory allocated by torch so far (MB); NaN on the CPU."""
    if not str(device).startswith("cuda"):
        return float("nan")
    return torch.cuda.max_memory_allocated() / 2**20


def batched_epochs(batch, labels, regularizer, options, epochs, threads, device="cpu"):
    rows = []

    def cb(epoch, row):
        rows.append((row["seconds"], rss_mb(), gpu_peak_mb(device)))

    s = TrainingSettings(epochs=epochs, batch_size=BATCH, validation_fraction=0.0, progress=False,
                         num_threads=threads, allow_underdetermined=True, device=device)
    train_emulator(batch, labels, LABEL_NAMES, regularizer=regularizer, regularizer_options=options,
                   emulator_options={"n_hidden": N_HIDDEN}, settings=s, callback=cb)
    return rows


def naive_epoch(batch, labels, n_pix_subset: int, seed: int = 0, device: str = "cpu") -> float:
    """One epoch of per-pixel torch.nn modules trained pixel by pixel (seconds for the subset)."""
    torch.manual_seed(seed)
    x = torch.as_tensor((labels - labels.min(0)) / np.ptp(labels, 0) - 0.5, dtype=torch.float32,
                        device=device)
    y = torch.as_tensor(batch.flux[:, :n_pix_subset], device=device)
    w = torch.as_tensor(batch.ivar[:, :n_pix_subset], device=device)
    nets = [torch.nn.Sequential(torch.nn.Linear(15, N_HIDDEN), torch.nn.Sigmoid(),
                                torch.nn.Linear(N_HIDDEN, N_HIDDEN), torch.nn.Sigmoid(),
                                torch.nn.Linear(N_HIDDEN, 1)).to(device) for _ in range(n_pix_subset)]
    opts = [torch.optim.Adam(n.parameters(), lr=0.01) for n in nets]
    perm = torch.randperm(N_STARS).to(device)
    t0 = time.perf_counter()
    for p, (net, opt) in enumerate(zip(nets, opts)):
        for b0 in range(0, N_STARS, BATCH):
            idx = perm[b0:b0 + BATCH]
            opt.zero_grad()
            f = net(x[idx])[:, 0]
            loss = ((f - y[idx, p]) ** 2 * w[idx, p]).mean()
            loss.backward()
            opt.step()
    if device != "cpu":
        torch.cuda.synchronize()
    return time.perf_counter() - t0


def matmul_gflops(n: int = 4096, reps: int = 5, device: str = "cpu") -> float:
    a = torch.randn(n, n, device=device)
    b = torch.randn(n, n, device=device)
    a @ b
    if device != "cpu":
        torch.cuda.synchronize()
    t0 = time.perf_counter()
    for _ in range(reps):
        a @ b
    if device != "cpu":
        torch.cuda.synchronize()
    return 2 * n**3 * reps / (time.perf_counter() - t0) / 1e9


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--epochs", type=int, default=3, help="data-only epochs (memory trace)")
    ap.add_argument("--naive-pixels", type=int, default=150)
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--quick", action="store_true", help="1000 pixels instead of 7781")
    ap.add_argument("--device", default="cpu", help="cpu or cuda (both the batched and the naive code)")
    ap.add_argument("--skip-regularizer", action="store_true")
    ap.add_argument("--analytic", action="store_true",
                    help="also time the regularizer with analytic model derivatives")
    args = ap.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    n_pix = 1000 if args.quick else 7781
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, {N_STARS} stars x {n_pix} pixels, "
          f"15 labels, {N_HIDDEN}-{N_HIDDEN} network, batches of {BATCH}", flush=True)
    batch, labels, grads = make_data(n_pix)
    L, H = 15, N_HIDDEN
    flop_fwd = 2 * (L * H + H * H + H)              # multiply-adds per star per pixel, forward
    flops_epoch = 3 * flop_fwd * N_STARS * n_pix    # forward + backward (~2x forward)

    gf_ref = matmul_gflops(device=args.device)
    print(f"dense float32 matmul 4096^2: {gf_ref:.1f} GFLOP/s", flush=True)

    rows = batched_epochs(batch, labels, "none", None, args.epochs, args.threads, args.device)
    times = [r[0] for r in rows]
    steady = times[1:] if len(times) > 1 else times
    t_epoch = float(np.min(steady))      # least-disturbed epoch (the machine may be shared), as timeit
    t_median = float(np.median(steady))
    print("batched epochs (data term only): " + ", ".join(f"{t:.2f}s" for t in times), flush=True)
    print("RSS after each epoch (MB): " + ", ".join(f"{r[1]:.0f}" for r in rows), flush=True)
    if args.device.startswith("cuda"):
        print("peak GPU memory after each epoch (MB): " + ", ".join(f"{r[2]:.0f}" for r in rows), flush=True)

    t_naive_sub = naive_epoch(batch, labels, args.naive_pixels, device=args.device)
    t_naive = t_naive_sub * n_pix / args.naive_pixels
    print(f"naive per-pixel nn.Module loop: {t_naive_sub:.2f}s for {args.naive_pixels} pixels -> "
          f"{t_naive:.1f}s scaled to {n_pix} pixels", flush=True)

    reg_rows = {}
    if not args.skip_regularizer:
        for deriv in (("finite", "analytic") if args.analytic else ("finite",)):
            r = batched_epochs(batch, labels, "kurucz", {"gradients": grads, "derivative": deriv,
                                                         "outside": "include"}, 1, args.threads,
                               args.device)
            reg_rows[deriv] = r[0][0]
            print(f"batched epoch with the Kurucz regularizer ({deriv} derivatives, 101 refs x 15 labels):"
                  f" {r[0][0]:.2f}s, RSS {r[0][1]:.0f} MB", flush=True)

    gf = flops_epoch / t_epoch / 1e9
    steps = -(-N_STARS // BATCH)
    flop_step = 3 * flop_fwd * BATCH
    print("\nsummary")
    print(f"  epoch, batched (data term)            {t_epoch:8.2f} s   (min after the first; median "
          f"{t_median:.2f} s)")
    print(f"  epoch, naive per-pixel loop (scaled)  {t_naive:8.1f} s")
    print(f"  speed-up batched / naive              {t_naive / t_epoch:8.1f} x   (target >= 50 x; "
          f"{t_naive / t_median:.1f} x with the median epoch)")
    naive_step = t_naive_sub / args.naive_pixels / steps
    ideal_step = flop_step / gf_ref / 1e9
    print(f"  naive time per pixel per step         {naive_step * 1e3:8.2f} ms; at the dense-matmul rate the "
          f"batched step would need {ideal_step * 1e3:.3f} ms, so the ratio cannot exceed "
          f"{naive_step / ideal_step:.0f} x on this machine")
    print(f"  achieved FLOP rate (batched)          {gf:8.1f} GFLOP/s = {gf / gf_ref:.2f} of a dense matmul "
          f"({gf_ref:.1f} GFLOP/s)")
    for k, v in reg_rows.items():
        print(f"  epoch with Kurucz regularizer ({k:8s}) {v:8.2f} s")
    rss = [r[1] for r in rows]
    growth = (rss[-1] - rss[min(1, len(rss) - 1)])
    print(f"  RSS growth epoch 2 -> {len(rss)}             {growth:8.1f} MB (RSS per epoch: "
          f"{', '.join(f'{x:.0f}' for x in rss)} MB; ru_maxrss "
          f"{resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB)")


if __name__ == "__main__":
    main()
