"""The paper's Galaxy figures (Zhang et al. 2024, Figs. 10 and 11) as functions returning Figures.

* :func:`distance_xz_figure` (Fig. 10): distance distribution, and the X–Z map coloured by the median
  [Fe/H] per bin, with a zoom-in panel.
* :func:`ges_figure` (Fig. 11): J_φ–J_R and e–R_apo density with the selection cuts and the selected stars
  in red; [Mg/Fe]–[Fe/H] and [Al/Fe]–[Fe/H] density with the selected stars marked.

They use the Agg backend (no display needed) and take a catalogue Table from
:func:`ddpayne.galaxy.derive` (columns ``DIST``, ``DIST_ERR``, ``JPHI``, ``JR``, ``ECC``, ``RAPO``,
``FE_H``, ``MG_FE``, ``AL_FE`` and Galactocentric ``X_GC``/``Z_GC`` or ``RA``/``DEC``/``DIST``).
"""
from __future__ import annotations

import numpy as np
from astropy.table import Table

from ..galaxy.selection import GES_ZHANG2024, RangeSelection, get_selection
from ..galaxy.solar import SOLAR, SolarParameters
from ..galaxy.starpair import column


def _figure(**kw):
    from matplotlib.figure import Figure
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    fig = Figure(**kw)
    FigureCanvasAgg(fig)
    return fig


def _col(tab: Table, name: str) -> np.ndarray:
    if name not in tab.colnames:
        return np.full(len(tab), np.nan)
    return column(tab, name)


def galactic_xz(tab: Table, solar: SolarParameters = SOLAR) -> tuple[np.ndarray, np.ndarray]:
    """Galactocentric X (Sun at X = +r0, as the paper's figure) and Z in kpc from RA, DEC, DIST."""
    import astropy.coordinates as coord
    import astropy.units as u
    ra, dec, d = _col(tab, "RA"), _col(tab, "DEC"), _col(tab, "DIST")
    x = np.full(len(tab), np.nan)
    z = np.full(len(tab), np.nan)
    ok = np.isfinite(ra) & np.isfinite(dec) & np.isfinite(d) & (d > 0)
    if ok.any():
        g = coord.SkyCoord(ra=ra[ok] * u.deg, dec=dec[ok] * u.deg, distance=d[ok] * u.kpc) \
            .transform_to(solar.galactocentric_frame())
        x[ok] = -g.x.to_value(u.kpc)
        z[ok] = g.z.to_value(u.kpc)
    return x, z


def distance_xz_figure(catalog: Table, *, max_rel_err: float = 0.3, snr_min: float | None = 10.0,
                       snr_column: str = "SNR", bins: int = 60, zoom: tuple = ((0, 16), (-10, 10)),
                       solar: SolarParameters = SOLAR):
    """Fig. 10: distance distribution and the X–Z map coloured by median [Fe/H].

    Parameters
    ----------
    catalog : Table
        Output of :func:`ddpayne.galaxy.derive` (``DIST``, ``DIST_ERR``, ``FE_H``, ``RA``, ``DEC``).
    max_rel_err : float
        Keep stars with DIST_ERR/DIST below this (paper: 0.3).
    snr_min, snr_column : float, str
        Keep stars with S/N above ``snr_min`` when the column exists (paper: 10).
    bins : int
        Bins per axis of the X–Z map.
    zoom : ((xmin, xmax), (zmin, zmax))
        Window of the zoom-in panel (kpc).

    Returns
    -------
    matplotlib.figure.Figure
    """
    from scipy.stats import binned_statistic_2d
    d = _col(catalog, "DIST")
    keep = np.isfinite(d) & (d > 0) & (_col(catalog, "DIST_ERR") / d < max_rel_err)
    if snr_min is not None and snr_column in catalog.colnames:
        keep &= _col(catalog, snr_column) > snr_min
    x, z = galactic_xz(catalog, solar)
    feh = _col(catalog, "FE_H")
    fig = _figure(figsize=(15, 5), layout="constrained")
    ax0, ax1, ax2 = fig.subplots(1, 3, gridspec_kw={"width_ratios": [1, 1.3, 1]})
    if keep.any():
        ax0.hist(np.log10(d[keep]), bins=50, histtype="step", color="k")
    ax0.set_xlabel(r"$\log_{10}(d/{\rm kpc})$")
    ax0.set_ylabel("N")
    ax0.set_title(f"{int(keep.sum())} stars, $\\sigma_d/d<{max_rel_err:g}$")
    m = keep & np.isfinite(x) & np.isfinite(z) & np.isfinite(feh)
    mappable = None
    for ax, rng in ((ax1, None), (ax2, zoom)):
        if m.sum() >= 2:
            if rng is None:
                lim = np.nanpercentile(np.abs(np.r_[x[m], z[m]]), 99.5) * 1.05
                rng = ((-lim, lim), (-lim, lim))
            stat = binned_statistic_2d(x[m], z[m], feh[m], statistic="median", bins=bins, range=rng)
            mappable = ax.pcolormesh(stat.x_edge, stat.y_edge, stat.statistic.T, cmap="viridis_r",
                                     vmin=-2.0, vmax=0.3)
            ax.set_xlim(rng[0])
            ax.set_ylim(rng[1])
        ax.set_xlabel("X [kpc]")
        ax.set_ylabel("Z [kpc]")
    ax2.set_title("zoom")
    if mappable is not None:
        fig.colorbar(mappable, ax=[ax1, ax2], label="median [Fe/H]")
    return fig


def ges_figure(catalog: Table, selection: str | RangeSelection = GES_ZHANG2024, *, bins: int = 80,
               feh_min: float = -2.5):
    """Fig. 11: J_φ–J_R and e–R_apo with the selection; [Mg/Fe]–[Fe/H] and [Al/Fe]–[Fe/H] with it marked.

    Parameters
    ----------
    catalog : Table
        Output of :func:`ddpayne.galaxy.derive`.
    selection : str or RangeSelection
        The population selection (default: the paper's GES cut); its column ranges are drawn as lines.
    bins : int
        Bins per axis of the density maps.
    feh_min : float
        Lower [Fe/H] limit of the abundance panels.

    Returns
    -------
    matplotlib.figure.Figure
    """
    from matplotlib.colors import LogNorm
    sel_obj = get_selection(selection)
    sel = np.asarray(sel_obj(catalog), dtype=bool) if all(
        c in catalog.colnames for c in getattr(sel_obj, "cuts", {})) else np.zeros(len(catalog), bool)
    fig = _figure(figsize=(11, 9), layout="constrained")
    axes = fig.subplots(2, 2)
    panels = [
        (axes[0, 0], "JPHI", "JR", r"$J_\phi$ [kpc km/s]", r"$J_R$ [kpc km/s]", (-4000, 4000), (0, 4000)),
        (axes[0, 1], "ECC", "RAPO", r"$e$", r"$R_{\rm apo}$ [kpc]", (0, 1), (0, 40)),
        (axes[1, 0], "FE_H", "MG_FE", "[Fe/H]", "[Mg/Fe]", (feh_min, 0.6), (-0.4, 0.7)),
        (axes[1, 1], "FE_H", "AL_FE", "[Fe/H]", "[Al/Fe]", (feh_min, 0.6), (-0.8, 0.8)),
    ]
    for ax, cx, cy, lx, ly, rx, ry in panels:
        x, y = _col(catalog, cx), _col(catalog, cy)
        ok = np.isfinite(x) & np.isfinite(y)
        if ok.any():
            ax.hist2d(x[ok], y[ok], bins=bins, range=(rx, ry), cmap="Greys", norm=LogNorm(), cmin=1)
            s = ok & sel
            ax.scatter(x[s], y[s], s=3, c="red", lw=0, label=f"{getattr(sel_obj, 'name', 'selected')} "
                                                            f"({int(s.sum())})")
        ax.set_xlim(rx)
        ax.set_ylim(ry)
        ax.set_xlabel(lx)
        ax.set_ylabel(ly)
        cuts = getattr(sel_obj, "cuts", {})
        for col, vert in ((cx, True), (cy, False)):
            if col in cuts and col not in ("FE_H",):
                for v in cuts[col]:
                    if v is not None:
                        (ax.axvline if vert else ax.axhline)(v, color="k", ls="--", lw=1)
    if axes[0, 0].get_legend_handles_labels()[0]:
        axes[0, 0].legend(loc="upper right", fontsize=8)
    return fig
