"""Reader for SDSS/BOSS ``spec-PLATE-MJD-FIBER.fits`` files (the ``COADD`` + ``SPALL`` layout)."""
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
from ddpayne.prepare.grid import log_linear_grid


class BOSSReader(SpectrumReader):
    """SDSS/BOSS coadded spectrum: one star per file, vacuum log-linear wavelengths, R ≈ 2000."""

    name = "boss"
    survey = "SDSS-BOSS"
    continuum_width = 30.0

    @classmethod
    def identify(cls, path) -> bool:
        try:
            with fits.open(path) as hdul:
                return ("COADD" in hdul and "SPALL" in hdul
                        and "loglam" in hdul["COADD"].columns.names)
        except Exception:
            return False

    def default_grid(self) -> np.ndarray:
        return log_linear_grid(3600.0, 10300.0)

    def read(self, path, catalogue: Table | None = None, rows: slice | None = None) -> SurveySpectra:
        path = os.fspath(path)
        try:
            with fits.open(path) as hdul:
                co = hdul["COADD"].data
                spall = hdul["SPALL"].data
                wave = 10 ** np.asarray(co["loglam"], dtype=float)
                flux = np.asarray(co["flux"], dtype=float)
                ivar = np.asarray(co["ivar"], dtype=float)
                mask = np.asarray(co["and_mask"]) != 0
                cls = str(spall["CLASS"][0]).strip()
                z = float(spall["Z"][0])
                z_err = float(spall["Z_ERR"][0])
                ident = f"{spall['PLATE'][0]}-{spall['MJD'][0]}-{spall['FIBERID'][0]}"
                ra, dec = float(spall["PLUG_RA"][0]), float(spall["PLUG_DEC"][0])
        except (OSError, KeyError, IndexError, ValueError, TypeError) as exc:
            raise SpectrumFileError(path, f"not a readable BOSS spec file ({exc})") from exc
        unit = u.Unit("1e-17 erg / (s cm2 Angstrom)")
        spec = Spectrum(spectral_axis=wave * u.AA, flux=flux[None] * unit,
                        uncertainty=InverseVariance(ivar[None] / unit**2), mask=mask[None])
        is_star = cls == "STAR"
        meta = Table({
            "ID": [ident], "RA": [ra], "DEC": [dec], "CLASS": [cls],
            "RV": [z * c.to_value(u.km / u.s)], "RV_ERR": [z_err * c.to_value(u.km / u.s)],
            "IS_STAR": [is_star], "FLAG": np.array([0 if is_star else int(Flag.NOT_STAR)]),
            "FLAG_REASON": ["" if is_star else f"CLASS is {cls!r}"],
            "SOURCE_FILE": [os.path.basename(path)],
        })
        return SurveySpectra(arms={"ALL": spec}, meta=meta, survey=self.survey, source=path)
