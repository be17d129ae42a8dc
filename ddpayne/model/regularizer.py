"""The regularizer interface: an extra term in the training loss."""
from __future__ import annotations

import abc
from typing import ClassVar


class Regularizer(abc.ABC):
    """Interface of a training regularizer.

    The trainer calls :meth:`check_compatible` once, then adds :meth:`penalty` to the data term at every
    step. DD-Payne's physical-gradient regularizer (paper Eq. 3, second term) is one implementation;
    ``none`` is another.

    Optional extras the trainer (:func:`ddpayne.model.training.train_emulator`) uses when a regularizer
    defines them (found with ``hasattr``/the signature; a minimal regularizer needs none of them):

    ``penalty(emulator, pixels=None)``
        Accepting a ``pixels`` slice lets the trainer evaluate the term pixel chunk by pixel chunk, within
        its memory budget (the term must then be a sum over pixels).
    ``penalty_backward(emulator) -> float | None``
        Accumulate the term's parameter gradients by hand (with emulators that back-propagate manually,
        e.g. ``mlp`` on a CPU) and return its value; ``None`` falls back to :meth:`penalty` + autograd.
    ``set_training_labels(labels: ndarray)``
        Called once with the training set's labels (physical units, emulator label order), e.g. to keep
        only the reference points inside the training coverage.
    ``set_step(step: int)``
        Called before every optimiser step, e.g. to draw a deterministic subset of reference points.
    """

    name: ClassVar[str] = ""

    def check_compatible(self, emulator) -> None:
        """Raise :class:`ddpayne.exceptions.IncompatibleModelError` if the emulator cannot be regularized
        by this regularizer (other wavelength grid or label names)."""

    @abc.abstractmethod
    def penalty(self, emulator):
        """Return the regularization term (a scalar torch tensor, differentiable in the emulator's
        parameters). Implementations may add a ``pixels=None`` keyword (see the class docstring)."""
