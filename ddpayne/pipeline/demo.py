"""``ddpayne demo``: the pipeline on bundled data, honest about what the data are.

Stage so far: read and prepare the bundled real Sun (SAO2010 atlas degraded to DESI resolution and
written as a DESI coadd with an MWS-like catalogue), save the prepared batch and print a summary.
"""
from __future__ import annotations

import logging
import os
from importlib import resources
from pathlib import Path

import numpy as np

log = logging.getLogger(__name__)


def bundled(*parts: str) -> Path:
    """Path of a file shipped in ``ddpayne/data``."""
    return Path(str(resources.files("ddpayne").joinpath("data", *parts)))


def run_demo(out: str | os.PathLike = "demo-output", quick: bool = False) -> int:
    """Run the demo; write results under ``out``; return a process exit code."""
    from ..prepare.spectra import prepare_files

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    coadd = bundled("sun", "coadd-sun-snr100.fits")
    cat = bundled("sun", "mwsall-sun-snr100.fits")
    print("ddpayne demo — bundled data: the real Sun (SAO2010 atlas) degraded to DESI resolution,")
    print("written as a DESI coadd at S/N 100 with an MWS-like catalogue (not a DESI observation).")
    batch, rejected = prepare_files([coadd], catalogue=cat)
    if batch is None:
        print("nothing could be prepared:", list(rejected["FLAG_REASON"]))
        return 1
    path = out / "prepared-sun.fits"
    batch.write(path, overwrite=True)
    m = batch.meta
    print(f"prepared {len(batch)} spectrum on {batch.wavelength.size} pixels "
          f"({batch.wavelength[0]:.1f}-{batch.wavelength[-1]:.1f} Å, rest frame, vacuum)")
    for i in range(len(batch)):
        good = batch.ivar[i] > 0
        print(f"  {m['ID'][i]}: RV {m['RV'][i]:+.1f} km/s, S/N B/R/Z "
              f"{m['SNR_B'][i]:.0f}/{m['SNR_R'][i]:.0f}/{m['SNR_Z'][i]:.0f}, "
              f"{good.sum()} good pixels, median normalised flux {np.median(batch.flux[i][good]):.3f}")
    print(f"wrote {path}")
    return 0
