"""Parse the column table of docs/catalogue.rst (shared by the catalogue tests)."""
from __future__ import annotations

import re
from pathlib import Path

import astropy.units as u

from ddpayne.labels import LABEL_NAMES, LABEL_UNIT_STRINGS

PAGE = Path(__file__).resolve().parents[1] / "docs" / "catalogue.rst"
LABEL_SUFFIXES = ("_ERR_TOT", "_ERR", "_CRB", "")


def documented_columns(page: Path = PAGE) -> dict[str, list[str]]:
    """``{name pattern: unit tokens}`` of the "Columns" list-table (``—`` or empty: no unit)."""
    text = page.read_text().split("\nColumns\n-------\n", 1)[1].split("\nFlags\n-----\n", 1)[0]
    rows: list[list[str]] = []
    for line in text.splitlines():
        if line.startswith("   * - "):
            rows.append([line[7:]])
        elif line.startswith("     - ") and rows:
            rows[-1].append(line[7:])
        elif line.startswith("       ") and rows:
            rows[-1][-1] += " " + line.strip()
    out: dict[str, list[str]] = {}
    for cells in rows[1:]:                       # the first row is the header
        units = [t.strip() for t in cells[1].split(",") if t.strip() not in ("", "—")]
        for name in re.findall(r"``([A-Z0-9_<>]+)``", cells[0].split(":")[0] if "<LABEL>``:" in cells[0]
                               else cells[0]):
            out[name] = units
    return out


def undocumented(columns: dict[str, u.UnitBase | None], page: Path = PAGE) -> list[str]:
    """The columns (name -> unit) that the page does not list, or lists with another unit."""
    docs = documented_columns(page)
    bad = []
    for name, unit in columns.items():
        key, want = name, None
        if name not in docs:
            for suffix in LABEL_SUFFIXES:
                base = name[:len(name) - len(suffix)] if suffix else name
                if name.endswith(suffix) and base in LABEL_NAMES:
                    key, want = f"<LABEL>{suffix}", [LABEL_UNIT_STRINGS[base]]
                    break
        if key not in docs:
            bad.append(f"{name}: not in {page.name}")
            continue
        units = want or docs[key]
        if unit is None and units and not want:
            bad.append(f"{name}: no unit, documented as {units}")
        elif unit is not None and not any(u.Unit(unit) == u.Unit(t) for t in units):
            bad.append(f"{name}: unit {unit}, documented as {units or 'none'}")
    return bad
