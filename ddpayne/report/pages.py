"""HTML of the report: the index page and one page per star (plain HTML, no template engine)."""
from __future__ import annotations

import html
import inspect
import re
from collections.abc import Sequence

import numpy as np

from ..flags import Flag


def flag_explanations() -> dict[str, str]:
    """Every :class:`~ddpayne.flags.Flag` bit's documentation (its ``#:`` comment in ``ddpayne/flags.py``)."""
    out: dict[str, str] = {}
    pending: list[str] = []
    try:
        source = inspect.getsource(Flag)
    except (OSError, TypeError):   # no source shipped: the names alone
        return out
    for line in source.splitlines():
        m = re.match(r"\s+#: ?(.*)", line)
        if m:
            pending.append(m.group(1))
            continue
        m = re.match(r"\s+([A-Z_0-9]+)\s*=", line)
        if m and pending:
            out[m.group(1)] = " ".join(pending)
        pending = []
    return out


def flag_words(value: int) -> str:
    """Names of the bits set in ``value``, comma-separated ('' for none)."""
    return ", ".join(f.name for f in Flag if int(value) & int(f))


TEXT_CLASS = " class='t'"


def esc(x) -> str:
    return html.escape(str(x))


def fmt(v, digits: int = 3, fixed: bool = False) -> str:
    """A number for a table cell ('' for missing or non-finite); ``fixed``: exactly ``digits`` decimals."""
    try:
        f = float(v)
    except (TypeError, ValueError):
        return esc(v)
    if not np.isfinite(f):
        return ""
    if fixed:
        return f"{f:.{digits}f}"
    if abs(f) >= 1000:
        return f"{f:.0f}"
    return f"{f:.{digits}g}" if abs(f) < 0.01 and f != 0 else f"{f:.{digits}f}".rstrip("0").rstrip(".") or "0"


def cell(v, digits: int = 3, text: bool = False, fixed: bool = False) -> str:
    """A ``<td>`` that sorts by value (``data-v``)."""
    if text:
        return f"<td class='t'>{esc(v)}</td>"
    try:
        f = float(v)
        dv = f"{f:.8g}" if np.isfinite(f) else ""
    except (TypeError, ValueError):
        dv = ""
    return f"<td data-v='{dv}'>{fmt(v, digits, fixed)}</td>"


def table(headers: Sequence[str], rows: Sequence[str], table_id: str = "", sortable: bool = True,
          text_cols: Sequence[int] = ()) -> str:
    """A table from header names and pre-rendered ``<tr>`` rows."""
    heads = "".join(f"<th data-col='{esc(h)}'{TEXT_CLASS if i in text_cols else ''}>{esc(h)}</th>"
                    for i, h in enumerate(headers))
    cls = " class='sortable'" if sortable else ""
    tid = f" id='{esc(table_id)}'" if table_id else ""
    return f"<table{tid}{cls}><thead><tr>{heads}</tr></thead><tbody>\n" + "\n".join(rows) + "\n</tbody></table>"


def page(title: str, body: str, bokeh_js: str | None, depth: int = 0) -> str:
    """A complete page; ``bokeh_js`` is the BokehJS file name in ``_static`` (None: no interactive plots)."""
    pre = "../" * depth
    scripts = f"<script src='{pre}_static/{esc(bokeh_js)}'></script>\n" if bokeh_js else ""
    return (f"<!DOCTYPE html>\n<html lang='en'><head><meta charset='utf-8'>\n<title>{esc(title)}</title>\n"
            f"<link rel='stylesheet' href='{pre}_static/report.css'>\n{scripts}"
            f"<script src='{pre}_static/report.js'></script>\n</head><body>\n{body}\n</body></html>\n")
