"""ddpayne: the Data-Driven Payne for survey spectra.

The pipeline, stage by stage: :mod:`ddpayne.io` (read) → :mod:`ddpayne.prepare` (rest frame, merge,
normalise) → :mod:`ddpayne.model` (emulator, regularizer, training) → :mod:`ddpayne.fit` (labels,
errors, flags, Cramér–Rao bounds) → :mod:`ddpayne.galaxy` (extinction, distances, orbits) →
:mod:`ddpayne.pipeline` (configuration, CLI, executors) → :mod:`ddpayne.plots`. Implementations are
plugins (:mod:`ddpayne.hookspecs`, :mod:`ddpayne.registry`).
"""
from __future__ import annotations

import logging

__version__ = "0.1.0"

from .labels import LABEL_NAMES  # noqa: E402

logging.getLogger(__name__).addHandler(logging.NullHandler())

__all__ = ["__version__", "LABEL_NAMES"]
