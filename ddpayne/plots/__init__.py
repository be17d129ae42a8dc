"""Figures: the paper's, made from a catalogue (and the training history)."""
from __future__ import annotations

import logging
import os
from pathlib import Path

log = logging.getLogger(__name__)


def make_figures(cat, outdir: str | os.PathLike, history: str | os.PathLike | None = None,
                 reference: dict[str, str] | None = None, dpi: int = 110) -> list[Path]:
    """Write the paper's figures for catalogue ``cat`` into ``outdir``; return the files written.

    Figures whose columns are absent are skipped with a log message (e.g. no orbits: no Fig. 11).
    ``reference`` maps labels to reference-pipeline columns for Fig. 6 (default: the DESI MWS SP pipeline's
    ``SP_TEFF``/``SP_LOGG``/``SP_FEH``, else the RVS pipeline's ``RVS_*``, else ``REF_*`` columns).
    """
    import matplotlib.pyplot as plt
    from astropy.table import Table

    from . import labels as lab

    outdir = Path(outdir)
    outdir.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []

    def save(fig, name):
        path = outdir / name
        fig.savefig(path, dpi=dpi)
        plt.close(fig)
        written.append(path)

    cols = set(cat.colnames)
    if {"TEFF", "LOGG", "FE_H"} <= cols:
        save(lab.kiel_diagram(cat), "fig05_kiel.png")
    if not reference:   # the DESI MWS SP (FERRE) or RVS pipeline's parameters, else REF_* columns
        for cand in ({"TEFF": "SP_TEFF", "LOGG": "SP_LOGG", "FE_H": "SP_FEH"},
                     {"TEFF": "RVS_TEFF", "LOGG": "RVS_LOGG", "FE_H": "RVS_FEH"},
                     {"TEFF": "REF_TEFF", "LOGG": "REF_LOGG", "FE_H": "REF_FE_H"}):
            reference = {k: v for k, v in cand.items() if v in cols}
            if reference:
                break
    if reference:
        save(lab.compare_reference(cat, reference), "fig06_reference.png")
    if {"FE_H", "MG_FE"} <= cols:
        save(lab.abundance_density(cat, "MG_FE"), "fig07_mgfe_feh.png")
        save(lab.abundance_panels(cat), "fig08_abundances.png")
    if any(c.endswith("_CRB") for c in cols):
        from ..fit.cramer_rao import catalogue_precision_report
        from .precision import plot_precision_vs_crb

        rep = catalogue_precision_report(cat)
        if rep is not None:
            n = rep.meta.get("N_PAIRS", 0)
            title = (f"precision from {n} repeat pairs vs physical Cramér–Rao bound" if n else
                     "formal errors vs physical Cramér–Rao bound (no repeat observations)")
            save(plot_precision_vs_crb(rep, title=title), "fig09_precision_crb.png")
    if history is not None and Path(history).exists():
        from .training import plot_loss_history

        save(plot_loss_history(Table.read(history, format="ascii.ecsv")), "fig03_loss.png")
    if {"DIST", "RA", "DEC", "FE_H"} <= cols:
        from .galaxy import distance_xz_figure

        save(distance_xz_figure(cat), "fig10_distance_xz.png")
    if {"JPHI", "JR", "ECC", "RAPO"} <= cols:
        from .galaxy import ges_figure

        save(ges_figure(cat), "fig11_ges.png")
    log.info("wrote %d figures to %s", len(written), outdir)
    return written
