"""The ``ddpayne`` command line.

``ddpayne plugins`` lists the installed plugins; ``ddpayne prepare`` reads and prepares survey files;
``ddpayne gradients`` compares a trained model's gradient spectra with the physical ones;
``ddpayne demo`` runs the pipeline on the bundled data; ``ddpayne fit FILES --model M`` fits survey files
with a saved model; ``ddpayne synth`` and ``ddpayne build`` make the physics data products
(:mod:`ddpayne.pipeline.cli_synth`). Each subcommand is a thin layer over the
Python API.
"""
from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence

from .. import __version__
from .cli_synth import add_commands

log = logging.getLogger("ddpayne")


def _cmd_plugins(args) -> int:
    from .. import registry

    infos = registry.plugins()
    print(f"ddpayne {__version__}: {len(infos)} plugin(s) installed")
    for info in infos:
        provides = "; ".join(f"{kind}: {', '.join(sorted(names))}" for kind, names in
                             sorted(info.provides.items())) or "nothing"
        print(f"  {info.name:<12} {info.version or '?':<8} ({info.distribution or info.module})  {provides}")
    for kind in registry.KINDS:
        names = sorted(registry.available(kind))
        print(f"{kind:>12}s: {', '.join(names) if names else '-'}")
    return 0


def _cmd_prepare(args) -> int:
    from ..prepare.spectra import PrepareSettings, prepare_files

    settings = PrepareSettings(continuum_width=args.continuum_width)
    batch, rejected = prepare_files(args.files, reader=args.reader, catalogue=args.catalogue,
                                    settings=settings, stars_only=not args.all)
    for row in rejected:
        log.info("rejected %s (%s): %s", row["ID"], row["SOURCE_FILE"], row["FLAG_REASON"])
    if batch is None:
        print(f"no spectra prepared from {len(args.files)} file(s); {len(rejected)} rejected")
        return 1
    print(f"prepared {len(batch)} spectra on {batch.wavelength.size} pixels "
          f"({batch.wavelength[0]:.1f}-{batch.wavelength[-1]:.1f} A); {len(rejected)} rejected")
    if args.out:
        batch.write(args.out, overwrite=True)
        print(f"wrote {args.out}")
    return 0


def _cmd_stages(args) -> int:
    from .run import STAGES, Pipeline

    stages = {"run": STAGES, "train": ("train",), "fit": ("fit",), "derive": ("derive",),
              "catalogue": ("catalogue",)}[args.command]
    if args.command == "run" and args.stages:
        stages = tuple(s.strip() for s in args.stages.split(","))
    pipe = Pipeline(args.config, force=args.force.split(",") if args.force else ())
    if "prepare" not in stages and not pipe.prepared_files():
        stages = ("prepare", *stages)
    path = pipe.run(stages)
    print(f"done: {path}")
    return 0


def _cmd_fit(args) -> int:
    """``ddpayne fit CONFIG`` (the pipeline's fit stage) or ``ddpayne fit FILES... --model MODEL`` (a saved model
    applied to survey files, prepared as its training spectra were: :func:`ddpayne.pipeline.apply.fit_files`)."""
    from ..exceptions import DDPayneError

    if args.model is None:
        if len(args.inputs) != 1 or args.catalogue or args.out:
            raise DDPayneError("ddpayne fit: give one TOML configuration (the pipeline's fit stage), or survey "
                               "files with --model MODEL (e.g. ddpayne fit coadd-*.fits --model emulator.pt "
                               "--catalogue mwsall.fits -o catalogue.fits)")
        args.config = args.inputs[0]
        return _cmd_stages(args)
    if args.force:
        raise DDPayneError("ddpayne fit: --force belongs to the fit stage of a configuration, not to --model")
    from .apply import fit_files

    out = args.out or "catalogue.fits"
    cat = fit_files(args.inputs, args.model, catalogue=args.catalogue, output=out, reader=args.reader,
                    fitter=args.fitter)
    labels = list(cat.meta.get("LABELS", []))
    print(f"fitted {len(cat)} spectra ({cat.meta.get('REJECTED', 0)} rejected) with {args.model}: {out}")
    for row in cat[:10]:
        print(f"  {row['ID']}: " + ", ".join(f"{n} {row[n]:.4g} ± {row[n + '_ERR']:.2g}" for n in labels[:4]))
    return 0


def _fit_arguments(sp: argparse.ArgumentParser) -> None:
    """``ddpayne fit``'s two forms: a configuration's fit stage, or survey files with a saved model."""
    sp.add_argument("inputs", nargs="+", metavar="CONFIG | FILES",
                    help="TOML configuration (the pipeline's fit stage), or survey files with --model")
    sp.add_argument("--force", default="", help="comma-separated stages to redo (with a configuration)")
    sp.add_argument("--model", default=None,
                    help="a saved model (e.g. <run>/model/emulator.pt): fit FILES with it, prepared as its "
                         "training spectra were")
    sp.add_argument("--catalogue", default=None, help="survey catalogue with RVs and classes (DESI: mwsall)")
    sp.add_argument("--reader", default=None, help="reader name (default: identify each file by content)")
    sp.add_argument("--fitter", default="lm", help="fitter plugin (default lm)")
    sp.add_argument("-o", "--out", default=None, help="catalogue file to write (default catalogue.fits)")
    sp.set_defaults(func=_cmd_fit)


def _cmd_plot(args) -> int:
    from ..plots import make_figures
    from .catalogue import read_catalogue

    files = make_figures(read_catalogue(args.catalogue), args.out, history=args.history)
    for f in files:
        print(f)
    return 0


def _cmd_gradients(args) -> int:
    """Model vs physical gradient spectra of a trained emulator (paper Fig. 4) and their correlation."""
    from pathlib import Path

    import numpy as np
    from astropy.table import Table

    from ..exceptions import DDPayneError
    from ..model.diagnostics import gradient_correlation, inside_reference_points
    from ..model.emulator import load_emulator
    from ..physics.build_gradients import DEFAULT_PRODUCT
    from ..physics.gradients import GradientSpectra

    src = Path(args.gradients) if args.gradients else DEFAULT_PRODUCT
    for path in (Path(args.model), src):
        if not path.exists():
            raise DDPayneError(f"{path} does not exist")
    try:
        emu = load_emulator(args.model)
        g = GradientSpectra.read(src)
    except (ValueError, OSError, KeyError) as err:
        raise DDPayneError(str(err)) from None
    missing = [n for n in emu.label_names if n not in g.label_names]
    if missing:   # the model's gradients are taken at the reference points' full label vectors
        raise DDPayneError(f"{src} has no gradient spectra for the model's labels {missing}: give a gradient "
                           "file with all of them (--gradients)")
    try:
        g = g.matched_to(emu.wavelength, list(emu.label_names), what=f"the model {args.model}")
    except ValueError as err:
        raise DDPayneError(f"{err}: give the gradient file made for the model's survey grid (--gradients)") from None
    tl_path = Path(args.training_labels) if args.training_labels else Path(args.model).with_name("training-labels.ecsv")
    train = None
    if tl_path.exists():
        tl = Table.read(tl_path, format="ascii.ecsv")
        train = np.column_stack([np.asarray(tl[n], float) for n in emu.label_names])
    else:
        log.warning("no training labels (%s): coverage is the model's label box only", tl_path)
    rho = gradient_correlation(emu, g, train_labels=train)
    print(f"{emu!r}\nvs {src} ({g.n_ref} reference points; RHO over the points inside the training coverage)")
    rho.pprint(max_lines=-1, max_width=-1)
    if args.table:
        rho.write(args.table, format="ascii.ecsv", overwrite=True)
    if args.figure:
        from ..plots.training import plot_gradient_comparison

        if args.ref is None:
            inside = inside_reference_points(emu, g, train_labels=train)
            if not inside.size:
                raise DDPayneError("no reference point lies inside the training coverage: choose one with --ref")
            ref = int(inside[0])
        else:
            ref = args.ref
        if args.label not in g.label_names:
            raise DDPayneError(f"no {args.label} gradient for this model; labels: {list(g.label_names)}")
        fig = plot_gradient_comparison(emu, g, args.label, ref=ref)
        fig.savefig(args.figure, dpi=110)
        print(args.figure)
    return 0


def _cmd_inspect(args) -> int:
    from ..report import make_report

    index = make_report(args.catalogue, args.out, targetids=args.targetid, flagged=args.flagged,
                        worst_chi2=args.worst_chi2, flags=args.flag, run_dir=args.run_dir, prepared=args.prepared,
                        model=args.model,
                        line_list=args.line_list, interactive=not args.static, max_stars=args.max_stars)
    print(index)
    return 0


def _cmd_demo(args) -> int:
    from .demo import run_demo

    return run_demo(args.out, quick=args.quick)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``ddpayne`` command."""
    p = argparse.ArgumentParser(prog="ddpayne", description="The Data-Driven Payne for survey spectra.")
    p.add_argument("--version", action="version", version=f"ddpayne {__version__}")
    p.add_argument("-v", "--verbose", action="count", default=0, help="more log output (-vv: debug)")
    sub = p.add_subparsers(dest="command", required=True)

    sp = sub.add_parser("plugins", help="list installed plugins and what they provide")
    sp.set_defaults(func=_cmd_plugins)

    sp = sub.add_parser("prepare", help="read, select stars, shift to rest frame, merge and normalise")
    sp.add_argument("files", nargs="+", help="survey files (DESI coadds, LAMOST spectra, ...)")
    sp.add_argument("--catalogue", help="survey catalogue with RVs and classes (DESI: mwsall)")
    sp.add_argument("--reader", help="reader name (default: identify each file by content)")
    sp.add_argument("--continuum-width", type=float, default=None, help="kernel width L in Å")
    sp.add_argument("--all", action="store_true", help="keep non-stars (flagged) too")
    sp.add_argument("-o", "--out", help="write the prepared batch to this FITS file")
    sp.set_defaults(func=_cmd_prepare)

    for name, text in (("run", "run the whole pipeline from a TOML configuration"),
                       ("train", "train the emulator (prepares first if needed)"),
                       ("fit", "fit labels: a configuration's fit stage, or FILES... --model emulator.pt"),
                       ("derive", "extinction, distances, orbits"),
                       ("catalogue", "write the catalogue from the stages' outputs")):
        sp = sub.add_parser(name, help=text)
        if name == "fit":
            _fit_arguments(sp)
            continue
        sp.add_argument("config", help="TOML configuration (see docs: Configuration)")
        sp.add_argument("--force", default="", help="comma-separated stages to redo")
        if name == "run":
            sp.add_argument("--stages", default="", help="comma-separated subset of stages")
        sp.set_defaults(func=_cmd_stages)

    sp = sub.add_parser("plot", help="the paper's figures from a catalogue")
    sp.add_argument("catalogue", help="catalogue FITS file written by ddpayne")
    sp.add_argument("-o", "--out", default="figures", help="output folder")
    sp.add_argument("--history", default=None, help="training history (model/history.ecsv)")
    sp.set_defaults(func=_cmd_plot)

    sp = sub.add_parser("gradients", help="a trained model's gradient spectra vs the physical ones (Fig. 4)")
    sp.add_argument("model", help="trained emulator file (e.g. ddpayne-output/model/emulator.pt)")
    sp.add_argument("--gradients", default=None, help="gradient-spectra file (default: the bundled DESI product)")
    sp.add_argument("--training-labels", default=None,
                    help="the model's training labels (default: training-labels.ecsv beside the model)")
    sp.add_argument("--table", default=None, help="write the per-label correlations to this ECSV file")
    sp.add_argument("--figure", default=None, help="draw the comparison for --label at --ref to this PNG")
    sp.add_argument("--label", default="MG_FE", help="label of the figure (default MG_FE)")
    sp.add_argument("--ref", type=int, default=None,
                    help="reference point of the figure (default: the first inside the training coverage)")
    sp.set_defaults(func=_cmd_gradients)

    sp = sub.add_parser("inspect", help="static HTML report on selected stars: spectrum, model, information maps")
    sp.add_argument("catalogue", help="catalogue FITS file written by ddpayne (<run>/catalogue.fits)")
    sp.add_argument("--targetid", nargs="+", default=[], metavar="ID", help="stars by TARGETID (all observations)")
    sp.add_argument("--flagged", action="store_true", help="stars with any FLAG bit set")
    sp.add_argument("--flag", action="append", default=[], metavar="NAME",
                    help="stars with this FLAG bit set (e.g. CHI2_OUTLIER; repeatable)")
    sp.add_argument("--worst-chi2", type=int, default=0, metavar="N", help="the N stars of largest QFLAG_CHI2")
    sp.add_argument("-o", "--out", default="report", help="report folder (default: report)")
    sp.add_argument("--max-stars", type=int, default=100, help="pages written at most (default 100)")
    sp.add_argument("--run-dir", default=None, help="run folder, if not the catalogue's folder")
    sp.add_argument("--prepared", default=None, help="prepared-spectra folder (default: <run>/prepared)")
    sp.add_argument("--model", default=None, help="emulator file (default: the run's model/emulator.pt)")
    sp.add_argument("--line-list", default=None,
                    help="line-list plugin name or table file naming the lines (default: installed plugin)")
    sp.add_argument("--static", action="store_true", help="static PNG plots instead of zoomable Bokeh plots")
    sp.set_defaults(func=_cmd_inspect)

    add_commands(sub)   # ddpayne synth ..., ddpayne build ... (and the plugins' commands)

    sp = sub.add_parser("demo", help="run the pipeline on the bundled (mock) data")
    sp.add_argument("-o", "--out", default="demo-output", help="output folder (default: demo-output)")
    sp.add_argument("--quick", action="store_true", help="smallest settings (used by the tests)")
    sp.set_defaults(func=_cmd_demo)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``ddpayne`` console script."""
    args = build_parser().parse_args(argv)
    args.argv = list(sys.argv[1:] if argv is None else argv)   # as typed, for the products' provenance
    level = logging.WARNING - 10 * min(args.verbose + 1, 2)
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    from ..exceptions import DDPayneError

    try:
        return int(args.func(args) or 0)
    except DDPayneError as exc:
        log.error("%s", exc)
        return 2
    except KeyboardInterrupt:
        log.error("interrupted")
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
