"""An analytic stand-in for the physical mock library, for tests and the demo.

Gaussian absorption lines whose depths depend smoothly on the labels
(:class:`ddpayne.fit.testing.LineEmulator`), continuum-normalised exactly like observed spectra
(:func:`ddpayne.prepare.continuum.normalise`), with labels drawn from the mock library's DESI-MWS-like
distribution (:func:`ddpayne.mock.library.draw_labels`). It is *not* stellar physics: it exists so that
the pipeline can be exercised end to end, with known truth, before the ATLAS9 + MOOG library is large
enough to train on.
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np

#: Labels the stand-in's lines respond to.
STANDIN_LABELS = ("TEFF", "LOGG", "FE_H", "MG_FE")


def analytic_library(n_stars: int, label_names: Sequence[str] = STANDIN_LABELS, seed: int = 3,
                     n_lines: int = 400, line_seed: int = 2):
    """A :class:`~ddpayne.mock.library.MockLibrary` of ``n_stars`` analytic spectra on the DESI grid."""
    from ..fit.testing import LineEmulator
    from ..prepare.continuum import normalise
    from ..prepare.grid import desi_grid
    from .library import MockLibrary, draw_labels

    grid = desi_grid()
    labels = draw_labels(n_stars, seed=seed)
    emu = LineEmulator(grid, label_names=tuple(label_names), n_lines=n_lines, seed=line_seed)
    flux = emu.predict(np.column_stack([np.asarray(labels[n], float) for n in label_names]))
    norm, _, _ = normalise(grid, flux, np.ones_like(flux))
    return MockLibrary(grid, norm, labels, {"kind": "analytic stand-in (LineEmulator)",
                                            "labels": list(label_names), "seed": seed})
