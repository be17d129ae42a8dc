"""The emulator interface: labels -> normalised flux, with an exact Jacobian.

Emulators work on torch tensors inside (the trainer and fitters run on them) and offer numpy
conveniences at the edge. Labels are always in physical units and in the order of
:attr:`Emulator.label_names`.
"""
from __future__ import annotations

import abc
import os
from typing import ClassVar

import numpy as np


class Emulator(abc.ABC):
    """Interface of a spectral emulator.

    Attributes
    ----------
    name : str
        Selection name of the implementation (class attribute).
    label_names : tuple of str
        Labels, in the order of the last axis of label arrays.
    wavelength : ndarray
        Rest-frame vacuum wavelength grid (Å) of the predicted flux.
    label_min, label_max : ndarray
        The training label range (physical units), used for scaling and for fit bounds.
    """

    name: ClassVar[str] = ""
    #: Whether :meth:`flux` takes a ``pixels`` slice (``flux(labels, pixels=slice)``), so that the trainer
    #: can evaluate the grid chunk by chunk within its memory budget.
    pixel_slices: ClassVar[bool] = False
    label_names: tuple[str, ...]
    wavelength: np.ndarray
    label_min: np.ndarray
    label_max: np.ndarray

    @abc.abstractmethod
    def flux(self, labels):
        """Normalised flux for ``labels`` (torch tensor ``(n, n_labels)``) -> tensor ``(n, n_pix)``."""

    @abc.abstractmethod
    def jacobian(self, labels):
        """Flux and its derivatives with respect to the physical labels.

        Returns
        -------
        flux : torch.Tensor, shape (n, n_pix)
        jac : torch.Tensor, shape (n, n_pix, n_labels)
            ∂f/∂ℓ_k in flux per physical label unit.
        """

    def predict(self, labels) -> np.ndarray:
        """Numpy convenience: flux for a ``(n, n_labels)`` or ``(n_labels,)`` label array."""
        import torch

        arr = np.atleast_2d(np.asarray(labels, dtype=float))
        with torch.no_grad():
            out = self.flux(torch.as_tensor(arr, dtype=self.dtype)).cpu().numpy()
        return out[0] if np.ndim(labels) == 1 else out

    @property
    def dtype(self):
        """Floating-point dtype of the emulator's tensors."""
        import torch

        return torch.float64

    @property
    def n_labels(self) -> int:
        return len(self.label_names)

    @abc.abstractmethod
    def save(self, path) -> None:
        """Write the emulator with everything needed to reload it identically."""

    @classmethod
    @abc.abstractmethod
    def load(cls, path) -> "Emulator":
        """Read an emulator written by :meth:`save`."""

    # ------------------------------------------------------------------ optional: trainable emulators
    # The trainer (:func:`ddpayne.model.training.train_emulator`) creates an emulator by name with
    # ``registry.create("emulator", name, label_names=..., wavelength=..., label_min=..., label_max=...,
    # **options)`` and then uses the methods below. Emulators that are not trainable keep the defaults.

    @property
    def n_parameters_per_pixel(self) -> int | None:
        """Free parameters of the model of one pixel (None if not meaningful)."""
        return None

    @property
    def hidden_width(self) -> int:
        """Activations per label row and pixel of a forward pass (the trainer sizes its pixel chunks with
        it; a network's hidden-layer width)."""
        return 40

    @property
    def device(self):
        """Device of the emulator's tensors."""
        import torch

        return torch.device("cpu")

    def parameters(self):
        """The trainable torch parameters (trainable emulators only)."""
        raise NotImplementedError(f"emulator {type(self).__name__} ({self.name!r}) cannot be trained")

    def initialize(self, mean_flux) -> None:
        """Optional hook called by the trainer before the first epoch with the ivar-weighted mean
        training flux per pixel (numpy ``(n_pix,)``), e.g. to start the output bias there."""

    def to(self, device=None):
        """Move the emulator's tensors to ``device`` (trainable emulators; default: nothing to move)."""
        return self

    def requires_grad_(self, requires_grad: bool = True):
        """Switch autograd tracking of the parameters on (training) or off (inference)."""
        return self

    @property
    def manual_backward(self) -> bool:
        """Whether :meth:`data_term_backward` (a hand-written back-propagation) is available."""
        return False

    def data_term_backward(self, labels, flux, ivar, pixels=None, scale: float = 1.0) -> float:
        """Add ``scale`` × ∂/∂θ Σ ivar (f(labels) − flux)² to ``param.grad`` by hand and return the
        scaled term (emulators whose :attr:`manual_backward` is True)."""
        raise NotImplementedError(f"emulator {type(self).__name__} ({self.name!r}) has no hand-written "
                                  "back-propagation")


def untrusted_model_message(path, exc: Exception) -> str:
    """The error message for a model file that torch cannot load with ``weights_only=True``.

    Torch's own message advises retrying with ``weights_only=False``, which would unpickle, i.e. run, code
    from the file: it is not repeated. Only its first line is kept, and only when it says nothing of the kind.
    """
    first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    safe = first and "weights_only" not in str(exc)
    detail = f"{type(exc).__name__}: {first}" if safe else type(exc).__name__
    return (f"{path}: not a ddpayne emulator file ({detail}). ddpayne loads model files as tensors only and "
            "never unpickles them (that could run code from the file); give a model written by ddpayne "
            "(model/emulator.pt of a run, or Emulator.save)")


def load_emulator(path, **options) -> Emulator:
    """Load an emulator saved by any installed emulator plugin.

    The file names the plugin that wrote it (key ``"emulator"`` of the saved torch dictionary); that
    plugin's :meth:`Emulator.load` reads it.

    Parameters
    ----------
    path : str or path-like
        A file written by :meth:`Emulator.save`.
    **options
        Passed to the plugin's ``load`` (e.g. ``device``, ``dtype`` for the ``mlp`` emulator).

    Raises
    ------
    ddpayne.exceptions.IncompatibleModelError
        If the file is not a ddpayne emulator file or was written in an incompatible format.
    """
    import torch

    from .. import registry
    from ..exceptions import IncompatibleModelError

    if not os.path.isfile(path):
        raise IncompatibleModelError(f"{path}: no such model file")
    try:
        # weights_only: tensors and plain containers only; a pickled object is refused, never run
        content = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many types for a non-torch file
        raise IncompatibleModelError(untrusted_model_message(path, exc)) from None
    if not isinstance(content, dict) or "emulator" not in content:
        raise IncompatibleModelError(f"{path}: not a ddpayne emulator file (no 'emulator' entry)")
    return registry.get("emulator", str(content["emulator"])).load(path, **options)
