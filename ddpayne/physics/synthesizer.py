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
    #: Version of the synthesizer's physics (line list, atmospheres, ...). Results of the background run
    #: record it; the runner brings results of older versions up to date (see :meth:`repair_from`).
    physics_version: ClassVar[int] = 1

    @classmethod
    def repair_from(cls, version: int, labels: Mapping[str, float] | None = None,
                    settings: Mapping | None = None) -> float | None:
        """Vacuum wavelength (Å) from which a spectrum of ``labels`` made with physics ``version`` and
        synthesis ``settings`` differs from one made with :attr:`physics_version`: ``inf`` if it does not
        differ, ``None`` if it must be synthesised again in full (the default)."""
        return None

    def synthesize_part(self, labels: Mapping[str, float], wave_min: float, wave_max: float,
                        part_min: float) -> tuple[np.ndarray, np.ndarray]:
        """The part at wavelengths ≥ ``part_min`` of :meth:`synthesize` over ``[wave_min, wave_max]``,
        computed exactly as the full synthesis computes it (it may start somewhat below ``part_min``).

        The default synthesises ``[part_min, wave_max]``, which is exact for synthesizers whose result at a
        wavelength does not depend on the requested range.
        """
        return self.synthesize(labels, part_min, wave_max)

    @abc.abstractmethod
    def synthesize(self, labels: Mapping[str, float], wave_min: float, wave_max: float
                   ) -> tuple[np.ndarray, np.ndarray]:
        """Return ``(wavelength_vacuum, normalised_flux)`` for ``labels`` over ``[wave_min, wave_max]``."""
