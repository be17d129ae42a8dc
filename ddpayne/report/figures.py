"""The report's plots: interactive Bokeh (zoomable, linked axes) or static matplotlib PNGs.

Both back ends draw the same figures and return an HTML fragment to put in a page:

* :func:`star_figure` — normalised spectrum and model, residual in σ, masked pixels shaded, and one panel
  per label with its information map (marginalised: filled; conditional: line) and the label's element
  lines marked; all panels share the wavelength axis.
* :func:`diagram_figure` — the catalogue's Kiel and [Mg/Fe]–[Fe/H] diagrams with the selected stars marked
  (clickable, with Bokeh, to open a star's page).

With Bokeh the fragment is a ``<div>`` and a ``<script>`` holding the plot's data; BokehJS itself is written
once into the report folder (:func:`bokeh_js`), so every page opens from disk without a network.
"""
from __future__ import annotations

import base64
import io
import logging
from dataclasses import dataclass, field

import numpy as np

log = logging.getLogger(__name__)

#: Colours: data, model, residual, marginal map, conditional map, element lines, selection.
COLOURS = {"data": "#222222", "model": "#d62728", "resid": "#1f77b4", "marg": "#2ca02c", "cond": "#9467bd",
           "line": "#ff7f0e", "mask": "#bbbbbb", "selected": "#d62728", "all": "#9aa5b1"}


def have_bokeh() -> bool:
    """Whether Bokeh is installed (the ``inspect`` extra)."""
    try:
        import bokeh  # noqa: F401
    except ImportError:
        return False
    return True


def bokeh_js() -> tuple[str, str]:
    """BokehJS (file name with its version, source) to write once into the report folder."""
    import bokeh
    from bokeh.resources import Resources

    js = "\n".join(Resources(mode="inline", components=["bokeh"]).js_raw)
    return f"bokeh-{bokeh.__version__}.min.js", js


@dataclass
class StarPlotData:
    """What the star figure shows (plain arrays on one wavelength grid)."""

    wavelength: np.ndarray
    flux: np.ndarray
    ivar: np.ndarray
    model: np.ndarray | None = None
    #: label -> (marginalised, conditional) information per pixel, as % of the label's total
    maps: dict[str, tuple[np.ndarray, np.ndarray]] = field(default_factory=dict)
    #: label -> (vacuum wavelengths, names) of the element's strong lines
    lines: dict[str, tuple[np.ndarray, list[str]]] = field(default_factory=dict)
    title: str = ""

    @property
    def residual(self) -> np.ndarray | None:
        if self.model is None:
            return None
        good = self.ivar > 0
        return np.where(good, (self.flux - self.model) * np.sqrt(np.where(good, self.ivar, 0.0)), np.nan)

    def masked_runs(self) -> list[tuple[float, float]]:
        """Wavelength ranges of runs of masked pixels (ivar = 0), padded by half a pixel."""
        bad = ~(self.ivar > 0)
        if not bad.any():
            return []
        w = self.wavelength
        edges = np.diff(np.r_[0, bad.astype(int), 0])
        starts, stops = np.flatnonzero(edges == 1), np.flatnonzero(edges == -1) - 1
        half = np.gradient(w) / 2 if w.size > 1 else np.ones_like(w)
        return [(float(w[a] - half[a]), float(w[b] + half[b])) for a, b in zip(starts, stops)]


def _gap_nan(wave, *arrays):
    """Insert NaN at grid gaps so lines are not drawn across them."""
    dw = np.diff(wave)
    cut = np.flatnonzero(dw > 3 * np.median(dw)) + 1 if dw.size else np.zeros(0, int)
    out = [np.insert(np.asarray(wave, float), cut, np.nan)]
    for a in arrays:
        out.append(None if a is None else np.insert(np.asarray(a, float), cut, np.nan))
    return out


# ------------------------------------------------------------------------------------------------ Bokeh
def _legend(text: str | None) -> dict:
    return {"legend_label": text} if text else {}


def _bokeh_star(d: StarPlotData):
    from bokeh.layouts import column
    from bokeh.models import ColumnDataSource, HoverTool, Range1d, Span
    from bokeh.plotting import figure

    w, flux, model, resid = _gap_nan(d.wavelength, np.where(d.ivar > 0, d.flux, np.nan), d.model, d.residual)
    # one data source for every panel (float32: half the page size): the wavelengths are stored once
    data = {"w": w, "flux": flux, "model": model if model is not None else np.full(w.size, np.nan),
            "resid": resid if resid is not None else np.full(w.size, np.nan)}
    for k, (label, (marg, cond)) in enumerate(d.maps.items()):
        _, m, c = _gap_nan(d.wavelength, marg, cond)
        data[f"m{k}"], data[f"c{k}"] = np.nan_to_num(m), c
    # areas cannot break at NaN: at the gaps their x repeats the previous wavelength, with zero height
    data["wa"] = np.where(np.isfinite(w), w, np.r_[w[:1], w[:-1]])
    src = ColumnDataSource({key: np.asarray(v, np.float32) for key, v in data.items()})
    x_range = Range1d(float(np.nanmin(w)), float(np.nanmax(w)), bounds="auto")
    tools = "xpan,xwheel_zoom,box_zoom,reset,save"
    runs = d.masked_runs()
    mask_src = ColumnDataSource({"left": [a for a, _ in runs], "right": [b for _, b in runs]})

    def shade(fig, lo, hi):
        if runs:
            fig.quad(left="left", right="right", bottom=lo, top=hi, source=mask_src, color=COLOURS["mask"],
                     alpha=0.35, line_alpha=0, **_legend("masked" if fig is spec else None))

    spec = figure(height=300, x_range=x_range, tools=tools, active_scroll="xwheel_zoom", sizing_mode="stretch_width",
                  title=d.title, y_axis_label="normalised flux")
    finite = flux[np.isfinite(flux)]
    lo, hi = (float(np.percentile(finite, 0.5)) - 0.05, float(np.percentile(finite, 99.5)) + 0.05) if finite.size \
        else (0.0, 1.2)
    spec.y_range = Range1d(lo, hi)
    shade(spec, lo - 10, hi + 10)
    spec.line("w", "flux", source=src, color=COLOURS["data"], legend_label="spectrum", line_width=1)
    if model is not None:
        spec.line("w", "model", source=src, color=COLOURS["model"], legend_label="model at best fit", line_width=1,
                  line_alpha=0.75)
    spec.add_tools(HoverTool(tooltips=[("λ (Å)", "@w{0.0}"), ("flux", "@flux{0.000}"), ("model", "@model{0.000}")],
                             mode="vline"))
    spec.legend.location = "bottom_left"
    spec.legend.click_policy = "hide"
    figs = [spec]
    if resid is not None:
        res = figure(height=150, x_range=x_range, tools=tools, active_scroll="xwheel_zoom",
                     sizing_mode="stretch_width", y_axis_label="residual (σ)", y_range=Range1d(-6, 6))
        shade(res, -100, 100)
        res.line("w", "resid", source=src, color=COLOURS["resid"], line_width=1)
        for v in (-3, 3):
            res.add_layout(Span(location=v, dimension="width", line_dash="dashed", line_color="#888888"))
        res.add_layout(Span(location=0, dimension="width", line_color="#444444"))
        figs.append(res)
    for k, label in enumerate(d.maps):
        m, c = data[f"m{k}"], data[f"c{k}"]
        top = float(np.nanmax(np.r_[m[np.isfinite(m)], c[np.isfinite(c)], 1e-9]))
        f = figure(height=110, x_range=x_range, tools=tools, active_scroll="xwheel_zoom", sizing_mode="stretch_width",
                   y_axis_label=label, y_range=Range1d(0, top * 1.08))
        first = k == 0
        f.varea(x="wa", y1=0, y2=f"m{k}", source=src, color=COLOURS["marg"], alpha=0.6,
                **_legend("marginalised" if first else None))
        f.line("w", f"m{k}", source=src, color=COLOURS["marg"], line_width=1)      # spikes narrower than a pixel
        f.line("w", f"c{k}", source=src, color=COLOURS["cond"], line_width=1,
               **_legend("conditional" if first else None))
        if label in d.lines:
            lw, names = d.lines[label]
            lsrc = ColumnDataSource({"x": lw, "y0": np.zeros(len(lw)), "y1": np.full(len(lw), top * 1.08),
                                     "name": [f"{n} {x:.2f}" for n, x in zip(names, lw)]})
            r = f.segment(x0="x", x1="x", y0="y0", y1="y1", source=lsrc, color=COLOURS["line"], line_dash="dotted",
                          line_width=1)
            f.add_tools(HoverTool(renderers=[r], tooltips=[("line (vac Å)", "@name")]))
        if first:
            f.legend.location = "top_left"
            f.legend.label_text_font_size = "8pt"
        figs.append(f)
    figs[-1].xaxis.axis_label = "rest-frame vacuum wavelength (Å)"
    return column(*figs, sizing_mode="stretch_width")


def _bokeh_diagrams(x_all, y_all, x_sel, y_sel, links, names, axes):
    from bokeh.layouts import row
    from bokeh.models import ColumnDataSource, HoverTool, OpenURL, TapTool
    from bokeh.plotting import figure

    figs = []
    for (xa, ya, xs, ys), (xl, yl, flip) in zip(zip(x_all, y_all, x_sel, y_sel), axes):
        f = figure(width=440, height=380, tools="pan,wheel_zoom,box_zoom,reset,save,tap", x_axis_label=xl,
                   y_axis_label=yl, output_backend="webgl")
        f.scatter(xa, ya, size=3, color=COLOURS["all"], alpha=0.5, legend_label="catalogue")
        src = ColumnDataSource({"x": xs, "y": ys, "url": links, "name": names})
        r = f.scatter("x", "y", source=src, size=8, color=COLOURS["selected"], line_color="black",
                      legend_label="selected")
        f.add_tools(HoverTool(renderers=[r], tooltips=[("star", "@name")]))
        f.select_one(TapTool).callback = OpenURL(url="@url", same_tab=True)
        if flip:
            f.x_range.flipped = True
            f.y_range.flipped = True
        f.legend.location = "bottom_right" if flip else "top_right"
        figs.append(f)
    return row(*figs)


def _bokeh_fragment(layout) -> str:
    from bokeh.embed import components

    script, div = components(layout)
    return f"{div}\n{script}"


# ------------------------------------------------------------------------------------------- matplotlib
def _png(fig) -> str:
    import matplotlib.pyplot as plt

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=80)
    plt.close(fig)
    return ("<img class='plot' alt='plot' src='data:image/png;base64,"
            + base64.b64encode(buf.getvalue()).decode() + "'>")


def _mpl_star(d: StarPlotData) -> str:
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    w, flux, model, resid = _gap_nan(d.wavelength, np.where(d.ivar > 0, d.flux, np.nan), d.model, d.residual)
    n = 1 + (resid is not None) + len(d.maps)
    ratios = [3] + ([1.4] if resid is not None else []) + [1] * len(d.maps)
    fig, axes = plt.subplots(n, 1, figsize=(14, 2.0 + 1.1 * sum(ratios)), sharex=True,
                             gridspec_kw={"height_ratios": ratios})
    axes = np.atleast_1d(axes)
    for ax in axes:
        for a, b in d.masked_runs():
            ax.axvspan(a, b, color=COLOURS["mask"], alpha=0.35, lw=0)
    ax = axes[0]
    ax.plot(w, flux, color=COLOURS["data"], lw=0.7, label="spectrum")
    if model is not None:
        ax.plot(w, model, color=COLOURS["model"], lw=0.7, label="model at best fit")
    ax.set_ylabel("normalised flux")
    ax.set_title(d.title, fontsize=10)
    ax.legend(loc="lower left", fontsize=8)
    k = 1
    if resid is not None:
        axes[k].plot(w, resid, color=COLOURS["resid"], lw=0.6)
        for v in (-3, 3):
            axes[k].axhline(v, ls="--", color="#888888", lw=0.6)
        axes[k].set_ylim(-6, 6)
        axes[k].set_ylabel("resid. (σ)")
        k += 1
    for label, (marg, cond) in d.maps.items():
        ax = axes[k]
        _, m, c = _gap_nan(d.wavelength, marg, cond)
        ax.fill_between(w, 0, np.nan_to_num(m), color=COLOURS["marg"], alpha=0.6, lw=0)
        ax.plot(w, c, color=COLOURS["cond"], lw=0.6)
        for x in d.lines.get(label, ((), ()))[0]:
            ax.axvline(x, color=COLOURS["line"], ls=":", lw=0.6)
        ax.set_ylabel(label, fontsize=8)
        ax.set_ylim(bottom=0)
        k += 1
    axes[-1].set_xlabel("rest-frame vacuum wavelength (Å)")
    fig.tight_layout()
    return _png(fig)


def _mpl_diagrams(x_all, y_all, x_sel, y_sel, axes_spec) -> str:
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(axes_spec), figsize=(5.2 * len(axes_spec), 4.2))
    for ax, xa, ya, xs, ys, (xl, yl, flip) in zip(np.atleast_1d(axes), x_all, y_all, x_sel, y_sel, axes_spec):
        ax.scatter(xa, ya, s=3, color=COLOURS["all"], alpha=0.5, label="catalogue", rasterized=True)
        ax.scatter(xs, ys, s=25, color=COLOURS["selected"], edgecolor="black", lw=0.5, label="selected")
        ax.set_xlabel(xl)
        ax.set_ylabel(yl)
        if flip:
            ax.invert_xaxis()
            ax.invert_yaxis()
        ax.legend(fontsize=8)
    fig.tight_layout()
    return _png(fig)


# ---------------------------------------------------------------------------------------------- facade
def star_figure(d: StarPlotData, interactive: bool = True) -> str:
    """HTML fragment of the star figure (Bokeh if ``interactive`` and installed, else a PNG)."""
    if interactive and have_bokeh():
        return _bokeh_fragment(_bokeh_star(d))
    return _mpl_star(d)


def diagram_figure(cat, selected: np.ndarray, links: list[str], names: list[str], interactive: bool = True) -> str:
    """HTML fragment of the Kiel and [Mg/Fe]–[Fe/H] diagrams (the panels whose columns the catalogue has)."""
    spec = [("TEFF", "LOGG", ("Teff (K)", "log g (dex)", True)),
            ("FE_H", "MG_FE", ("[Fe/H] (dex)", "[Mg/Fe] (dex)", False))]
    spec = [s for s in spec if s[0] in cat.colnames and s[1] in cat.colnames]
    if not spec:
        return "<p>The catalogue has no TEFF/LOGG or FE_H/MG_FE columns: no diagrams.</p>"
    x_all = [np.asarray(cat[a], float) for a, _, _ in spec]
    y_all = [np.asarray(cat[b], float) for _, b, _ in spec]
    x_sel = [x[selected] for x in x_all]
    y_sel = [y[selected] for y in y_all]
    axes = [s[2] for s in spec]
    if interactive and have_bokeh():
        return _bokeh_fragment(_bokeh_diagrams(x_all, y_all, x_sel, y_sel, links, names, axes))
    return _mpl_diagrams(x_all, y_all, x_sel, y_sel, axes)
