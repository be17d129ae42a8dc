"""The DESI Milky Way Survey catalogue (``mwsall-pix-*.fits``): what the reader needs of it.

Columns follow the DESI EDR MWS data model: ``RVTAB`` gives ``TARGETID``, ``RR_SPECTYPE`` (Redrock
class), ``VRAD``/``VRAD_ERR`` (RVSpecfit, km/s) and ``SN_B/R/Z``; the ``FIBERMAP``, ``SCORES`` and
``GAIA`` HDUs match ``RVTAB`` row by row and are joined column-wise when present.
"""
from __future__ import annotations

import logging
import os

import numpy as np
from astropy.io import fits
from astropy.table import Table

from ddpayne.exceptions import SpectrumFileError

log = logging.getLogger(__name__)

#: RVTAB columns the reader requires.
REQUIRED_RVTAB = ("TARGETID", "RR_SPECTYPE", "VRAD")
#: Further RVTAB columns kept when present.
OPTIONAL_RVTAB = ("VRAD_ERR", "SN_B", "SN_R", "SN_Z", "SURVEY", "PROGRAM", "PRIMARY", "RVS_WARN",
                  "SUCCESS", "TEFF", "LOGG", "FEH", "ALPHAFE", "TEFF_ERR", "LOGG_ERR", "FEH_ERR",
                  "ALPHAFE_ERR")
#: The RVS pipeline's own stellar parameters are renamed with an ``RVS_`` prefix: ddpayne's catalogue has
#: its own ``TEFF``, ``LOGG`` ... and keeps these beside them for the comparison of paper Fig. 6.
RVS_LABELS = ("TEFF", "LOGG", "FEH", "ALPHAFE", "TEFF_ERR", "LOGG_ERR", "FEH_ERR", "ALPHAFE_ERR")
#: SPTAB (FERRE) parameters kept, as ``SP_TEFF``, ``SP_LOGG``, ``SP_FEH``, ``SP_ALPHAFE``.
SP_LABELS = ("TEFF", "LOGG", "FEH", "ALPHAFE")
#: Gaia columns kept (prefixed ``GAIA_`` when they clash with RVTAB names).
GAIA_COLUMNS = ("SOURCE_ID", "RA", "DEC", "PARALLAX", "PARALLAX_ERROR", "PMRA", "PMRA_ERROR", "PMDEC",
                "PMDEC_ERROR", "RUWE", "PHOT_G_MEAN_MAG", "PHOT_BP_MEAN_MAG", "PHOT_RP_MEAN_MAG",
                "NU_EFF_USED_IN_ASTROMETRY", "PSEUDOCOLOUR", "ECL_LAT", "ASTROMETRIC_PARAMS_SOLVED")


def read_mws_catalogue(path: str | os.PathLike) -> Table:
    """Read the columns ddpayne uses from an MWS catalogue.

    Parameters
    ----------
    path : path-like
        ``mwsall-pix-*.fits`` or any FITS file with an ``RVTAB`` HDU.

    Returns
    -------
    Table
        RVTAB columns (:data:`REQUIRED_RVTAB`, and :data:`OPTIONAL_RVTAB` when present; the RVS
        pipeline's stellar parameters :data:`RVS_LABELS` as ``RVS_TEFF``, ``RVS_LOGG``, ``RVS_FEH`` ...),
        the SP pipeline's (``SPTAB``) :data:`SP_LABELS` as ``SP_TEFF`` ..., and the GAIA HDU's
        :data:`GAIA_COLUMNS` when present. ``RR_SPECTYPE`` is stripped of padding.

    Raises
    ------
    SpectrumFileError
        If the file is unreadable, has no RVTAB, or lacks a required column.
    """
    try:
        with fits.open(path, memmap=True) as hdul:
            names = [h.name for h in hdul]
            if "RVTAB" not in names:
                raise SpectrumFileError(path, f"no RVTAB HDU (HDUs: {names}); not an MWS catalogue")
            rv = hdul["RVTAB"].data
            have = rv.columns.names
            missing = [c for c in REQUIRED_RVTAB if c not in have]
            if missing:
                raise SpectrumFileError(path, f"RVTAB lacks required column(s) {missing}")
            out = Table()
            for c in REQUIRED_RVTAB + OPTIONAL_RVTAB:
                if c in have:
                    out[f"RVS_{c}" if c in RVS_LABELS else c] = np.array(rv[c])
            if "SPTAB" in names:   # the SP (FERRE) pipeline's parameters, row-matched to RVTAB
                sp = hdul["SPTAB"].data
                if len(sp) == len(rv):
                    for c in SP_LABELS:
                        if c in sp.columns.names:
                            out[f"SP_{c}"] = np.array(sp[c])
                else:
                    log.warning("%s: SPTAB has %d rows for %d RVTAB rows; ignored", path, len(sp), len(rv))
            if "GAIA" in names:
                gaia = hdul["GAIA"].data
                if len(gaia) == len(rv):
                    for c in GAIA_COLUMNS:
                        if c in gaia.columns.names:
                            name = c if c not in out.colnames else f"GAIA_{c}"
                            out[name] = np.array(gaia[c])
                else:
                    log.warning("%s: GAIA HDU has %d rows for %d RVTAB rows; ignored", path,
                                len(gaia), len(rv))
    except SpectrumFileError:
        raise
    except (OSError, ValueError, TypeError) as exc:
        raise SpectrumFileError(path, f"cannot read MWS catalogue: {exc}") from exc
    out["RR_SPECTYPE"] = np.char.strip(np.asarray(out["RR_SPECTYPE"]).astype(str))
    out.meta["FILENAME"] = os.path.basename(os.fspath(path))   # named in the reader's messages
    return out


def match_catalogue(targetids: np.ndarray, catalogue: Table, survey: str | None = None,
                    program: str | None = None, return_ambiguous: bool = False):
    """Row index into ``catalogue`` for each TARGETID (-1 where absent).

    A TARGETID observed in several surveys/programs has several rows; the one of the coadd's own
    ``survey``/``program`` is taken when those columns exist, else the ``PRIMARY`` one, else the first.

    Parameters
    ----------
    targetids : array of int
        The coadd's TARGETIDs.
    catalogue : Table
        From :func:`read_mws_catalogue`.
    survey, program : str, optional
        The coadd's ``SURVEY`` and ``PROGRAM`` (primary header).
    return_ambiguous : bool
        Also return, per TARGETID, why its match is ambiguous ('' when it is not): several rows are equally
        preferred (same survey/program/PRIMARY standing) and their ``VRAD`` differ by more than three times
        the larger ``VRAD_ERR`` (at least 1 km/s).

    Returns
    -------
    index : ndarray of int
    ambiguous : ndarray of str
        Only with ``return_ambiguous``.
    """
    cat_ids = np.asarray(catalogue["TARGETID"], dtype=np.int64)
    order = np.arange(len(catalogue))
    preferred = np.zeros(len(catalogue), dtype=int)
    has_survey = bool(survey) and "SURVEY" in catalogue.colnames and "PROGRAM" in catalogue.colnames
    if has_survey:
        same = ((np.char.strip(np.asarray(catalogue["SURVEY"]).astype(str)) == survey)
                & (np.char.strip(np.asarray(catalogue["PROGRAM"]).astype(str)) == (program or "")))
        preferred -= 2 * same
    if "PRIMARY" in catalogue.colnames:
        preferred -= np.asarray(catalogue["PRIMARY"], dtype=bool).astype(int)
    # sort by id, then by preference, so the first row of each id is the one to take
    idx = np.lexsort((order, preferred, cat_ids))
    sorted_ids = cat_ids[idx]
    first = np.concatenate([[True], sorted_ids[1:] != sorted_ids[:-1]])
    uniq_ids, uniq_rows = sorted_ids[first], idx[first]
    targetids = np.asarray(targetids, dtype=np.int64)
    pos = np.searchsorted(uniq_ids, targetids)
    pos = np.clip(pos, 0, max(len(uniq_ids) - 1, 0))
    found = (len(uniq_ids) > 0) & (uniq_ids[pos] == targetids) if len(uniq_ids) else np.zeros(
        targetids.shape, bool)
    index = np.where(found, uniq_rows[pos] if len(uniq_ids) else -1, -1)
    if not return_ambiguous:
        return index
    ambiguous = np.full(targetids.shape, "", dtype=object)
    ids, counts = np.unique(cat_ids, return_counts=True)
    repeated = set(ids[counts > 1].tolist())
    vrad = np.asarray(catalogue["VRAD"], dtype=float)
    vrad_err = (np.asarray(catalogue["VRAD_ERR"], dtype=float) if "VRAD_ERR" in catalogue.colnames
                else np.full(len(catalogue), np.nan))
    where = (f"survey '{survey}', program '{program or ''}'" if has_survey
             else "the coadd has no SURVEY/PROGRAM" if not survey else "it has no SURVEY/PROGRAM columns")
    name = f" {catalogue.meta['FILENAME']}" if catalogue.meta.get("FILENAME") else ""
    for k in np.flatnonzero(found):
        if int(targetids[k]) not in repeated:
            continue
        rows = np.flatnonzero(cat_ids == targetids[k])
        tied = rows[preferred[rows] == preferred[index[k]]]
        v = vrad[tied][np.isfinite(vrad[tied])]
        if v.size < 2:
            continue
        err = vrad_err[tied][np.isfinite(vrad_err[tied])]
        tol = max(1.0, 3.0 * float(err.max()) if err.size else 0.0)
        if v.max() - v.min() > tol:
            values = ", ".join(f"{x:.1f}" for x in vrad[tied])
            ambiguous[k] = (f"TARGETID {int(targetids[k])} has {tied.size} equally matching rows in the MWS "
                            f"catalogue{name} ({where}) with VRAD {values} km/s: the first (row "
                            f"{int(index[k])}) was used; remove the wrong row or give the catalogue "
                            "SURVEY/PROGRAM/PRIMARY columns")
    return index, ambiguous
