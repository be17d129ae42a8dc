"""The training set: prepared spectra cross-matched with a reference-label catalogue (paper §3.2).

The paper trains on DESI stars in common with LAMOST DR9 and APOGEE DR17 with S/N > 20.
:func:`build_training_set` does the cross-match (by DESI ``TARGETID``, by Gaia ``SOURCE_ID``, or by sky
position with astropy), applies the S/N and label-quality cuts, and reports the fate of *every* input
spectrum (``TrainingSet.report``: selected, or the reason it was not), so nothing is dropped silently.
"""
from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import astropy.units as u
import numpy as np
from astropy.table import Table

from ..io.batch import SpectrumBatch
from ..labels import LABEL_NAMES, LABEL_UNIT_STRINGS
from .training import TrainingSetError

log = logging.getLogger(__name__)

#: Id columns tried for ``match='SOURCE_ID'`` (batch meta and catalogue).
SOURCE_ID_COLUMNS: tuple[str, ...] = ("SOURCE_ID", "GAIA_SOURCE_ID", "GAIA_DR3_SOURCE_ID", "REF_ID")
#: (RA, Dec) column pairs tried for ``match='sky'``.
RA_DEC_COLUMNS: tuple[tuple[str, str], ...] = (("RA", "DEC"), ("TARGET_RA", "TARGET_DEC"),
                                               ("ra", "dec"), ("GAIA_RA", "GAIA_DEC"))


@dataclass
class TrainingSet:
    """Spectra with reference labels, ready for :func:`ddpayne.model.training.train_emulator`.

    Attributes
    ----------
    batch : SpectrumBatch
        The selected spectra.
    labels : ndarray, shape (n_selected, n_labels)
        Their reference labels, physical units.
    label_names : tuple of str
    star_ids : ndarray of str
        The star of each spectrum (catalogue id), for the train/validation split by star.
    report : astropy.table.Table
        One row per *input* spectrum: ``ID``, ``CAT_INDEX`` (−1: no match), ``SEPARATION`` (arcsec,
        sky matches), ``STAR_ID``, ``SELECTED``, ``REASON`` (why not selected).
    """

    batch: SpectrumBatch
    labels: np.ndarray
    label_names: tuple[str, ...]
    star_ids: np.ndarray
    report: Table

    def __len__(self) -> int:
        return len(self.batch)

    def label_table(self) -> Table:
        """The labels as a Table with units (one column per label, plus ``ID`` and ``STAR_ID``)."""
        t = Table()
        t["ID"] = self.batch.ids
        t["STAR_ID"] = self.star_ids
        for j, n in enumerate(self.label_names):
            t[n] = self.labels[:, j]
            t[n].unit = LABEL_UNIT_STRINGS.get(n)
        return t

    def train(self, **kwargs):
        """Shortcut for :func:`ddpayne.model.training.train_emulator` on this set."""
        from .training import train_emulator

        return train_emulator(self.batch, self.labels, self.label_names, star_ids=self.star_ids, **kwargs)


def _first(colnames, candidates):
    for c in candidates:
        if c in colnames:
            return c
    return None


def _id_strings(col) -> np.ndarray:
    arr = np.ma.asarray(col)
    out = np.asarray(arr.filled(-1) if np.ma.isMaskedArray(arr) else arr)
    return np.char.strip(out.astype(str))


def build_training_set(batch: SpectrumBatch, catalogue: Table, label_names: Sequence[str] | None = None,
                       *, match: str = "auto", id_column: str | None = None,
                       catalogue_id_column: str | None = None, tolerance=1.0 * u.arcsec,
                       min_snr: float | None = 20.0, snr_column: str = "SNR",
                       max_label_error: float | Mapping[str, float] | None = None,
                       error_suffix: str = "_ERR", catalogue_flag_column: str | None = None,
                       require_unflagged: bool = True, label_ranges: Mapping[str, tuple] | None = None,
                       nan_labels: str = "reject") -> TrainingSet:
    """Cross-match prepared spectra with a reference-label catalogue and apply quality cuts.

    Parameters
    ----------
    batch : SpectrumBatch
        Prepared spectra (``meta`` holds ``ID``, ``SNR``, ``FLAG`` and the survey ids/coordinates).
    catalogue : astropy.table.Table
        Reference labels (e.g. LAMOST DR9 or APOGEE DR17): one column per label, optionally
        ``<LABEL>_ERR`` columns, ids and/or coordinates.
    label_names : sequence of str, optional
        Labels to take (default: every column named in :data:`ddpayne.labels.LABEL_NAMES`).
    match : {'auto', 'TARGETID', 'SOURCE_ID', 'sky'}
        How spectra find their catalogue row. ``auto``: ``TARGETID`` if both sides have it, else a Gaia
        source id column present on both sides, else sky position.
    id_column, catalogue_id_column : str, optional
        Override the id columns used by ``TARGETID``/``SOURCE_ID`` matching.
    tolerance : astropy Quantity
        Largest separation of a sky match (default 1 arcsec).
    min_snr : float or None
        Keep spectra with ``meta[snr_column] >= min_snr`` (paper: 20).
    snr_column : str
    max_label_error : float or mapping, optional
        Largest allowed ``<LABEL><error_suffix>`` (one value for all labels or per label).
    error_suffix : str
    catalogue_flag_column : str, optional
        Catalogue rows with a non-zero value there are rejected.
    require_unflagged : bool
        Reject spectra whose ``meta['FLAG']`` is non-zero.
    label_ranges : mapping, optional
        ``{label: (lo, hi)}``: keep stars inside.
    nan_labels : {'reject', 'error'}
        Spectra whose matched labels contain NaN (or masked values) are rejected with a reason in the
        report (default), or raise :class:`~ddpayne.model.training.TrainingSetError`.

    Returns
    -------
    TrainingSet
    """
    if nan_labels not in ("reject", "error"):
        raise ValueError(f"nan_labels must be 'reject' or 'error', got {nan_labels!r}")
    meta = batch.meta
    if label_names is None:
        label_names = [n for n in LABEL_NAMES if n in catalogue.colnames]
        if not label_names:
            raise TrainingSetError(f"the catalogue has no label column (expected some of {list(LABEL_NAMES)}"
                                   f"; it has {catalogue.colnames})")
    label_names = tuple(label_names)
    missing = [n for n in label_names if n not in catalogue.colnames]
    if missing:
        raise TrainingSetError(f"the reference catalogue lacks label columns {missing}")
    n = len(batch)
    cat_index = np.full(n, -1, dtype=int)
    separation = np.full(n, np.nan)
    reason = np.array([""] * n, dtype=object)

    if match == "auto":
        if "TARGETID" in meta.colnames and "TARGETID" in catalogue.colnames:
            match = "TARGETID"
        elif _first(meta.colnames, SOURCE_ID_COLUMNS) and _first(catalogue.colnames, SOURCE_ID_COLUMNS):
            match = "SOURCE_ID"
        else:
            match = "sky"
    if match in ("TARGETID", "SOURCE_ID"):
        cands = ("TARGETID",) if match == "TARGETID" else SOURCE_ID_COLUMNS
        bcol = id_column or _first(meta.colnames, cands)
        ccol = catalogue_id_column or _first(catalogue.colnames, cands)
        if bcol is None or bcol not in meta.colnames:
            raise TrainingSetError(f"match={match!r}: the spectra's meta table has no id column "
                                   f"(tried {id_column or cands}; it has {meta.colnames})")
        if ccol is None or ccol not in catalogue.colnames:
            raise TrainingSetError(f"match={match!r}: the catalogue has no id column (tried "
                                   f"{catalogue_id_column or cands}; it has {catalogue.colnames})")
        bids, cids = _id_strings(meta[bcol]), _id_strings(catalogue[ccol])
        uniq, first, counts = np.unique(cids, return_index=True, return_counts=True)
        pos = np.searchsorted(uniq, bids)
        pos = np.clip(pos, 0, max(uniq.size - 1, 0))
        found = (uniq.size > 0) & (uniq[pos] == bids) & (bids != "-1")
        cat_index[found] = first[pos[found]]
        ambiguous = found & (counts[pos] > 1)
        for i in np.flatnonzero(ambiguous):
            reason[i] = f"{counts[pos[i]]} catalogue rows have {ccol}={bids[i]}"
        for i in np.flatnonzero(~found):
            reason[i] = f"no catalogue row with {ccol}={bids[i]}"
        star = np.where(found, bids, "")
    elif match == "sky":
        from astropy.coordinates import SkyCoord

        bpair = next((p for p in RA_DEC_COLUMNS if set(p) <= set(meta.colnames)), None)
        cpair = next((p for p in RA_DEC_COLUMNS if set(p) <= set(catalogue.colnames)), None)
        if bpair is None or cpair is None:
            ids = ", ".join(("TARGETID",) + SOURCE_ID_COLUMNS)
            pairs = ", ".join("/".join(p) for p in RA_DEC_COLUMNS)
            have_b, have_c = ("/".join(p) if p else "none" for p in (bpair, cpair))
            raise TrainingSetError(f"no column to match the spectra with the reference catalogue: looked for "
                                   f"an identifier ({ids}) in both, then for RA/Dec columns ({pairs}): the "
                                   f"spectra have {have_b}, the catalogue {have_c} (its columns: "
                                   f"{catalogue.colnames}); add TARGETID (or a Gaia SOURCE_ID, or RA/DEC) to "
                                   "the catalogue")
        bra = np.ma.filled(np.ma.asarray(meta[bpair[0]], dtype=float), np.nan)
        bdec = np.ma.filled(np.ma.asarray(meta[bpair[1]], dtype=float), np.nan)
        cra = np.ma.filled(np.ma.asarray(catalogue[cpair[0]], dtype=float), np.nan)
        cdec = np.ma.filled(np.ma.asarray(catalogue[cpair[1]], dtype=float), np.nan)
        cok = np.isfinite(cra) & np.isfinite(cdec)
        bok = np.isfinite(bra) & np.isfinite(bdec)
        cidx_ok = np.flatnonzero(cok)
        if cidx_ok.size and bok.any():
            cc = SkyCoord(cra[cok] * u.deg, cdec[cok] * u.deg)
            bc = SkyCoord(bra[bok] * u.deg, bdec[bok] * u.deg)
            idx, sep, _ = bc.match_to_catalog_sky(cc)
            bi = np.flatnonzero(bok)
            separation[bi] = sep.to_value(u.arcsec)
            close = sep <= tolerance
            cat_index[bi[close]] = cidx_ok[idx[close]]
        tol = u.Quantity(tolerance).to_value(u.arcsec)
        for i in range(n):
            if not bok[i]:
                reason[i] = f"no valid {bpair[0]}/{bpair[1]}"
            elif cat_index[i] < 0:
                reason[i] = f"no catalogue star within {tol:g} arcsec (nearest {separation[i]:.3g})"
        ccol = catalogue_id_column or _first(catalogue.colnames, ("TARGETID",) + SOURCE_ID_COLUMNS + ("ID",))
        if ccol is not None:
            cids = _id_strings(catalogue[ccol])
            star = np.where(cat_index >= 0, cids[np.maximum(cat_index, 0)], "")
        else:
            star = np.where(cat_index >= 0, np.char.add("CAT", cat_index.astype(str)), "")
    else:
        raise ValueError(f"match must be 'auto', 'TARGETID', 'SOURCE_ID' or 'sky', got {match!r}")

    matched = cat_index >= 0
    lab = np.full((n, len(label_names)), np.nan)
    for j, name in enumerate(label_names):
        col = np.ma.filled(np.ma.asarray(catalogue[name], dtype=float), np.nan)
        lab[matched, j] = col[cat_index[matched]]

    def reject(mask, text):
        for i in np.flatnonzero(mask & (reason == "")):
            reason[i] = text(i) if callable(text) else text

    if require_unflagged and "FLAG" in meta.colnames:
        flag = np.asarray(meta["FLAG"]).astype(np.int64)
        reject(flag != 0, lambda i: f"spectrum flagged (FLAG={flag[i]})")
    if min_snr is not None:
        if snr_column not in meta.colnames:
            raise TrainingSetError(f"S/N cut requested but the spectra's meta has no {snr_column!r} column")
        snr = np.ma.filled(np.ma.asarray(meta[snr_column], dtype=float), np.nan)
        reject(~(snr >= min_snr), lambda i: f"{snr_column}={snr[i]:.3g} < {min_snr:g}")
    if catalogue_flag_column is not None:
        cflag = np.asarray(np.ma.filled(np.ma.asarray(catalogue[catalogue_flag_column]), 1))
        reject(matched & (cflag[np.maximum(cat_index, 0)] != 0),
               lambda i: f"catalogue {catalogue_flag_column}={cflag[cat_index[i]]}")
    nanrow = matched & ~np.all(np.isfinite(lab), axis=1)
    if nanrow.any() and nan_labels == "error":
        ex = [f"{batch.ids[i]} ({', '.join(nm for nm, v in zip(label_names, lab[i]) if not np.isfinite(v))})"
              for i in np.flatnonzero(nanrow)[:5]]
        raise TrainingSetError(f"{nanrow.sum()} matched spectra have NaN reference labels, e.g. {ex}: "
                               f"use nan_labels='reject' or fill/drop these catalogue rows")
    reject(nanrow, lambda i: "NaN label(s) " + ",".join(
        nm for nm, v in zip(label_names, lab[i]) if not np.isfinite(v)))
    if max_label_error is not None:
        limits = (dict(max_label_error) if isinstance(max_label_error, Mapping)
                  else {nm: float(max_label_error) for nm in label_names})
        for nm, lim in limits.items():
            ecol = nm + error_suffix
            if ecol not in catalogue.colnames:
                raise TrainingSetError(f"label-error cut on {nm} needs catalogue column {ecol!r}")
            err = np.ma.filled(np.ma.asarray(catalogue[ecol], dtype=float), np.nan)
            e = np.where(matched, err[np.maximum(cat_index, 0)], np.nan)
            reject(matched & ~(e <= lim),
                   lambda i, nm=nm, e=e, lim=lim: f"{nm}{error_suffix}={e[i]:.3g} > {lim:g}")
    for nm, (lo, hi) in dict(label_ranges or {}).items():
        j = label_names.index(nm)
        reject(matched & ~((lab[:, j] >= lo) & (lab[:, j] <= hi)),
               lambda i, j=j, nm=nm, lo=lo, hi=hi: f"{nm}={lab[i, j]:.3g} outside [{lo}, {hi}]")

    selected = reason == ""
    report = Table()
    report["ID"] = batch.ids
    report["CAT_INDEX"] = cat_index
    report["SEPARATION"] = separation
    report["SEPARATION"].unit = "arcsec"
    report["STAR_ID"] = np.asarray(star, dtype=str)
    report["SELECTED"] = selected
    report["REASON"] = np.asarray(reason, dtype=str)
    log.info("training set: %d of %d spectra selected (%d unmatched) by %s match", selected.sum(), n,
             (~matched).sum(), match)
    if not selected.any():
        raise TrainingSetError(f"no spectrum passes the cross-match and cuts ({n} inputs; reasons e.g. "
                               f"{[str(r) for r in sorted(set(report['REASON']))[:5]]})")
    sel = np.flatnonzero(selected)
    sub = SpectrumBatch(batch.wavelength, batch.flux[sel], batch.ivar[sel], batch.meta[sel],
                        dict(batch.provenance))
    return TrainingSet(sub, lab[sel], label_names, np.asarray(star, dtype=str)[sel], report)
