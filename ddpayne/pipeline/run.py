"""``ddpayne run CONFIG``: from survey files to a catalogue and figures, stage by stage.

Stages and what each leaves in the output folder (every stage is resumable: a stage whose output exists
and whose inputs and settings are unchanged is skipped; delete its output, or pass ``force``, to redo):

=========== ============================================ ==========================================
stage       does                                          writes
=========== ============================================ ==========================================
prepare     read, keep stars, rest frame, merge, normalise ``prepared/<file>.fits`` (+ rejected rows)
train       cross-match with reference labels, train       ``model/emulator.pt``, ``model/history.ecsv``
fit         labels, errors, χ², flags, Cramér–Rao bounds   ``fit/<file>.fits``
derive      extinction, distances, orbits, GES             ``derived.fits``
catalogue   join the stages, units, provenance             ``catalogue.fits``
plot        the paper's figures                            ``figures/*.png``
=========== ============================================ ==========================================
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
import time
from collections.abc import Iterable
from pathlib import Path

import numpy as np
from astropy.io import fits
from astropy.table import Table, hstack, vstack

from .. import __version__, registry
from ..exceptions import DDPayneError, SpectrumFileError
from ..flags import Flag
from ..io.batch import SpectrumBatch
from .config import Config, ConfigError, check_output_dir, check_paths, load_config, write_config

log = logging.getLogger(__name__)

STAGES = ("prepare", "train", "fit", "derive", "catalogue", "plot")


class Pipeline:
    """The DD-Payne pipeline driven by a :class:`~ddpayne.pipeline.config.Config`.

    Parameters
    ----------
    config : Config or path-like
        The configuration (or a TOML file).
    force : iterable of str
        Stages to redo even if their outputs are up to date.
    """

    def __init__(self, config: Config | str | os.PathLike, force: Iterable[str] = ()):
        self.cfg = config if isinstance(config, Config) else load_config(config)
        self.out = self.cfg.output_dir
        self.force = set(force)
        unknown = self.force - set(STAGES)
        if unknown:
            raise DDPayneError(f"unknown stage(s) {sorted(unknown)}; stages are {list(STAGES)}")
        check_output_dir(self.out)
        self._emulator = None
        self._reader = None
        self._readers: dict[Path, object] | None = None
        self._catalogue: Table | None = None
        self._prep = None

    # ------------------------------------------------------------------------------ validation
    def check(self, stages: Iterable[str] = STAGES) -> None:
        """Validate the configuration and the inputs before any stage does work (:meth:`run` calls it).

        Paths (:func:`~ddpayne.pipeline.config.check_paths`); a model to load must load (it is kept); stages
        that need a model have one to load, one trained earlier in the output folder, or reference labels to
        train on; a reference-label file must have a column to match the spectra by, and is reported when a
        loaded model makes it unused; every spectrum file is identified (:meth:`readers`), which refuses a run
        that mixes surveys.

        Parameters
        ----------
        stages : iterable of str
            The stages about to run.

        Raises
        ------
        DDPayneError
            Naming the setting or file and what to do.
        """
        check_paths(self.cfg)
        tc, data = self.cfg.training, self.cfg.data
        if tc.model:
            if data.labels:
                log.warning("[data] labels = %r is not used: [training] model = %r is loaded instead of "
                            "training; remove one of the two settings", data.labels, tc.model)
            self._emulator = load_emulator(self.cfg.path(tc.model), tc.emulator)
        elif data.labels:
            self._check_label_columns(self.cfg.path(data.labels))
        elif set(stages) - {"prepare"} and not (self.out / "model" / "emulator.pt").exists():
            raise ConfigError("no model to fit with: give reference labels to train on ([data] labels) or a "
                              "trained model ([training] model)")
        self.readers()
        if self._emulator is not None:
            self._check_model_grid()
        self._catalogue_table()   # an unreadable survey catalogue stops the run here, not in prepare

    @staticmethod
    def _check_label_columns(path: Path) -> None:
        """The reference-label file must be readable and hold an identifier to match spectra with."""
        from ..model.trainingset import RA_DEC_COLUMNS, SOURCE_ID_COLUMNS

        try:
            names = Table.read(path).colnames
        except Exception as exc:  # noqa: BLE001 -- astropy raises many types for an unreadable table
            raise ConfigError(f"[data] labels = {path}: not a readable table ({type(exc).__name__}: {exc})") \
                from None
        ids = ("TARGETID", *SOURCE_ID_COLUMNS)
        if not any(c in names for c in ids) and not any(set(p) <= set(names) for p in RA_DEC_COLUMNS):
            raise ConfigError(f"[data] labels = {path}: no column to match the spectra by: looked for an "
                              f"identifier ({', '.join(ids)}) or a sky position "
                              f"({', '.join('/'.join(p) for p in RA_DEC_COLUMNS)}); the file has columns "
                              f"{names}: add the stars' TARGETID (or Gaia SOURCE_ID, or RA/DEC)")

    def readers(self) -> dict[Path, object]:
        """The reader of every spectrum file, each identified on its own (or the exception that says why
        none reads it: such a file becomes a rejected row of the prepare stage).

        Raises
        ------
        DDPayneError
            If the files belong to more than one survey: one model fits one survey's wavelength grid, so the
            message lists the surveys and says to split the run.
        """
        if self._readers is not None:
            return self._readers
        from ..io.spectra import readers_by_file

        try:
            out = readers_by_file(self.cfg.spectrum_files(), self.cfg.data.reader or None)
        except DDPayneError as exc:
            raise DDPayneError(f"[data] spectra: {exc}") from None
        self._readers = out
        self._reader = next((rd for rd in out.values() if not isinstance(rd, Exception)), None)
        return out

    # ----------------------------------------------------------------------------- bookkeeping
    def _stamp_path(self, output: Path) -> Path:
        return output.with_name(output.name + ".done.json")

    def _up_to_date(self, stage: str, output: Path, digest: str) -> bool:
        stamp = self._stamp_path(output)
        if stage in self.force or not output.exists() or not stamp.exists():
            return False
        try:
            return json.loads(stamp.read_text()).get("digest") == digest
        except (OSError, ValueError):
            return False

    @staticmethod
    def _upstream(*paths: Path) -> str:
        """Identity of a stage's inputs made by earlier stages (name and modification time), for its digest:
        a rerun upstream stage makes the later ones rerun."""
        ident = "|".join(f"{Path(p).name}:{Path(p).stat().st_mtime_ns}" for p in paths if Path(p).exists())
        # hashed: the digest also names the checkpoint folder, which must stay a short path component
        # however many files a survey has
        return hashlib.sha256(ident.encode()).hexdigest()[:16]

    def _mark_done(self, output: Path, digest: str, **info) -> None:
        from ..io.atomic import atomic_path

        with atomic_path(self._stamp_path(output)) as tmp:
            Path(tmp).write_text(json.dumps({"digest": digest, "time": time.strftime("%Y-%m-%dT%H:%M:%S"),
                                             **info}, default=str))

    def _catalogue_table(self) -> Table | None:
        if not self.cfg.data.catalogue:
            return None
        self.readers()
        if self._reader is None:   # no file is readable: every one becomes a rejected row
            return None
        if self._catalogue is None:
            self._catalogue = self._reader.read_catalogue(self.cfg.path(self.cfg.data.catalogue))
        return self._catalogue

    def _recipe(self):
        """How this run prepares spectra, and the loaded model's grid to cut them to (None when training):
        a model given in ``[training] model`` brings its own preparation, else ``[prepare]`` is used
        (:func:`ddpayne.pipeline.apply.recipe_for_run`)."""
        if self._prep is None:
            from .apply import recipe_for_run

            self.readers()
            self._prep = recipe_for_run(self.cfg.prepare, self._reader,
                                        self.train() if self.cfg.training.model else None)
        return self._prep

    def _prepare_grid(self) -> tuple[np.ndarray | None, np.ndarray | None]:
        """The grid spectra are normalised on and the pixels of it that are kept (the windows, or exactly a
        loaded model's grid); (None, None) for the reader's whole default grid."""
        recipe, wave = self._recipe()
        return recipe.grid_and_pixels(self._reader, wave) if self._reader is not None else (None, None)

    def _check_model_grid(self) -> None:
        """A loaded model's grid must be part of the survey grid its spectra are prepared on."""
        from ..exceptions import IncompatibleModelError

        try:
            self._prepare_grid()
        except IncompatibleModelError as exc:
            raise ConfigError(f"[training] model = {self.cfg.training.model!r}: {exc}") from None

    # ---------------------------------------------------------------------------------- stages
    def prepare(self) -> list[Path]:
        """Prepare every survey file; return the prepared-batch files (one per input file)."""
        from ..prepare.spectra import prepare_file, select_stars

        readers = self.readers()
        files = list(readers)
        catalogue = self._catalogue_table()
        recipe = self._recipe()[0]
        settings = recipe.prepare_settings()
        grid, keep = self._prepare_grid()
        digest = self.cfg.digest("data", "prepare") + (recipe.digest() if self.cfg.training.model else "")
        outdir = self.out / "prepared"
        outdir.mkdir(exist_ok=True)
        done = []
        for path in _progress(files, "prepare"):
            target = outdir / (Path(path).name.split(".fits")[0] + ".fits")
            rejected_path = target.with_suffix(".rejected.ecsv")
            # a missing input is stamped as such: it becomes a rejected row, and is read once it appears
            stamp = digest + (str(Path(path).stat().st_mtime) if Path(path).exists() else "missing")
            if self._up_to_date("prepare", target, stamp):
                done.append(target)
                continue
            stars, rejected = [], []
            try:
                if isinstance(readers[path], Exception):
                    raise readers[path]
                for b in prepare_file(path, reader=readers[path], catalogue=catalogue, settings=settings,
                                      grid=grid, chunk_size=self.cfg.prepare.chunk_size, fit_pixels=keep):
                    s, r = select_stars(b)
                    rejected.append(r)
                    if len(s):
                        stars.append(s)
            except (SpectrumFileError, FileNotFoundError) as exc:
                log.error("%s: the whole file is left out (one REJECTED row)", exc)
                rejected = [file_rejection(path, exc)]
                stars = []
            rej = vstack(rejected) if rejected else Table(names=("ID", "SOURCE_FILE", "FLAG", "FLAG_REASON"),
                                                          dtype=(str, str, np.int64, str))
            from ..io.atomic import atomic_path

            with atomic_path(rejected_path) as tmp:
                rej.write(tmp, format="ascii.ecsv")
            if stars:
                batch = SpectrumBatch.concatenate(stars)
                if keep is not None:
                    batch = batch.select_pixels(keep, note="the model's grid" if self.cfg.training.model else
                                               f"wave_range {self.cfg.prepare.wave_range}")
                batch.write(target, overwrite=True)
            elif target.exists():
                target.unlink()
            self._mark_done(target, stamp, source=str(path),
                            n_stars=sum(len(s) for s in stars), n_rejected=len(rej))
            if stars:
                done.append(target)
            log.info("%s: %d stars, %d rejected", Path(path).name, sum(len(s) for s in stars), len(rej))
        return done

    def prepared_files(self) -> list[Path]:
        """Prepared-batch files present (after :meth:`prepare`)."""
        return sorted(p for p in (self.out / "prepared").glob("*.fits"))

    def rejected(self) -> Table:
        """Every rejected row of the prepare stage."""
        parts = [Table.read(p, format="ascii.ecsv") for p in sorted((self.out / "prepared").glob("*.rejected.ecsv"))]
        parts = [p for p in parts if len(p)]
        for p in parts:
            for c in ("ID", "SOURCE_FILE", "FLAG_REASON"):
                p[c] = np.asarray(p[c]).astype(str)
        return vstack(parts) if parts else Table(names=("ID", "SOURCE_FILE", "FLAG", "FLAG_REASON"),
                                                 dtype=(str, str, np.int64, str))

    def train(self):
        """Train the emulator on prepared stars with reference labels (or load ``training.model``)."""
        from ..model.training import TrainingSettings
        from ..model.trainingset import build_training_set

        tc = self.cfg.training
        if tc.model:
            if self._emulator is None:   # loaded by check() in a run
                self._emulator = load_emulator(self.cfg.path(tc.model), tc.emulator)
            return self._emulator
        model_path = self.out / "model" / "emulator.pt"
        digest = self.cfg.digest("data", "prepare", "training") + self._upstream(*self.prepared_files())
        if self._up_to_date("train", model_path, digest):
            self._emulator = load_emulator(model_path, tc.emulator)
            return self._emulator
        if not self.cfg.data.labels:
            raise DDPayneError("[data] labels is empty: give a reference-label catalogue to train on, "
                               "or a trained model in [training] model")
        labels = Table.read(self.cfg.path(self.cfg.data.labels))
        batch = SpectrumBatch.concatenate([SpectrumBatch.read(p) for p in self.prepared_files()])
        ts = build_training_set(batch, labels, tc.labels or None, min_snr=tc.min_snr)
        log.info("training set: %d spectra of %d stars with labels %s", len(ts), len(set(ts.star_ids)),
                 ", ".join(ts.label_names))
        (self.out / "model").mkdir(exist_ok=True)
        ts.report.write(self.out / "model" / "training-set-report.ecsv", format="ascii.ecsv", overwrite=True)
        regularizer = self._regularizer(ts)
        settings = TrainingSettings(epochs=tc.epochs, batch_size=tc.batch_size, seed=tc.seed, device=tc.device,
                                    learning_rate=tc.learning_rate, final_learning_rate=tc.final_learning_rate,
                                    validation_fraction=tc.validation_fraction,
                                    checkpoint_every=tc.checkpoint_every, num_threads=tc.threads or None,
                                    allow_underdetermined=tc.allow_underdetermined)
        emulator, history = ts.train(emulator=tc.emulator, regularizer=regularizer,
                                     emulator_options={"n_hidden": tc.n_hidden},
                                     settings=settings,
                                     # one checkpoint folder per settings digest: a killed run resumes, a
                                     # run with changed settings starts afresh
                                     checkpoint_dir=self.out / "model" / f"checkpoints-{digest}",
                                     output=model_path)
        history.write(self.out / "model" / "history.ecsv", format="ascii.ecsv", overwrite=True)
        from .apply import record_training_recipe

        record_training_recipe(emulator, self._recipe()[0], model_path)   # how its spectra were prepared
        # the fit stage flags solutions outside the training set's label coverage with these
        ts.label_table().write(self.out / "model" / "training-labels.ecsv", format="ascii.ecsv", overwrite=True)
        try:
            self._calibrate(ts, labels, emulator, model_path)
        except (DDPayneError, ValueError, RuntimeError) as err:   # the trained model is kept either way
            log.warning("systematic errors could not be measured on the validation stars (%s): the catalogue "
                        "will have formal errors only", err)
        try:
            self._gradient_fidelity(ts, emulator)
        except Exception as err:   # noqa: BLE001 -- a diagnostic: whatever fails, the trained model is kept
            log.warning("model-vs-physics gradient correlation not measured (%s: %s)", type(err).__name__, err)
        self._mark_done(model_path, digest, n_train=len(ts))
        self._emulator = emulator
        return emulator

    def _regularizer(self, ts):
        """The configured regularizer, built by its plugin from ``[training.regularizer_options]``.

        The table is passed unchanged; the plugin validates it and may ask for the run's gradient spectra
        matched to the training grid and labels (``model/gradients.fits``, written only then).
        """
        from ..model.regularizer import RegularizerContext
        from .config import ConfigError

        tc = self.cfg.training
        context = RegularizerContext(base_dir=Path(self.cfg.base), gradients=lambda: self._matched_gradients(
            ts.batch.wavelength, ts.label_names))
        try:
            return registry.get("regularizer", tc.regularizer).from_options(tc.regularizer_options, context)
        except (TypeError, ValueError) as exc:
            raise ConfigError(f"[training.regularizer_options] of {tc.regularizer!r}: {exc}") from exc

    def _calibrate(self, ts, catalogue: Table, emulator, model_path: Path) -> Table | None:
        """Systematic errors of the new model from its validation stars (:mod:`ddpayne.fit.calibration`).

        The trainer's held-out stars (same split: ``validation_fraction``, ``seed``, by star) are fitted
        with the configured fitter and compared with their reference labels. The table is written to
        ``model/systematics.ecsv`` and stored in the model's provenance (``systematic_errors``), so that a
        saved model carries its error floor to every later fit; the model file is rewritten.
        """
        from ..fit.calibration import systematic_errors
        from ..model.training import split_by_star

        tc = self.cfg.training
        _, val = split_by_star(ts.star_ids, tc.validation_fraction, tc.seed)
        if len(val) == 0:
            log.info("no validation stars (validation_fraction = 0): no systematic errors for this model")
            return None
        names = list(emulator.label_names)
        vb = ts.batch[val]
        fitter = registry.create("fitter", self.cfg.fit.fitter)
        res = fitter.fit(emulator, vb)
        ref = Table()
        ref["ID"] = np.asarray(vb.ids).astype(str)
        sel = np.flatnonzero(np.asarray(ts.report["SELECTED"], bool))[val]
        cat_rows = np.asarray(ts.report["CAT_INDEX"])[sel]
        for j, n in enumerate(names):
            ref[n] = ts.labels[val, j]
            if f"{n}_ERR" in catalogue.colnames:
                ref[f"{n}_ERR"] = np.asarray(catalogue[f"{n}_ERR"], float)[cat_rows]
        res["ID"] = np.asarray(res["ID"]).astype(str)
        _, first = np.unique(ref["ID"], return_index=True)   # one reference row per star
        table = systematic_errors(res, ref[first], names)
        table.write(self.out / "model" / "systematics.ecsv", format="ascii.ecsv", overwrite=True)
        if getattr(emulator, "provenance", None) is None:   # a third-party emulator without one
            emulator.provenance = {}
        emulator.provenance["systematic_errors"] = {str(r["LABEL"]): float(r["SYS"]) for r in table}
        emulator.provenance["systematics_n_validation"] = int(len(val))
        emulator.save(model_path)
        log.info("systematic errors from %d validation spectra: %s", len(val),
                 ", ".join(f"{r['LABEL']} {r['SYS']:.3g}" for r in table))
        return table

    def _gradient_fidelity(self, ts, emulator) -> Table:
        """Per-label correlation of the model's gradient spectra with the physical ones (paper Fig. 4).

        Measured at the reference points of the gradient product inside the training coverage
        (:func:`ddpayne.model.diagnostics.gradient_correlation`) and written to
        ``model/gradient-fidelity.ecsv``; also for a model trained without the regularizer, which shows
        what the regularizer would change. A model with labels that the product lacks is not measured
        (the comparison needs every label at the reference points): :class:`DDPayneError` names them.
        """
        from ..model.diagnostics import gradient_correlation
        from ..physics.gradients import GradientSpectra

        # raises DDPayneError, naming them, when the product lacks some of the model's labels
        path = self._matched_gradients(ts.batch.wavelength, list(ts.label_names))
        grads = GradientSpectra.read(path)
        rho = gradient_correlation(emulator, grads, train_labels=ts.labels)
        rho.meta["GRADIENTS"] = str(path.name)
        rho.meta["N_REF_FILE"] = int(grads.n_ref)
        rho.write(self.out / "model" / "gradient-fidelity.ecsv", format="ascii.ecsv", overwrite=True)
        log.info("model vs physical gradient spectra, correlation per label (%d reference points inside "
                 "the training coverage): %s", int(rho["N_REF"].max()) if len(rho) else 0,
                 ", ".join(f"{r['LABEL']} {r['RHO']:.2f}" for r in rho))
        return rho

    def _gradients_source(self) -> Path:
        """The configured gradient-spectra file, or the bundled DESI product."""
        from ..physics.build_gradients import DEFAULT_PRODUCT

        tc = self.cfg.training
        return self.cfg.path(tc.gradients) if tc.gradients else DEFAULT_PRODUCT

    def _matched_gradients(self, grid: np.ndarray, label_names) -> Path:
        """The gradient-spectra file restricted to the training grid and labels (``model/gradients.fits``).

        A run on part of the survey grid (``[prepare] wave_range``) or on fewer labels regularizes with the
        matching pixels and labels of the full product.
        """
        from ..physics.gradients import GradientSpectra

        src = self._gradients_source()
        if not src.exists():
            raise DDPayneError(f"gradient-spectra file {src} not found: set [training] gradients, or "
                               "regularizer = \"none\"")
        g = GradientSpectra.read(src)
        missing = [n for n in label_names if n not in g.label_names]
        if missing:
            raise DDPayneError(f"{src} has no gradient spectra for {missing}: train without them or use "
                               "another gradient file")
        try:
            matched = g.matched_to(grid, list(label_names), what="pipeline training grid")
        except ValueError:
            raise DDPayneError(f"{src} is on another wavelength grid than the prepared spectra") from None
        path = self.out / "model" / "gradients.fits"
        matched.write(path)
        return path

    @property
    def emulator(self):
        if self._emulator is None:
            self.train()
        return self._emulator

    def fit(self) -> Path:
        """Fit every prepared file (one task per file, resumable; see :mod:`ddpayne.pipeline.executors`)."""
        from .executors import run_fit

        fc = self.cfg.fit
        target = self.out / "fit.fits"
        model = self.cfg.path(self.cfg.training.model) if self.cfg.training.model else \
            self.out / "model" / "emulator.pt"
        if not self.cfg.training.model:
            self.emulator  # noqa: B018 - trains (or confirms) the model first: its identity enters the digest
        digest = self.cfg.digest("data", "prepare", "training", "fit") + self._upstream(model)
        if self._up_to_date("fit", target, digest):
            return target
        # per-file parts of an interrupted fit are reused only if made with these settings and this model
        parts = target.with_name(target.name + ".parts")
        pstamp = parts / "DIGEST"
        if parts.exists() and (not pstamp.exists() or pstamp.read_text() != digest):
            import shutil
            log.info("fit: settings or model changed since the parts in %s were written: refitting", parts)
            shutil.rmtree(parts)
        parts.mkdir(parents=True, exist_ok=True)
        pstamp.write_text(digest)
        emulator = model if fc.executor != "serial" and model.exists() else self.emulator
        options = {}
        train_labels = self.out / "model" / "training-labels.ecsv"
        if train_labels.exists() and not self.cfg.training.model:
            t = Table.read(train_labels, format="ascii.ecsv")
            names = getattr(self.emulator, "label_names", ())
            if all(n in t.colnames for n in names):
                options["training_labels"] = np.column_stack([np.asarray(t[n], float) for n in names])
        else:
            log.info("no training labels: the fit cannot flag solutions outside the training coverage")
        summary = run_fit(self.prepared_files(), target, emulator, fitter=fc.fitter, backend=fc.executor,
                          fitter_options=options,
                          n_workers=fc.n_workers, threads_per_worker=fc.threads or None,
                          scheduler=fc.scheduler or None, device=fc.device,
                          keep_meta=("TARGETID",))
        if summary.failed:
            raise DDPayneError(f"fit: {len(summary.failed)} file(s) failed: {summary.failed}")
        log.info("fit %d spectra (%d new) at %.1f spectra/s", summary.n_rows, summary.n_rows_new,
                 summary.spectra_per_second)
        self._mark_done(target, digest, n=summary.n_rows)
        return target

    def derive(self) -> Path | None:
        """Extinction, distances and orbits for every fitted star."""
        if not self.cfg.derive.enabled:
            return None
        from ..galaxy import derive

        stars = self._stars_table()
        target = self.out / "derived.fits"
        digest = self.cfg.digest() + self._upstream(self.out / "fit.fits")
        if self._up_to_date("derive", target, digest):
            return target
        # the survey's own low-extinction, high-|b| stars are the star-pair and distance controls
        out = derive(stars, control=stars, distance=self.cfg.derive.distance, orbit=self.cfg.derive.orbit,
                     orbit_options={"potential": self.cfg.derive.potential})
        out["ID"] = stars["ID"]
        from ..io.atomic import atomic_path
        from .catalogue import table_hdu

        with atomic_path(target) as tmp:
            fits.HDUList([fits.PrimaryHDU(), table_hdu(out, "DERIVED")]).writeto(tmp)
        self._mark_done(target, digest, n=len(out))
        return target

    def _stars_table(self) -> Table:
        """Prepared metadata + fitted labels (+ photometry from ``[data] photometry``), one row per star."""
        from ..fit.results import read_result_table
        from .catalogue import build_catalogue

        files = self.prepared_files()
        metas = [SpectrumBatch.read(p).meta for p in files]
        meta = vstack(metas, metadata_conflicts="silent")
        fit = read_result_table(self.out / "fit.fits")
        fit["ID"] = np.asarray(fit["ID"]).astype(str)
        # the fit table holds the same spectra; put its rows in the order of the prepared metadata, file by
        # file (IDs repeat across files when a target was observed more than once, e.g. in two surveys)
        src = None
        if "SOURCE_FILE" in fit.colnames:  # by file name: the run folder may have moved since the fit
            src = np.array([os.path.basename(x) for x in np.asarray(fit["SOURCE_FILE"]).astype(str)])
        order = []
        for p, m in zip(files, metas):
            rows = np.flatnonzero(src == Path(p).name) if src is not None else np.array([], int)
            ids = np.asarray(m["ID"]).astype(str)
            if src is None or len(rows) != len(m) or not np.array_equal(np.asarray(fit["ID"])[rows], ids):
                raise DDPayneError(f"the fit results do not cover the prepared spectra of {p}: rerun the fit "
                                   "stage (ddpayne fit --force)")
            order.append(rows)
        order = np.concatenate(order) if order else np.array([], int)
        if len(fit) != len(meta):
            raise DDPayneError("the fit results hold other spectra than the prepared ones: rerun the fit stage")
        fit = fit[order]
        fit.remove_columns([c for c in ("SOURCE_FILE", "TARGETID", "SNR") if c in fit.colnames])
        stars = build_catalogue(meta, fit)
        if self.cfg.data.photometry:
            from astropy.table import join

            phot = Table.read(self.cfg.path(self.cfg.data.photometry))
            keep = [c for c in phot.colnames if c == "TARGETID" or c not in stars.colnames]
            order = np.arange(len(stars))
            stars["_ORDER"] = order
            stars = join(stars, phot[keep], keys="TARGETID", join_type="left")
            stars.sort("_ORDER")
            stars.remove_column("_ORDER")
        return stars

    def catalogue(self) -> Path:
        """Write the final catalogue."""
        from .catalogue import add_stage_reasons, build_catalogue, read_catalogue, write_catalogue

        stars = self._stars_table()
        galaxy = None
        derived = self.out / "derived.fits"
        if self.cfg.derive.enabled and derived.exists():
            galaxy = read_catalogue(derived, hdu="DERIVED")
            galaxy["ID"] = np.asarray(galaxy["ID"]).astype(str)
        extra = [t for t in (self._crb_columns(stars), self._total_error_columns(stars),
                             self._own_fraction_columns(stars)) if t is not None]
        cat = build_catalogue(stars, hstack(extra) if extra else None, galaxy)
        add_stage_reasons(cat)
        provenance = {
            "ddpayne_version": __version__,
            "plugins": {i.name: i.version for i in registry.plugins()},
            "model_sha256": getattr(self.emulator, "provenance", {}).get("sha256", ""),
            "config": self.cfg.to_dict(),
            "date": time.strftime("%Y-%m-%dT%H:%M:%S"),
        }
        path = self.out / self.cfg.output.catalogue
        write_catalogue(cat, path, provenance=provenance, rejected=self.rejected(),
                        formats=self.cfg.output.formats)
        return path

    def _total_error_columns(self, stars: Table) -> Table | None:
        """``<LABEL>_ERR_TOT``: formal ⊕ the model's systematic error (from its provenance; see
        :meth:`_calibrate`). None for a model without systematic errors (e.g. trained elsewhere)."""
        from ..fit.calibration import total_error_columns

        sys = getattr(self.emulator, "provenance", {}).get("systematic_errors")
        if not sys:
            log.info("the model records no systematic errors: the catalogue has formal errors only")
            return None
        table = Table({"LABEL": list(sys), "SYS": [float(v) for v in sys.values()]})
        return total_error_columns(stars, table)

    def _own_fraction_columns(self, stars: Table) -> Table | None:
        """``<LABEL>_OWN_FRAC`` (``[output] own_fraction``): each abundance's share of information from lines of
        its own element (:func:`ddpayne.fit.information.catalogue_own_fractions`)."""
        if not self.cfg.output.own_fraction:
            return None
        from ..fit.information import catalogue_own_fractions

        return catalogue_own_fractions(self.emulator, stars, self.prepared_files())

    def _crb_columns(self, stars: Table) -> Table | None:
        """Physical Cramér–Rao bounds ``<LABEL>_CRB`` (and ``CRB_REF``) of every spectrum.

        Each spectrum's own inverse variance with the gradient spectra of the reference point nearest to its
        fitted labels (:func:`ddpayne.fit.cramer_rao.crb_per_spectrum`), for the labels the model fits.
        None (and a log line) when no gradient-spectra file matches the prepared grid.
        """
        from ..fit.cramer_rao import crb_per_spectrum
        from ..physics.gradients import GradientSpectra

        names = list(getattr(self.emulator, "label_names", ()))
        files = self.prepared_files()
        if not names or not files:
            return None
        labels = np.column_stack([np.asarray(stars[n], float) for n in names])
        crb = np.full(labels.shape, np.nan)
        ref = np.full(len(stars), -1)
        gs = None
        start = 0
        for path in files:  # file by file (the rows of ``stars`` are in this order): memory flat in the survey
            batch = SpectrumBatch.read(path)
            if gs is None:
                try:
                    grid = batch.wavelength
                    made = self.out / "model" / "gradients.fits"  # written by the train stage: reuse if it matches
                    gs = GradientSpectra.read(made) if made.exists() else None
                    if gs is None or list(gs.label_names) != names or not np.array_equal(gs.wavelength, grid):
                        gs = GradientSpectra.read(self._matched_gradients(grid, names))
                except (DDPayneError, OSError, ValueError) as err:
                    log.info("no physical Cramér–Rao bounds in the catalogue: %s", err)
                    return None
            rows = slice(start, start + len(batch))
            if rows.stop > len(stars):
                raise DDPayneError("prepared spectra and catalogue rows differ in number: rerun the pipeline")
            crb[rows], ref[rows] = crb_per_spectrum(gs, labels[rows], batch.ivar, names)
            start = rows.stop
        if start != len(stars):
            raise DDPayneError("prepared spectra and catalogue rows differ in number: rerun the pipeline")
        out = Table()
        for k, n in enumerate(names):
            out[f"{n}_CRB"] = crb[:, k]
        out["CRB_REF"] = ref
        return out

    def plot(self, catalogue: Path | None = None) -> list[Path]:
        """The paper's figures from the catalogue."""
        from ..plots import make_figures
        from .catalogue import read_catalogue

        cat = read_catalogue(catalogue or self.out / self.cfg.output.catalogue)
        written = make_figures(cat, self.out / "figures", history=self.out / "model" / "history.ecsv")
        try:
            fig4 = self._plot_gradient_figure()
        except Exception as err:   # noqa: BLE001 -- a figure never fails the stage
            log.warning("Fig. 4 (model vs physical gradient spectrum) not drawn (%s: %s)", type(err).__name__, err)
            fig4 = None
        return written + ([fig4] if fig4 else [])

    def _plot_gradient_figure(self, label: str = "MG_FE") -> Path | None:
        """Paper Fig. 4: the model's ``label`` gradient spectrum against the physical one, at the first
        reference point inside the training coverage (the product matched to the run, ``model/gradients.fits``,
        and the training labels, ``model/training-labels.ecsv``)."""
        import matplotlib.pyplot as plt

        from ..model.diagnostics import inside_reference_points
        from ..physics.gradients import GradientSpectra
        from ..plots.training import plot_gradient_comparison

        gpath, lpath = self.out / "model" / "gradients.fits", self.out / "model" / "training-labels.ecsv"
        if not (gpath.exists() and lpath.exists() and (self.out / "model" / "emulator.pt").exists()):
            log.info("no trained model with matched gradient spectra: Fig. 4 skipped")
            return None
        emu = self.emulator
        grads = GradientSpectra.read(gpath)
        if label not in grads.label_names or label not in emu.label_names:
            shared = [n for n in emu.label_names if n in grads.label_names]
            if not shared:
                log.info("the gradient file shares no label with the model: Fig. 4 skipped")
                return None
            label = shared[0]
        tl = Table.read(lpath, format="ascii.ecsv")
        train = np.column_stack([np.asarray(tl[n], float) for n in emu.label_names])
        inside = inside_reference_points(emu, grads, train_labels=train)
        if not inside.size:
            log.info("no reference point inside the training coverage: Fig. 4 skipped")
            return None
        fig = plot_gradient_comparison(emu, grads, label, ref=int(inside[0]))
        path = self.out / "figures" / "fig04_gradient.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(path, dpi=110)
        plt.close(fig)
        return path

    def run(self, stages: Iterable[str] = STAGES) -> Path:
        """Run the given stages in order (default: all), holding the output folder's lock
        (:mod:`ddpayne.pipeline.lock`) and after :meth:`check`."""
        from .lock import RunLock

        stages = list(stages)
        with RunLock(self.out):
            self.check(stages)
            return self._run(stages)

    def _run(self, stages: list[str]) -> Path:
        write_config(self.cfg, self.out / "config.toml")
        t0 = time.time()
        if "prepare" in stages:
            self.prepare()
        if not self.prepared_files():
            raise DDPayneError(f"no star spectra were prepared from {len(self.cfg.spectrum_files())} file(s): "
                               f"see {self.out / 'prepared'}/*.rejected.ecsv")
        if "train" in stages:
            self.train()
        if "fit" in stages:
            self.fit()
        if "derive" in stages:
            self.derive()
        path = self.out / self.cfg.output.catalogue
        if "catalogue" in stages:
            path = self.catalogue()
        if "plot" in stages and self.cfg.output.figures:
            self.plot(path)
        log.info("pipeline finished in %.0f s; catalogue %s", time.time() - t0, path)
        return path


def file_rejection(path: str | os.PathLike, exc: Exception) -> Table:
    """The one REJECTED row of a file left out whole: its name as ``ID`` and ``SOURCE_FILE``, ``BAD_INPUT``
    and the reason (which names the path)."""
    name = os.path.basename(os.fspath(path))
    reason = str(exc) if os.fspath(path) in str(exc) else f"{path}: {exc}"
    return Table({"ID": [name], "SOURCE_FILE": [name], "FLAG": np.array([int(Flag.BAD_INPUT)], np.int64),
                  "FLAG_REASON": [f"whole file left out: {reason}"]})


def load_emulator(path: str | os.PathLike, name: str | None = None):
    """Load a saved emulator (the file names the plugin that wrote it)."""
    from ..model.emulator import load_emulator as _load

    return _load(path)


def _progress(items, desc: str):
    try:
        from tqdm.auto import tqdm

        return tqdm(list(items), desc=desc, unit="file", leave=False, disable=None)
    except ImportError:  # pragma: no cover
        return items
