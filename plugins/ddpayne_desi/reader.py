"""Reader for DESI ``coadd-*.fits`` and ``spectra-*.fits`` files.

Why not specutils' ``DESI coadd`` loader: it reads every row of every arm at once and keeps the
FIBERMAP as a FITS record; a healpix coadd of a few hundred fibres is read here in row chunks through
memory-mapped HDUs instead, and the FIBERMAP is joined with the MWS catalogue by ``TARGETID``. The
result is still one specutils ``Spectrum`` per arm (2-D flux, ``InverseVariance`` uncertainty, mask),
and the test suite checks it against specutils' loader pixel by pixel.
"""
from __future__ import annotations

import logging
import os

import astropy.units as u
import numpy as np
from astropy.io import fits
from astropy.nddata import InverseVariance
from astropy.table import Table
from specutils import Spectrum

from ddpayne.exceptions import SpectrumFileError
from ddpayne.flags import Flag, join_reasons
from ddpayne.io.readers import SpectrumReader, SurveySpectra
from ddpayne.prepare.grid import desi_grid

from .catalogue import match_catalogue, read_mws_catalogue

log = logging.getLogger(__name__)

ARMS = ("B", "R", "Z")
#: DESI flux unit.
FLUX_UNIT = u.Unit("1e-17 erg / (s cm2 Angstrom)")
#: FIBERMAP columns carried into the metadata when present (renamed where noted).
FIBERMAP_COLUMNS = {
    "TARGET_RA": "RA", "TARGET_DEC": "DEC", "OBJTYPE": "OBJTYPE", "PMRA": "FM_PMRA",
    "PMDEC": "FM_PMDEC", "EBV": "EBV_SFD", "REF_ID": "REF_ID", "REF_CAT": "REF_CAT",
    "GAIA_PHOT_G_MEAN_MAG": "GAIA_PHOT_G_MEAN_MAG", "GAIA_PHOT_BP_MEAN_MAG": "GAIA_PHOT_BP_MEAN_MAG",
    "GAIA_PHOT_RP_MEAN_MAG": "GAIA_PHOT_RP_MEAN_MAG", "PARALLAX": "FM_PARALLAX",
    "MWS_TARGET": "MWS_TARGET", "COADD_NUMEXP": "COADD_NUMEXP",
}


def _open(path) -> fits.HDUList:
    try:
        hdul = fits.open(path, memmap=False)
    except FileNotFoundError:
        raise
    except (OSError, ValueError, TypeError) as exc:
        raise SpectrumFileError(path, f"not a readable FITS file ({exc})") from exc
    return hdul


class DESIReader(SpectrumReader):
    """DESI coadd and spectra files (B, R, Z arms; FIBERMAP; MWS catalogue for RVs and classes).

    The metadata gets ``ID`` (the TARGETID as a string), ``TARGETID``, ``RA``/``DEC``, ``RV`` and
    ``RV_ERR`` (``VRAD``/``VRAD_ERR`` of the catalogue), ``IS_STAR`` (``RR_SPECTYPE == 'STAR'``),
    ``SPECTYPE``, the catalogue's S/N and Gaia columns, and the FIBERMAP columns of
    :data:`FIBERMAP_COLUMNS`. Without a catalogue nothing is known about classes or RVs: every
    spectrum is flagged ``NOT_STAR`` and ``NO_RV`` with that reason.
    """

    name = "desi"
    survey = "DESI"
    continuum_width = 20.0

    @classmethod
    def identify(cls, path) -> bool:
        try:
            with fits.open(path, memmap=True) as hdul:
                names = {h.name for h in hdul}
        except Exception:
            return False
        return "FIBERMAP" in names and any(f"{a}_FLUX" in names and f"{a}_WAVELENGTH" in names
                                           for a in ARMS)

    def default_grid(self) -> np.ndarray:
        return desi_grid()

    def read_catalogue(self, path) -> Table:
        return read_mws_catalogue(path)

    def count(self, path) -> int:
        with _open(path) as hdul:
            if "FIBERMAP" not in hdul:
                raise SpectrumFileError(path, "no FIBERMAP HDU: not a DESI coadd/spectra file")
            return int(hdul["FIBERMAP"].header["NAXIS2"])

    def read(self, path, catalogue: Table | None = None, rows: slice | None = None) -> SurveySpectra:
        path = os.fspath(path)
        with _open(path) as hdul:
            names = [h.name for h in hdul]
            if "FIBERMAP" not in names:
                raise SpectrumFileError(path, f"no FIBERMAP HDU (HDUs: {names})")
            arms = [a for a in ARMS if f"{a}_FLUX" in names]
            if not arms:
                raise SpectrumFileError(path, f"no B/R/Z _FLUX HDU (HDUs: {names}): not a DESI coadd/spectra "
                                              "file with spectra")
            fm_hdu = hdul["FIBERMAP"]
            n_all = fm_hdu.header["NAXIS2"]
            rows = rows or slice(0, n_all)
            try:
                fm = fm_hdu.data[rows]
            except (OSError, ValueError, TypeError) as exc:
                raise SpectrumFileError(path, f"FIBERMAP unreadable (truncated file?): {exc}") from exc
            if "TARGETID" not in fm.columns.names:
                raise SpectrumFileError(path, "FIBERMAP lacks TARGETID")
            n = len(fm)
            spectra, resolution = {}, {}
            for arm in arms:
                spectra[arm], resolution[arm] = self._read_arm(path, hdul, names, arm, rows, n_all, n)
            meta = self._metadata(path, hdul[0].header, fm, catalogue)
        missing = [a for a in ARMS if a not in arms]
        if missing:   # the other arms are still worth fitting, but never silently without these pixels
            what = ", ".join(f"{a} (no {a}_FLUX HDU)" for a in missing)
            log.warning("%s: arm(s) %s missing: their pixels are not fitted for any spectrum of the file",
                        path, what)
            meta["FLAG"] |= int(Flag.MISSING_ARM)
            meta["FLAG_REASON"] = [join_reasons(r, f"arm(s) {what} missing from {os.path.basename(path)}: "
                                                   "their pixels are not fitted")
                                   for r in meta["FLAG_REASON"]]
        return SurveySpectra(arms=spectra, meta=meta, resolution=resolution, survey=self.survey,
                             source=path)

    @staticmethod
    def _read_arm(path, hdul, names, arm, rows, n_all, n):
        need = [f"{arm}_{k}" for k in ("WAVELENGTH", "FLUX", "IVAR")]
        missing = [k for k in need if k not in names]
        if missing:
            raise SpectrumFileError(path, f"arm {arm}: missing HDU(s) {missing}")
        try:
            wave = np.asarray(hdul[f"{arm}_WAVELENGTH"].data, dtype=float)
            flux = np.asarray(hdul[f"{arm}_FLUX"].section[rows], dtype=np.float32)
            ivar = np.asarray(hdul[f"{arm}_IVAR"].section[rows], dtype=np.float32)
            mask = (np.asarray(hdul[f"{arm}_MASK"].section[rows]) if f"{arm}_MASK" in names
                    else np.zeros(flux.shape, dtype=np.int32))
            res = (np.asarray(hdul[f"{arm}_RESOLUTION"].section[rows], dtype=np.float32)
                   if f"{arm}_RESOLUTION" in names else None)
        except (OSError, ValueError, TypeError, IndexError) as exc:
            raise SpectrumFileError(path, f"arm {arm}: data unreadable (truncated file?): {exc}") from exc
        if wave.ndim != 1 or flux.ndim != 2 or flux.shape != (n, wave.size):
            raise SpectrumFileError(path, f"arm {arm}: FLUX shape {flux.shape} does not match "
                                          f"{n} FIBERMAP rows x {wave.size} wavelengths")
        if ivar.shape != flux.shape or mask.shape != flux.shape:
            raise SpectrumFileError(path, f"arm {arm}: FLUX {flux.shape}, IVAR {ivar.shape} and "
                                          f"MASK {mask.shape} shapes differ")
        if res is not None and (res.ndim != 3 or res.shape[0] != n or res.shape[2] != wave.size):
            raise SpectrumFileError(path, f"arm {arm}: RESOLUTION shape {res.shape} is not "
                                          f"({n}, n_diag, {wave.size})")
        bunit = hdul[f"{arm}_FLUX"].header.get("BUNIT")
        unit = FLUX_UNIT
        if bunit:
            try:
                unit = u.Unit(bunit.replace("10**-17", "1e-17"))
            except ValueError:
                log.warning("%s: unparsable BUNIT %r; assuming %s", path, bunit, FLUX_UNIT)
        spec = Spectrum(spectral_axis=wave * u.AA, flux=flux * unit,
                        uncertainty=InverseVariance(ivar / unit**2), mask=mask != 0,
                        meta={"arm": arm, "mask_bits": mask})
        return spec, res

    def _metadata(self, path, header, fm, catalogue) -> Table:
        n = len(fm)
        tid = np.asarray(fm["TARGETID"], dtype=np.int64)
        meta = Table()
        meta["ID"] = tid.astype(str)
        meta["TARGETID"] = tid
        for src, dst in FIBERMAP_COLUMNS.items():
            if src in fm.columns.names:
                col = np.asarray(fm[src])
                meta[dst] = np.char.strip(col.astype(str)) if col.dtype.kind in "SU" else col
        meta["SOURCE_FILE"] = np.full(n, os.path.basename(path))
        flag = np.zeros(n, dtype=np.int64)
        reason = np.full(n, "", dtype=object)
        rv = np.full(n, np.nan)
        rv_err = np.full(n, np.nan)
        is_star = np.zeros(n, dtype=bool)
        spectype = np.full(n, "", dtype=object)
        if catalogue is None:
            flag |= int(Flag.NOT_STAR | Flag.NO_RV)
            reason[:] = "no MWS catalogue given: class and RV unknown"
        else:
            for c in ("TARGETID", "RR_SPECTYPE", "VRAD"):
                if c not in catalogue.colnames:
                    raise SpectrumFileError(path, f"catalogue lacks column {c}")
            survey, program = (str(header.get(k) or "").strip() or None for k in ("SURVEY", "PROGRAM"))
            idx, ambiguous = match_catalogue(tid, catalogue, survey, program, return_ambiguous=True)
            found = idx >= 0
            cat = catalogue[np.where(found, idx, 0)] if len(catalogue) else None
            if cat is not None:
                spectype = np.where(found, np.char.strip(np.asarray(cat["RR_SPECTYPE"]).astype(str)), "")
                rv = np.where(found, np.asarray(cat["VRAD"], dtype=float), np.nan)
                if "VRAD_ERR" in cat.colnames:
                    rv_err = np.where(found, np.asarray(cat["VRAD_ERR"], dtype=float), np.nan)
                for c in catalogue.colnames:
                    if c in ("TARGETID", "RR_SPECTYPE", "VRAD", "VRAD_ERR") or c in meta.colnames:
                        continue
                    col = np.asarray(cat[c])
                    if col.dtype.kind == "f":
                        col = np.where(found, col, np.nan)
                    meta[c] = col
            is_star = found & (spectype == "STAR")
            for i in range(n):
                if not found[i]:
                    flag[i] |= int(Flag.NOT_STAR | Flag.NO_RV)
                    reason[i] = f"TARGETID {tid[i]} not in the MWS catalogue"
                elif not is_star[i]:
                    flag[i] |= int(Flag.NOT_STAR)
                    reason[i] = f"RR_SPECTYPE is '{spectype[i] or 'empty'}', not STAR"
                elif not np.isfinite(rv[i]):
                    flag[i] |= int(Flag.NO_RV)
                    reason[i] = "catalogue VRAD is NaN: spectrum left in the observed frame"
                if found[i] and ambiguous[i]:
                    flag[i] |= int(Flag.AMBIGUOUS_CATALOGUE)
                    reason[i] = join_reasons(reason[i], ambiguous[i])
                    log.warning("%s: %s", os.path.basename(path), ambiguous[i])
        if "OBJTYPE" in meta.colnames:
            sky = np.asarray(meta["OBJTYPE"]) == "SKY"
            flag[sky] |= int(Flag.NOT_STAR)
            is_star &= ~sky
            for i in np.flatnonzero(sky):
                reason[i] = "; ".join(r for r in ("sky fibre", reason[i]) if r)
        empty = tid < 0
        flag[empty] |= int(Flag.NOT_STAR)
        is_star &= ~empty
        for i in np.flatnonzero(empty):
            reason[i] = "; ".join(r for r in ("unassigned fibre (negative TARGETID)", reason[i]) if r)
        meta["SPECTYPE"] = spectype.astype(str)
        meta["RV"] = rv
        meta["RV"].unit = "km/s"
        meta["RV_ERR"] = rv_err
        meta["RV_ERR"].unit = "km/s"
        meta["IS_STAR"] = is_star
        meta["FLAG"] = flag
        meta["FLAG_REASON"] = reason.astype(str)
        return meta
