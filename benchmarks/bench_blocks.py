"""Pixels per block of the MLP emulator's hand-written back-propagation, measured in one process.

For each (neurons, rows) case the χ² data term and its gradient (``MLPEmulator.data_term_backward``) are
timed on ``--pixels`` pixels with fixed blocks of 8…256 pixels and with the automatic choice
(``MLPEmulator.block_size``), and the ratios to the former fixed block of 32 are printed. The cases are
the demo's (10 neurons; 64-spectrum batches and the regularizer's 6 × 16 = 96 label rows) and the paper's
(40 neurons, 512-spectrum batches, 1616 regularizer rows).

Usage::

    python benchmarks/bench_blocks.py --threads 1

Figures and command are recorded in docs/performance_training.rst.
"""
from __future__ import annotations

import argparse
import time

import numpy as np
import torch

CASES = ((10, 64), (10, 96), (20, 64), (40, 64), (40, 256), (40, 512), (40, 1616))
BLOCKS = (8, 16, 32, 64, 128, 256)
BASELINE = 32


def seconds(fn, budget: float) -> float:
    """Median time of ``fn`` over repeats filling about ``budget`` seconds (after one warm-up call)."""
    fn()
    times = []
    t_end = time.perf_counter() + budget
    while time.perf_counter() < t_end or len(times) < 3:
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return float(np.median(times))


def main(argv=None) -> int:
    from ddpayne_mlp.emulator import MLPEmulator

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--pixels", type=int, default=1767, help="pixels (the demo's windows hold 1767)")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--budget", type=float, default=1.0, help="seconds of repeats per measurement")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    n_lab = 15
    wave = np.linspace(4000.0, 5000.0, args.pixels)
    rng = np.random.default_rng(0)
    print(f"{args.pixels} pixels, {n_lab} labels, {args.threads} thread(s); ms per data-term backward pass")
    print(f"{'neurons':>7} {'rows':>5} " + " ".join(f"{'b' + str(b):>7}" for b in BLOCKS)
          + f" {'auto':>12} {'b32/auto':>9}")
    for hidden, rows in CASES:
        emu = MLPEmulator([f"L{i}" for i in range(n_lab)], wave, np.zeros(n_lab), np.ones(n_lab),
                          n_hidden=hidden)
        x = torch.as_tensor(rng.uniform(0, 1, (rows, n_lab)), dtype=emu.dtype)
        y = torch.as_tensor(rng.uniform(0.5, 1.0, (rows, args.pixels)), dtype=emu.dtype)
        w = torch.ones_like(y)
        ms = {b: 1e3 * seconds(lambda b=b: emu.data_term_backward(x, y, w, block=b), args.budget)
              for b in BLOCKS}
        auto = emu.block_size(rows)
        ms_auto = 1e3 * seconds(lambda: emu.data_term_backward(x, y, w), args.budget)
        print(f"{hidden:>7} {rows:>5} " + " ".join(f"{ms[b]:>7.1f}" for b in BLOCKS)
              + f" {ms_auto:>7.1f} (b{auto:<3}) {ms[BASELINE] / ms_auto:>8.2f}x", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
