"""A saved model applied to new spectra: "these files, this model" in one call.

A model trained by ``ddpayne run`` stores how its training spectra were prepared (its
:class:`~ddpayne.prepare.recipe.PreparationRecipe`: survey reader, wavelength windows and the margin they are
normalised over, continuum width, bad-pixel settings, continuum masks) in its provenance. Here new spectra are
read, prepared with that recipe and cut to exactly the model's wavelength grid, fitted, and returned as a
catalogue::

    from ddpayne.pipeline.apply import fit_files
    cat = fit_files(["coadd-sun.fits"], "run/model/emulator.pt", catalogue="mwsall-sun.fits")

or, from the shell, ``ddpayne fit FILES... --model emulator.pt [--catalogue mwsall.fits] -o catalogue.fits``.
``ddpayne run`` with ``[training] model`` prepares its spectra the same way (:func:`recipe_for_run`).

Model files are loaded as tensors only (:func:`ddpayne.model.emulator.load_emulator`, never unpickled).
"""
from __future__ import annotations

import logging
import os
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
from astropy.table import Table, vstack

from .. import __version__, registry
from ..exceptions import DDPayneError, SpectrumFileError
from ..io.batch import SpectrumBatch
from ..prepare.recipe import PROVENANCE_KEY, PreparationRecipe
from ..prepare.spectra import PrepareSettings

log = logging.getLogger(__name__)

_REJECTED_COLUMNS = ("ID", "SOURCE_FILE", "FLAG", "FLAG_REASON")


def load_model(model):
    """An :class:`~ddpayne.model.emulator.Emulator`, or the one saved at the path ``model`` (not unpickled)."""
    from ..model.emulator import Emulator, load_emulator

    return model if isinstance(model, Emulator) else load_emulator(os.fspath(model))


def store_recipe(model_path: str | os.PathLike, recipe: PreparationRecipe) -> None:
    """Store ``recipe`` in a saved model file, rewritten in place.

    For a model written before models carried their preparation settings: afterwards new spectra are prepared
    with ``recipe`` for it, without a warning. Example, for a model trained with ``[prepare] wave_range =
    [[3850, 4450], [5150, 5400]]`` and the default continuum::

        store_recipe("emulator.pt", PreparationRecipe(windows=[(3850, 4450), (5150, 5400)], reader="desi"))
    """
    emu = load_model(model_path)
    if getattr(emu, "provenance", None) is None:
        emu.provenance = {}
    emu.provenance[PROVENANCE_KEY] = recipe.to_dict()
    emu.save(model_path)
    log.info("stored the preparation recipe in %s", model_path)


def record_training_recipe(emulator, recipe: PreparationRecipe, model_path: str | os.PathLike) -> None:
    """Put ``recipe`` in a freshly trained ``emulator``'s provenance and save it to ``model_path``."""
    if getattr(emulator, "provenance", None) is None:   # a third-party emulator without one
        emulator.provenance = {}
    emulator.provenance[PROVENANCE_KEY] = recipe.to_dict()
    emulator.save(model_path)


def recipe_for_run(prepare_config, reader, emulator=None) -> tuple[PreparationRecipe, np.ndarray | None]:
    """The preparation of a pipeline run and the model grid to cut to.

    With a loaded model (``[training] model``) its stored recipe wins over ``[prepare]`` (a differing
    ``wave_range`` or ``continuum_width`` is reported as unused), and the prepared spectra are cut to its grid;
    otherwise the recipe is ``[prepare]``'s and there is no model grid yet. A model that stores no recipe (an
    older file) is prepared with ``[prepare]`` when that gives exactly its pixels, else with the recipe
    inferred from its grid (:meth:`~ddpayne.prepare.recipe.PreparationRecipe.of_model`, with a warning).

    Parameters
    ----------
    prepare_config : ddpayne.pipeline.config.PrepareConfig
    reader : SpectrumReader or None
        The reader of the run's spectra.
    emulator : Emulator, optional
        The loaded model.

    Returns
    -------
    recipe : PreparationRecipe
    wavelength : ndarray or None
        The model's grid (None without a model).
    """
    own = PreparationRecipe.from_settings(prepare_config.windows(),
                                          PrepareSettings(continuum_width=prepare_config.continuum_width or None),
                                          reader)
    if emulator is None:
        return own, None
    wave = np.asarray(emulator.wavelength, float)
    if PROVENANCE_KEY not in (getattr(emulator, "provenance", None) or {}) and _same_pixels(own, reader, wave):
        log.info("the model stores no preparation settings; [prepare] gives exactly its pixels and is used")
        return own, wave
    recipe = PreparationRecipe.of_model(emulator, reader)
    if reader is not None:
        recipe.check_reader(reader)
    recipe.check_masks()
    if prepare_config.wave_range and own.windows != recipe.windows:
        log.warning("[prepare] wave_range = %s is not used: spectra are prepared as the model's were (windows %s)",
                    prepare_config.wave_range, [list(w) for w in recipe.windows] or "whole grid")
    if prepare_config.continuum_width and prepare_config.continuum_width != recipe.continuum_width:
        log.warning("[prepare] continuum_width = %s is not used: the model's is %s Å", prepare_config.continuum_width,
                    recipe.continuum_width)
    return recipe, wave


def _same_pixels(recipe: PreparationRecipe, reader, wave: np.ndarray) -> bool:
    """Whether ``recipe`` prepares spectra on exactly the pixels ``wave`` (with ``reader``'s grid)."""
    if reader is None or reader.default_grid() is None:
        return False
    try:
        grid, keep = recipe.grid_and_pixels(reader)
    except DDPayneError:   # e.g. windows that keep too few pixels: not the model's, which is used instead
        return False
    grid = np.asarray(reader.default_grid() if grid is None else grid[keep], float)
    return grid.shape == wave.shape and bool(np.allclose(grid, wave, rtol=1e-7, atol=0.0))


def prepare_for_model(files: Sequence, model, catalogue=None, reader: str | None = None,
                      chunk_size: int = 256) -> tuple[SpectrumBatch | None, Table]:
    """Read and prepare survey files as the model's training spectra were, on exactly the model's grid.

    Parameters
    ----------
    files : sequence of path-like
        Survey files of one survey (DESI coadds, LAMOST spectra, ...).
    model : Emulator or path-like
        The model (a saved model file is loaded without unpickling).
    catalogue : Table or path-like, optional
        The survey catalogue with RVs and classes (DESI: mwsall), read by the files' reader.
    reader : str, optional
        Reader name (default: each file identified by content).
    chunk_size : int
        Spectra prepared at a time.

    Returns
    -------
    batch : SpectrumBatch or None
        The prepared stars on the model's grid; None if none was prepared.
    rejected : Table
        One row per spectrum or file left out (``ID``, ``SOURCE_FILE``, ``FLAG``, ``FLAG_REASON``).

    Raises
    ------
    ddpayne.exceptions.IncompatibleModelError
        If the files are of another survey than the model's, or the model's grid is not part of their grid.
    """
    from ..fit.results import check_grid
    from ..io.spectra import readers_by_file
    from ..prepare.spectra import prepare_file, select_stars
    from .run import file_rejection

    emulator = load_model(model)
    readers = readers_by_file(list(files), reader)   # refuses files of several surveys
    rd = next((r for r in readers.values() if not isinstance(r, Exception)), None)
    recipe = PreparationRecipe.of_model(emulator, rd)
    batches, rejected = [], []
    grid = keep = settings = None
    if rd is not None:
        recipe.check_reader(rd)
        recipe.check_masks()
        grid, keep = recipe.grid_and_pixels(rd, emulator.wavelength)
        settings = recipe.prepare_settings()
        if catalogue is not None and not hasattr(catalogue, "colnames"):
            catalogue = rd.read_catalogue(catalogue)
    for path, file_reader in readers.items():
        try:
            if isinstance(file_reader, Exception):
                raise file_reader
            for b in prepare_file(path, reader=file_reader, catalogue=catalogue, grid=grid, settings=settings,
                                  chunk_size=chunk_size, fit_pixels=keep):
                stars, rej = select_stars(b)
                rejected.append(rej)
                if len(stars):
                    batches.append(stars.select_pixels(keep, note="the model's grid (its preparation recipe)"))
        except (SpectrumFileError, FileNotFoundError) as exc:
            log.error("%s: the whole file is left out (one REJECTED row)", exc)
            rejected.append(file_rejection(path, exc))
    rejected = [r for r in rejected if len(r)]
    rej = vstack(rejected) if rejected else Table(names=_REJECTED_COLUMNS, dtype=(str, str, np.int64, str))
    if not batches:
        return None, rej
    batch = SpectrumBatch.concatenate(batches)
    batch.provenance["preparation"] = recipe.to_dict()
    check_grid(emulator, batch)
    return batch, rej


def training_labels(path: Path, label_names) -> np.ndarray | None:
    """The training set's labels written beside a run's model (``model/training-labels.ecsv``), with which the
    fitter flags solutions outside the training coverage (``OUT_OF_COVERAGE``); None if absent."""
    if not path.is_file():
        log.info("no %s beside the model: the fit cannot flag solutions outside the training coverage", path.name)
        return None
    table = Table.read(path, format="ascii.ecsv")
    if not all(n in table.colnames for n in label_names):
        log.warning("%s lacks some of the model's labels %s: not used", path, list(label_names))
        return None
    return np.column_stack([np.asarray(table[n], float) for n in label_names])


def fit_files(files: Sequence, model, catalogue=None, output: str | os.PathLike | None = None,
              reader: str | None = None, fitter: str = "lm", fitter_options: Mapping | None = None,
              formats: Sequence[str] = ()) -> Table:
    """Fit survey files with a saved model: read, prepare as the model's training data, fit, catalogue.

    Parameters
    ----------
    files : sequence of path-like
        Survey files of one survey.
    model : Emulator or path-like
        The model, e.g. ``<run>/model/emulator.pt`` (loaded without unpickling).
    catalogue : Table or path-like, optional
        The survey catalogue with RVs and classes (DESI: mwsall).
    output : path-like, optional
        Write the catalogue here (FITS, with the rejected rows and the provenance; see
        :func:`~ddpayne.pipeline.catalogue.write_catalogue`).
    reader : str, optional
        Reader name (default: identify each file by content).
    fitter : str
        Fitter plugin name.
    fitter_options : mapping, optional
        Passed to the fitter plugin. Default ``training_labels``: those written beside a run's model file
        (``training-labels.ecsv``), so that solutions outside the training coverage are flagged as in the run.
    formats : sequence of str
        Extra copies of ``output``: ``parquet``, ``ecsv``.

    Returns
    -------
    astropy.table.Table
        One row per prepared star spectrum: the survey metadata, the labels with their units, formal errors
        ``<LABEL>_ERR`` and, when the model records its systematic errors, ``<LABEL>_ERR_TOT``; χ², flags.
        ``meta['LABELS']`` lists the fitted labels; ``meta['REJECTED']`` counts the rows left out;
        ``meta['NPIXGRID']``, ``meta['WAVEMIN']``, ``meta['WAVEMAX']`` describe the grid the spectra were
        prepared on (the model's).

    Raises
    ------
    ddpayne.exceptions.DDPayneError
        If no spectrum could be prepared (the message gives the reasons), or the files do not suit the model.
    """
    from ..fit.calibration import total_error_columns
    from .catalogue import add_stage_reasons, build_catalogue, write_catalogue

    emulator = load_model(model)
    batch, rejected = prepare_for_model(files, emulator, catalogue=catalogue, reader=reader)
    options = dict(fitter_options or {})
    if "training_labels" not in options and not hasattr(model, "wavelength"):
        train = training_labels(Path(model).with_name("training-labels.ecsv"), emulator.label_names)
        if train is not None:
            options["training_labels"] = train
    if batch is None:
        reasons = "; ".join(f"{r['ID']}: {r['FLAG_REASON']}" for r in rejected[:5])
        raise DDPayneError(f"no star spectrum was prepared from {len(files)} file(s): {reasons}")
    t0 = time.time()
    result = registry.create("fitter", fitter, **options).fit(emulator, batch)
    log.info("fitted %d spectra in %.1f s", len(batch), time.time() - t0)
    cat = build_catalogue(batch.meta, result)
    sys = (getattr(emulator, "provenance", None) or {}).get("systematic_errors")
    if sys:
        extra = total_error_columns(cat, Table({"LABEL": list(sys), "SYS": [float(v) for v in sys.values()]}))
        for name in extra.colnames:
            cat[name] = extra[name]
    add_stage_reasons(cat)
    cat.meta["REJECTED"] = len(rejected)
    cat.meta["NPIXGRID"] = int(batch.wavelength.size)   # the model's grid, which the spectra were cut to
    cat.meta["WAVEMIN"], cat.meta["WAVEMAX"] = float(batch.wavelength[0]), float(batch.wavelength[-1])
    if output is not None:
        prov = getattr(emulator, "provenance", None) or {}
        provenance = {
            "ddpayne_version": __version__,
            "plugins": {i.name: i.version for i in registry.plugins()},
            "model": os.fspath(model) if not hasattr(model, "wavelength") else repr(model),
            "model_sha256": prov.get("sha256", ""),
            "preparation": batch.provenance.get("preparation"),
            "fitter": fitter,
            "files": [os.fspath(f) for f in files],
            "date": time.strftime("%Y-%m-%dT%H:%M:%S"),
        }
        write_catalogue(cat, Path(output), provenance=provenance, rejected=rejected, formats=list(formats))
    return cat


__all__ = [
    "fit_files",
    "load_model",
    "prepare_for_model",
    "recipe_for_run",
    "record_training_recipe",
    "store_recipe",
]
