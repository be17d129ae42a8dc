"""The spectrum-reader interface and the container readers return.

A reader turns one survey file into :class:`SurveySpectra`: one specutils ``Spectrum`` per
spectrograph arm (flux of shape ``(n_spectra, n_pixels)``, inverse-variance uncertainty, boolean mask,
observed-frame vacuum wavelengths) and a metadata table with one row per spectrum. Readers identify
their files by content, never by name alone.
"""
from __future__ import annotations

import abc
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np
from astropy.table import Table

#: Columns every reader must put in :attr:`SurveySpectra.meta`.
REQUIRED_META = ("ID", "RV", "RV_ERR", "IS_STAR", "FLAG", "FLAG_REASON", "SOURCE_FILE")


@dataclass
class SurveySpectra:
    """Spectra read from one file (or one chunk of it), arm by arm, before preparation.

    Attributes
    ----------
    arms : dict of str -> specutils.Spectrum
        One entry per arm (``'B'``, ``'R'``, ``'Z'`` for DESI; ``'ALL'`` for single-arm surveys).
        Each spectrum has flux ``(n_spectra, n_pixels)`` with flux units, ``InverseVariance``
        uncertainty and a boolean ``mask`` (True = bad), on observed-frame vacuum wavelengths.
    meta : astropy.table.Table
        One row per spectrum with at least :data:`REQUIRED_META`: ``ID`` (str, unique per spectrum),
        ``RV`` and ``RV_ERR`` (km/s; NaN when unknown), ``IS_STAR`` (bool), ``FLAG`` (int, see
        :class:`ddpayne.flags.Flag`), ``FLAG_REASON`` (str), ``SOURCE_FILE`` (str). Survey ids such as
        ``TARGETID`` or ``OBSID`` and photometry are kept as further columns.
    resolution : dict of str -> ndarray, optional
        Per-arm resolution data: DESI's banded resolution matrix ``(n_spectra, n_diag, n_pixels)``.
    survey : str
        Survey name (``'DESI'``, ``'LAMOST'``, ...).
    source : str
        The file the spectra come from.
    """

    arms: dict[str, Any]
    meta: Table
    resolution: dict[str, np.ndarray] | None = None
    survey: str = ""
    source: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.meta)

    def __post_init__(self):
        missing = [c for c in REQUIRED_META if c not in self.meta.colnames]
        if missing:
            raise ValueError(f"{self.source}: reader metadata lacks columns {missing}")
        for arm, spec in self.arms.items():
            n = spec.flux.shape[0] if spec.flux.ndim == 2 else 1
            if n != len(self.meta):
                raise ValueError(f"{self.source}: arm {arm} holds {n} spectra but meta has "
                                 f"{len(self.meta)} rows")


class SpectrumReader(abc.ABC):
    """Interface of a survey reader.

    Subclasses set :attr:`name` (the selection name) and :attr:`survey`, and implement
    :meth:`identify` and :meth:`read`. Readers of large multi-spectrum files also override
    :meth:`iter_chunks` so that memory does not grow with file size.
    """

    #: Name by which users select this reader.
    name: ClassVar[str] = ""
    #: Survey the reader belongs to.
    survey: ClassVar[str] = ""
    #: Default pseudo-continuum kernel width (Å) for this survey's resolution.
    continuum_width: ClassVar[float] = 20.0

    @classmethod
    @abc.abstractmethod
    def identify(cls, path: str | os.PathLike) -> bool:
        """Return True if ``path`` looks like a file of this reader's format (by content)."""

    @abc.abstractmethod
    def read(self, path: str | os.PathLike, catalogue: Table | None = None,
             rows: slice | None = None) -> SurveySpectra:
        """Read the spectra of ``path``.

        Parameters
        ----------
        path : path-like
            The file.
        catalogue : Table, optional
            A survey catalogue that gives RVs and classifications (e.g. DESI's mwsall), matched by id.
        rows : slice, optional
            Read only these rows of a multi-spectrum file.

        Raises
        ------
        ddpayne.exceptions.SpectrumFileError
            If the file is unreadable, truncated or lacks required HDUs/columns; the message names the
            file and what is missing.
        """

    def default_grid(self) -> np.ndarray | None:
        """The rest-frame vacuum grid (Å) that this survey's arms are merged onto.

        ``None`` means: cover all arms at their median pixel spacing (decided at preparation time).
        """
        return None

    def read_catalogue(self, path: str | os.PathLike) -> Table:
        """Read a survey catalogue that :meth:`read` can take as ``catalogue`` (default: any table
        astropy can read)."""
        return Table.read(path)

    def count(self, path: str | os.PathLike) -> int:
        """Number of spectra in ``path`` (1 for single-spectrum formats)."""
        return 1

    def iter_chunks(self, path: str | os.PathLike, catalogue: Table | None = None,
                    chunk_size: int = 256) -> Iterator[SurveySpectra]:
        """Yield the file's spectra in chunks of at most ``chunk_size``."""
        n = self.count(path)
        for start in range(0, n, chunk_size):
            yield self.read(path, catalogue=catalogue, rows=slice(start, min(n, start + chunk_size)))
