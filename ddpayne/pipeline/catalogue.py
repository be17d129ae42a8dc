"""The output catalogue: one FITS table, one row per star spectrum, units and provenance throughout.

Columns come from three stages, joined row by row on ``ID``: the prepared batch (ids, coordinates,
RV, S/N, preparation flags), the fit (labels, errors, χ², quality flags) and the galaxy stage
(extinction, distances, orbits, GES membership). ``FLAG`` is the OR of every stage's bits
(:class:`ddpayne.flags.Flag`, documented in ``docs/catalogue.rst``). Spectra that were not stars, or
could not be read, are listed in a second HDU, ``REJECTED``, with the reason.
"""
from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Any

import numpy as np
from astropy.io import fits
from astropy.table import Column, Table

from .. import __version__
from ..flags import describe, join_reasons, stage_reason
from ..io.atomic import atomic_path

log = logging.getLogger(__name__)

#: Units and descriptions of catalogue columns (labels and errors are added from ddpayne.labels).
COLUMN_INFO: dict[str, tuple[str | None, str]] = {
    "ID": (None, "spectrum id (DESI: TARGETID; LAMOST: OBSID)"),
    "TARGETID": (None, "DESI target id"),
    "SOURCE_FILE": (None, "survey file the spectrum was read from"),
    "RA": ("deg", "right ascension (ICRS)"),
    "DEC": ("deg", "declination (ICRS)"),
    "RV": ("km/s", "radial velocity used for the rest-frame shift (catalogue VRAD)"),
    "RV_ERR": ("km/s", "uncertainty of RV"),
    "SNR": (None, "median per-pixel S/N of the merged, normalised spectrum"),
    "SNR_B": (None, "median per-pixel S/N of the B arm"),
    "SNR_R": (None, "median per-pixel S/N of the R arm"),
    "SNR_Z": (None, "median per-pixel S/N of the Z arm"),
    "CHI2": (None, "chi-square of the best fit over good pixels"),
    "RCHI2": (None, "reduced chi-square"),
    "N_PIX": (None, "number of good pixels in the fit"),
    "QFLAG_CHI2": (None, "(CHI2 - median)/MAD within S/N bins (paper Eq. 4); < 3 is a good fit"),
    "FLAG": (None, "quality bits, see docs/catalogue.rst (0 = nothing to report)"),
    "FLAG_REASON": (None, "readable reason for the preparation flags"),
    "ABUND_FLAG": (None, "per-element bits: abundance not trusted (below [Fe/H] floor or at bound)"),
    "EBV": ("mag", "E(B-V) from the star-pair method"),
    "EBV_ERR": ("mag", "uncertainty of EBV"),
    "DIST": ("kpc", "distance (spectro-photometric and parallax combined)"),
    "DIST_ERR": ("kpc", "uncertainty of DIST"),
    "JR": ("kpc km/s", "radial action"),
    "JPHI": ("kpc km/s", "azimuthal action (L_z)"),
    "JZ": ("kpc km/s", "vertical action"),
    "ECC": (None, "orbital eccentricity"),
    "RPERI": ("kpc", "pericentre radius"),
    "RAPO": ("kpc", "apocentre radius"),
    "ZMAX": ("kpc", "maximum height above the plane"),
    "ENERGY": ("km2/s2", "orbital energy"),
    "GES": (None, "member of Gaia-Enceladus-Sausage (selection in the header)"),
    "CRB_REF": (None, "index of the gradient-spectra reference point used for the *_CRB columns (-1: none)"),
    # columns carried over from the survey inputs (DESI FIBERMAP and MWS catalogue, Gaia DR3, 2MASS), when
    # their files give no unit
    "PARALLAX": ("mas", "Gaia DR3 parallax (not zero-point corrected)"),
    "PARALLAX_ERROR": ("mas", "uncertainty of PARALLAX"),
    "PMRA": ("mas/yr", "Gaia DR3 proper motion in RA (times cos DEC)"),
    "PMRA_ERROR": ("mas/yr", "uncertainty of PMRA"),
    "PMDEC": ("mas/yr", "Gaia DR3 proper motion in DEC"),
    "PMDEC_ERROR": ("mas/yr", "uncertainty of PMDEC"),
    "FM_PARALLAX": ("mas", "parallax in the DESI FIBERMAP"),
    "FM_PMRA": ("mas/yr", "proper motion in RA in the DESI FIBERMAP"),
    "FM_PMDEC": ("mas/yr", "proper motion in DEC in the DESI FIBERMAP"),
    "PHOT_G_MEAN_MAG": ("mag", "Gaia DR3 G"),
    "PHOT_BP_MEAN_MAG": ("mag", "Gaia DR3 BP"),
    "PHOT_RP_MEAN_MAG": ("mag", "Gaia DR3 RP"),
    "GAIA_PHOT_G_MEAN_MAG": ("mag", "Gaia G in the DESI FIBERMAP"),
    "GAIA_PHOT_BP_MEAN_MAG": ("mag", "Gaia BP in the DESI FIBERMAP"),
    "GAIA_PHOT_RP_MEAN_MAG": ("mag", "Gaia RP in the DESI FIBERMAP"),
    "NU_EFF_USED_IN_ASTROMETRY": ("1/um", "Gaia DR3 effective wavenumber (parallax zero point input)"),
    "PSEUDOCOLOUR": ("1/um", "Gaia DR3 pseudocolour (parallax zero point input)"),
    "ECL_LAT": ("deg", "ecliptic latitude (parallax zero point input)"),
    "EBV_SFD": ("mag", "E(B-V) of the Schlegel et al. (1998) map (DESI FIBERMAP)"),
    "J": ("mag", "2MASS J"), "H": ("mag", "2MASS H"), "KS": ("mag", "2MASS Ks"),
    "J_ERR": ("mag", "uncertainty of J"), "H_ERR": ("mag", "uncertainty of H"),
    "KS_ERR": ("mag", "uncertainty of KS"),
    "SP_TEFF": ("K", "Teff of the DESI MWS SP (FERRE) pipeline (SPTAB TEFF)"),
    "SP_LOGG": ("dex", "log g of the DESI MWS SP pipeline (SPTAB LOGG)"),
    "SP_FEH": ("dex", "[Fe/H] of the DESI MWS SP pipeline (SPTAB FEH)"),
    "SP_ALPHAFE": ("dex", "[alpha/Fe] of the DESI MWS SP pipeline (SPTAB ALPHAFE)"),
    "RVS_TEFF": ("K", "Teff of the DESI MWS RVS pipeline (RVTAB TEFF)"),
    "RVS_TEFF_ERR": ("K", "uncertainty of RVS_TEFF"),
    "RVS_LOGG": ("dex", "log g of the DESI MWS RVS pipeline (RVTAB LOGG)"),
    "RVS_LOGG_ERR": ("dex", "uncertainty of RVS_LOGG"),
    "RVS_FEH": ("dex", "[Fe/H] of the DESI MWS RVS pipeline (RVTAB FEH)"),
    "RVS_FEH_ERR": ("dex", "uncertainty of RVS_FEH"),
    "RVS_ALPHAFE": ("dex", "[alpha/Fe] of the DESI MWS RVS pipeline (RVTAB ALPHAFE)"),
    "RVS_ALPHAFE_ERR": ("dex", "uncertainty of RVS_ALPHAFE"),
    "RUWE": (None, "Gaia DR3 renormalised unit weight error"),
    "SOURCE_ID": (None, "Gaia DR3 source_id"),
    "ASTROMETRIC_PARAMS_SOLVED": (None, "Gaia DR3 astrometric solution type (parallax zero point input)"),
    # DESI FIBERMAP (renamed where the survey name would clash: PMRA -> FM_PMRA, EBV -> EBV_SFD, ...)
    "OBJTYPE": (None, "DESI FIBERMAP OBJTYPE (TGT: target, SKY: sky fibre)"),
    "REF_ID": (None, "DESI FIBERMAP REF_ID (Gaia source_id for Gaia-selected targets)"),
    "REF_CAT": (None, "DESI FIBERMAP REF_CAT (catalogue of REF_ID, G2: Gaia DR2)"),
    "MWS_TARGET": (None, "DESI MWS targeting bits (FIBERMAP MWS_TARGET)"),
    "COADD_NUMEXP": (None, "number of exposures in the coadd (FIBERMAP COADD_NUMEXP)"),
    # DESI MWS catalogue (RVTAB)
    "SN_B": (None, "DESI MWS catalogue S/N per pixel of the B arm (RVTAB SN_B)"),
    "SN_R": (None, "DESI MWS catalogue S/N per pixel of the R arm (RVTAB SN_R)"),
    "SN_Z": (None, "DESI MWS catalogue S/N per pixel of the Z arm (RVTAB SN_Z)"),
    "HEALPIX": (None, "DESI HEALPix pixel of the coadd file"),
    "SURVEY": (None, "DESI survey of the spectrum (main, sv1, sv3, ...)"),
    "PROGRAM": (None, "DESI program of the spectrum (bright, dark, backup, ...)"),
    "PRIMARY": (None, "DESI MWS catalogue PRIMARY: the preferred spectrum of the target"),
    "RVS_WARN": (None, "RVS pipeline warning bits (RVTAB RVS_WARN; 0: none)"),
    "SUCCESS": (None, "RVS pipeline fit succeeded (RVTAB SUCCESS)"),
    "SPECTYPE": (None, "Redrock class of the spectrum (RVTAB RR_SPECTYPE): STAR, GALAXY, QSO"),
    # preparation and fit
    "N_GOOD_PIX": (None, "usable pixels of the prepared spectrum on the fitted grid"),
    "COVAR": (None, "formal covariance of the labels, in their units (order: LABELnn header keywords)"),
    "STATUS": (None, "fit status: 0 converged, 1 iteration limit, 2 failed, 3 not fitted"),
    "CONVERGED": (None, "the fit converged (STATUS == 0)"),
    "N_ITER": (None, "iterations of the winning start of the fit"),
    "BEST_START": (None, "index of the winning starting point of the fit"),
    "COVERAGE_DIST": (None, "distance to the nearest training star in scaled label space"),
    "BOUND_MASK": (None, "per-label bits (LABELnn header order): label ended at a bound"),
    # galaxy stage
    "E_BP_RP": ("mag", "colour excess E(BP-RP) from the star-pair method"),
    "E_G_J": ("mag", "colour excess E(G-J) from the star-pair method"),
    "E_G_H": ("mag", "colour excess E(G-H) from the star-pair method"),
    "E_G_KS": ("mag", "colour excess E(G-Ks) from the star-pair method"),
    "N_COLOURS": (None, "number of colours used for EBV"),
    "DIST_SPEC": ("kpc", "spectro-photometric distance"),
    "DIST_SPEC_ERR": ("kpc", "uncertainty of DIST_SPEC"),
    "DIST_PLX": ("kpc", "distance from the zero-point-corrected Gaia parallax"),
    "DIST_PLX_ERR": ("kpc", "uncertainty of DIST_PLX"),
    "M_G": ("mag", "absolute magnitude in Gaia G (from the labels)"),
    "M_KS": ("mag", "absolute magnitude in 2MASS Ks (from the labels)"),
    "M_G_ERR": ("mag", "uncertainty of M_G"),
    "M_KS_ERR": ("mag", "uncertainty of M_KS"),
    "PARALLAX_CORR": ("mas", "Gaia parallax corrected for the Lindegren et al. (2021) zero point"),
    "PARALLAX_ZP": ("mas", "parallax zero point subtracted (Lindegren et al. 2021, or the QSO offset)"),
    "ZP_FALLBACK": (None, "the global QSO zero point was used (zero-point inputs missing or out of range)"),
}
#: Description of a column that :data:`COLUMN_INFO` does not know (a survey column carried through).
UNKNOWN_COLUMN = "column carried over from the survey input"


def _describe_columns(table: Table) -> None:
    from ..labels import LABEL_UNIT_STRINGS

    for name in table.colnames:
        unit, desc = COLUMN_INFO.get(name, (None, ""))
        base = name[:-4] if name.endswith(("_ERR", "_CRB")) else name[:-8] if name.endswith("_ERR_TOT") else name
        if base in LABEL_UNIT_STRINGS:
            unit = LABEL_UNIT_STRINGS[base]
            desc = desc or ({"_ERR": f"formal uncertainty of {base}",
                             "_TOT": f"total uncertainty of {base}: formal and model systematic error "
                                     "(validation stars) in quadrature",
                             "_CRB": f"physical Cramer-Rao bound on {base} (this spectrum's noise, "
                                     f"gradient spectra of reference point CRB_REF)"}.get(name[-4:])
                            or f"stellar label {name}")
        col = table[name]
        if unit and col.unit is None:
            col.unit = unit
        if not col.description:
            col.description = desc or UNKNOWN_COLUMN


def add_stage_reasons(cat: Table) -> None:
    """Append to ``FLAG_REASON`` the reasons of the fit- and derive-stage bits set in ``FLAG``, which those
    stages set without one (the preparation's reasons are kept first). Modifies ``cat`` in place."""
    prep = (np.ma.filled(np.ma.asarray(cat["FLAG_REASON"]).astype(str), "") if "FLAG_REASON" in cat.colnames
            else np.full(len(cat), ""))
    cat["FLAG_REASON"] = [join_reasons(r, stage_reason(f)) for r, f in zip(prep, np.asarray(cat["FLAG"]))]


def build_catalogue(meta: Table, fit: Table | None = None, galaxy: Table | None = None) -> Table:
    """Join the stages' tables row by row (all in the same order, checked by ``ID``).

    Columns of later stages win when names clash, except ``FLAG`` which is OR-ed.
    """
    keep = [c for c in meta.colnames if c not in ("IS_STAR",)]
    cat = Table(meta[keep], copy=True)
    flag = np.asarray(cat["FLAG"], dtype=np.int64) if "FLAG" in cat.colnames else np.zeros(len(cat), np.int64)
    for name, part in (("fit", fit), ("galaxy", galaxy)):
        if part is None:
            continue
        if len(part) != len(cat):
            raise ValueError(f"{name} table has {len(part)} rows for {len(cat)} spectra")
        if "ID" in part.colnames and not np.array_equal(np.asarray(part["ID"]).astype(str),
                                                        np.asarray(cat["ID"]).astype(str)):
            raise ValueError(f"{name} table rows are not in the order of the prepared spectra")
        for c in part.colnames:
            if c == "ID":
                continue
            if c == "FLAG":
                flag |= np.asarray(part["FLAG"], dtype=np.int64)
                continue
            cat[c] = part[c]
    cat["FLAG"] = flag
    if fit is not None and fit.meta.get("LABELS"):
        cat.meta["LABELS"] = list(fit.meta["LABELS"])
    _describe_columns(cat)
    return cat


def fitted_labels(cat: Table) -> list[str]:
    """The fitted labels in the order of the catalogue's ``BOUND_MASK`` bits and ``COVAR`` axes."""
    return list(cat.meta.get("LABELS", []))


def fits_unit(unit) -> str | None:
    """The FITS ``TUNITn`` string of ``unit``, or None if the FITS standard cannot express it (``dex``)."""
    import warnings

    import astropy.units as u

    if unit is None:
        return None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", u.UnitsWarning)
            text = u.Unit(unit).to_string(format="fits")
            u.Unit(text, format="fits")
    except (ValueError, u.UnitsWarning):
        return None
    return text


def _ascii(text: str) -> str:
    """``text`` with non-ASCII characters replaced (FITS headers are ASCII)."""
    import unicodedata

    return unicodedata.normalize("NFKD", str(text)).encode("ascii", "ignore").decode()


def table_hdu(table: Table, name: str) -> fits.BinTableHDU:
    """A FITS table HDU that any FITS reader opens without warnings, units and descriptions kept.

    Each column's description goes into ``TCOMMn``. A unit that FITS cannot express (``dex``: FITS has no
    logarithmic units, and abundance ratios are dimensionless) is not written to ``TUNITn``; it ends the
    description in brackets instead (``"... [dex]"``), from where :func:`read_catalogue` restores it.
    Object columns become strings.
    """
    table = table.copy(copy_data=False)
    labels = list(table.meta.pop("LABELS", []) or [])  # a list: written as LABELnn keywords below
    comments = {}
    for c in table.colnames:
        col = table[c]
        if col.dtype == object:
            table[c] = col = Column(np.asarray(col).astype(str), unit=col.unit, description=col.description)
        desc = col.description or UNKNOWN_COLUMN
        if col.unit is not None and fits_unit(col.unit) is None:
            desc = f"{desc} [{col.unit}]"
            col.unit = None
        comments[c] = _ascii(desc)
    hdu = fits.table_to_hdu(table)
    for k, c in enumerate(table.colnames, start=1):
        hdu.header[f"TCOMM{k}"] = comments[c]
    for k, n in enumerate(labels):
        hdu.header[f"LABEL{k:02d}"] = (str(n), f"BOUND_MASK bit {k}, COVAR axis {k}")
    hdu.name = name
    return hdu


def write_catalogue(cat: Table, path: str | os.PathLike, provenance: dict[str, Any] | None = None,
                    rejected: Table | None = None, formats: list[str] | tuple[str, ...] = ()) -> list[Path]:
    """Write the catalogue (FITS, atomically) and optional Parquet/ECSV copies.

    The primary header records the package version, the plugins used and their versions, the model
    checksum and the configuration (``provenance``); ``FLAGBnn`` keywords name every flag bit.
    """
    from ..flags import Flag

    path = Path(path)
    provenance = dict(provenance or {})
    hdr = fits.Header()
    hdr["ORIGIN"] = ("ddpayne", "software that wrote this file")
    hdr["DDPVERS"] = (__version__, "ddpayne version")
    hdr["NSTARS"] = (len(cat), "rows in the CATALOGUE HDU")
    for f in Flag:
        hdr[f"FLAGB{int(np.log2(int(f))):02d}"] = (f.name, "FLAG bit meaning")
    for key, val in provenance.items():
        if isinstance(val, (str, int, float, bool)) and len(str(val)) < 60 and len(key) <= 8:
            hdr[key.upper()] = val
    hdr["PROVJSON"] = "see the PROVENANCE HDU"
    prov = table_hdu(Table([Column(list(provenance), name="KEY", description="provenance item"),
                            Column([json.dumps(v, default=str) for v in provenance.values()], name="VALUE",
                                   description="its value (JSON)")]), "PROVENANCE")
    table = cat.copy(copy_data=False)
    hdus = [fits.PrimaryHDU(header=hdr), table_hdu(table, "CATALOGUE")]
    if rejected is not None:
        rejected = rejected.copy(copy_data=False)
        _describe_columns(rejected)
        hdus.append(table_hdu(rejected, "REJECTED"))
    hdus.append(prov)
    with atomic_path(path) as tmp:
        fits.HDUList(hdus).writeto(tmp)
    written = [path]
    if "parquet" in formats:
        try:
            import pyarrow  # noqa: F401
        except ImportError as exc:
            raise ImportError("writing Parquet needs pyarrow: pip install pyarrow "
                              "(or drop 'parquet' from [output] formats)") from exc
    for fmt in formats:
        other = path.with_suffix({"parquet": ".parquet", "ecsv": ".ecsv"}[fmt])
        flat = Table([table[c] for c in table.colnames if table[c].ndim == 1])
        with atomic_path(other) as tmp:
            flat.write(tmp, format="ascii.ecsv" if fmt == "ecsv" else "parquet")
        written.append(other)
    log.info("wrote %s (%d rows)", path, len(cat))
    return written


def read_catalogue(path: str | os.PathLike, hdu: str = "CATALOGUE") -> Table:
    """Read a catalogue written by :func:`write_catalogue` (the ``CATALOGUE`` HDU).

    Column descriptions come from ``TCOMMn``; a unit that FITS cannot express, kept at the end of the
    description (``"... [dex]"``), is restored as the column's unit. Catalogues written before that
    (``TUNITn = 'dex'``) are read too.
    """
    import re
    import warnings

    import astropy.units as u

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", u.UnitsWarning)   # older catalogues wrote TUNITn = 'dex'
        t = Table.read(path, hdu=hdu)
    for k, name in enumerate(t.colnames, start=1):
        comment = t.meta.pop(f"TCOMM{k}", None)
        if comment is None:
            continue
        col = t[name]
        col.description = str(comment)
        m = re.search(r" \[([^\[\]]+)\]$", col.description)
        if m and col.unit is None:
            col.unit = u.Unit(m.group(1), parse_strict="silent")
            col.description = col.description[:m.start()]
    keys = sorted(k for k in t.meta if len(k) == 7 and k.startswith("LABEL") and k[5:].isdigit())
    if keys:
        t.meta["LABELS"] = [str(t.meta.pop(k)) for k in keys]
    return t


def flag_summary(cat: Table) -> dict[str, int]:
    """Number of rows with each flag bit set."""
    from ..flags import Flag

    flags = np.asarray(cat["FLAG"], dtype=np.int64)
    return {f.name: int(np.count_nonzero(flags & int(f))) for f in Flag if np.any(flags & int(f))}


__all__ = ["build_catalogue", "write_catalogue", "read_catalogue", "flag_summary", "fitted_labels", "describe"]
