"""``ddpayne inspect``: a static HTML report on selected stars of a catalogue.

:func:`make_report` writes ``<out>/index.html`` (a sortable, filterable table of the selected stars and the
catalogue's Kiel and [Mg/Fe]–[Fe/H] diagrams with them marked) and one page per star (spectrum, model at
the best fit, residuals in σ, masked pixels, the information map of every label with its element's lines,
the label table with formal and total errors and Cramér–Rao bounds, the ranked "where each label comes from"
windows, the flags in words and the star's repeat observations). The folder opens from disk: no server, no
network; BokehJS, the style sheet and the table script are written once into ``<out>/_static``.
"""
from __future__ import annotations

import logging
import os
import re
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from . import figures, pages
from .pages import cell, esc, fmt
from .sources import ReportInputError, locate, read_catalogue, read_spectra, repeats, select_rows

log = logging.getLogger(__name__)

#: Stars with pages at most, unless told otherwise (each page holds its spectra: ~1 MB on the DESI grid).
MAX_STARS = 100


def _page_name(cat, row: int) -> str:
    sid = re.sub(r"[^A-Za-z0-9_.-]", "_", str(cat["ID"][row]))
    return f"star-{sid}-{row}.html"


def _load_model(files, labels: Sequence[str]):
    if files.model is None:
        return None
    from ..exceptions import IncompatibleModelError
    from ..model.emulator import load_emulator

    try:
        emu = load_emulator(files.model)
    except (IncompatibleModelError, OSError) as exc:
        raise ReportInputError(f"model {files.model} cannot be loaded: {exc}") from None
    missing = [n for n in emu.label_names if n not in labels]
    if missing:
        raise ReportInputError(f"model {files.model} fits labels {missing} that catalogue {files.catalogue} "
                               "does not have: is it the model of this run? (give it with --model)")
    sha = files.provenance.get("model_sha256")
    mine = getattr(emu, "provenance", {}).get("sha256")
    if sha and mine and sha != mine:
        log.warning("model %s (sha256 %s…) is not the one the catalogue records (%s…)", files.model, mine[:12],
                    sha[:12])
    return emu


def _line_list(source):
    from ..physics.lines import load_line_list

    try:
        return load_line_list(source)
    except Exception as exc:  # noqa: BLE001 -- names are a convenience: the report goes on without them
        if source is not None:
            raise ReportInputError(f"line list {source}: {exc}") from None
        log.warning("no line list (%s: %s): features are not identified", type(exc).__name__, exc)
        return None


def _star(cat, row, labels, spec, emu, lines, top_windows):
    """Everything one star page shows: plot data, label rows, information table."""
    from ..fit.cramer_rao import cramer_rao_bound
    from ..fit.information import (
        FeatureIdentifier,
        emulator_gradients,
        information_maps,
        information_table,
        own_element_fraction,
    )
    from ..physics.lines import species_name

    title = f"{cat['ID'][row]} ({os.path.basename(str(cat['SOURCE_FILE'][row]))})"
    d = figures.StarPlotData(spec.wavelength, spec.flux, spec.ivar, title=title)
    info_table = own = crb_model = None
    if emu is not None:
        if emu.wavelength.size != spec.wavelength.size or not np.allclose(emu.wavelength, spec.wavelength,
                                                                         rtol=1e-7):
            raise ReportInputError(f"the model's wavelength grid ({emu.wavelength.size} pixels) is not that of the "
                                   f"prepared spectra in {spec.path} ({spec.wavelength.size} pixels)")
        x = np.array([float(cat[n][row]) for n in emu.label_names])
        if np.all(np.isfinite(x)):
            d.model = emu.predict(x)
            G = emulator_gradients(emu, x)
            names = list(emu.label_names)
            cond, marg = information_maps(G, spec.ivar)
            for k, n in enumerate(names):
                tm, tc = np.nansum(marg[:, k]), np.nansum(cond[:, k])
                d.maps[n] = (100 * marg[:, k] / tm if tm > 0 else marg[:, k] * 0,
                             100 * cond[:, k] / tc if tc > 0 else cond[:, k] * 0)
            crb_model = dict(zip(names, cramer_rao_bound(G, spec.ivar)))
            teff = float(cat["TEFF"][row]) if "TEFF" in cat.colnames and np.isfinite(cat["TEFF"][row]) else 5000.0
            ident = FeatureIdentifier(spec.wavelength, lines, teff) if lines is not None else None
            info_table = information_table(spec.wavelength, G, spec.ivar, names, ident, top=top_windows)
            if ident is not None:
                own = own_element_fraction(spec.wavelength, G, spec.ivar, names, ident)
                from ..fit.information import label_element

                for n in names:
                    el = label_element(n)
                    if el is not None:
                        strong = ident.strong_lines(el, 25)
                        d.lines[n] = (np.asarray(strong["WAVE_VAC"], float),
                                      [species_name(c) for c in strong["SPECIES"]])
    return d, info_table, own, crb_model


def _label_rows(cat, row, labels, info_table, own, crb_model) -> list[str]:
    rows = []
    def col(n, suffix):
        c = f"{n}{suffix}"
        return cat[c][row] if c in cat.colnames else np.nan

    for n in labels:
        where = ""
        if info_table is not None:
            t = info_table[info_table["LABEL"] == n][:3]
            where = "; ".join(f"{r['SPECIES'] or '?'} {r['LINE_WAVE_AIR']:.1f} ({100 * r['SHARE']:.0f}%)"
                              if np.isfinite(r["LINE_WAVE_AIR"]) else
                              f"{r['WAVE_MIN']:.0f}–{r['WAVE_MAX']:.0f} Å ({100 * r['SHARE']:.0f}%)" for r in t)
        rows.append("<tr>" + cell(n, text=True) + cell(cat[n][row]) + cell(col(n, "_ERR")) + cell(col(n, "_ERR_TOT"))
                    + cell((crb_model or {}).get(n, np.nan)) + cell(col(n, "_CRB"))
                    + cell((own or {}).get(n, np.nan), 2) + cell(where, text=True) + "</tr>")
    return rows


def _flag_html(cat, row, labels) -> str:
    expl = pages.flag_explanations()
    from ..flags import Flag

    flag = int(cat["FLAG"][row])
    items = [f"<li><b>{f.name}</b>: {esc(expl.get(f.name, '').replace('``', ''))}</li>" for f in Flag
             if flag & int(f)]
    reason = str(cat["FLAG_REASON"][row]).strip() if "FLAG_REASON" in cat.colnames else ""
    if reason and reason not in ("--", "None"):
        items.append(f"<li>reason recorded by the pipeline: {esc(reason)}</li>")
    fitted = list(cat.meta.get("LABELS", labels))
    if "BOUND_MASK" in cat.colnames and int(cat["BOUND_MASK"][row]):
        b = int(cat["BOUND_MASK"][row])
        at = [n for k, n in enumerate(fitted) if b & (1 << k)]
        items.append(f"<li>labels at the bound of their range (BOUND_MASK): {esc(', '.join(at))}</li>")
    if "ABUND_FLAG" in cat.colnames and int(cat["ABUND_FLAG"][row]):
        from ..fit.quality import ABUND_FLAG_BITS

        a = int(cat["ABUND_FLAG"][row])
        bad = [n for n, bit in ABUND_FLAG_BITS.items() if a & bit]
        items.append(f"<li>abundances not trusted (ABUND_FLAG): {esc(', '.join(bad))}</li>")
    if not items:
        return "<p class='ok'>No flag set: nothing to report.</p>"
    return f"<p class='flag'>FLAG = {flag}</p><ul>" + "".join(items) + "</ul>"


def _repeat_html(cat, row, labels, pages_of) -> str:
    other = repeats(cat, row)
    if not other.size:
        return "<p class='note'>No other observation of this target in the catalogue.</p>"
    shown = [n for n in ("TEFF", "LOGG", "FE_H", "MG_FE", "CA_FE") if n in labels] or list(labels[:5])
    head = ["ID", "file", "S/N", "RCHI2", *shown, "flags", "page"]
    trs = []
    for r in [row, *other]:
        link = pages_of.get(int(r))
        trs.append("<tr>" + cell(cat["ID"][r], text=True) + cell(os.path.basename(str(cat["SOURCE_FILE"][r])), text=True)
                   + cell(cat["SNR"][r] if "SNR" in cat.colnames else np.nan, 1)
                   + cell(cat["RCHI2"][r] if "RCHI2" in cat.colnames else np.nan, 2)
                   + "".join(cell(cat[n][r]) for n in shown) + cell(pages.flag_words(cat["FLAG"][r]), text=True)
                   + "<td class='t'>" + ("this page" if r == row else f"<a href='{esc(link)}'>page</a>" if link else "")
                   + "</td></tr>")
    return pages.table(head, trs, sortable=False, text_cols=(0, 1, len(head) - 2, len(head) - 1))


def _info_html(info_table) -> str:
    if info_table is None or not len(info_table):
        return "<p class='note'>No model: no information maps.</p>"
    head = ["label", "rank", "λ min (Å)", "λ max (Å)", "share", "cumulative", "conditional share",
            "strongest line", "λ air (Å)", "own-element line", "λ air (Å) "]
    trs = []
    for r in info_table:
        trs.append("<tr>" + cell(r["LABEL"], text=True) + cell(r["RANK"], 0) + cell(r["WAVE_MIN"], 1, fixed=True)
                   + cell(r["WAVE_MAX"], 1, fixed=True) + cell(r["SHARE"], 3, fixed=True)
                   + cell(r["CUM_SHARE"], 3, fixed=True) + cell(r["SHARE_OTHER"], 3, fixed=True)
                   + cell(r["SPECIES"], text=True) + cell(r["LINE_WAVE_AIR"], 2, fixed=True)
                   + cell(r["OWN_SPECIES"] + (" ✓" if r["OWN_ELEMENT"] else ""), text=True)
                   + cell(r["OWN_WAVE_AIR"], 2, fixed=True) + "</tr>")
    return pages.table(head, trs, table_id="windows", text_cols=(0, 7, 9))


def make_report(catalogue: str | os.PathLike, out: str | os.PathLike = "report", targetids: Sequence[str] = (),
                flagged: bool = False, worst_chi2: int = 0, flags: Sequence[str] = (),
                run_dir: str | os.PathLike | None = None,
                prepared: str | os.PathLike | None = None, model: str | os.PathLike | None = None,
                line_list=None, interactive: bool = True, max_stars: int = MAX_STARS,
                top_windows: int = 5) -> Path:
    """Write the inspection report of selected stars of ``catalogue`` into folder ``out``.

    Parameters
    ----------
    catalogue : path
        A catalogue written by ``ddpayne run`` (``<run>/catalogue.fits``).
    out : path
        Report folder (created); ``index.html`` is its entry point.
    targetids : sequence of str
        Stars by ``TARGETID`` (all their observations).
    flagged : bool
        Stars with any ``FLAG`` bit set.
    worst_chi2 : int
        The N stars of largest ``QFLAG_CHI2``.
    flags : sequence of str
        Stars with any of these ``FLAG`` bits set (names of :class:`ddpayne.flags.Flag`, e.g. ``CHI2_OUTLIER``).
    run_dir, prepared, model : path, optional
        Where the run folder, the prepared spectra and the emulator are, when not beside the catalogue
        (:func:`ddpayne.report.sources.locate`).
    line_list : None, str, path or Table
        Line list naming the features (:func:`ddpayne.physics.lines.load_line_list`; default: the installed
        line-list plugin).
    interactive : bool
        Bokeh plots (zoomable) when Bokeh is installed; False: static PNG images.
    max_stars : int
        Pages written at most (the first selected rows; the log says how many were left out).
    top_windows : int
        Windows listed per label in the "where the label comes from" table.

    Returns
    -------
    Path
        ``<out>/index.html``.

    Raises
    ------
    ReportInputError
        Missing catalogue columns, TARGETIDs not in the catalogue, prepared spectra or model not found.
    """
    files = locate(catalogue, run_dir, prepared, model)
    cat, labels = read_catalogue(files)
    if not (targetids or flagged or worst_chi2 or flags):
        raise ReportInputError("nothing selected: give --targetid ID, --flagged, --flag NAME and/or --worst-chi2 N")
    bits = None
    if flags:
        from ..flags import Flag

        unknown = [f for f in flags if f.upper() not in Flag.__members__]
        if unknown:
            raise ReportInputError(f"unknown flag(s) {unknown}; flags are {list(Flag.__members__)}")
        bits = 0
        for f in flags:
            bits |= int(Flag[f.upper()])
    rows = select_rows(cat, targetids, flagged or bool(flags), worst_chi2, flag_bits=bits)
    if rows.size > max_stars:
        log.warning("%d stars selected; pages for the first %d (raise --max-stars for more)", rows.size, max_stars)
        rows = rows[:max_stars]
    out = Path(out)
    (out / "_static").mkdir(parents=True, exist_ok=True)
    from .assets import CSS, JS

    (out / "_static" / "report.css").write_text(CSS)
    (out / "_static" / "report.js").write_text(JS)
    interactive = interactive and figures.have_bokeh()
    js_name = None
    if interactive:
        js_name, js = figures.bokeh_js()
        target = out / "_static" / js_name
        if not target.exists():
            target.write_text(js)
    emu = _load_model(files, labels)
    lines = _line_list(line_list) if emu is not None else None
    spectra = read_spectra(files, cat, rows)
    pages_of = {int(r): _page_name(cat, r) for r in rows}
    index_rows = []
    for r in rows:
        d, info_table, own, crb_model = _star(cat, r, labels, spectra[r], emu, lines, top_windows)
        _write_star_page(out / pages_of[int(r)], cat, r, labels, d, info_table, own, crb_model, pages_of,
                         interactive, js_name, files)
        index_rows.append(_index_row(cat, r, labels, pages_of[int(r)]))
    _write_index(out, cat, rows, labels, index_rows, pages_of, interactive, js_name, files,
                 {"targetids": list(targetids), "flagged": flagged, "flags": list(flags), "worst_chi2": worst_chi2})
    log.info("report on %d star(s) written to %s", rows.size, out / "index.html")
    return out / "index.html"


def _index_row(cat, r, labels, page) -> str:
    tid = cat["TARGETID"][r] if "TARGETID" in cat.colnames else ""
    tds = [f"<td class='t'><a href='{esc(page)}'>{esc(cat['ID'][r])}</a></td>", cell(tid, text=True),
           cell(os.path.basename(str(cat["SOURCE_FILE"][r])), text=True),
           cell(cat["SNR"][r] if "SNR" in cat.colnames else np.nan, 1),
           cell(cat["RCHI2"][r] if "RCHI2" in cat.colnames else np.nan, 2),
           cell(cat["QFLAG_CHI2"][r] if "QFLAG_CHI2" in cat.colnames else np.nan, 2)]
    for n in labels:
        tds.append(cell(cat[n][r]))
        e = f"{n}_ERR"
        tds.append(cell(cat[e][r] if e in cat.colnames else np.nan))
    tds.append(cell(pages.flag_words(cat["FLAG"][r]) or "—", text=True))
    return "<tr>" + "".join(tds) + "</tr>"


def _write_index(out, cat, rows, labels, index_rows, pages_of, interactive, js_name, files, selection):
    head = ["ID", "TARGETID", "file", "SNR", "RCHI2", "QFLAG_CHI2"]
    for n in labels:
        head += [n, f"{n}_ERR"]
    head.append("flags")
    crit = ", ".join(f"{k} = {v}" for k, v in selection.items() if v)
    diag = figures.diagram_figure(cat, rows, [pages_of[int(r)] for r in rows], [str(cat["ID"][r]) for r in rows],
                                  interactive)
    body = (f"<h1>ddpayne inspection report</h1>\n<p>Catalogue <code>{esc(files.catalogue)}</code> "
            f"({len(cat)} rows); {rows.size} star(s) selected ({esc(crit)}). Model: "
            f"<code>{esc(files.model or 'not found')}</code>; prepared spectra: <code>{esc(files.prepared_dir)}</code>."
            "</p>\n<h2>Diagrams</h2>\n<p class='note'>Grey: the whole catalogue; red: the selected stars"
            f"{' (click one to open its page)' if interactive else ''}.</p>\n{diag}\n"
            "<h2>Selected stars</h2>\n<p class='note'>Click a header to sort. Filter: words must all appear in "
            "a row; <code>SNR&gt;30</code>, <code>FE_H&lt;-1</code> or <code>TEFF&gt;5000</code> compare a column.</p>"
            "<input class='filter' data-filter='stars' placeholder='filter, e.g. CHI2_OUTLIER SNR>20'>\n"
            + pages.table(head, index_rows, table_id="stars", text_cols=(0, 1, 2, len(head) - 1)))
    (out / "index.html").write_text(pages.page("ddpayne inspection report", body, js_name))


def _write_star_page(path, cat, r, labels, d, info_table, own, crb_model, pages_of, interactive, js_name, files):
    plot = figures.star_figure(d, interactive)
    lab_head = ["label", "value", "formal error", "total error", "CRB (model)", "CRB (physical)",
                "own-element share", "information from (top windows)"]
    snr = fmt(cat["SNR"][r], 1) if "SNR" in cat.colnames else "?"
    chi = fmt(cat["RCHI2"][r], 2) if "RCHI2" in cat.colnames else "?"
    q = fmt(cat["QFLAG_CHI2"][r], 2) if "QFLAG_CHI2" in cat.colnames else "?"
    tid = f" — TARGETID {esc(cat['TARGETID'][r])}" if "TARGETID" in cat.colnames else ""
    body = (
        f"<nav><a href='index.html'>← index</a></nav>\n<h1>{esc(cat['ID'][r])}{tid}</h1>\n"
        f"<p>File <code>{esc(cat['SOURCE_FILE'][r])}</code>; S/N {snr}; reduced χ² {chi}; QFLAG_CHI2 {q}.</p>\n"
        "<h2>Flags</h2>\n" + _flag_html(cat, r, labels) + "\n"
        "<h2>Spectrum, model and information maps</h2>\n"
        "<p class='note'>Top: the normalised rest-frame spectrum and the model at the best fit; grey: masked pixels "
        "(inverse variance 0). Then the residual in units of σ. Then, per label, the share of its Fisher "
        "information in each pixel (% per pixel): green, marginalised over the other labels (what the fit uses); "
        "purple, conditional (the other labels known); orange dotted: the strongest lines of the label's element. "
        "Drag or scroll to zoom: all panels follow.</p>\n" + plot + "\n"
        "<h2>Labels</h2>\n<p class='note'>Formal error: from the fit's covariance; total: formal and the model's "
        "systematic error in quadrature; CRB (model): Cramér–Rao bound of the emulator at the best fit with this "
        "spectrum's noise; CRB (physical): with the physical gradient spectra; own-element share: marginalised "
        "information in windows of the label's element lines (docs: inspect).</p>\n"
        + pages.table(lab_head, _label_rows(cat, r, labels, info_table, own, crb_model), table_id="labels",
                      text_cols=(0, 7)) + "\n"
        "<h2>Where each label's information comes from</h2>\n"
        "<input class='filter' data-filter='windows' placeholder='filter, e.g. MG_FE'>\n" + _info_html(info_table)
        + "\n<h2>Repeat observations</h2>\n" + _repeat_html(cat, r, labels, pages_of))
    path.write_text(pages.page(f"ddpayne: {cat['ID'][r]}", body, js_name))
