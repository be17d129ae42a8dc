"""The regularizer interface: an extra term in the training loss."""
from __future__ import annotations

import abc
from typing import ClassVar


class Regularizer(abc.ABC):
    """Interface of a training regularizer.

    The trainer calls :meth:`check_compatible` once, then adds :meth:`penalty` to the data term at every
    step. DD-Payne's physical-gradient regularizer (paper Eq. 3, second term) is one implementation;
    ``none`` is another.
    """

    name: ClassVar[str] = ""

    def check_compatible(self, emulator) -> None:
        """Raise :class:`ddpayne.exceptions.IncompatibleModelError` if the emulator cannot be regularized
        by this regularizer (other wavelength grid or label names)."""

    @abc.abstractmethod
    def penalty(self, emulator):
        """Return the regularization term (a scalar torch tensor, differentiable in the emulator's
        parameters)."""
