"""Benchmarks of issue 5: fitter correctness, precision vs Cramér–Rao bound, speed, streaming memory.

Not part of the test suite. Every ratio is measured against a baseline in the same process.

    python benchmarks/bench_fit.py --part accuracy   # LM vs scipy chi2; scatter vs CRB; formal vs scatter
    python benchmarks/bench_fit.py --part mlp-accuracy  # the same on the float32 mlp, full DESI grid
    python benchmarks/bench_fit.py --part speed      # full DESI grid, 15 labels, 4 starts: LM vs scipy,
                                                     # at 1 and 2 torch threads (--threads 1,2)
    python benchmarks/bench_fit.py --part ablation   # LM variants: fused kernel, damping, stopping rule
    python benchmarks/bench_fit.py --part memory     # peak RSS, 2,000 vs 20,000 spectra through run_fit
    python benchmarks/bench_fit.py --part all --json out.json

Models used (no trained DD-Payne model or MOOG mocks exist yet when this was written):

* accuracy: :class:`ddpayne.fit.testing.LineEmulator` on the full DESI grid (7781 px, 15 labels, 2000
  Gaussian lines whose depths depend non-linearly on the labels; exact Jacobian). Mock spectra are
  noise realisations at S/N = 100 of Teff = 5900 K, log g = 4.0, [Fe/H] = −0.5 (paper Fig. 9).
* speed: the real DD-Payne MLP architecture (plugin ``mlp``: 2 × 40 neurons per pixel, float32,
  randomly initialised with seed 1) on the full DESI grid; mock spectra from the same network plus
  S/N = 100 noise. Speed depends on the architecture, not the weights.
* memory: LineEmulator on a 400-pixel grid, 60 lines (cheap, so 20,000 spectra fit in about a minute); 40 files
  of 500 spectra; the 2,000-spectrum run uses the first 4 files. Each run is a fresh process.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

TRUTH = np.array([5900.0, 4.0, 1.2, -0.5] + [0.1] * 11)
LO = np.array([3800.0, 0.5, 0.3, -3.0] + [-0.5] * 11)
HI = np.array([7500.0, 5.0, 3.0, 0.6] + [0.8] * 11)


def desi_wavelength() -> np.ndarray:
    from ddpayne.prepare.grid import desi_grid

    g = desi_grid()
    return np.asarray(getattr(g, "value", g), dtype=float)


def matmul_gflops(n: int = 2048, reps: int = 5) -> float:
    """Dense float32 matmul rate (GFLOP/s) with torch on this machine, right now."""
    import torch

    a, b = torch.randn(n, n), torch.randn(n, n)
    a @ b
    best = np.inf
    for _ in range(reps):
        t = time.perf_counter()
        a @ b
        best = min(best, time.perf_counter() - t)
    return 2 * n ** 3 / best / 1e9


def mlp_flops_per_eval(n_pix: int, n_hidden: int = 40, n_label: int = 15) -> float:
    """FLOPs of one flux + Jacobian evaluation of the per-pixel MLP, plus the JᵀWJ / JᵀWr sums."""
    H, L = n_hidden, n_label
    forward = 2 * H * L + 2 * H * H + 2 * H
    backward = H + 2 * H * H + H + 2 * H * L
    normal = 2 * L * L + 2 * L
    return float(n_pix * (forward + backward + normal))


# ------------------------------------------------------------------------------------------------ accuracy
def exact_chi2(emu, batch, table) -> np.ndarray:
    """χ² of a result table's labels with the emulator's weights evaluated in float64.

    The two fitters' reported χ² come from different float32 kernels (batched vs one spectrum), whose
    rounding differs by ~1e-5 per pixel; this puts both label sets on one exact scale.
    """
    import copy

    import torch

    e64 = copy.deepcopy(emu)
    if hasattr(e64, "to"):
        e64 = e64.to(torch.float64)
    x = np.column_stack([np.asarray(table[n], float) for n in emu.label_names])
    return np.sum((np.asarray(batch.flux) - e64.predict(x)) ** 2 * np.asarray(batch.ivar), axis=1)


def chi2_comparison(c_lm: np.ndarray, c_sp: np.ndarray, tol: float = 1e-6) -> dict:
    ok = c_lm <= c_sp * (1 + tol) + tol
    return {"frac": float(ok.mean()), "max_rel_excess": float(np.max((c_lm - c_sp) / c_sp))}


def _accuracy(emu, model: str, n_real: int, n_scipy: int, seed: int, chunk_size: int = 50) -> dict:
    from ddpayne import registry
    from ddpayne.fit.cramer_rao import crb_from_emulator, precision_from_realisations, precision_report
    from ddpayne.fit.testing import mock_batch

    batch = mock_batch(emu, np.repeat(TRUTH[None], n_real, axis=0), snr=100.0, seed=seed)
    lm = registry.create("fitter", "lm", chunk_size=chunk_size)
    t = time.perf_counter()
    fit = lm.fit(emu, batch)
    t_lm = time.perf_counter() - t
    sp = registry.create("fitter", "scipy")
    t = time.perf_counter()
    ref = sp.fit(emu, batch[:n_scipy])
    t_sp = time.perf_counter() - t
    reported = chi2_comparison(np.asarray(fit["CHI2"][:n_scipy]), np.asarray(ref["CHI2"]))
    exact = chi2_comparison(exact_chi2(emu, batch[:n_scipy], fit[:n_scipy]), exact_chi2(emu, batch[:n_scipy], ref))
    names = list(emu.label_names)
    lab = np.column_stack([np.asarray(fit[n], float) for n in names])
    crb = crb_from_emulator(emu, TRUTH, batch.ivar[0])[0]
    scatter = precision_from_realisations(lab, robust=False)
    formal = np.array([np.median(np.asarray(fit[f"{n}_ERR"], float)) for n in names])
    rep = precision_report(names, crb, scatter, formal)
    out = {
        "model": model, "n_real": n_real, "n_scipy": n_scipy,
        "frac_chi2_le_scipy": reported["frac"], "chi2_tolerance": "chi2_lm <= chi2_scipy*(1+1e-6)+1e-6",
        "max_rel_chi2_excess": reported["max_rel_excess"],
        "frac_chi2_le_scipy_exact": exact["frac"], "max_rel_chi2_excess_exact": exact["max_rel_excess"],
        "lm_seconds": t_lm, "scipy_seconds": t_sp,
        "lm_spectra_per_s": n_real / t_lm, "scipy_spectra_per_s": n_scipy / t_sp,
        "lm_evaluations_per_spectrum": lm.stats["evaluations"] / n_real,
        "scipy_evaluations_per_spectrum": sp.stats["evaluations"] / n_scipy,
        "labels": {r["LABEL"]: {"crb": float(r["CRB"]), "scatter": float(r["SCATTER"]),
                                "formal": float(r["FORMAL_ERR"]),
                                "scatter_over_crb": float(r["SCATTER_OVER_CRB"]),
                                "formal_over_scatter": float(r["FORMAL_OVER_SCATTER"])} for r in rep},
    }
    print("\n== accuracy (", out["model"], ")")
    print(f"chi2_lm <= chi2_scipy on {100 * out['frac_chi2_le_scipy']:.1f} % of {n_scipy} spectra "
          f"(max relative excess {out['max_rel_chi2_excess']:.2e}); with chi2 re-evaluated in float64: "
          f"{100 * exact['frac']:.1f} % (max relative excess {exact['max_rel_excess']:.2e})")
    print(f"LM {t_lm:.1f} s for {n_real} ({out['lm_evaluations_per_spectrum']:.2f} evaluations/spectrum), "
          f"scipy {t_sp:.1f} s for {n_scipy} ({out['scipy_evaluations_per_spectrum']:.1f} evaluations/spectrum)")
    print(f"{'label':6s} {'CRB':>10s} {'scatter':>10s} {'formal':>10s} {'sc/CRB':>7s} {'fo/sc':>7s}")
    for r in rep:
        print(f"{r['LABEL']:6s} {r['CRB']:10.4g} {r['SCATTER']:10.4g} {r['FORMAL_ERR']:10.4g} "
              f"{r['SCATTER_OVER_CRB']:7.3f} {r['FORMAL_OVER_SCATTER']:7.3f}")
    return out


def bench_accuracy(n_real: int = 300, n_scipy: int = 100, seed: int = 0) -> dict:
    from ddpayne.fit.testing import LineEmulator

    emu = LineEmulator(desi_wavelength(), n_lines=2000, seed=1)
    return _accuracy(emu, "LineEmulator(desi grid, 2000 lines, seed 1), S/N=100, truth Teff 5900 logg 4.0 "
                          "[Fe/H] -0.5", n_real, n_scipy, seed)


def bench_mlp_accuracy(n_real: int = 300, n_scipy: int = 24, seed: int = 0) -> dict:
    """The same precision/χ² test on the speed benchmark's model (float32 mlp, full DESI grid)."""
    emu = mlp_emulator()
    return _accuracy(emu, "mlp plugin (2x40 sigmoid per pixel, float32, random init seed 1), DESI grid "
                          "7781 px, 15 labels, S/N=100, truth Teff 5900 logg 4.0 [Fe/H] -0.5",
                     n_real, n_scipy, seed, chunk_size=64)


# ------------------------------------------------------------------------------------------------ speed
def mlp_emulator():
    from ddpayne import registry
    from ddpayne.labels import LABEL_NAMES

    emu = registry.create("emulator", "mlp", label_names=LABEL_NAMES, wavelength=desi_wavelength(),
                          label_min=LO, label_max=HI, seed=1, dtype="float32")
    emu.requires_grad_(False)
    return emu


def bench_speed(n_lm: int = 128, n_scipy: int = 6, chunk_size: int = 64, threads=(1, 2),
                pixel_block: int | None = None, probe_stride: int = 4) -> dict:
    """LM vs scipy on the mlp emulator; for each torch thread count both fitters run in turn."""
    import torch

    from ddpayne import registry
    from ddpayne.fit.testing import mock_batch

    emu = mlp_emulator()
    rng = np.random.default_rng(4)
    spread = np.array([150.0, 0.15, 0.1, 0.1] + [0.05] * 11)
    labels = np.clip(TRUTH + rng.normal(0, 1, (n_lm, 15)) * spread, LO, HI)
    batch = mock_batch(emu, labels, snr=100.0, seed=2)
    out = {"model": "mlp plugin (2x40 sigmoid per pixel, float32, random init seed 1), DESI grid 7781 px, "
                    "15 labels", "n_lm": n_lm, "n_scipy": n_scipy, "chunk_size": chunk_size,
           "pixel_block": pixel_block, "probe_stride": probe_stride, "load_before": os.getloadavg(), "runs": {}}
    print("\n== speed (", out["model"], ")")
    for th in threads:
        torch.set_num_threads(th)
        gemm = matmul_gflops()
        sp = registry.create("fitter", "scipy")
        t = time.perf_counter()
        ref = sp.fit(emu, batch[:n_scipy])
        t_sp = time.perf_counter() - t
        lm = registry.create("fitter", "lm", chunk_size=chunk_size, pixel_block=pixel_block,
                             probe_stride=probe_stride)
        t = time.perf_counter()
        fit = lm.fit(emu, batch)
        t_lm = time.perf_counter() - t
        gemm2 = matmul_gflops()
        rate_lm, rate_sp = n_lm / t_lm, n_scipy / t_sp
        gflops = lm.stats["evaluations"] * mlp_flops_per_eval(emu.n_pix) / t_lm / 1e9
        reported = chi2_comparison(np.asarray(fit["CHI2"][:n_scipy]), np.asarray(ref["CHI2"]))
        exact = chi2_comparison(exact_chi2(emu, batch[:n_scipy], fit[:n_scipy]),
                                exact_chi2(emu, batch[:n_scipy], ref))
        r = {"threads": th, "starts": list(fit.meta["STARTS"]),
             "lm_spectra_per_s": rate_lm, "scipy_spectra_per_s": rate_sp, "speedup": rate_lm / rate_sp,
             "lm_seconds": t_lm, "scipy_seconds": t_sp,
             "lm_evaluations_per_spectrum": lm.stats["evaluations"] / n_lm, "lm_calls": lm.stats["calls"],
             "scipy_evaluations_per_spectrum": sp.stats["evaluations"] / n_scipy,
             "lm_gflops": gflops, "matmul_gflops_before": gemm, "matmul_gflops_after": gemm2,
             "fraction_of_matmul": gflops / max(gemm, gemm2),
             "frac_chi2_le_scipy": reported["frac"], "max_rel_chi2_excess": reported["max_rel_excess"],
             "frac_chi2_le_scipy_exact": exact["frac"], "max_rel_chi2_excess_exact": exact["max_rel_excess"],
             "load_after": os.getloadavg()}
        out["runs"][str(th)] = r
        print(f"-- torch threads {th}")
        for k, v in r.items():
            print(f"  {k}: {v:.4g}" if isinstance(v, float) else f"  {k}: {v}")
    return out


class _GenericPath:
    """Hides the mlp emulator's fused ``normal_equations``: the fitter then builds JᵀWJ from ``jacobian``
    per pixel block (the pre-fusion code path)."""

    def __init__(self, inner):
        self._inner = inner

    def __getattr__(self, name):
        if name == "normal_equations":
            raise AttributeError(name)
        return getattr(self._inner, name)


def bench_ablation(n_lm: int = 64, threads: int = 1) -> dict:
    """Where the speed comes from: LM variants on the same spectra, one process, one thread count."""
    import torch

    from ddpayne import registry
    from ddpayne.fit.testing import mock_batch

    torch.set_num_threads(threads)
    emu = mlp_emulator()
    rng = np.random.default_rng(4)
    spread = np.array([150.0, 0.15, 0.1, 0.1] + [0.05] * 11)
    labels = np.clip(TRUTH + rng.normal(0, 1, (n_lm, 15)) * spread, LO, HI)
    batch = mock_batch(emu, labels, snr=100.0, seed=2)
    variants = [
        ("generic jacobian blocks of 1024 px, Marquardt x10//5, no GN stop (previous defaults)",
         _GenericPath(emu), dict(pixel_block=1024, damping="marquardt", gn_tol=None)),
        ("fused normal_equations, Marquardt, no GN stop", emu, dict(damping="marquardt", gn_tol=None)),
        ("fused, gain-ratio damping + GN stop (defaults)", emu, {}),
        ("defaults with probe_stride 8", emu, dict(probe_stride=8)),
    ]
    out = {"threads": threads, "n_lm": n_lm, "load_before": os.getloadavg(), "variants": []}
    print(f"\n== ablation (mlp float32, DESI grid, {n_lm} spectra, chunk 64, {threads} thread(s))")
    ref_chi2 = None
    for name, model, kw in variants:
        lm = registry.create("fitter", "lm", chunk_size=64, **kw)
        t = time.perf_counter()
        fit = lm.fit(model, batch)
        dt = time.perf_counter() - t
        c = exact_chi2(emu, batch, fit)
        ref_chi2 = c if ref_chi2 is None else ref_chi2
        ev = lm.stats["evaluations"] / n_lm
        r = {"variant": name, "spectra_per_s": n_lm / dt, "evaluations_per_spectrum": ev,
             "ms_per_evaluation": 1e3 * dt / (ev * n_lm), "calls": lm.stats["calls"],
             "frac_chi2_le_first": chi2_comparison(c, ref_chi2)["frac"],
             "max_rel_chi2_excess_vs_first": chi2_comparison(c, ref_chi2)["max_rel_excess"]}
        out["variants"].append(r)
        print(f"  {name}: {r['spectra_per_s']:.3g} spectra/s, {ev:.2f} evaluations/spectrum, "
              f"{r['ms_per_evaluation']:.2f} ms per spectrum-evaluation, {r['calls']} calls, "
              f"chi2 <= first variant's on {100 * r['frac_chi2_le_first']:.0f} %")
    out["load_after"] = os.getloadavg()
    return out


# ------------------------------------------------------------------------------------------------ memory
_MEM_CHILD = r"""
import resource, sys, json, numpy as np
from ddpayne.fit.testing import LineEmulator
from ddpayne.pipeline.executors import run_fit
import functools
files = json.loads(sys.argv[1]); out = sys.argv[2]
wl = np.arange(5000.0, 5000.0 + 0.8 * 400, 0.8)
s = run_fit(files, out, functools.partial(LineEmulator, wl, n_lines=60, seed=1), progress=False,
            fitter_options={"chunk_size": 100})
print(json.dumps({"rows": s.n_rows, "seconds": s.seconds,
                  "maxrss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def bench_memory(n_files: int = 40, per_file: int = 500) -> dict:
    from ddpayne.fit.testing import LineEmulator, mock_batch

    tmp = Path(tempfile.mkdtemp(prefix="ddpayne-bench-mem-"))
    wl = np.arange(5000.0, 5000.0 + 0.8 * 400, 0.8)
    emu = LineEmulator(wl, n_lines=60, seed=1)
    rng = np.random.default_rng(0)
    files = []
    for k in range(n_files):
        lab = np.clip(TRUTH + rng.normal(0, 1, (per_file, 15)) * np.r_[300, 0.3, 0.2, 0.3, [0.1] * 11], LO, HI)
        p = tmp / f"in{k:03d}.fits"
        mock_batch(emu, lab, snr=50, seed=k, ids=[f"{k}-{i}" for i in range(per_file)]).write(p)
        files.append(str(p))
    res = {}
    for n in (n_files // 10, n_files):
        out = tmp / f"out{n}.fits"
        r = subprocess.run([sys.executable, "-c", _MEM_CHILD, json.dumps(files[:n]), str(out)],
                           capture_output=True, text=True, check=True)
        res[n * per_file] = json.loads(r.stdout.strip().splitlines()[-1])
    small, large = res[n_files // 10 * per_file], res[n_files * per_file]
    out = {"model": "LineEmulator 400 px, 60 lines; files of %d spectra" % per_file,
           "runs": {str(k): v for k, v in res.items()},
           "peak_rss_growth": large["maxrss_mb"] / small["maxrss_mb"]}
    print("\n== memory (", out["model"], ")")
    for k, v in res.items():
        print(f"  {k:6d} spectra: peak RSS {v['maxrss_mb']:.0f} MB, {v['seconds']:.1f} s, rows {v['rows']}")
    print(f"  growth x{out['peak_rss_growth']:.3f}")
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--part", choices=["accuracy", "mlp-accuracy", "speed", "ablation", "memory", "all"],
                    default="all")
    ap.add_argument("--n-real", type=int, default=300)
    ap.add_argument("--n-scipy", type=int, default=100, help="spectra fitted by scipy in the accuracy parts")
    ap.add_argument("--n-lm", type=int, default=128, help="spectra fitted by LM in the speed part")
    ap.add_argument("--n-scipy-speed", type=int, default=6)
    ap.add_argument("--chunk-size", type=int, default=64)
    ap.add_argument("--pixel-block", type=int, default=0, help="0: automatic (emulator's cache-sized blocks)")
    ap.add_argument("--probe-stride", type=int, default=4)
    ap.add_argument("--threads", type=str, default="1,2",
                    help="torch thread counts, comma separated; the speed part runs both fitters at each")
    ap.add_argument("--json", type=str, default=None)
    args = ap.parse_args(argv)
    import torch

    threads = [int(t) for t in args.threads.split(",")]
    torch.set_num_threads(threads[0])
    result = {"machine": f"{os.cpu_count()} cpus, torch {torch.__version__}", "load_start": os.getloadavg()}
    if args.part in ("accuracy", "all"):
        result["accuracy"] = bench_accuracy(args.n_real, args.n_scipy)
    if args.part in ("mlp-accuracy", "all"):
        result["mlp_accuracy"] = bench_mlp_accuracy(args.n_real, min(args.n_scipy, 24))
    if args.part in ("speed", "all"):
        result["speed"] = bench_speed(args.n_lm, args.n_scipy_speed, args.chunk_size, threads,
                                      args.pixel_block or None, args.probe_stride)
    if args.part in ("ablation", "all"):
        result["ablation"] = bench_ablation(min(args.n_lm, 64), threads[0])
    if args.part in ("memory", "all"):
        result["memory"] = bench_memory()
    result["load_end"] = os.getloadavg()
    print(f"\nload average at start {result['load_start']}, at end {result['load_end']}")
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
