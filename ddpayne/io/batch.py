"""The prepared-spectrum batch: what the trainer and the fitters take.

A :class:`SpectrumBatch` holds continuum-normalised, rest-frame spectra of many stars on one vacuum
wavelength grid, as plain numpy arrays (``float32`` flux and ivar), with one metadata row per spectrum.
Bad pixels have ``ivar == 0`` (infinite error). Batches concatenate, slice, and round-trip through FITS.
"""
from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from astropy.io import fits
from astropy.table import Table, vstack

from ..exceptions import IncompatibleModelError, SpectrumFileError


@dataclass
class SpectrumBatch:
    """Prepared spectra on a common grid.

    Attributes
    ----------
    wavelength : ndarray, shape (n_pix,)
        Rest-frame vacuum wavelength (Å).
    flux : ndarray, shape (n_spec, n_pix)
        Continuum-normalised flux.
    ivar : ndarray, shape (n_spec, n_pix)
        Inverse variance of the normalised flux; 0 marks a bad pixel.
    meta : astropy.table.Table
        One row per spectrum: ``ID``, ``SOURCE_FILE``, ``RV``, ``SNR`` (median per-pixel S/N of the
        merged spectrum), ``SNR_<ARM>``, ``FLAG``, ``FLAG_REASON`` and survey ids.
    provenance : dict
        How the batch was made (reader, continuum width, masks, package version).
    """

    wavelength: np.ndarray
    flux: np.ndarray
    ivar: np.ndarray
    meta: Table
    provenance: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self):
        self.wavelength = np.asarray(self.wavelength, dtype=float)
        self.flux = np.atleast_2d(np.asarray(self.flux, dtype=np.float32))
        self.ivar = np.atleast_2d(np.asarray(self.ivar, dtype=np.float32))
        n_pix = self.wavelength.size
        if self.flux.shape != self.ivar.shape:
            raise ValueError(f"flux {self.flux.shape} and ivar {self.ivar.shape} shapes differ")
        if self.flux.shape[1] != n_pix:
            raise ValueError(f"flux has {self.flux.shape[1]} pixels but the grid has {n_pix}")
        if len(self.meta) != self.flux.shape[0]:
            raise ValueError(f"meta has {len(self.meta)} rows for {self.flux.shape[0]} spectra")

    def __len__(self) -> int:
        return self.flux.shape[0]

    @property
    def ids(self) -> np.ndarray:
        """Spectrum ids (``meta['ID']``)."""
        return np.asarray(self.meta["ID"]).astype(str)

    def __getitem__(self, item) -> "SpectrumBatch":
        if isinstance(item, (int, np.integer)):
            item = slice(int(item), int(item) + 1)
        return SpectrumBatch(self.wavelength, self.flux[item], self.ivar[item], self.meta[item],
                             dict(self.provenance))

    def select_pixels(self, keep, note: str | None = None) -> "SpectrumBatch":
        """The same spectra on a subset of the pixels (e.g. wavelength windows).

        Parameters
        ----------
        keep : array of bool (n_pix,) or of int
            Pixels to keep (a mask, or indices in increasing order).
        note : str, optional
            Recorded in ``provenance['pixel_selection']``.
        """
        keep = np.asarray(keep)
        if keep.dtype == bool and keep.shape != self.wavelength.shape:
            raise ValueError(f"pixel mask has shape {keep.shape}; the grid has {self.wavelength.size} pixels")
        prov = dict(self.provenance)
        if note:
            prov["pixel_selection"] = note
        return SpectrumBatch(self.wavelength[keep], self.flux[:, keep], self.ivar[:, keep], self.meta, prov)

    @classmethod
    def concatenate(cls, batches: Sequence["SpectrumBatch"]) -> "SpectrumBatch":
        """Join batches on the same grid, in order."""
        batches = [b for b in batches if b is not None]
        if not batches:
            raise ValueError("no batches to concatenate")
        grid = batches[0].wavelength
        for b in batches[1:]:
            if b.wavelength.shape != grid.shape or not np.allclose(b.wavelength, grid):
                raise IncompatibleModelError("batches are on different wavelength grids")
        return cls(grid, np.concatenate([b.flux for b in batches]),
                   np.concatenate([b.ivar for b in batches]),
                   vstack([b.meta for b in batches], metadata_conflicts="silent"),
                   dict(batches[0].provenance))

    def write(self, path: str | os.PathLike, overwrite: bool = False) -> None:
        """Write to a FITS file (atomically: a temporary file renamed into place)."""
        from .atomic import atomic_path

        hdus = fits.HDUList([
            fits.PrimaryHDU(header=fits.Header([("DDPTYPE", "SpectrumBatch"),
                                                 ("PROVEN", json.dumps(self.provenance, default=str))])),
            fits.ImageHDU(self.wavelength, name="WAVELENGTH"),
            fits.ImageHDU(self.flux, name="FLUX"),
            fits.ImageHDU(self.ivar, name="IVAR"),
            fits.BinTableHDU(self.meta, name="META"),
        ])
        hdus["WAVELENGTH"].header["BUNIT"] = "Angstrom"
        with atomic_path(path, overwrite=overwrite) as tmp:
            hdus.writeto(tmp)

    @classmethod
    def read(cls, path: str | os.PathLike) -> "SpectrumBatch":
        """Read a batch written by :meth:`write`."""
        try:
            with fits.open(path, memmap=False) as h:
                if h[0].header.get("DDPTYPE") != "SpectrumBatch":
                    raise SpectrumFileError(path, "not a ddpayne SpectrumBatch file (no DDPTYPE)")
                prov = json.loads(h[0].header.get("PROVEN", "{}"))
                return cls(h["WAVELENGTH"].data.astype(float), h["FLUX"].data, h["IVAR"].data,
                           Table(h["META"].data), prov)
        except (OSError, KeyError) as exc:
            raise SpectrumFileError(path, f"cannot read SpectrumBatch: {exc}") from exc
