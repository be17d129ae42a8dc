"""Validating a catalogue against the truth of a mock survey: bias and scatter per quantity."""
from __future__ import annotations

import numpy as np
from astropy.table import Table

from ..fit.calibration import robust_sigma
from ..flags import Flag
from ..labels import LABEL_NAMES

#: Flags that exclude a row from the validation statistics (the fit or input is known to be bad).
EXCLUDE = int(Flag.FIT_FAILED | Flag.ALL_MASKED | Flag.BAD_INPUT)




def _matched(cat: Table, truth: Table, id_column: str = "TARGETID") -> tuple[Table, Table]:
    cid = np.asarray(cat[id_column] if id_column in cat.colnames else cat["ID"]).astype(str)
    tid = np.asarray(truth[id_column]).astype(str)
    pos = {t: i for i, t in enumerate(tid)}
    rows = np.array([pos.get(c, -1) for c in cid])
    ok = rows >= 0
    return cat[ok], truth[rows[ok]]


def validate(cat: Table, truth: Table, labels=None, id_column: str = "TARGETID") -> Table:
    """Bias (median of catalogue − truth), robust scatter and median quoted error per quantity.

    Rows with :data:`EXCLUDE` flags are left out; ``N`` says how many rows each statistic used.
    Distances are compared as relative differences ``DIST/DIST_TRUE − 1``.

    Returns
    -------
    Table
        ``QUANTITY``, ``N``, ``BIAS``, ``SCATTER``, ``MEDIAN_ERR`` (formal), ``MEDIAN_ERR_TOT`` (formal ⊕
        the model's systematic error, ``<LABEL>_ERR_TOT``; NaN when the catalogue has none), ``Z_ERR`` and
        ``Z_TOT`` (robust σ of the star-by-star ``(catalogue − truth) / error`` with the formal and the total
        error: 1 when the errors describe the scatter), ``UNIT``.
    """
    c, t = _matched(cat, truth, id_column)
    good = (np.asarray(c["FLAG"], dtype=np.int64) & EXCLUDE) == 0 if "FLAG" in c.colnames else \
        np.ones(len(c), bool)
    rows = []
    labels = labels or [n for n in LABEL_NAMES if n in c.colnames and n in t.colnames]
    pairs = [(n, n, "") for n in labels]
    pairs += [(q, f"{q}_TRUE", "") for q in ("EBV",) if q in c.colnames and f"{q}_TRUE" in t.colnames]
    for name, true_name, _ in pairs:
        dd = (np.asarray(c[name], float) - np.asarray(t[true_name], float))[good]
        d = dd[np.isfinite(dd)]
        err = np.asarray(c[f"{name}_ERR"], float)[good] if f"{name}_ERR" in c.colnames else np.array([np.nan])
        tot = np.asarray(c[f"{name}_ERR_TOT"], float)[good] if f"{name}_ERR_TOT" in c.colnames else \
            np.full(int(good.sum()), np.nan)
        z_err = robust_sigma(dd / err) if err.size == dd.size else np.nan   # robust_sigma drops NaNs
        z_tot = robust_sigma(dd / tot) if np.isfinite(tot).any() else np.nan
        unit = str(c[name].unit) if c[name].unit is not None else ""
        rows.append((name, d.size, float(np.median(d)) if d.size else np.nan, robust_sigma(d),
                     float(np.nanmedian(err)) if np.isfinite(err).any() else np.nan,
                     float(np.nanmedian(tot)) if np.isfinite(tot).any() else np.nan, z_err, z_tot, unit))
    if "DIST" in c.colnames and "DIST_TRUE" in t.colnames:
        rr = (np.asarray(c["DIST"], float) / np.asarray(t["DIST_TRUE"], float) - 1)[good]
        r = rr[np.isfinite(rr)]
        rel_err = (np.asarray(c["DIST_ERR"], float) / np.asarray(c["DIST"], float))[good] \
            if "DIST_ERR" in c.colnames else np.array([np.nan])
        z_dist = robust_sigma(rr / rel_err) if rel_err.size == rr.size else np.nan
        rows.append(("DIST (relative)", r.size, float(np.median(r)) if r.size else np.nan, robust_sigma(r),
                     float(np.nanmedian(rel_err)) if np.isfinite(rel_err).any() else np.nan, np.nan,
                     z_dist, np.nan, ""))
    return Table(rows=rows, names=("QUANTITY", "N", "BIAS", "SCATTER", "MEDIAN_ERR", "MEDIAN_ERR_TOT", "Z_ERR",
                                   "Z_TOT", "UNIT"))


def ges_recovery(cat: Table, truth: Table, id_column: str = "TARGETID", column: str = "GES",
                 population: str = "ges") -> tuple[float, float, int, int]:
    """Completeness and purity of the catalogue's GES selection against the mock's true population.

    Returns
    -------
    completeness, purity : float
        Fraction of true GES stars selected; fraction of selected stars that are true GES members.
    n_true, n_selected : int
    """
    c, t = _matched(cat, truth, id_column)
    sel = np.asarray(c[column], dtype=bool)
    true = np.char.strip(np.asarray(t["POP"]).astype(str)) == population
    n_true, n_sel = int(true.sum()), int(sel.sum())
    completeness = float((sel & true).sum() / n_true) if n_true else float("nan")
    purity = float((sel & true).sum() / n_sel) if n_sel else float("nan")
    return completeness, purity, n_true, n_sel


def format_validation(table: Table) -> str:
    """The validation table as aligned text (total-error columns when the catalogue has them).

    ``scatter/err`` and ``scatter/tot`` are the star-by-star ratios ``Z_ERR`` and ``Z_TOT``.
    """
    has_tot = "MEDIAN_ERR_TOT" in table.colnames and np.isfinite(np.asarray(table["MEDIAN_ERR_TOT"], float)).any()
    head = f"{'quantity':<16} {'N':>6} {'bias':>10} {'scatter':>10} {'median err':>11} {'scatter/err':>11}"
    if has_tot:
        head += f" {'total err':>10} {'scatter/tot':>11}"
    lines = [head + "  unit"]
    for r in table:
        ratio = r["Z_ERR"] if "Z_ERR" in table.colnames else (
            r["SCATTER"] / r["MEDIAN_ERR"] if r["MEDIAN_ERR"] > 0 else float("nan"))
        line = (f"{r['QUANTITY']:<16} {r['N']:>6d} {r['BIAS']:>10.4g} {r['SCATTER']:>10.4g} "
                f"{r['MEDIAN_ERR']:>11.4g} {ratio:>11.2f}")
        if has_tot:
            tot = r["MEDIAN_ERR_TOT"]
            line += (f" {tot:>10.4g} {r['Z_TOT']:>11.2f}" if np.isfinite(tot) and tot > 0
                     else f" {'':>10} {'':>11}")
        lines.append(line + f"  {r['UNIT']}")
    return "\n".join(lines)
