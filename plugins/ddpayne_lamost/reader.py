"""Reader for LAMOST low-resolution spectra, in both file layouts.

* DR5–DR7: the primary HDU is a 5 × N image whose rows are flux, inverse variance, wavelength,
  and-mask and or-mask (wavelengths log-linear, ``COEFF0``/``COEFF1``).
* DR8 and later: a ``COADD`` binary table with one row holding ``FLUX``, ``IVAR``, ``WAVELENGTH``,
  ``ANDMASK``, ``ORMASK`` (and ``NORMALIZATION``) arrays.

The layout is detected from the file's content. Wavelengths are vacuum (header ``VACUUM = T``; an
air-wavelength file is converted). The radial velocity is ``c × Z`` from the header (LAMOST's
heliocentric redshift; ``HELIO_RV`` is the heliocentric *correction*, not the star's RV). ``CLASS``
decides whether the object is a star.
"""
from __future__ import annotations

import os

import astropy.units as u
import numpy as np
from astropy.constants import c
from astropy.io import fits
from astropy.nddata import InverseVariance
from astropy.table import Table
from specutils import Spectrum

from ddpayne.exceptions import SpectrumFileError
from ddpayne.flags import Flag
from ddpayne.io.readers import SpectrumReader, SurveySpectra
from ddpayne.prepare.grid import lamost_grid

C_KMS = c.to_value(u.km / u.s)
ROWS_IMAGE = ("FLUX", "IVAR", "WAVELENGTH", "ANDMASK", "ORMASK")


def _is_lamost(header) -> bool:
    return "LAMOST" in str(header.get("TELESCOP", "")).upper()


class LAMOSTReader(SpectrumReader):
    """LAMOST DR5+ low-resolution spectra (one spectrum per file, one arm ``'ALL'``)."""

    name = "lamost"
    survey = "LAMOST"
    #: Xiang et al. (2019) used a 50 Å kernel for LAMOST's R ≈ 1800.
    continuum_width = 50.0

    @classmethod
    def identify(cls, path) -> bool:
        try:
            with fits.open(path) as hdul:
                if not _is_lamost(hdul[0].header):
                    return False
                if "COADD" in hdul:
                    return True
                shape = hdul[0].shape
                return len(shape) == 2 and 3 <= shape[0] <= 8 and shape[1] > shape[0]
        except Exception:
            return False

    def default_grid(self) -> np.ndarray:
        return lamost_grid()

    def read(self, path, catalogue: Table | None = None, rows: slice | None = None) -> SurveySpectra:
        path = os.fspath(path)
        try:
            with fits.open(path) as hdul:
                header = hdul[0].header
                if not _is_lamost(header):
                    raise SpectrumFileError(path, "primary header TELESCOP is not LAMOST")
                if "COADD" in hdul:
                    layout = "DR8+ COADD table"
                    tab = hdul["COADD"].data
                    missing = [k for k in ("FLUX", "IVAR", "WAVELENGTH") if k not in tab.columns.names]
                    if missing:
                        raise SpectrumFileError(path, f"COADD table lacks column(s) {missing}")
                    if len(tab) != 1:
                        raise SpectrumFileError(path, f"COADD table has {len(tab)} rows, expected 1")
                    flux = np.asarray(tab["FLUX"][0], dtype=float)
                    ivar = np.asarray(tab["IVAR"][0], dtype=float)
                    wave = np.asarray(tab["WAVELENGTH"][0], dtype=float)
                    andmask = (np.asarray(tab["ANDMASK"][0]) if "ANDMASK" in tab.columns.names
                               else np.zeros(flux.shape, int))
                else:
                    layout = "DR5-7 image"
                    data = hdul[0].data
                    if (data is None or data.ndim != 2 or not 3 <= data.shape[0] <= 8
                            or data.shape[1] <= data.shape[0]):
                        shape = None if data is None else data.shape
                        raise SpectrumFileError(path, f"primary image has shape {shape}, expected "
                                                      "5 x N (flux, ivar, wavelength, andmask, ormask)")
                    flux, ivar, wave = (np.asarray(data[i], dtype=float) for i in range(3))
                    andmask = data[3].astype(int) if data.shape[0] > 3 else np.zeros(flux.shape, int)
        except SpectrumFileError:
            raise
        except (OSError, ValueError, TypeError, IndexError, EOFError) as exc:
            raise SpectrumFileError(path, f"not a readable LAMOST FITS file ({exc})") from exc
        if not (flux.shape == ivar.shape == wave.shape == andmask.shape):
            raise SpectrumFileError(path, f"flux {flux.shape}, ivar {ivar.shape}, wavelength "
                                          f"{wave.shape} and mask {andmask.shape} shapes differ")
        if header.get("VACUUM") is False:
            wave = _air_to_vacuum(wave)
        order = np.argsort(wave)
        flux, ivar, wave, andmask = flux[order], ivar[order], wave[order], andmask[order]
        spec = Spectrum(spectral_axis=wave * u.AA, flux=flux[None, :] * u.Unit("adu"),
                        uncertainty=InverseVariance(ivar[None, :] / u.Unit("adu") ** 2),
                        mask=(andmask != 0)[None, :], meta={"layout": layout})
        meta = self._metadata(path, header, catalogue)
        meta["LAYOUT"] = [layout]
        return SurveySpectra(arms={"ALL": spec}, meta=meta, survey=self.survey, source=path,
                             extra={"layout": layout})

    @staticmethod
    def _metadata(path, header, catalogue) -> Table:
        obsid = header.get("OBSID")
        flag, reasons = 0, []
        z = header.get("Z")
        try:
            rv = float(z) * C_KMS if z is not None and float(z) > -1 else np.nan
        except (TypeError, ValueError):
            rv = np.nan
        z_err = header.get("Z_ERR")
        try:
            rv_err = float(z_err) * C_KMS if z_err is not None and float(z_err) >= 0 else np.nan
        except (TypeError, ValueError):
            rv_err = np.nan
        if catalogue is not None and obsid is not None and "OBSID" in catalogue.colnames:
            hit = np.flatnonzero(np.asarray(catalogue["OBSID"]) == obsid)
            if hit.size and "RV" in catalogue.colnames:
                rv = float(catalogue["RV"][hit[0]])
                if "RV_ERR" in catalogue.colnames:
                    rv_err = float(catalogue["RV_ERR"][hit[0]])
                rvs = np.asarray(catalogue["RV"][hit], dtype=float)
                rvs = rvs[np.isfinite(rvs)]
                if rvs.size > 1 and rvs.max() - rvs.min() > 1.0:   # km/s: two rows, two different stars' RVs?
                    flag |= int(Flag.AMBIGUOUS_CATALOGUE)
                    values = ", ".join(f"{v:.1f}" for v in rvs)
                    reasons.append(f"OBSID {obsid} has {hit.size} catalogue rows with RV {values} km/s: the "
                                   "first was used; remove the wrong row")
        cls = str(header.get("CLASS", "")).strip()
        is_star = cls.upper() == "STAR"
        if not is_star:
            flag |= int(Flag.NOT_STAR)
            reasons.append(f"CLASS is {cls or 'missing'!r}, not STAR")
        if not np.isfinite(rv):
            flag |= int(Flag.NO_RV)
            reasons.append("no redshift Z in the header: spectrum left in the observed frame")
        meta = Table()
        meta["ID"] = [str(obsid) if obsid is not None else os.path.basename(path)]
        meta["OBSID"] = [int(obsid) if obsid is not None else -1]
        meta["RA"] = [float(header.get("RA", np.nan))]
        meta["DEC"] = [float(header.get("DEC", np.nan))]
        meta["CLASS"] = [cls]
        meta["SUBCLASS"] = [str(header.get("SUBCLASS", "")).strip()]
        for key in ("SNRU", "SNRG", "SNRR", "SNRI", "SNRZ"):
            meta[key] = [float(header.get(key, np.nan))]
        meta["RV"] = [rv]
        meta["RV"].unit = "km/s"
        meta["RV_ERR"] = [rv_err]
        meta["RV_ERR"].unit = "km/s"
        meta["IS_STAR"] = [is_star]
        meta["FLAG"] = np.array([flag], dtype=np.int64)
        meta["FLAG_REASON"] = ["; ".join(reasons)]
        meta["SOURCE_FILE"] = [os.path.basename(path)]
        return meta


def _air_to_vacuum(wave_air: np.ndarray) -> np.ndarray:
    """Air → vacuum wavelengths (Å), Morton (2000) / Ciddor (1996) refractive index."""
    s2 = (1e4 / wave_air) ** 2
    n = 1 + 0.0000834254 + 0.02406147 / (130 - s2) + 0.00015998 / (38.9 - s2)
    return wave_air * n
