"""The hydrogen correction: Stark-broadened Balmer and Paschen lines for spectra synthesised without them.

MOOG (the ``moog`` plugin) has no Stark profiles: its hydrogen lines are far too narrow. A synthesizer
that has them (the ``pysme`` plugin) computes, at a set of label points ("nodes"), the flux with
hydrogen and metal lines together, :math:`F_{H+m}`, and with the metal lines alone, :math:`F_m`, both in
the same atmosphere with the same line list, each degraded to the survey's resolution. The correction is
their ratio on the survey grid,

.. math:: C(\\lambda;\\boldsymbol\\ell) = \\frac{(F_{H+m} \\ast \\mathrm{LSF})(\\lambda)}
                                             {(F_m \\ast \\mathrm{LSF})(\\lambda)}
          \\Big/ \\frac{(F^{\\rm base}_{H+m} \\ast \\mathrm{LSF})(\\lambda)}
                         {(F^{\\rm base}_m \\ast \\mathrm{LSF})(\\lambda)},

where the second ratio divides out the hydrogen lines that the corrected spectra already have (MOOG's
Balmer and Paschen lines, with radiative and van der Waals but no Stark wings), so that they are replaced
rather than doubled. C is computed in :data:`WINDOWS_VAC` (the ranges that H I lines reach at DESI
resolution; 1 elsewhere). A
MOOG spectrum degraded to the survey, :math:`F`, becomes :math:`F\\,C`: the hydrogen opacity is computed
with the metal opacity (opacities add, in the same atmosphere) and only the *ratio* is carried over,
so the MOOG metal lines are kept. The error of the ratio is of second order (the difference between the
two codes' metal lines times the hydrogen absorption) and is measured in ``docs/hydrogen.rst``.

Between nodes :math:`\\ln C` is interpolated with a thin-plate-spline radial basis function
(:class:`scipy.interpolate.RBFInterpolator`, exact at the nodes) in (Teff/250 K, log g/0.5, [Fe/H]/0.5);
:meth:`HydrogenCorrection.cross_validate` measures its error by leaving nodes out.

Spectra stored continuum-normalised (the mock library, the gradient product) are corrected with
:func:`correct_normalised`: the flux relative to the true continuum is recovered from the stored
true-continuum blanketing bins, multiplied by :math:`C`, and normalised again with the data path's
pseudo-continuum (:func:`ddpayne.prepare.continuum.normalise`).

**File format** (FITS, ``ddpayne/data/hydrogen_desi.fits``): ``PIXELS`` (int32 indices into the survey
grid of the corrected pixels), ``WAVELENGTH`` (float64 survey grid), ``NODES`` (one row per node: the
15 labels), ``LOGC`` (float32, (n_node, n_pix): ln C), ``PROVENANCE`` (JSON).
"""
from __future__ import annotations

import datetime as _dt
import json
import logging
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
from astropy.io import fits
from astropy.table import Table

from ..io.atomic import atomic_path
from ..labels import LABEL_NAMES
from ..prepare.continuum import normalise, pseudo_continuum
from .degrade import convolve_to_grid

log = logging.getLogger(__name__)

#: Vacuum ranges (Å) where H I lines change a DESI-resolution spectrum: H12 (3751 Å) … Hδ, Hγ, Hβ, Hα,
#: the Paschen series from its limit (8206 Å) to P9, and P8. Below 3750 Å (the Balmer series limit,
#: where the lines overlap and LTE models are ~0.12 too deep) nothing is corrected and the gradient
#: product keeps that range masked.
WINDOWS_VAC = ((3750.0, 4180.0), (4260.0, 4425.0), (4780.0, 4945.0), (6460.0, 6670.0), (8200.0, 9300.0),
               (9450.0, 9650.0))
#: Pixels closer than this (Å) to a window edge are not corrected (the LSF would reach outside).
EDGE = 5.0
#: Scales of the interpolation coordinates (Teff, log g, [Fe/H]).
SCALES = {"TEFF": 250.0, "LOGG": 0.5, "FE_H": 0.5}
#: Version of this correction's physics (recorded in products; bump when the correction changes).
HYDROGEN_VERSION = 1
#: Half-width (Å) of the hydrogen-line cores that stay masked in corrected gradient products (LTE cannot
#: make the chromospheric Hα core; the cores are also where the two codes' profiles differ most).
CORE_HALF_WIDTH = 2.5


def product_physics_version(synthesis_version: int, corrected: bool) -> int:
    """``physics_version`` of a product: the synthesis' version, plus :data:`HYDROGEN_VERSION` when the
    hydrogen correction is applied (MOOG physics 2 + correction 1 = 3: the first products with H I wings)."""
    return int(synthesis_version) + (HYDROGEN_VERSION if corrected else 0)


def provenance_entry(hydrogen: "HydrogenCorrection | None") -> dict | str:
    """What a product built with (or without) ``hydrogen`` records of it in its provenance."""
    if hydrogen is None:
        return "none (no Stark wings)"
    return {k: hydrogen.provenance.get(k) for k in ("synthesis", "hydrogen_version", "interpolation", "windows_vac",
                                                     "n_nodes", "updated")}


def load(hydrogen, instrument: str = "desi") -> "HydrogenCorrection | None":
    """A :class:`HydrogenCorrection` from a path, an instance, or None (no correction), for building the
    products of ``instrument``.

    Raises
    ------
    DDPayneError
        The file is missing or not a correction product, or ``instrument`` is not the DESI grid the
        correction is computed on (checked before any work).
    """
    from ..exceptions import DDPayneError
    if hydrogen is None:
        return None
    if instrument != "desi":
        raise DDPayneError(f"the hydrogen correction {hydrogen} is computed at DESI resolution on the DESI grid; "
                           f"it cannot be applied to {instrument!r} products (that needs nodes computed at "
                           f"{instrument}'s resolution, which ddpayne does not build yet): leave out --hydrogen")
    if isinstance(hydrogen, HydrogenCorrection):
        return hydrogen
    try:
        return HydrogenCorrection.read(hydrogen)
    except (OSError, ValueError) as err:
        raise DDPayneError(str(err)) from err


def window_pixels(grid: np.ndarray, windows: Sequence[tuple[float, float]] = WINDOWS_VAC) -> np.ndarray:
    """Indices of the survey-grid pixels that the correction covers."""
    grid = np.asarray(grid, float)
    inside = np.zeros(grid.size, bool)
    for lo, hi in windows:
        inside |= (grid >= lo + EDGE) & (grid <= hi - EDGE)
    return np.flatnonzero(inside)


def correction_at(with_hydrogen, metals_only, labels: Mapping[str, float], grid: np.ndarray,
                  resolution="desi", windows: Sequence[tuple[float, float]] = WINDOWS_VAC,
                  base: tuple | None = None) -> np.ndarray:
    """ln C at ``labels`` on the pixels :func:`window_pixels` of ``grid``.

    Parameters
    ----------
    with_hydrogen, metals_only : ddpayne.physics.synthesizer.Synthesizer
        The same synthesizer with and without H I lines.
    base : (Synthesizer, Synthesizer), optional
        The synthesizer of the spectra to be corrected, with and without its own H I lines: when it has
        (narrower) hydrogen lines of its own, their ratio is divided out so that they are *replaced*,
        not doubled (MOOG gives Balmer and Paschen lines radiative and van der Waals wings).
    labels : mapping
        The labels (as :meth:`Synthesizer.synthesize` takes them).
    grid : ndarray
        Survey grid (vacuum Å).
    resolution : str, float or callable
        Resolving power of the survey's LSF (as :func:`ddpayne.physics.degrade.convolve_to_grid`).
    """
    grid = np.asarray(grid, float)
    out = []
    for lo, hi in windows:
        pix = window_pixels(grid, [(lo, hi)])
        if pix.size == 0:
            continue
        spectra = (with_hydrogen, metals_only) + (tuple(base) if base is not None else ())
        flux = [convolve_to_grid(*s.synthesize(labels, lo, hi), grid[pix], resolution) for s in spectra]
        ratio = flux[0] / flux[1]
        if base is not None:
            ratio = ratio * flux[3] / flux[2]
        if not np.all(np.isfinite(ratio) & (ratio > 0)):
            raise ValueError(f"hydrogen correction not finite and positive in {lo}-{hi} Å for {dict(labels)}")
        out.append(np.log(ratio))
    return np.concatenate(out)


def scaled_coordinates(labels) -> np.ndarray:
    """(n, 3) interpolation coordinates of labels (a Table, a dict of arrays or a mapping of floats)."""
    return np.column_stack([np.atleast_1d(np.asarray(labels[k], float)) / s for k, s in SCALES.items()])


class HydrogenCorrection:
    """Hydrogen corrections computed at label nodes, interpolated between them.

    Parameters
    ----------
    wavelength : ndarray
        The survey grid (vacuum Å).
    pixels : ndarray of int
        Indices of the corrected pixels in ``wavelength``.
    nodes : astropy.table.Table
        One row per node, with the 15 label columns.
    log_correction : ndarray, shape (n_node, n_pix)
        ln C at each node.
    provenance : dict
    """

    def __init__(self, wavelength, pixels, nodes: Table, log_correction, provenance: dict | None = None):
        self.wavelength = np.asarray(wavelength, float)
        self.pixels = np.asarray(pixels, int)
        self.nodes = Table(nodes)
        self.log_correction = np.asarray(log_correction, np.float32).reshape(len(self.nodes), self.pixels.size)
        self.provenance = dict(provenance or {})
        self._rbf = None

    def __len__(self) -> int:
        return len(self.nodes)

    def _interpolator(self):
        from scipy.interpolate import RBFInterpolator
        if len(self) < 5:
            raise ValueError(f"the hydrogen correction has {len(self)} nodes: at least 5 are needed to "
                             "interpolate (compute more with `ddpayne synth hydrogen`)")
        if self._rbf is None:
            self._rbf = RBFInterpolator(scaled_coordinates(self.nodes), self.log_correction.astype(float),
                                        kernel="thin_plate_spline", degree=1)
        return self._rbf

    def log_at(self, labels) -> np.ndarray:
        """ln C on the corrected pixels, shape (n, n_pix), for labels (Table, dict of arrays or floats)."""
        return self._interpolator()(scaled_coordinates(labels))

    def factor(self, labels) -> np.ndarray:
        """C on the whole survey grid (1 outside the windows), shape (n, n_grid)."""
        logc = self.log_at(labels)
        out = np.ones((logc.shape[0], self.wavelength.size))
        out[:, self.pixels] = np.exp(logc)
        return out

    def cross_validate(self, k: int | None = None) -> np.ndarray:
        """ln C at each node predicted from the others (leave-one-out), minus the computed one.

        ``k`` limits it to the first ``k`` nodes. Returns (n, n_pix) residuals in ln C (≈ relative flux).
        """
        from scipy.interpolate import RBFInterpolator
        x = scaled_coordinates(self.nodes)
        y = self.log_correction.astype(float)
        n = len(self) if k is None else min(k, len(self))
        res = np.empty((n, y.shape[1]))
        for i in range(n):
            keep = np.arange(len(self)) != i
            rbf = RBFInterpolator(x[keep], y[keep], kernel="thin_plate_spline", degree=1)
            res[i] = rbf(x[i:i + 1])[0] - y[i]
        return res

    # ------------------------------------------------------------------ files
    def write(self, path: str | Path) -> None:
        """Write the FITS file atomically."""
        hdus = fits.HDUList([fits.PrimaryHDU(),
                             fits.ImageHDU(self.wavelength, name="WAVELENGTH"),
                             fits.ImageHDU(self.pixels.astype(np.int32), name="PIXELS"),
                             fits.BinTableHDU(self.nodes, name="NODES"),
                             fits.CompImageHDU(self.log_correction, name="LOGC",
                                               compression_type="GZIP_2", quantize_level=0.0),
                             fits.BinTableHDU(Table({"JSON": [json.dumps(self.provenance, sort_keys=True)]}),
                                              name="PROVENANCE")])
        hdus[0].header["DDPHYDRO"] = (1, "ddpayne hydrogen-correction format version")
        with atomic_path(path) as tmp:
            hdus.writeto(tmp)

    @classmethod
    def read(cls, path: str | Path) -> "HydrogenCorrection":
        """Read a file written by :meth:`write`."""
        path = Path(path)
        if not path.exists():
            raise FileNotFoundError(f"no hydrogen-correction file at {path}: build it with "
                                    "`ddpayne synth hydrogen` (needs the 'pysme' plugin)")
        with fits.open(path, memmap=False) as h:
            if h[0].header.get("DDPHYDRO") != 1:
                raise ValueError(f"{path} is not a ddpayne hydrogen-correction file (no DDPHYDRO = 1)")
            out = cls(h["WAVELENGTH"].data, h["PIXELS"].data, Table(h["NODES"].data),
                      np.asarray(h["LOGC"].data), json.loads(h["PROVENANCE"].data["JSON"][0]))
        return out

    @classmethod
    def empty(cls, wavelength, provenance: dict | None = None) -> "HydrogenCorrection":
        """A correction with no nodes yet (the start of a build)."""
        pixels = window_pixels(wavelength)
        nodes = Table({n: np.zeros(0) for n in LABEL_NAMES})
        return cls(wavelength, pixels, nodes, np.zeros((0, pixels.size), np.float32), provenance)

    def with_node(self, labels: Mapping[str, float], log_correction: np.ndarray) -> "HydrogenCorrection":
        """A copy with one more node."""
        nodes = self.nodes.copy()
        nodes.add_row([float(labels[n]) for n in LABEL_NAMES])
        prov = {**self.provenance, "updated": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
                "n_nodes": len(nodes)}
        done = [f for f in prov.get("failed_nodes", [])
                if not all(abs(float(f["labels"][n]) - float(labels[n])) < 1e-6 for n in LABEL_NAMES)]
        if "failed_nodes" in prov:
            prov["failed_nodes"] = done   # a retried node that succeeded is no longer a failure
        return HydrogenCorrection(self.wavelength, self.pixels, nodes,
                                  np.vstack([self.log_correction, np.asarray(log_correction, np.float32)]), prov)


def true_continuum_flux(grid: np.ndarray, norm_flux: np.ndarray, blanket_start: float, blanket_step: float,
                        blanket: np.ndarray, width: float = 20.0) -> np.ndarray:
    """The degraded flux relative to the true continuum, recovered from a pseudo-continuum-normalised one.

    The stored spectrum is ``N = F / S(F)`` with ``S`` the pseudo-continuum smoother. ``S(F)`` is
    rebuilt by smoothing the true-continuum blanketing bins (bin means interpolated onto the grid) with
    the same kernel: the bins differ from ``F`` only below their width (5 Å), which a 20 Å kernel
    averages out. Returns ``N × S(bins)``.
    """
    centres = blanket_start + blanket_step * (np.arange(np.size(blanket)) + 0.5)
    ok = np.isfinite(blanket)
    binned = np.interp(grid, centres[ok], np.asarray(blanket, float)[ok])
    smooth = pseudo_continuum(grid, binned, np.ones_like(binned), width=width)
    return np.asarray(norm_flux, float) * smooth


def correct_normalised(grid: np.ndarray, norm_flux: np.ndarray, factor: np.ndarray, blanket_start: float,
                       blanket_step: float, blanket: np.ndarray, width: float = 20.0) -> np.ndarray:
    """Apply a correction factor ``C`` (on ``grid``) to a pseudo-continuum-normalised spectrum.

    Returns the spectrum normalised again as the data are (:func:`ddpayne.prepare.continuum.normalise`,
    kernel ``width``); NaN pixels of ``norm_flux`` stay NaN.
    """
    f = true_continuum_flux(grid, norm_flux, blanket_start, blanket_step, blanket, width) * factor
    good = np.isfinite(f)
    out, ivar, _ = normalise(grid, np.where(good, f, 1.0), good.astype(float), width=width)
    return np.where(ivar > 0, out, np.nan)
