"""The synthesizer interface: physical synthetic spectra from stellar labels."""
from __future__ import annotations

import abc
from collections.abc import Mapping
from typing import ClassVar

import numpy as np


class Synthesizer(abc.ABC):
    """Interface of a physical spectrum synthesizer (e.g. ATLAS9 + MOOG).

    :meth:`synthesize` returns a high-resolution, continuum-normalised spectrum on **vacuum**
    wavelengths (Å); instrument degradation is done by :mod:`ddpayne.physics.degrade`, shared with
    the data path.
    """

    name: ClassVar[str] = ""

    @abc.abstractmethod
    def synthesize(self, labels: Mapping[str, float], wave_min: float, wave_max: float
                   ) -> tuple[np.ndarray, np.ndarray]:
        """Return ``(wavelength_vacuum, normalised_flux)`` for ``labels`` over ``[wave_min, wave_max]``."""
