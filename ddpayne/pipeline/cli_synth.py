"""``ddpayne synth`` and ``ddpayne build``: making the physics data products from the command line.

``ddpayne synth`` runs the expensive physics (it resumes where it stopped); ``ddpayne build`` assembles
products from its results::

    ddpayne synth run --workdir work-synth --processes 2     # the synthesis plan (background job)
    ddpayne synth status --workdir work-synth                 # progress and the wall-clock estimate
    ddpayne synth extend --workdir work-synth --n-mock 3700   # more mock stars in the plan
    ddpayne synth compact --workdir work-synth                # old result files to the current layout
    ddpayne synth hydrogen --nodes 400 --max-minutes 120      # hydrogen-correction nodes
    ddpayne build gradients --workdir work-synth --hydrogen ddpayne/data/hydrogen_desi.fits
    ddpayne build library --workdir work-synth --hydrogen ddpayne/data/hydrogen_desi.fits
    ddpayne build mock-survey mock-out --n-stars 500 --snr 50

Plugins add their own commands to the two groups through the
:func:`~ddpayne.hookspecs.ddpayne_cli_commands` hook (the ``moog`` plugin: ``ddpayne build
extinction-table``, ``ddpayne synth sed-convergence``, ``ddpayne synth sed-gravity``); the core names no
plugin. Each command is a thin layer over the Python function it names in its help.

The side entry points these commands replace (``python -m ddpayne.physics.runner``,
``python -m ddpayne.physics.build_gradients``, ``python -m ddpayne.mock.library build``,
``python -m ddpayne.mock.survey``, and the plugins' own) remain as deprecated aliases through
:func:`deprecated_alias`.
"""
from __future__ import annotations

import argparse
import json
import logging
import shlex
import sys
import warnings
from collections.abc import Sequence
from pathlib import Path

log = logging.getLogger("ddpayne")

#: The command groups a plugin may add commands to (:func:`~ddpayne.hookspecs.ddpayne_cli_commands`).
GROUPS = ("synth", "build")

_DATA = Path(__file__).resolve().parent.parent / "data"
#: Default output of ``ddpayne synth hydrogen``.
DEFAULT_HYDROGEN = _DATA / "hydrogen_desi.fits"


def command_line(args: argparse.Namespace) -> str:
    """The command as typed (``ddpayne …``), recorded in the products' provenance."""
    argv = getattr(args, "argv", None)
    return "ddpayne " + shlex.join(argv) if argv is not None else "ddpayne " + " ".join(sys.argv[1:])


def _plan_required(workdir) -> None:
    """Refuse a work folder without a synthesis plan in one line that says how to start one."""
    from ..exceptions import DDPayneError
    from ..physics import runner

    if not runner.plan_path(Path(workdir)).exists():
        raise DDPayneError(f"no synthesis plan in {workdir}: start one with 'ddpayne synth run --workdir {workdir}'")


# ---------------------------------------------------------------------------------------------- synth
def _cmd_synth_run(args) -> int:
    from ..physics import runner

    n_mock = runner.DEFAULT_N_MOCK if args.n_mock is None else args.n_mock
    runner.run(args.workdir, processes=args.processes, n_mock=n_mock, max_jobs=args.max_jobs, only=args.only)
    return 0


def _cmd_synth_status(args) -> int:
    from ..physics import runner

    _plan_required(args.workdir)
    st = runner.status(args.workdir, processes=args.processes)
    st.pop("ref_ids_complete", None)
    print(json.dumps(st, indent=1))
    return 0


def _cmd_synth_extend(args) -> int:
    from ..physics import runner

    _plan_required(args.workdir)
    print(f"{runner.extend_plan(args.workdir, args.n_mock)} mock stars added")
    return 0


def _cmd_synth_compact(args) -> int:
    from ..physics import runner

    print(f"{runner.compact(args.workdir)} results compacted")
    return 0


def _cmd_synth_hydrogen(args) -> int:
    from ..mock.library import MockLibrary
    from ..physics.hydrogen_build import build_hydrogen, candidate_labels
    from ..physics.references import reference_points

    candidates = candidate_labels(MockLibrary.read(args.library).labels, reference_points())
    options = {k: v for k, v in (("synthesizer", args.synthesizer), ("processes", args.processes)) if v is not None}
    max_seconds = None if args.max_minutes is None else 60.0 * args.max_minutes
    product = build_hydrogen(args.out, candidates, args.nodes, max_seconds=max_seconds, **options)
    print(f"{len(product)} of {args.nodes} hydrogen-correction nodes in {args.out}")
    return 0


# ---------------------------------------------------------------------------------------------- build
def _build_from_plan(args, build, default_out, report) -> int:
    """Run ``build(workdir, out, command=, instrument=, hydrogen=)`` on a synthesis work folder."""
    _plan_required(args.workdir)
    out = default_out if args.out is None else args.out
    product = build(args.workdir, out, command=command_line(args), instrument=args.instrument,
                    hydrogen=args.hydrogen)
    print(f"{report(product)} written to {out}")
    return 0


def _cmd_build_gradients(args) -> int:
    from ..physics import build_gradients

    return _build_from_plan(args, build_gradients.build, build_gradients.DEFAULT_PRODUCT,
                            lambda g: f"{g.n_ref} reference points ({g.provenance['n_ref_planned']} planned)")


def _cmd_build_library(args) -> int:
    from ..mock import library

    return _build_from_plan(args, library.build_library, library.DEFAULT_LIBRARY, lambda lib: f"{len(lib)} stars")


def _cmd_build_mock_survey(args) -> int:
    from ..mock.survey import make_mock_survey

    out = make_mock_survey(args.outdir, args.n_stars, args.snr, args.seed, args.n_per_file, args.library,
                           ref_fraction=args.ref_fraction, snr_spread=args.snr_spread,
                           background=args.background, repeat_fraction=args.repeat_fraction)
    print(json.dumps({k: [str(p) for p in v] if isinstance(v, list) else str(v) for k, v in out.items()},
                     indent=1))
    return 0


def _add_synth(sub) -> argparse._SubParsersAction:
    p = sub.add_parser("synth", help="physical spectrum synthesis (resumable): plan, status, hydrogen nodes",
                       description="Physical spectrum synthesis for the gradient spectra, the mock library and "
                                   "the hydrogen correction; every command resumes where a previous run stopped.")
    group = p.add_subparsers(dest="synth_command", required=True, metavar="COMMAND")

    sp = group.add_parser("run", help="run (or resume) the synthesis plan in a work folder "
                                      "(ddpayne.physics.runner.run)")
    sp.add_argument("--workdir", default="work-synth", help="work folder with the plan and results "
                                                            "(default: work-synth)")
    sp.add_argument("--processes", type=int, default=2, help="worker processes (default 2)")
    sp.add_argument("--n-mock", type=int, default=None,
                    help="mock stars in a new plan (default: ddpayne.physics.runner.DEFAULT_N_MOCK)")
    sp.add_argument("--max-jobs", type=int, default=None, help="stop after this many jobs")
    sp.add_argument("--only", choices=["grad", "mock"], default=None,
                    help="only gradient (reference-point) or only mock-star jobs")
    sp.set_defaults(func=_cmd_synth_run)

    sp = group.add_parser("status", help="progress of the plan and a wall-clock estimate (JSON)")
    sp.add_argument("--workdir", default="work-synth", help="work folder (default: work-synth)")
    sp.add_argument("--processes", type=int, default=2, help="cores for the wall-clock estimate (default 2)")
    sp.set_defaults(func=_cmd_synth_status)

    sp = group.add_parser("extend", help="add mock stars to the plan (planned jobs and results untouched)")
    sp.add_argument("--workdir", default="work-synth", help="work folder (default: work-synth)")
    sp.add_argument("--n-mock", type=int, required=True, help="number of mock stars the plan should hold")
    sp.set_defaults(func=_cmd_synth_extend)

    sp = group.add_parser("compact", help="move high-resolution depths out of old-format result files")
    sp.add_argument("--workdir", default="work-synth", help="work folder (default: work-synth)")
    sp.set_defaults(func=_cmd_synth_compact)

    sp = group.add_parser("hydrogen", help="hydrogen-correction nodes, resumably "
                                           "(ddpayne.physics.hydrogen_build.build_hydrogen)")
    sp.add_argument("--out", default=str(DEFAULT_HYDROGEN),
                    help="product file, created or extended (default: ddpayne/data/hydrogen_desi.fits)")
    sp.add_argument("--nodes", type=int, required=True, metavar="N", help="number of nodes wanted in all")
    sp.add_argument("--max-minutes", type=float, default=None, metavar="M",
                    help="stop after the node in flight once M minutes have passed (rerun to resume)")
    sp.add_argument("--library", default=None,
                    help="mock library whose stars are node candidates (default: the bundled library)")
    sp.add_argument("--processes", type=int, default=None, help="worker processes (default: build_hydrogen's, 1)")
    sp.add_argument("--synthesizer", default=None,
                    help="synthesizer plugin with hydrogen=True/False (default: build_hydrogen's)")
    sp.set_defaults(func=_cmd_synth_hydrogen)
    return group


def _add_build(sub) -> argparse._SubParsersAction:
    p = sub.add_parser("build", help="assemble data products: gradient spectra, mock library, mock survey",
                       description="Assemble the data products from finished syntheses (or, for the mock "
                                   "survey, from the mock library).")
    group = p.add_subparsers(dest="build_command", required=True, metavar="COMMAND")

    for name, what, default, func in (
            ("gradients", "the gradient-spectra product (ddpayne.physics.build_gradients.build)",
             "ddpayne/data/gradients_desi.fits", _cmd_build_gradients),
            ("library", "the mock spectral library (ddpayne.mock.library.build_library)",
             "ddpayne/data/mock_library.fits", _cmd_build_library)):
        sp = group.add_parser(name, help=what)
        sp.add_argument("--workdir", default="work-synth", help="synthesis work folder (default: work-synth)")
        sp.add_argument("--out", default=None, help=f"output file (default: {default})")
        sp.add_argument("--instrument", default="desi", choices=["desi", "lamost"],
                        help="survey grid and resolution (default desi)")
        sp.add_argument("--hydrogen", default=None, metavar="PATH",
                        help="hydrogen-correction product to apply (e.g. ddpayne/data/hydrogen_desi.fits)")
        sp.set_defaults(func=func)

    sp = group.add_parser("mock-survey", help="a mock DESI survey: coadds and catalogues "
                                              "(ddpayne.mock.survey.make_mock_survey)")
    sp.add_argument("outdir", help="output folder (created)")
    sp.add_argument("--n-stars", type=int, default=500, help="mock spectra (default 500)")
    sp.add_argument("--snr", type=float, default=50.0, help="median per-pixel S/N in the R arm (default 50)")
    sp.add_argument("--seed", type=int, default=1, help="seed of every random draw (default 1)")
    sp.add_argument("--n-per-file", type=int, default=500, help="spectra per coadd file (default 500)")
    sp.add_argument("--library", default=None, help="mock library file (default: the bundled library)")
    sp.add_argument("--ref-fraction", type=float, default=1.0,
                    help="share of stars in the reference-label catalogue (default 1)")
    sp.add_argument("--snr-spread", type=float, default=0.0, help="S/N spread in dex (default 0)")
    sp.add_argument("--background", type=float, default=0.3,
                    help="sky + read-noise floor in units of the median R-arm counts (default 0.3)")
    sp.add_argument("--repeat-fraction", type=float, default=0.0,
                    help="share of stars observed twice (default 0)")
    sp.set_defaults(func=_cmd_build_mock_survey)
    return group


def _plugin_commands(groups: dict[str, argparse._SubParsersAction]) -> None:
    """Let every plugin add its commands (a failing plugin is skipped with a warning)."""
    from ..registry import PluginLoadWarning, get_plugin_manager

    for impl in get_plugin_manager().hook.ddpayne_cli_commands.get_hookimpls():
        try:
            impl.function(groups=groups)
        except Exception as exc:   # noqa: BLE001 - a broken plugin must not break the ddpayne command
            warnings.warn(f"ddpayne plugin {impl.plugin_name!r} failed adding its commands and they are "
                          f"skipped: {type(exc).__name__}: {exc}", PluginLoadWarning, stacklevel=2)


def add_commands(sub: argparse._SubParsersAction) -> None:
    """Add ``synth`` and ``build`` (with the plugins' commands) to the ``ddpayne`` parser's subcommands."""
    groups = {"synth": _add_synth(sub), "build": _add_build(sub)}
    _plugin_commands(groups)


def deprecated_alias(old: str, new: Sequence[str], argv: Sequence[str] | None = None) -> int:
    """Run ``ddpayne <new> <argv>`` for a retired entry point ``old``, saying so in one line on stderr.

    For a module's ``main``: ``raise SystemExit(deprecated_alias("python -m pkg.mod", ["build", "x"]))``.
    """
    from .cli import main

    argv = list(sys.argv[1:] if argv is None else argv)
    new_cmd = " ".join(["ddpayne", *new])
    print(f"'{old}' is deprecated: use '{new_cmd}' (see 'ddpayne {' '.join(new[:1])} --help')", file=sys.stderr)
    return main([*new, *argv])


def deprecated_subcommand_alias(old: str, mapping: dict[str, Sequence[str]],
                                argv: Sequence[str] | None = None) -> int:
    """:func:`deprecated_alias` for an old entry point with subcommands: ``mapping`` maps each old
    subcommand to its new command words (``{"build": ["build", "library"]}``)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] not in mapping:
        news = ", ".join(f"'{o}' -> 'ddpayne {' '.join(n)}'" for o, n in mapping.items())
        print(f"'{old}' is deprecated; its commands are now: {news}", file=sys.stderr)
        return 2
    return deprecated_alias(f"{old} {argv[0]}", mapping[argv[0]], argv[1:])
