"""The ``moog`` plugin's commands (:func:`ddpayne.hookspecs.ddpayne_cli_commands`).

* ``ddpayne build extinction-table --out FILE [--processes N] [--workdir DIR]``: the F99 extinction
  coefficients from ATLAS9 + MOOG blanketed SEDs (:func:`ddpayne_moog.sed.build_table`);
* ``ddpayne synth sed-convergence [--json FILE]``: band magnitudes against the synthesis settings
  (:func:`ddpayne_moog.sed.convergence`);
* ``ddpayne synth sed-gravity [--json FILE]``: giant against dwarf coefficients
  (:func:`ddpayne_moog.sed.gravity_effect`).

This module only builds the parsers; :mod:`ddpayne_moog.sed` is imported when a command runs.
"""
from __future__ import annotations

import json
import logging
import time
from pathlib import Path


def _quiet_synth() -> None:
    logging.getLogger("ddpayne_moog.synth").setLevel(logging.WARNING)


def _cmd_extinction_table(args) -> int:
    import numpy as np

    from ddpayne.pipeline.cli_synth import command_line

    from . import sed

    _quiet_synth()
    t0 = time.time()
    tab = sed.build_table(args.out, processes=args.processes, workdir=args.workdir, command=command_line(args))
    i6000 = np.argmin(np.abs(tab.teff - 6000.0))
    print(f"wrote {args.out}: Teff {tab.teff[0]:.0f}-{tab.teff[-1]:.0f} K x [Fe/H] {tab.feh[0]}..{tab.feh[-1]}"
          f" x {tab.ebv.size} E(B-V); R at {tab.teff[i6000]:.0f} K, E=0:")
    for j, m in enumerate(tab.feh):
        print(f"  [Fe/H]={m:+.2f} " + " ".join(f"{bn}={tab.coeff[i6000, j, 0, k]:.3f}"
                                              for k, bn in enumerate(tab.bands)))
    print(f"# {time.time() - t0:.0f} s wall, {sed._children_cpu():.0f} CPU-s in MOOG")
    return 0


def _cmd_study(args) -> int:
    from . import sed

    _quiet_synth()
    t0 = time.time()
    rows = sed.convergence() if args.study == "convergence" else sed.gravity_effect()
    for r in rows:
        print(json.dumps(r))
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1))
    print(f"# {time.time() - t0:.0f} s wall, {sed._children_cpu():.0f} CPU-s in MOOG")
    return 0


def add_commands(groups) -> None:
    """Add the plugin's commands to the ``build`` and ``synth`` groups."""
    p = groups["build"].add_parser("extinction-table", help="F99 extinction coefficients from ATLAS9 + MOOG "
                                                            "blanketed SEDs (moog plugin: ddpayne_moog.sed)")
    p.add_argument("--out", required=True, help="output .fits file (e.g. ddpayne/data/extinction_f99_moog.fits)")
    p.add_argument("--processes", type=int, default=1, help="MOOG processes (default 1)")
    p.add_argument("--workdir", default=None, help="node-SED checkpoints (default: in the MOOG cache)")
    p.set_defaults(func=_cmd_extinction_table)
    for study, text in (("convergence", "band magnitudes of blanketed SEDs vs synthesis settings"),
                        ("gravity", "giant vs dwarf extinction coefficients at a few nodes")):
        p = groups["synth"].add_parser(f"sed-{study}", help=f"{text} (moog plugin)")
        p.add_argument("--json", default=None, help="also write the rows to this JSON file")
        p.set_defaults(func=_cmd_study, study=study)
