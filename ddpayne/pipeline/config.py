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
    #: Gradient-spectra file for the regularizer; empty: the bundled DESI product.
    gradients: str = ""
    #: Reference points of the gradient file used per optimiser step (0: all). A random subset each step,
    #: scaled to the full penalty: the regularizer's cost stays fixed as the product fills in.
    refs_per_step: int = 0
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


def config_from_dict(d: dict[str, Any], base: str | os.PathLike = ".") -> Config:
    """Build a :class:`Config` from a dictionary (a parsed TOML document)."""
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
are relative to the configuration file. Every key is optional; unknown sections or keys are errors, so a
typo is reported instead of silently ignored. A complete example is ``examples/config.toml``.

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
