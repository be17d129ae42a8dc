"""Reading survey files through the installed reader plugins."""
from __future__ import annotations

import logging
import os
from collections.abc import Iterator

from astropy.table import Table

from .. import registry
from ..exceptions import SpectrumFileError, UnknownFormatError
from .readers import SpectrumReader, SurveySpectra

log = logging.getLogger(__name__)


def identify_reader(path: str | os.PathLike) -> SpectrumReader:
    """Return an instance of the installed reader that recognises ``path`` by its content.

    Raises
    ------
    FileNotFoundError
        If ``path`` does not exist.
    UnknownFormatError
        If no reader identifies it (the message lists the readers tried).
    """
    if not os.path.exists(path):
        raise FileNotFoundError(f"{path}: no such file")
    readers = registry.available("reader")
    for name, cls in sorted(readers.items()):
        try:
            if cls.identify(path):
                return cls()
        except Exception as exc:  # a reader's identify must not break the others
            log.warning("reader %r failed identifying %s: %s", name, path, exc)
    raise UnknownFormatError(path, f"{describe_content(path)}; no installed reader recognises it (tried: "
                                   f"{', '.join(sorted(readers)) or 'none'}): remove it from the input, or "
                                   "install the reader plugin of its survey")


def describe_content(path: str | os.PathLike) -> str:
    """A few words on what ``path`` holds, judged from its first bytes (for error messages)."""
    import gzip
    import zlib

    size = os.path.getsize(path)
    if size == 0:
        return "empty file (0 bytes)"
    with open(path, "rb") as fh:
        head = fh.read(2880)
    if head[:2] == b"\x1f\x8b":
        try:
            with gzip.open(path, "rb") as fh:
                inner = fh.read(30)
        except (OSError, EOFError, zlib.error) as exc:
            return f"gzip file that cannot be decompressed ({exc})"
        return ("gzip-compressed FITS file" if inner.startswith(b"SIMPLE  =")
                else "gzip file whose content is not FITS")
    if head.startswith(b"SIMPLE  ="):
        return f"FITS file of {size} bytes" + (" (truncated? FITS files are whole 2880-byte blocks)"
                                               if size % 2880 else "")
    text = head.decode("utf-8", "replace")
    if not any(ch < " " and ch not in "\t\r\n" for ch in text):
        return f"text file, not FITS (starts with {text[:20]!r})"
    return f"binary file, not FITS (starts with bytes {head[:8].hex()})"


def readers_by_file(paths, reader: str | SpectrumReader | None = None) -> dict:
    """Identify every file on its own: its reader, or the exception that says why none reads it.

    Parameters
    ----------
    paths : iterable of path-like
        Survey files.
    reader : str or SpectrumReader, optional
        A reader for all of them (then a file it cannot read fails when read, not here).

    Returns
    -------
    dict
        ``{path: SpectrumReader or Exception}``, in the order of ``paths``; the exceptions are
        :class:`~ddpayne.exceptions.SpectrumFileError` or ``FileNotFoundError``.

    Raises
    ------
    ddpayne.exceptions.DDPayneError
        If the readable files belong to more than one survey: one model fits one survey's wavelength grid,
        so the message lists the surveys (with a file of each) and says to split the run.
    """
    from ..exceptions import DDPayneError

    out = {}
    for path in paths:
        try:
            out[path] = get_reader(reader, path)
        except (SpectrumFileError, FileNotFoundError) as exc:
            out[path] = exc
    surveys: dict[str, list] = {}
    for path, rd in out.items():
        if not isinstance(rd, Exception):
            surveys.setdefault(rd.name, []).append(path)
    if len(surveys) > 1:
        listing = "; ".join(f"{name}: {len(files)} file(s), e.g. {os.path.basename(os.fspath(files[0]))}"
                            for name, files in surveys.items())
        raise DDPayneError(f"the input mixes files of {len(surveys)} surveys ({listing}): one model fits one "
                           "survey's wavelength grid, so split the run: one configuration (or command), with "
                           "its own spectra, catalogue and output, per survey")
    return out


def get_reader(reader: str | SpectrumReader | None, path: str | os.PathLike) -> SpectrumReader:
    """Resolve ``reader`` (a name, an instance, or None to identify from ``path``)."""
    if reader is None:
        return identify_reader(path)
    if isinstance(reader, str):
        return registry.create("reader", reader)
    return reader


def read_spectra(path: str | os.PathLike, reader: str | SpectrumReader | None = None,
                 catalogue: Table | str | os.PathLike | None = None) -> SurveySpectra:
    """Read every spectrum of one survey file.

    Parameters
    ----------
    path : path-like
        A survey file (DESI coadd, LAMOST spectrum, or any format an installed plugin reads).
    reader : str or SpectrumReader, optional
        Reader name (``'desi'``, ``'lamost'``, …); identified from the content if omitted.
    catalogue : Table or path-like, optional
        Survey catalogue with RVs and classes (DESI: the MWS ``mwsall`` file).
    """
    rd = get_reader(reader, path)
    if catalogue is not None and not isinstance(catalogue, Table):
        catalogue = rd.read_catalogue(catalogue)
    return rd.read(path, catalogue=catalogue)


def iter_spectra(path: str | os.PathLike, reader: str | SpectrumReader | None = None,
                 catalogue: Table | None = None, chunk_size: int = 256) -> Iterator[SurveySpectra]:
    """Yield the spectra of ``path`` in chunks of at most ``chunk_size`` rows."""
    rd = get_reader(reader, path)
    try:
        yield from rd.iter_chunks(path, catalogue=catalogue, chunk_size=chunk_size)
    except SpectrumFileError:
        raise
    except (OSError, ValueError, KeyError) as exc:
        raise SpectrumFileError(path, str(exc)) from exc
