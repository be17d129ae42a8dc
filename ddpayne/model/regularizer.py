"""The regularizer interface: an extra term in the training loss.

This module is the whole contract between the trainer (:func:`ddpayne.model.training.train_emulator`)
and a regularizer plugin: the trainer calls only the methods declared here, and every one of them except
:meth:`Regularizer.penalty` has a default, so a minimal regularizer implements ``penalty`` alone.
"""
from __future__ import annotations

import abc
import inspect
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np


@dataclass(frozen=True)
class RegularizerContext:
    """What the pipeline offers a regularizer built from a configuration table.

    Attributes
    ----------
    base_dir : pathlib.Path
        Folder that relative paths in the table are relative to (the configuration file's).
    gradients : callable or None
        ``gradients()`` returns the path of the run's physical gradient spectra
        (:class:`ddpayne.physics.gradients.GradientSpectra`) restricted to the training grid and labels.
        Called only by a regularizer that needs them, so a run without such a regularizer never builds
        the file.
    """

    base_dir: Path = Path(".")
    gradients: Callable[[], Path] | None = None


class Regularizer(abc.ABC):
    """Interface of a training regularizer: the term R added to the data term of the training loss.

    DD-Payne's physical-gradient regularizer (paper Eq. 3, second term) is one implementation; ``none``
    is another. The trainer calls, in this order:

    1. :meth:`set_training_labels` once with the training labels;
    2. :meth:`check_compatible` once with the emulator (raise if it cannot be regularized; prepare);
    3. :attr:`n_constraints_per_pixel` and :attr:`rows_per_step` (sizing: under-determination check,
       pixel chunk within the memory budget) and :meth:`describe` (provenance, checkpoint fingerprint);
    4. at every optimiser step: :meth:`set_step`, then either :meth:`penalty_backward` (emulators with a
       hand-written back-propagation; ``None`` means "use :meth:`penalty`") or :meth:`penalty` with
       autograd, for each pixel chunk when :attr:`pixelwise`.

    The pipeline builds a regularizer from its configuration table (``[training.regularizer_options]``)
    with :meth:`from_options`, which passes the table through unchanged to the plugin's validation.
    """

    #: Selection name of the implementation.
    name: ClassVar[str] = ""
    #: Whether the term is a sum over pixels, so that ``penalty(emulator, pixels=chunk)`` summed over
    #: chunks gives the whole term (lets the trainer stay within its memory budget). When False the
    #: trainer calls ``penalty(emulator)`` once per step.
    pixelwise: ClassVar[bool] = True

    # ------------------------------------------------------------------ construction
    @classmethod
    def from_options(cls, options: Mapping[str, Any] | None = None,
                     context: RegularizerContext | None = None) -> Regularizer:
        """Build the regularizer from a configuration table.

        The default checks the keys against the constructor's parameters (a typo is an error naming the
        known keys) and calls ``cls(**options)``. Override to resolve relative paths against
        ``context.base_dir`` or to take resources from ``context``.

        Parameters
        ----------
        options : mapping, optional
            The plugin's configuration table, unchanged.
        context : RegularizerContext, optional
            What the pipeline offers (folder of the configuration, the run's gradient spectra).

        Raises
        ------
        ValueError
            An option the regularizer does not know (the message lists the known ones).
        """
        options = dict(options or {})
        check_option_names(cls, options)
        return cls(**options)

    # ------------------------------------------------------------------ setup
    def set_training_labels(self, labels: np.ndarray) -> None:
        """Receive the training labels (physical units, emulator label order), e.g. to keep only the
        reference points inside the training coverage. Called once, before :meth:`check_compatible`."""

    def check_compatible(self, emulator) -> None:
        """Raise :class:`ddpayne.exceptions.IncompatibleModelError` if the emulator cannot be regularized
        by this regularizer (other wavelength grid or label names); prepare what :meth:`penalty` needs."""

    @property
    def n_constraints_per_pixel(self) -> int:
        """Values that constrain each pixel's model besides the training spectra (for the check that
        a pixel's model is not under-determined). Valid after :meth:`check_compatible`."""
        return 0

    @property
    def rows_per_step(self) -> int:
        """Emulator evaluations (label rows) per pixel that one :meth:`penalty` call makes, for sizing
        the trainer's pixel chunks. Valid after :meth:`check_compatible`."""
        return 0

    def describe(self) -> dict[str, Any]:
        """Name and options (JSON-serialisable), stored in the model's provenance and the checkpoint
        fingerprint. A ``checksum`` entry is stored as the model's ``regularizer_checksum``."""
        return {"name": self.name or type(self).__name__}

    # ------------------------------------------------------------------ every step
    def set_step(self, step: int) -> None:
        """The optimiser step about to be taken (0-based, counted over the whole training), e.g. to
        draw a deterministic subset of reference points."""

    @abc.abstractmethod
    def penalty(self, emulator, pixels: slice | None = None):
        """The regularization term over ``pixels`` (default: all): a scalar torch tensor,
        differentiable in the emulator's parameters."""

    def penalty_backward(self, emulator, pixels: slice | None = None) -> float | None:
        """Add the term's parameter gradients to the emulator's ``param.grad`` with the emulator's
        hand-written back-propagation and return the term's value, or return ``None`` (the default) to
        have the trainer use :meth:`penalty` with autograd."""
        return None


def check_option_names(cls: type, options: Mapping[str, Any]) -> None:
    """Raise ValueError if ``options`` has keys that ``cls``'s constructor does not take."""
    params = {} if cls.__init__ is object.__init__ else dict(inspect.signature(cls.__init__).parameters)
    if any(p.kind is p.VAR_KEYWORD for p in params.values()):
        return
    known = sorted(n for n in params if n != "self")
    unknown = sorted(set(options) - set(known))
    if unknown:
        raise ValueError(f"regularizer {getattr(cls, 'name', cls.__name__)!r}: unknown option(s) {unknown}; "
                         f"known options: {known}")
