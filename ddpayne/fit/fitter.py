"""The fitter interface: labels from prepared spectra with an emulator."""
from __future__ import annotations

import abc
from collections.abc import Mapping
from typing import ClassVar

from astropy.table import Table


class Fitter(abc.ABC):
    """Interface of a label fitter.

    :meth:`fit` takes an emulator and a :class:`ddpayne.io.batch.SpectrumBatch` on the emulator's grid
    and returns one row per input spectrum (never fewer), in input order, with the columns documented in
    ``docs/catalogue.rst``: ``ID``, each label and ``<LABEL>_ERR``, ``COVAR``, ``CHI2``, ``RCHI2``,
    ``N_PIX``, ``STATUS``, ``FLAG``.
    """

    name: ClassVar[str] = ""

    @abc.abstractmethod
    def fit(self, emulator, batch, fixed: Mapping[str, float] | None = None) -> Table:
        """Fit every spectrum of ``batch``; labels in ``fixed`` are held at the given values."""
