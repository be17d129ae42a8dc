"""Read one DESI healpix coadd with its MWS catalogue, keep the stars and prepare them.

Usage: python examples/read_desi_healpix.py [COADD MWSALL]
(default: the Sun in DESI format, bundled with ddpayne)
"""
import sys

import numpy as np

from ddpayne.io.spectra import read_spectra
from ddpayne.pipeline.demo import bundled
from ddpayne.prepare.spectra import prepare_files

coadd, mwsall = (sys.argv[1:3] if len(sys.argv) > 2 else
                 (bundled("sun", "coadd-sun-snr100.fits"), bundled("sun", "mwsall-sun-snr100.fits")))

raw = read_spectra(coadd, catalogue=mwsall)           # one specutils Spectrum per arm
for arm, spec in raw.arms.items():
    print(arm, spec.flux.shape, spec.spectral_axis[[0, -1]])
print(raw.meta["ID", "RV", "IS_STAR", "FLAG_REASON"])

batch, rejected = prepare_files([coadd], catalogue=mwsall)  # stars only, rest frame, normalised
print(f"{len(batch)} stars prepared, {len(rejected)} spectra rejected (with reasons)")
good = batch.ivar[0] > 0
print("median normalised flux", np.median(batch.flux[0][good]), "S/N", batch.meta["SNR"][0])
