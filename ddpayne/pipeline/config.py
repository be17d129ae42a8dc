"""The pipeline configuration: a TOML file, every setting documented with its default.

Example (``ddpayne run config.toml``)::

    [data]
    spectra = ["data/coadd-*.fits"]        # files or glob patterns, relative to the config file
    catalogue = "data/mwsall-pix-fuji.fits" # survey catalogue with RVs and classes (DESI: mwsall)
    labels = "data/reference-labels.fits"   # reference labels of training stars

    [training]
    emulator = "mlp"
    regularizer = "kurucz"
    epochs = 2000

    [fit]
    fitter = "lm"

    [output]
    dir = "ddpayne-output"

Unknown sections or keys are errors (a typo must not be silently ignored).
"""
from __future__ import annotations

import dataclasses
import glob
import hashlib
import json
import os
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

try:  # Python >= 3.11
    import tomllib
except ModuleNotFoundError:  # pragma: no cover
    import tomli as tomllib

from ..exceptions import DDPayneError


class ConfigError(DDPayneError):
    """The configuration file is invalid; the message names the section and key."""


class ConfigDeprecationWarning(FutureWarning):
    """A configuration key that still works but has moved; the message says where to."""


#: Deprecated keys: (section, key) -> (section, sub-table) they moved into; a value of 0 meant "unset".
_MOVED_KEYS = {("training", "refs_per_step"): ("training", "regularizer_options")}


@dataclass
class DataConfig:
    """``[data]``: the inputs."""

    #: Survey files or glob patterns (relative paths are relative to the config file).
    spectra: list[str] = field(default_factory=list)
    #: Survey catalogue with RVs and classifications (DESI: ``mwsall-pix-*.fits``).
    catalogue: str = ""
    #: Reader name; empty: identify every file by content.
    reader: str = ""
    #: Reference-label catalogue of training stars (``TARGETID`` or ``SOURCE_ID`` or RA/DEC + labels).
    labels: str = ""
    #: Extra per-star table (Gaia astrometry/photometry, 2MASS) joined by ``TARGETID`` for the galaxy stage.
    photometry: str = ""


@dataclass
class PrepareConfig:
    """``[prepare]``: reading and preparation."""

    #: Pseudo-continuum kernel width L (Å); 0 takes the reader's default (DESI 20, LAMOST 50).
    continuum_width: float = 0.0
    #: Spectra read per chunk.
    chunk_size: int = 256
    #: Keep only this rest-frame range of the survey grid, ``[min, max]`` in Å, or several windows
    #: ``[[min, max], ...]`` (empty: all of it). Spectra are normalised on the grid spanning the windows
    #: plus 100 Å on each side, then cut, so window edges get the same continuum as the full spectrum.
    wave_range: list = field(default_factory=list)

    def windows(self) -> list[tuple[float, float]]:
        """``wave_range`` as a list of (min, max) windows (empty: the whole grid)."""
        w = self.wave_range
        if not w:
            return []
        if isinstance(w[0], (int, float)):
            return [(float(w[0]), float(w[1]))]
        return [(float(a), float(b)) for a, b in w]


@dataclass
class TrainingConfig:
    """``[training]``: the emulator and its training."""

    #: Emulator plugin name.
    emulator: str = "mlp"
    #: Regularizer plugin name (``kurucz``: physical gradient spectra; ``none``).
    regularizer: str = "kurucz"
    #: The regularizer plugin's options: the sub-table ``[training.regularizer_options]``, passed unchanged to
    #: the plugin, which validates it (an unknown option is an error listing the known ones). ``kurucz``: the
    #: parameters of ``KuruczRegularizer`` (:doc:`plugins`), e.g. ``refs_per_step`` (reference points of the
    #: gradient file used per optimiser step, a random subset scaled to the full penalty; default all),
    #: ``weights``, ``outside``, ``gradients`` (a file already on the training grid). Relative paths are
    #: relative to the configuration file. The former ``[training] refs_per_step`` still works (deprecated,
    #: with a ``ConfigDeprecationWarning``) and is read as this table's ``refs_per_step``.
    regularizer_options: dict = field(default_factory=dict)
    #: Physical gradient-spectra file of the run (empty: the bundled DESI product), matched to the training
    #: grid and labels: the fit stage's Cramér–Rao bounds, the gradient-fidelity check, and the regularizer
    #: unless its table names another file.
    gradients: str = ""
    #: A trained model to load instead of training.
    model: str = ""
    #: Neurons per hidden layer of the per-pixel network (paper: 40).
    n_hidden: int = 40
    #: Train even when there are fewer training spectra than free parameters per pixel.
    allow_underdetermined: bool = False
    #: Labels to train and fit (default: all 15).
    labels: list[str] = field(default_factory=list)
    #: Training epochs (paper: 10,000).
    epochs: int = 2000
    #: Mini-batch size (paper: 512).
    batch_size: int = 512
    #: Learning rate at the first epoch (paper: 0.01).
    learning_rate: float = 0.01
    #: Learning rate at the last epoch, reached exponentially (paper: 0.0001).
    final_learning_rate: float = 0.0001
    #: Minimum S/N of training spectra (paper: 20).
    min_snr: float = 20.0
    #: Fraction of training stars held out for validation.
    validation_fraction: float = 0.1
    #: Random seed.
    seed: int = 42
    #: ``cpu`` or ``cuda``.
    device: str = "cpu"
    #: Checkpoint every this many epochs.
    checkpoint_every: int = 100
    #: CPU threads torch may use for training (0: torch's default, one per core). On a machine shared
    #: with other jobs, 1 avoids the stalls of oversubscribed threads.
    threads: int = 0


@dataclass
class FitConfig:
    """``[fit]``: fitting labels."""

    #: Fitter plugin name (``lm``: batched Levenberg–Marquardt; ``scipy``: reference).
    fitter: str = "lm"
    #: ``serial``, ``multiprocessing`` or ``dask``.
    executor: str = "serial"
    #: Workers for multiprocessing/dask.
    n_workers: int = 2
    #: Dask scheduler address; empty: a LocalCluster.
    scheduler: str = ""
    #: ``cpu`` or ``cuda``.
    device: str = "cpu"
    #: torch threads per fitting process (0: torch's default for ``serial``, 1 per worker otherwise).
    threads: int = 0


@dataclass
class DeriveConfig:
    """``[derive]``: extinction, distances, orbits."""

    #: Run this stage.
    enabled: bool = True
    #: Distance-estimator plugin name.
    distance: str = "spectrophotometric"
    #: Orbit-integrator plugin name.
    orbit: str = "galpy"
    #: galpy potential name.
    potential: str = "MWPotential2014"


@dataclass
class OutputConfig:
    """``[output]``: where results go."""

    #: Output folder (relative to the config file).
    dir: str = "ddpayne-output"
    #: Catalogue file name.
    catalogue: str = "catalogue.fits"
    #: Extra formats: ``parquet``, ``ecsv``.
    formats: list[str] = field(default_factory=list)
    #: Make the paper's figures.
    figures: bool = True
    #: Add ``<LABEL>_OWN_FRAC`` columns: the share of each abundance's information from lines of its own element
    #: (needs a line-list plugin; see docs/inspect.rst).
    own_fraction: bool = False


@dataclass
class Config:
    """The whole configuration."""

    data: DataConfig = field(default_factory=DataConfig)
    prepare: PrepareConfig = field(default_factory=PrepareConfig)
    training: TrainingConfig = field(default_factory=TrainingConfig)
    fit: FitConfig = field(default_factory=FitConfig)
    derive: DeriveConfig = field(default_factory=DeriveConfig)
    output: OutputConfig = field(default_factory=OutputConfig)
    #: Folder that relative paths are relative to.
    base: str = "."

    def path(self, p: str) -> Path:
        """Resolve a path from the configuration (relative to :attr:`base`)."""
        q = Path(os.path.expandvars(os.path.expanduser(p)))
        return q if q.is_absolute() else Path(self.base) / q

    def spectrum_files(self) -> list[Path]:
        """The survey files, globs expanded, sorted, without duplicates."""
        out: list[Path] = []
        for pattern in self.data.spectra:
            p = str(self.path(pattern))
            hits = sorted(glob.glob(p)) if any(ch in p for ch in "*?[") else [p]
            if not hits:
                raise ConfigError(f"[data] spectra: pattern {pattern!r} matches no file")
            out.extend(Path(h) for h in hits)
        return list(dict.fromkeys(out))

    @property
    def output_dir(self) -> Path:
        return self.path(self.output.dir)

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d.pop("base")
        return d

    def digest(self, *sections: str) -> str:
        """Checksum of some sections (all by default): a stage reruns when its inputs change."""
        d = self.to_dict()
        part = {s: {k: v for k, v in d[s].items() if (s, k) not in _NO_RESULT_KEYS} if isinstance(d[s], dict)
                else d[s] for s in (sections or d)}
        return hashlib.sha256(json.dumps(part, sort_keys=True).encode()).hexdigest()[:16]


def check_paths(cfg: Config) -> None:
    """Check the configuration's inputs and output folder before any stage does work.

    ``[data] spectra`` must list something; the catalogue, label, photometry, gradient and model files that
    the configuration names must exist; ``[output] dir`` must be a folder (it is created when missing) that
    can be written to. A spectrum file that is listed by name but missing is not an error here: it becomes
    a rejected row of the prepare stage, like any unreadable file.

    Raises
    ------
    ConfigError
        Naming the section, key and path, and what to do.
    """
    if not cfg.data.spectra:
        raise ConfigError("[data] spectra is empty: list the survey files (or glob patterns) to read, e.g. "
                          'spectra = ["data/coadd-*.fits"]')
    named = [("data", "catalogue", cfg.data.catalogue), ("data", "labels", cfg.data.labels),
             ("data", "photometry", cfg.data.photometry), ("training", "gradients", cfg.training.gradients),
             ("training", "model", cfg.training.model)]
    for sec, key, value in named:
        if value and not cfg.path(value).is_file():
            what = "is a folder, not a file" if cfg.path(value).is_dir() else "no such file"
            raise ConfigError(f"[{sec}] {key} = {value!r}: {cfg.path(value)}: {what}; fix the path (relative "
                              f"paths are relative to the configuration file's folder, {cfg.base})")
    check_output_dir(cfg.output_dir)


def check_output_dir(path: str | os.PathLike) -> None:
    """Create the output folder if needed and check that files can be written in it.

    Raises
    ------
    ConfigError
        If ``path`` is an existing file, lies under a file, or cannot be created or written to.
    """
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise ConfigError(f"[output] dir = {path} is an existing file, not a folder: give the path of a "
                          "folder (it is created if missing)")
    try:
        path.mkdir(parents=True, exist_ok=True)
    except (FileExistsError, NotADirectoryError) as exc:
        raise ConfigError(f"[output] dir = {path} cannot be created: {exc.filename or exc} is a file, not a "
                          "folder: give another output folder") from None
    except PermissionError as exc:
        raise ConfigError(f"[output] dir = {path} cannot be created: no permission ({exc.filename or exc}): "
                          "give a folder you can write to") from None
    probe = path / f".ddpayne-write-test-{os.getpid()}"
    try:
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as exc:
        why = f"{type(exc).__name__}: {exc.strerror or exc}"
        raise ConfigError(f"[output] dir = {path} is not writable ({why}): give a folder you can write to") \
            from None


#: Settings that change how fast a stage runs, not its result: a change does not rerun the stage.
_NO_RESULT_KEYS = {("training", "threads"), ("fit", "threads")}

_SECTIONS = {f.name: f.type for f in dataclasses.fields(Config) if f.name != "base"}


def _wave_range(val) -> tuple[bool, Any]:
    """Validate ``wave_range``: [] or [min, max] or a list of [min, max] windows (floats)."""
    def is_num(v):
        return isinstance(v, (int, float)) and not isinstance(v, bool)

    if not isinstance(val, list):
        return False, val
    if not val:
        return True, []
    if all(is_num(v) for v in val):
        return (len(val) == 2 and val[0] < val[1]), [float(v) for v in val]
    if all(isinstance(w, list) and len(w) == 2 and all(is_num(v) for v in w) and w[0] < w[1] for w in val):
        return True, [[float(a), float(b)] for a, b in val]
    return False, val


def _build(section: str, cls, values: dict[str, Any]):
    if not isinstance(values, dict):
        raise ConfigError(f"[{section}] must be a table, got {type(values).__name__}")
    known = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(values) - set(known))
    if unknown:
        raise ConfigError(f"[{section}] unknown key(s) {unknown}; known keys: {sorted(known)}")
    kwargs = {}
    for key, val in values.items():
        default = getattr(cls(), key)
        if isinstance(default, bool):
            ok = isinstance(val, bool)
        elif isinstance(default, (int, float)) and not isinstance(default, bool):
            ok = isinstance(val, (int, float)) and not isinstance(val, bool)
            val = type(default)(val) if ok else val
        elif isinstance(default, dict):
            ok = isinstance(val, dict)
        elif isinstance(default, list):
            if isinstance(val, str):
                val = [val]
            numeric = key == "wave_range"
            if numeric:
                ok, val = _wave_range(val)
            else:
                ok = isinstance(val, list) and all(isinstance(v, str) for v in val)
        else:
            ok = isinstance(val, str)
        if not ok:
            expected = ("[min, max] or [[min, max], ...] in Å, each min < max" if key == "wave_range"
                        else type(default).__name__)
            raise ConfigError(f"[{section}] {key} = {val!r}: expected {expected}")
        kwargs[key] = val
    return cls(**kwargs)


def _move_deprecated_keys(d: dict[str, Any]) -> dict[str, Any]:
    """A copy of ``d`` with the keys of :data:`_MOVED_KEYS` moved, each with a warning."""
    d = {k: (dict(v) if isinstance(v, dict) else v) for k, v in d.items()}
    for (sec, key), (new_sec, table) in _MOVED_KEYS.items():
        if not isinstance(d.get(sec), dict) or key not in d[sec]:
            continue
        value = d[sec].pop(key)
        warnings.warn(f"[{sec}] {key} is deprecated: write it as [{new_sec}.{table}] {key} (read as such "
                      "this time)", ConfigDeprecationWarning, stacklevel=3)
        target = d.setdefault(new_sec, {}).get(table, {})
        if not isinstance(target, dict):
            continue   # reported by the type check of the table
        if value != 0 and key not in target:
            d[new_sec][table] = {**target, key: value}
    return d


def config_from_dict(d: dict[str, Any], base: str | os.PathLike = ".") -> Config:
    """Build a :class:`Config` from a dictionary (a parsed TOML document).

    Deprecated keys (:data:`_MOVED_KEYS`) are moved to their new place with a
    :class:`ConfigDeprecationWarning`.
    """
    d = _move_deprecated_keys(d)
    unknown = sorted(set(d) - set(_SECTIONS))
    if unknown:
        raise ConfigError(f"unknown section(s) {unknown}; sections: {sorted(_SECTIONS)}")
    classes = {"data": DataConfig, "prepare": PrepareConfig, "training": TrainingConfig,
               "fit": FitConfig, "derive": DeriveConfig, "output": OutputConfig}
    parts = {name: _build(name, cls, d.get(name, {})) for name, cls in classes.items()}
    cfg = Config(**parts, base=str(base))
    if cfg.fit.executor not in ("serial", "multiprocessing", "dask"):
        raise ConfigError(f"[fit] executor = {cfg.fit.executor!r}: use serial, multiprocessing or dask")
    for sec in ("training", "fit"):
        if getattr(cfg, sec).threads < 0:
            raise ConfigError(f"[{sec}] threads = {getattr(cfg, sec).threads}: use 0 (torch's default) or a "
                              "positive number of threads")
    bad_fmt = [f for f in cfg.output.formats if f not in ("parquet", "ecsv")]
    if bad_fmt:
        raise ConfigError(f"[output] formats: unknown {bad_fmt}; use parquet and/or ecsv")
    if cfg.training.labels:
        from ..labels import validate_label_names

        try:
            validate_label_names(cfg.training.labels)
        except ValueError as exc:
            raise ConfigError(f"[training] labels: {exc}") from exc
    return cfg


def load_config(path: str | os.PathLike) -> Config:
    """Read a TOML configuration file.

    Raises
    ------
    ConfigError
        Naming the file and what is wrong (syntax, unknown section/key, wrong type).
    """
    path = Path(path)
    try:
        with open(path, "rb") as fh:
            d = tomllib.load(fh)
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such configuration file") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: invalid TOML: {exc}") from exc
    try:
        return config_from_dict(d, base=path.parent)
    except ConfigError as exc:
        raise ConfigError(f"{path}: {exc}") from exc


def write_config(cfg: Config, path: str | os.PathLike) -> None:
    """Write ``cfg`` as TOML (for provenance and for ``ddpayne run`` to reuse)."""
    import tomli_w

    with open(path, "wb") as fh:
        tomli_w.dump(cfg.to_dict(), fh)


_INTRO = """\
Configuration
=============

``ddpayne run CONFIG`` (and ``ddpayne train|fit|derive|catalogue CONFIG``) read a TOML file. Relative paths
are relative to the configuration file. Every key is optional except ``[data] spectra``; unknown sections or
keys are errors, so a typo is reported instead of silently ignored. A complete example is
``examples/config.toml``.

Before any stage does work, ``ddpayne run`` checks the configuration
(:func:`ddpayne.pipeline.config.check_paths`): the files it names exist, ``[output] dir`` is a folder it can
write to, a model to load loads, a reference-label file has a column to match spectra by (and is reported as
unused next to a loaded model), and every spectrum file is identified on its own: a file no reader recognises
becomes one rejected row, files of two surveys are refused with a message that says to split the run.

One run at a time per output folder: a run holds ``<dir>/ddpayne.lock`` (its PID, host, start time and
command; :mod:`ddpayne.pipeline.lock`), a second run on the folder stops with a message naming the holder,
and the lock of a run that no longer runs on this host is taken over with a warning.

Each stage is resumable: its output carries a stamp of the settings it was made with, and an unchanged stage
is skipped on the next run (``--force STAGE`` redoes it). Outputs go to ``[output] dir``: ``prepared/`` (one
prepared batch per input file, plus the rejected rows with reasons), ``model/`` (emulator, checkpoints,
training history, training-set report, systematic errors ``systematics.ecsv``, and ``gradient-fidelity.ecsv``:
the per-label correlation of the model's gradient spectra with the physical ones at the reference points
inside the training coverage, paper Fig. 4), ``fit.fits`` (and its resumable ``fit.fits.parts/``),
``derived.fits``, the catalogue and ``figures/`` (the paper's Figs. 3–11 that the columns allow).

This page is generated from the code (:func:`ddpayne.pipeline.config.reference_rst`); a test keeps them equal.
"""


def reference_rst() -> str:
    """The configuration reference (``docs/configuration.rst``), generated from the dataclasses."""
    import inspect
    import re

    lines = [_INTRO]
    for sec, cls in [("data", DataConfig), ("prepare", PrepareConfig), ("training", TrainingConfig),
                     ("fit", FitConfig), ("derive", DeriveConfig), ("output", OutputConfig)]:
        title = f"[{sec}]"
        what = cls.__doc__.split(":", 1)[1].strip()
        lines += [title, "-" * len(title), "", what[0].upper() + what[1:], "", ".. list-table::",
                  "   :header-rows: 1", "", "   * - key", "     - default", "     - meaning"]
        src = inspect.getsource(cls).splitlines()
        docs: dict[str, str] = {}
        pending: list[str] = []
        for line in src:  # '#:' comment lines (possibly several) document the field that follows
            m = re.match(r"\s+#: (.*)", line)
            if m:
                pending.append(m.group(1))
            elif pending:
                docs[line.strip().split(":")[0]] = " ".join(pending)
                pending = []
        inst = cls()
        for f in dataclasses.fields(cls):
            d = getattr(inst, f.name)
            shown = str(d).lower() if isinstance(d, bool) else repr(d).replace("'", '"')
            lines += [f"   * - ``{f.name}``", f"     - ``{shown}``", f"     - {docs.get(f.name, '')}"]
        lines.append("")
    return "\n".join(lines)
