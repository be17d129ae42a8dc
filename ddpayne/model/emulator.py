"""The emulator interface: labels -> normalised flux, with an exact Jacobian.

Emulators work on torch tensors inside (the trainer and fitters run on them) and offer numpy
conveniences at the edge. Labels are always in physical units and in the order of
:attr:`Emulator.label_names`.
"""
from __future__ import annotations

import abc
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
