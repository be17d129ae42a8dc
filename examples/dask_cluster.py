"""Fit many files on a dask cluster: one task per file, resumable, memory flat in the number of spectra.

Usage: python examples/dask_cluster.py MODEL.pt PREPARED.fits [...] [--scheduler tcp://host:8786]
Without --scheduler a LocalCluster with one process per core is started. Workers need ddpayne installed
and must see the input files; the model is loaded in each worker from its path.
"""
import argparse

from ddpayne.pipeline.executors import run_fit

p = argparse.ArgumentParser()
p.add_argument("model")
p.add_argument("prepared", nargs="+")
p.add_argument("--scheduler", default=None)
p.add_argument("--workers", type=int, default=2)
p.add_argument("--out", default="fit-dask.fits")
args = p.parse_args()

summary = run_fit(args.prepared, args.out, args.model, fitter="lm", backend="dask",
                  scheduler=args.scheduler, n_workers=args.workers, keep_meta=("TARGETID",))
print(f"{summary.n_rows} rows ({summary.n_skipped} files already done) at "
      f"{summary.spectra_per_second:.1f} spectra/s -> {summary.output}")
