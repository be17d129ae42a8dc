"""From a catalogue row back to its prepared spectrum and the model that fitted it.

A catalogue written by ``ddpayne run`` sits in the run folder (``[output] dir``) beside what made it::

    <run>/catalogue.fits            one row per spectrum: ID, SOURCE_FILE, labels, errors, flags
    <run>/config.toml               the configuration of the run
    <run>/prepared/<name>.fits      prepared spectra of survey file <name>.fits (SpectrumBatch)
    <run>/model/emulator.pt         the trained emulator (or [training] model of the configuration)

A row's spectrum is the row of ``prepared/<SOURCE_FILE stem>.fits`` whose ``ID`` matches (IDs repeat across
files when a target was observed more than once, so the file is part of the key). Only the selected rows
are read from the prepared files (memory-mapped), so a report on a few stars of a large survey stays small.
Every path can be given explicitly when the run folder has moved; what is missing is reported with the
places looked at.
"""
from __future__ import annotations

import json
import logging
import os
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from astropy.io import fits
from astropy.table import Table

from ..exceptions import DDPayneError

log = logging.getLogger(__name__)

#: Catalogue columns a report needs (besides the fitted labels).
REQUIRED_COLUMNS = ("ID", "SOURCE_FILE", "FLAG")


class ReportInputError(DDPayneError):
    """The catalogue, its prepared spectra or its model cannot be found or used."""


@dataclass
class RunFiles:
    """Where a catalogue's spectra and model are.

    Attributes
    ----------
    catalogue : Path
    run_dir : Path
        The run folder (default: the catalogue's folder).
    prepared_dir : Path
        Folder of the prepared-spectra files.
    model : Path or None
        The emulator file (None: not found; the report then shows the spectra without model).
    provenance : dict
        The catalogue's ``PROVENANCE`` HDU (configuration, model checksum, versions).
    """

    catalogue: Path
    run_dir: Path
    prepared_dir: Path
    model: Path | None
    provenance: dict = field(default_factory=dict)
    looked_for_model: list[Path] = field(default_factory=list)

    def prepared_file(self, source_file: str) -> Path:
        """The prepared file of survey file ``source_file`` (the stage's naming: ``<stem>.fits``)."""
        return self.prepared_dir / (Path(str(source_file)).name.split(".fits")[0] + ".fits")


def read_provenance(path: Path) -> dict:
    """The ``PROVENANCE`` HDU of a catalogue as a dict (empty when it has none)."""
    try:
        with fits.open(path, memmap=True) as h:
            if "PROVENANCE" not in h:
                return {}
            data = h["PROVENANCE"].data
            out = {}
            for k, v in zip(data["KEY"], data["VALUE"]):
                try:
                    out[str(k)] = json.loads(v)
                except ValueError:
                    out[str(k)] = str(v)
            return out
    except OSError as exc:
        raise ReportInputError(f"cannot read catalogue {path}: {exc}") from None


def locate(catalogue: str | os.PathLike, run_dir: str | os.PathLike | None = None,
           prepared: str | os.PathLike | None = None, model: str | os.PathLike | None = None) -> RunFiles:
    """Find the run folder, prepared spectra and model of ``catalogue``.

    Parameters
    ----------
    catalogue : path
        A catalogue written by ``ddpayne run`` (or any FITS table with the :data:`REQUIRED_COLUMNS`).
    run_dir, prepared, model : path, optional
        Explicit locations (for a moved run folder); defaults are the catalogue's folder, ``<run>/prepared``
        and ``[training] model`` of the run's configuration or ``<run>/model/emulator.pt``.

    Raises
    ------
    ReportInputError
        The catalogue or the prepared-spectra folder does not exist (naming where it looked).
    """
    cat = Path(catalogue)
    if not cat.exists():
        raise ReportInputError(f"catalogue {cat} does not exist")
    run = Path(run_dir) if run_dir else cat.resolve().parent
    if not run.is_dir():
        raise ReportInputError(f"run folder {run} does not exist")
    prep = Path(prepared) if prepared else run / "prepared"
    if not prep.is_dir():
        raise ReportInputError(
            f"prepared spectra not found: no folder {prep} (the run folder of {cat} should hold 'prepared/'; give "
            "the run folder with --run-dir or the prepared-spectra folder with --prepared)")
    prov = read_provenance(cat)
    looked: list[Path] = []
    found = None
    if model:
        looked = [Path(model)]
        found = looked[0] if looked[0].exists() else None
        if found is None:
            raise ReportInputError(f"model {model} does not exist")
    else:
        cfg = prov.get("config") if isinstance(prov.get("config"), dict) else {}
        given = (cfg.get("training") or {}).get("model") or ""
        if given:
            looked += [run / given, run.parent / given, Path(given)]
        looked.append(run / "model" / "emulator.pt")
        found = next((p for p in looked if p.exists()), None)
        if found is None:
            log.warning("model not found (looked for %s): the report shows spectra without the model, χ² "
                        "residuals and information maps; give it with --model", ", ".join(map(str, looked)))
    return RunFiles(cat, run, prep, found, prov, looked)


def read_catalogue(files: RunFiles) -> tuple[Table, list[str]]:
    """The catalogue table (memory-mapped) and its fitted labels, after checking the needed columns.

    Raises
    ------
    ReportInputError
        Naming the missing columns and the file.
    """
    import astropy.units as u

    from ..labels import LABEL_NAMES
    from ..pipeline.catalogue import fitted_labels

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", u.UnitsWarning)
            cat = Table.read(files.catalogue, hdu="CATALOGUE" if _has_hdu(files.catalogue, "CATALOGUE") else 1,
                             memmap=True)
    except (OSError, ValueError, TypeError) as exc:
        raise ReportInputError(f"cannot read catalogue {files.catalogue}: {exc}") from None
    keys = sorted(k for k in cat.meta if len(k) == 7 and k.startswith("LABEL") and k[5:].isdigit())
    if keys:
        cat.meta["LABELS"] = [str(cat.meta[k]) for k in keys]
    labels = fitted_labels(cat) or [n for n in LABEL_NAMES if n in cat.colnames]
    missing = [c for c in REQUIRED_COLUMNS if c not in cat.colnames]
    missing += [n for n in labels if n not in cat.colnames]
    if not labels:
        missing.append("fitted labels (e.g. TEFF, LOGG, FE_H)")
    if missing:
        raise ReportInputError(f"catalogue {files.catalogue} lacks the column(s) {missing} that the report needs "
                               "(is it a catalogue written by 'ddpayne run'?)")
    return cat, labels


def _has_hdu(path: Path, name: str) -> bool:
    with fits.open(path, memmap=True) as h:
        return name in h


def select_rows(cat: Table, targetids: Sequence[str] = (), flagged: bool = False, worst_chi2: int = 0,
                flag_bits: int | None = None) -> np.ndarray:
    """Row indices of the selected stars, in catalogue order (the union of the criteria).

    Parameters
    ----------
    targetids : sequence of str
        Values of ``TARGETID`` (or ``ID`` when the catalogue has no ``TARGETID``); all rows of each (repeats
        included).
    flagged : bool
        Rows with any ``FLAG`` bit (or any of ``flag_bits``) set.
    worst_chi2 : int
        The N rows with the largest ``QFLAG_CHI2`` (``RCHI2`` when absent).

    Raises
    ------
    ReportInputError
        A TARGETID that is not in the catalogue, or a criterion without its column.
    """
    keep = np.zeros(len(cat), bool)
    if targetids:
        col = "TARGETID" if "TARGETID" in cat.colnames else "ID"
        have = np.asarray(cat[col]).astype(str)
        wanted = [str(t).strip() for t in targetids]
        absent = [t for t in wanted if t not in set(have)]
        if absent:
            raise ReportInputError(f"{col} {absent} not in the catalogue ({len(cat)} rows, column {col})")
        keep |= np.isin(have, wanted)
    if flagged:
        flags = np.asarray(cat["FLAG"], dtype=np.int64)
        keep |= (flags & flag_bits) != 0 if flag_bits is not None else flags != 0
    if worst_chi2:
        col = next((c for c in ("QFLAG_CHI2", "RCHI2", "CHI2") if c in cat.colnames), None)
        if col is None:
            raise ReportInputError("--worst-chi2 needs a QFLAG_CHI2, RCHI2 or CHI2 column; the catalogue has none")
        v = np.asarray(cat[col], float)
        order = np.argsort(np.where(np.isfinite(v), v, -np.inf))[::-1]
        keep[order[:int(worst_chi2)]] = True
    return np.flatnonzero(keep)


@dataclass
class StarSpectrum:
    """One prepared spectrum: the grid, normalised flux and inverse variance (0 = masked)."""

    wavelength: np.ndarray
    flux: np.ndarray
    ivar: np.ndarray
    path: Path


def read_spectra(files: RunFiles, cat: Table, rows: Sequence[int]) -> dict[int, StarSpectrum]:
    """The prepared spectra of catalogue ``rows`` (only those rows are read, file by file).

    Raises
    ------
    ReportInputError
        A prepared file that is missing or unreadable, or a spectrum it does not hold.
    """
    by_file: dict[Path, list[int]] = {}
    for r in rows:
        by_file.setdefault(files.prepared_file(cat["SOURCE_FILE"][r]), []).append(int(r))
    out: dict[int, StarSpectrum] = {}
    for path, rs in by_file.items():
        if not path.exists():
            raise ReportInputError(
                f"prepared spectra of {Path(str(cat['SOURCE_FILE'][rs[0]])).name} not found: looked for {path} "
                "(give the prepared-spectra folder with --prepared, or the run folder with --run-dir)")
        try:
            with fits.open(path, memmap=True) as h:
                if h[0].header.get("DDPTYPE") != "SpectrumBatch":
                    raise ReportInputError(f"{path} is not a ddpayne prepared-spectra file (no DDPTYPE)")
                ids = np.asarray(h["META"].data["ID"]).astype(str)
                wave = np.array(h["WAVELENGTH"].data, dtype=float)
                index = {v: i for i, v in enumerate(ids)}
                for r in rs:
                    sid = str(cat["ID"][r])
                    if sid not in index:
                        raise ReportInputError(f"spectrum ID {sid} is not in {path} ({len(ids)} spectra): the "
                                               "prepared files do not belong to this catalogue")
                    i = index[sid]
                    out[r] = StarSpectrum(wave, np.array(h["FLUX"].section[i], dtype=float),
                                          np.array(h["IVAR"].section[i], dtype=float), path)
        except (OSError, KeyError) as exc:
            raise ReportInputError(f"cannot read prepared spectra {path}: {exc}") from None
    return out


def repeats(cat: Table, row: int) -> np.ndarray:
    """Other rows of the same target (``TARGETID``; none when the catalogue has no such column)."""
    if "TARGETID" not in cat.colnames:
        return np.zeros(0, int)
    tid = cat["TARGETID"][row]
    same = np.flatnonzero(np.asarray(cat["TARGETID"]) == tid)
    return same[same != row]
