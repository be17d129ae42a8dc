"""Fit labels to prepared spectra with a saved emulator and write a catalogue.

Usage: python examples/fit_saved_model.py MODEL.pt PREPARED.fits [...] [--out fit.fits]
(e.g. after `ddpayne demo`: demo-output/run/model/emulator.pt demo-output/run/prepared/*.fits)
"""
import argparse

from ddpayne.model.emulator import load_emulator
from ddpayne.pipeline.executors import run_fit

p = argparse.ArgumentParser()
p.add_argument("model")
p.add_argument("prepared", nargs="+")
p.add_argument("--out", default="fit.fits")
args = p.parse_args()

emulator = load_emulator(args.model)
summary = run_fit(args.prepared, args.out, emulator, fitter="lm", backend="serial", keep_meta=("TARGETID",))
print(f"{summary.n_rows} spectra fitted at {summary.spectra_per_second:.1f} spectra/s -> {summary.output}")
