"""Train the DD-Payne emulator on your own training set: prepared spectra + a reference-label table.

Usage: python examples/train_custom.py PREPARED.fits [PREPARED2.fits ...] --labels LABELS.fits [--out model.pt]
(e.g. after `ddpayne demo`: demo-output/run/prepared/*.fits --labels demo-output/mock/reference-labels-mock.fits)
"""
import argparse

from astropy.table import Table

from ddpayne.io.batch import SpectrumBatch
from ddpayne.model.training import TrainingSettings
from ddpayne.model.trainingset import build_training_set

p = argparse.ArgumentParser()
p.add_argument("prepared", nargs="+")
p.add_argument("--labels", required=True, help="reference labels with TARGETID (or SOURCE_ID, or RA/DEC)")
p.add_argument("--names", default="TEFF,LOGG,FE_H,MG_FE", help="labels to train")
p.add_argument("--regularizer", default="none", help="'kurucz' with a gradient file on your grid, or 'none'")
p.add_argument("--epochs", type=int, default=200)
p.add_argument("--out", default="model.pt")
args = p.parse_args()

batch = SpectrumBatch.concatenate([SpectrumBatch.read(f) for f in args.prepared])
ts = build_training_set(batch, Table.read(args.labels), args.names.split(","), min_snr=20)
print(ts.report.group_by("REASON").groups.aggregate(len) if len(ts.report) else ts.report)
emulator, history = ts.train(
    regularizer=args.regularizer, emulator_options={"n_hidden": 10},
    settings=TrainingSettings(epochs=args.epochs, batch_size=64, final_learning_rate=1e-3),
    checkpoint_dir=args.out + ".checkpoints", output=args.out)  # resumes if killed
print(history[-1])
print("saved", args.out)
