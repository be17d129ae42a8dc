"""How spectra were prepared for a model: the recipe a saved model carries, so that new spectra are prepared
the same way.

A :class:`PreparationRecipe` holds what :func:`ddpayne.prepare.spectra.prepare` needs beyond the spectra
themselves: the reader (survey) whose grid the spectra are merged onto, the wavelength windows
(``[prepare] wave_range``) and the margin around them over which the pseudo-continuum is estimated, the
continuum kernel width, the bad-pixel settings (:class:`~ddpayne.prepare.spectra.PrepareSettings`) and the
continuum masks. The training stage stores it in the model's provenance (key :data:`PROVENANCE_KEY`, a plain
JSON dictionary: no new file format), and :meth:`PreparationRecipe.of_model` reads it back. A model written
before recipes existed gets one inferred from its wavelength grid and the reader's defaults, with a warning.

The pixels a model fits are always its own wavelength grid (``emulator.wavelength``): the recipe says over
which grid the spectra are normalised, and :meth:`PreparationRecipe.grid_and_pixels` finds the model's pixels
in it, so that a prepared spectrum lands on exactly the model's grid.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import warnings
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..exceptions import DDPayneError, IncompatibleModelError
from . import masks
from .spectra import PrepareSettings

log = logging.getLogger(__name__)

#: Key of the recipe in a model's ``provenance``.
PROVENANCE_KEY = "preparation"
#: Version of the recipe's dictionary layout.
RECIPE_VERSION = 1
#: Margin (Å) around the wavelength windows over which spectra are normalised before the windows are cut, so
#: that window edges get the same continuum as the full spectrum.
WINDOW_MARGIN = 100.0


class PreparationWarning(UserWarning):
    """A model carries no preparation recipe (or one that this ddpayne applies differently): the message says
    what is assumed and how to store the right one."""


def current_continuum_masks() -> dict[str, float]:
    """The half-widths (Å) of the continuum masks this ddpayne applies (:func:`masks.continuum_mask`)."""
    return {"balmer_core_half_width": float(masks.BALMER_CORE_HALF_WIDTH),
            "dib_half_width": float(masks.DIB_HALF_WIDTH)}


@dataclass
class PreparationRecipe:
    """How spectra are prepared for a model.

    Attributes
    ----------
    windows : list of (float, float)
        Rest-frame vacuum wavelength windows (Å) the model fits; empty: the reader's whole grid.
    continuum_width : float or None
        Pseudo-continuum kernel width L (Å); None: the reader's default.
    margin : float
        Å around the windows over which the continuum is estimated (:data:`WINDOW_MARGIN`).
    reader : str or None
        Name of the reader (survey plugin) whose grid the spectra are merged onto; None: any.
    survey : str or None
        The survey's name, for messages.
    settings : dict
        The other fields of :class:`~ddpayne.prepare.spectra.PrepareSettings` (bad-pixel clipping, the
        ``FEW_PIXELS`` threshold).
    continuum_masks : dict
        Half-widths (Å) of the masks left out of the continuum estimate (:func:`current_continuum_masks`).
    inferred : bool
        True when the recipe was not stored with the model but guessed from its grid (see :meth:`of_model`).
    """

    windows: list[tuple[float, float]] = field(default_factory=list)
    continuum_width: float | None = None
    margin: float = WINDOW_MARGIN
    reader: str | None = None
    survey: str | None = None
    settings: dict[str, Any] = field(default_factory=dict)
    continuum_masks: dict[str, float] = field(default_factory=current_continuum_masks)
    inferred: bool = False

    # ------------------------------------------------------------------------------------ construction
    @classmethod
    def from_settings(cls, windows=(), settings: PrepareSettings | None = None, reader=None) -> PreparationRecipe:
        """The recipe of a preparation with ``windows`` and ``settings`` by ``reader`` (an instance or name).

        The continuum width is resolved to the reader's default when ``settings`` leaves it unset, so that the
        stored recipe does not depend on a later change of that default.
        """
        settings = settings or PrepareSettings()
        other = {k: v for k, v in dataclasses.asdict(settings).items() if k != "continuum_width"}
        width = settings.continuum_width or getattr(reader, "continuum_width", None)
        name = reader if isinstance(reader, str) or reader is None else getattr(reader, "name", None)
        return cls(windows=[(float(a), float(b)) for a, b in windows],
                   continuum_width=float(width) if width else None, reader=name,
                   survey=getattr(reader, "survey", None), settings=other)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dictionary (what a model stores; :meth:`from_dict` reads it)."""
        d = dataclasses.asdict(self)
        d.pop("inferred")
        d["windows"] = [[float(a), float(b)] for a, b in self.windows]
        d["version"] = RECIPE_VERSION
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> PreparationRecipe:
        """Read :meth:`to_dict`'s dictionary.

        Raises
        ------
        IncompatibleModelError
            If the dictionary is of a later layout or malformed.
        """
        if not isinstance(d, dict):
            raise IncompatibleModelError(f"preparation recipe is a {type(d).__name__}, not a dictionary")
        version = d.get("version")
        if version != RECIPE_VERSION:
            raise IncompatibleModelError(f"preparation recipe version {version}; this ddpayne reads version "
                                         f"{RECIPE_VERSION}: use the ddpayne version that wrote the model")
        known = {f.name for f in dataclasses.fields(cls)} - {"inferred"}
        kwargs = {k: v for k, v in d.items() if k in known}
        kwargs["windows"] = [(float(a), float(b)) for a, b in kwargs.get("windows", [])]
        return cls(**kwargs)

    @classmethod
    def of_model(cls, emulator, reader=None) -> PreparationRecipe:
        """The recipe stored with ``emulator``, or one inferred from its grid (with a
        :class:`PreparationWarning`).

        A model without a stored recipe (written before ddpayne stored one, or by another program) is
        assumed to have been prepared with the defaults: the reader's continuum width and bad-pixel
        settings, normalised over its own wavelength range plus :data:`WINDOW_MARGIN`, as ``[prepare]
        wave_range`` did. If it was trained with other ``[prepare]`` settings, store them with
        :func:`ddpayne.pipeline.apply.store_recipe` (or retrain).

        Parameters
        ----------
        emulator : Emulator
        reader : SpectrumReader or str, optional
            The reader of the spectra to prepare, for the inferred recipe's defaults.
        """
        stored = (getattr(emulator, "provenance", None) or {}).get(PROVENANCE_KEY)
        if stored is not None:
            return cls.from_dict(stored)
        w = np.asarray(emulator.wavelength, float)
        recipe = cls.from_settings([(float(w[0]), float(w[-1]))], reader=reader)
        recipe.inferred = True
        warnings.warn(
            f"the model stores no preparation settings (it was written before ddpayne stored them): new spectra "
            f"are prepared with the defaults (continuum width {recipe.continuum_width or 'of the reader'} Å, "
            f"normalised over {w[0]:.1f}-{w[-1]:.1f} Å ± {recipe.margin:.0f} Å, then cut to the model's "
            f"{w.size} pixels). If the model was trained with other [prepare] settings, store them once with "
            "ddpayne.pipeline.apply.store_recipe(model_path, PreparationRecipe(...)) or retrain it",
            PreparationWarning, stacklevel=2)
        return recipe

    # ------------------------------------------------------------------------------------------- use
    def prepare_settings(self) -> PrepareSettings:
        """The :class:`~ddpayne.prepare.spectra.PrepareSettings` of this recipe."""
        known = {f.name for f in dataclasses.fields(PrepareSettings)} - {"continuum_width"}
        extra = sorted(set(self.settings) - known)
        if extra:
            log.warning("preparation settings %s of the model are unknown to this ddpayne: ignored", extra)
        return PrepareSettings(continuum_width=self.continuum_width,
                               **{k: v for k, v in self.settings.items() if k in known})

    def digest(self) -> str:
        """A short checksum of the recipe (a stage's inputs)."""
        return hashlib.sha256(json.dumps(self.to_dict(), sort_keys=True).encode()).hexdigest()[:16]

    def check_reader(self, reader) -> None:
        """Refuse spectra of another survey than the model's.

        Raises
        ------
        IncompatibleModelError
            Naming both surveys.
        """
        name = getattr(reader, "name", reader)
        if self.reader and name and name != self.reader:
            raise IncompatibleModelError(
                f"the model was trained on {self.survey or self.reader} spectra (reader {self.reader!r}) but these "
                f"are read by {name!r}: a model fits one survey's resolution and grid; use a model trained on "
                f"this survey")

    def check_masks(self) -> None:
        """Warn when this ddpayne's continuum masks differ from those the model was prepared with."""
        now = current_continuum_masks()
        diff = {k: (v, now.get(k)) for k, v in self.continuum_masks.items() if now.get(k) != v}
        if diff:
            warnings.warn("the model was prepared with other continuum masks than this ddpayne applies "
                          f"(model, now: {diff}); the continuum of new spectra may differ slightly",
                          PreparationWarning, stacklevel=2)

    def grid_and_pixels(self, reader, wavelength=None) -> tuple[np.ndarray | None, np.ndarray | None]:
        """The grid spectra are normalised on and the pixels of it that are kept.

        Parameters
        ----------
        reader : SpectrumReader
            Supplies the survey grid (``default_grid()``).
        wavelength : array_like, optional
            A model's grid: the kept pixels are those of the normalisation grid at these wavelengths (each
            must be one of its pixels). Default: the pixels inside :attr:`windows`.

        Returns
        -------
        grid : ndarray or None
            None: the reader's default (no windows and no model grid to match).
        keep : ndarray of bool or None
            None: every pixel.

        Raises
        ------
        DDPayneError
            Windows with a reader without a default grid, or windows that keep fewer than 10 pixels.
        IncompatibleModelError
            If the model's wavelengths are not pixels of the normalisation grid.
        """
        if not self.windows and wavelength is None:
            return None, None
        full = reader.default_grid() if reader is not None else None
        if full is None:
            what = "the model's grid" if wavelength is not None else f"[prepare] wave_range {self.windows}"
            raise DDPayneError(f"{what} needs a reader with a default grid; reader {getattr(reader, 'name', reader)!r}"
                               " has none")
        full = np.asarray(full, float)
        if self.windows:
            lo, hi = min(a for a, _ in self.windows), max(b for _, b in self.windows)
            grid = full[(full >= lo - self.margin) & (full <= hi + self.margin)]
        else:
            grid = full
        if wavelength is None:
            keep = np.zeros(grid.size, bool)
            for a, b in self.windows:
                keep |= (grid >= a) & (grid <= b)
            if keep.sum() < 10:
                raise DDPayneError(f"[prepare] wave_range {[list(w) for w in self.windows]} keeps {keep.sum()} "
                                   "pixels of the grid")
            return grid, keep
        return grid, _matching_pixels(grid, np.asarray(wavelength, float))


def _matching_pixels(grid: np.ndarray, wave: np.ndarray, rtol: float = 1e-7) -> np.ndarray:
    """Boolean mask of the ``grid`` pixels at the wavelengths ``wave`` (each must be one of them)."""
    idx = np.clip(np.searchsorted(grid, wave), 1, grid.size - 1)
    left = np.abs(grid[idx - 1] - wave) <= np.abs(grid[idx] - wave)
    idx = np.where(left, idx - 1, idx)
    off = np.abs(grid[idx] - wave) > rtol * np.abs(wave)
    if np.any(off) or np.unique(idx).size != idx.size:
        bad = int(np.argmax(off)) if np.any(off) else 0
        raise IncompatibleModelError(
            f"the model's wavelength grid ({wave.size} pixels, {wave[0]:.2f}-{wave[-1]:.2f} Å) is not part of the "
            f"survey grid its spectra are prepared on ({grid.size} pixels, {grid[0]:.2f}-{grid[-1]:.2f} Å; e.g. "
            f"the model's {wave[bad]:.4f} Å is no pixel of it): the model was trained on another survey's grid")
    keep = np.zeros(grid.size, bool)
    keep[idx] = True
    return keep

