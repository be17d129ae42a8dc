"""Bad inputs next to good ones: every case is answered by a message that names the file or row and what to
do, a flag bit where a spectrum is kept or left out, and a catalogue that still holds every good spectrum
(issue 21: "no silent wrong answers").

Each case builds its files in ``tmp_path`` from the bundled DESI-format Sun (``ddpayne/data/sun``): a good
coadd of five copies of the Sun (TARGETIDs 1000-1004, noise-perturbed), its MWS catalogue, and a small
untrained emulator on the run's grid, so that a whole ``ddpayne run`` (prepare, fit, catalogue) takes a couple
of seconds. The case then spoils one thing, runs ``ddpayne run`` and checks the outcome in :data:`CASES`.
"""
from __future__ import annotations

import gzip
import logging
import os
import socket
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import pytest
from astropy.io import fits
from astropy.table import Table

from ddpayne.flags import Flag
from ddpayne.pipeline.catalogue import read_catalogue
from ddpayne.pipeline.cli import main

SUN = Path(__file__).parent.parent / "ddpayne" / "data" / "sun"
N_GOOD = 5
GOOD_IDS = [str(1000 + k) for k in range(N_GOOD)]
#: The run keeps this rest-frame window (100 Å more on each side for the continuum): B and R arms.
WINDOW = (5300.0, 6100.0)
LABELS = ("TEFF", "LOGG", "FE_H")


# ------------------------------------------------------------------------------------------ file makers
def coadd(path: Path, first_id: int = 1000, n: int = N_GOOD, seed: int = 1, drop_arms=(), reverse_arm=None,
          mask_obs=None) -> Path:
    """A DESI coadd of ``n`` noisy copies of the Sun (TARGETIDs ``first_id`` ...), optionally without some
    arms, with one arm's arrays reversed, or with zero ivar at observed wavelengths ``mask_obs = (lo, hi)``
    for its first spectrum."""
    rng = np.random.default_rng(seed)
    hdus = []
    with fits.open(SUN / "coadd-sun-snr100.fits") as h:
        waves = {a: h[f"{a}_WAVELENGTH"].data for a in "BRZ"}
        for hdu in h:
            arm = hdu.name[0] if hdu.name[1:2] == "_" else None
            if arm is not None and arm in drop_arms:
                continue
            if hdu.name == "PRIMARY":
                hdus.append(hdu.copy())
            elif isinstance(hdu, fits.BinTableHDU):
                t = Table(np.repeat(Table(hdu.data).as_array(), n))
                t["TARGETID"] = first_id + np.arange(n)
                hdus.append(fits.BinTableHDU(t, name=hdu.name, header=hdu.header))
            elif hdu.name.endswith("WAVELENGTH"):
                d = hdu.data[::-1] if arm == reverse_arm else hdu.data
                hdus.append(fits.ImageHDU(d, name=hdu.name, header=hdu.header))
            else:
                d = np.repeat(hdu.data, n, axis=0)
                if hdu.name.endswith("FLUX"):
                    d = (d * (1 + 0.01 * rng.normal(size=d.shape))).astype(hdu.data.dtype)
                if hdu.name.endswith("IVAR") and mask_obs is not None:
                    d[0, (waves[arm] > mask_obs[0]) & (waves[arm] < mask_obs[1])] = 0
                if arm == reverse_arm and d.ndim == 2:
                    d = d[:, ::-1]
                hdus.append(fits.ImageHDU(d, name=hdu.name, header=hdu.header))
    fits.HDUList(hdus).writeto(path)
    return path


def mwsall(path: Path, ids, vrad=None, spectype=None, survey=None) -> Path:
    """An MWS catalogue with one Sun row per TARGETID in ``ids`` (repeats allowed), VRAD, RR_SPECTYPE and
    SURVEY/PROGRAM per row when given."""
    rv = Table.read(SUN / "mwsall-sun-snr100.fits", "RVTAB")
    t = Table(np.repeat(rv.as_array(), len(ids)))
    t["TARGETID"] = np.asarray(ids, dtype=np.int64)
    if vrad is not None:
        t["VRAD"] = np.asarray(vrad, float)
    if spectype is not None:
        t["RR_SPECTYPE"] = np.asarray(spectype, dtype="U6")
    if survey is not None:
        t["SURVEY"] = np.asarray(survey, dtype="U7")
        t["PROGRAM"] = np.full(len(ids), "bright")
    fits.HDUList([fits.PrimaryHDU(), fits.BinTableHDU(t, name="RVTAB")]).writeto(path)
    return path


def model(path: Path) -> Path:
    """An untrained MLP emulator on the run's grid: its labels are nonsense, its flags and rows are not."""
    from ddpayne.prepare.grid import desi_grid
    from ddpayne_mlp.emulator import MLPEmulator

    g = desi_grid()
    g = g[(g >= WINDOW[0]) & (g <= WINDOW[1])]
    MLPEmulator(LABELS, g, [4000, 1, -2.5], [7000, 5, 0.5], n_hidden=5).save(path)
    return path


@dataclass
class Run:
    """A run folder: inputs, configuration, and what ``ddpayne run`` answered."""

    root: Path
    spectra: list[str] = field(default_factory=lambda: ["coadd-good.fits"])
    data: dict = field(default_factory=lambda: {"catalogue": "mwsall.fits"})
    training: dict = field(default_factory=lambda: {"model": "model.pt"})
    output: str = "out"
    prepare_range: tuple = WINDOW
    rc: int | None = None
    log: str = ""

    def write_config(self) -> Path:
        def toml(d):
            return "\n".join(f"{k} = {v!r}".replace("'", '"') for k, v in d.items())

        text = "[data]\n" + (f"spectra = {self.spectra!r}\n".replace("'", '"') if self.spectra is not None
                             else "") + toml(self.data)
        text += f"\n[prepare]\nwave_range = {list(self.prepare_range)}\n[training]\n{toml(self.training)}\n"
        text += f'[derive]\nenabled = false\n[output]\ndir = "{self.output}"\nfigures = false\n'
        path = self.root / "run.toml"
        path.write_text(text)
        return path

    @property
    def out(self) -> Path:
        return self.root / self.output

    def catalogue(self) -> Table:
        cat = read_catalogue(self.out / "catalogue.fits")
        cat["ID"] = np.asarray(cat["ID"]).astype(str)
        return cat

    def rejected(self) -> Table:
        with fits.open(self.out / "catalogue.fits") as h:
            rej = Table(h["REJECTED"].data)
        for c in ("ID", "SOURCE_FILE", "FLAG_REASON"):
            rej[c] = np.char.strip(np.asarray(rej[c]).astype(str))
        return rej

    def row(self, ident: str):
        """The catalogue or REJECTED row of ``ident``: (FLAG, FLAG_REASON)."""
        for t in (self.catalogue(), self.rejected()):
            hit = np.flatnonzero(np.asarray(t["ID"]).astype(str) == ident)
            if hit.size:
                return int(t["FLAG"][hit[0]]), str(t["FLAG_REASON"][hit[0]])
        raise AssertionError(f"{ident} is neither in the catalogue nor in REJECTED")


@pytest.fixture
def run(tmp_path):
    """A good run folder (five Suns, their catalogue, a model); the case spoils it before running."""
    coadd(tmp_path / "coadd-good.fits")
    mwsall(tmp_path / "mwsall.fits", [int(i) for i in GOOD_IDS])
    model(tmp_path / "model.pt")
    return Run(tmp_path)


# ------------------------------------------------------------------------------------------------ cases
def first_files_bad(r: Run):
    """Hole 1: unreadable files listed before the good one, and a missing one after it (each its own REJECTED
    row)."""
    (r.root / "a-empty.fits").write_bytes(b"")
    (r.root / "b-notes.fits").write_text("these are my observing notes, not a spectrum\n")
    (r.root / "c-broken.fits.gz").write_bytes(b"\x1f\x8b\x08\x00" + os.urandom(200))
    r.spectra = ["a-empty.fits", "b-notes.fits", "c-broken.fits.gz", "coadd-good.fits", "d-missing.fits"]


def mixed_surveys(r: Run):
    """Hole 1: a LAMOST file before DESI files: refused up front, saying how to split the run."""
    src = sorted((Path(__file__).parent / "data" / "lamost").glob("spec-*"))[0]
    (r.root / src.name).write_bytes(src.read_bytes())
    r.spectra = [src.name, "coadd-good.fits"]


def duplicated_targetid(r: Run):
    """Hole 2: repeated TARGETIDs in the MWS catalogue. 1000: its sv3 row is 150 km/s off, the coadd is main:
    the main row is used, nothing to flag. 1001: two main rows 150 km/s apart: flagged AMBIGUOUS_CATALOGUE."""
    (r.root / "mwsall.fits").unlink()
    vrad0 = float(Table.read(SUN / "mwsall-sun-snr100.fits", "RVTAB")["VRAD"][0])
    ids = [1000, *map(int, GOOD_IDS), 1001]
    vrad = [vrad0 + 150, *[vrad0] * N_GOOD, vrad0 + 150]
    mwsall(r.root / "mwsall.fits", ids, vrad=vrad, survey=["sv3", *["main"] * N_GOOD, "main"])


def missing_arm(r: Run):
    """Hole 3: a coadd without its B arm (most of the window's pixels) and one without its Z arm."""
    coadd(r.root / "coadd-nob.fits", first_id=2000, n=2, drop_arms="B")
    coadd(r.root / "coadd-noz.fits", first_id=3000, n=2, drop_arms="Z")
    (r.root / "mwsall.fits").unlink()
    mwsall(r.root / "mwsall.fits", [*map(int, GOOD_IDS), 2000, 2001, 3000, 3001])
    r.spectra = ["coadd-good.fits", "coadd-nob.fits", "coadd-noz.fits"]


def masked_window(r: Run):
    """Hole 3: FEW_PIXELS counts the pixels the model fits, not the wider normalisation grid: star 4000 has
    good pixels over 5300-5650 Å only of the 5300-6100 Å it is fitted on (44 %), but 64 % of the grid with
    the continuum margins."""
    coadd(r.root / "coadd-masked.fits", first_id=4000, n=1, mask_obs=(5650.0, 6100.0))
    (r.root / "mwsall.fits").unlink()
    mwsall(r.root / "mwsall.fits", [*map(int, GOOD_IDS), 4000])
    r.spectra = ["coadd-good.fits", "coadd-masked.fits"]


def live_lock(r: Run):
    """Hole 4: another run (a live process on this host) holds the output folder."""
    r.out.mkdir()
    (r.out / "ddpayne.lock").write_text(
        f'{{"pid": {os.getppid()}, "host": "{socket.gethostname()}", "started": "2026-01-01T00:00:00Z", '
        '"command": "ddpayne run other.toml"}')


def stale_lock(r: Run):
    """Hole 4: the lock of a run that was killed (its PID no longer runs) is recovered, with a warning."""
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    r.out.mkdir()
    (r.out / "ddpayne.lock").write_text(
        f'{{"pid": {gone.pid}, "host": "{socket.gethostname()}", "started": "2026-01-01T00:00:00Z", '
        '"command": "ddpayne run run.toml"}')


def no_spectra(r: Run):
    """Hole 5: [data] without spectra."""
    r.spectra = None


def output_is_file(r: Run):
    """Hole 5: the output folder is an existing file."""
    (r.root / "out").write_text("not a folder")


def output_under_file(r: Run):
    """Hole 5: the output folder would lie inside a file."""
    (r.root / "results").write_text("not a folder")
    r.output = "results/out"


def garbage_model(r: Run):
    """Hole 6: a model file of garbage bytes: no advice to unpickle, reported before the prepare stage."""
    (r.root / "model.pt").write_bytes(os.urandom(4096))


def pickle_model(r: Run):
    """Hole 6: a model file that would run code when unpickled is refused without running it."""
    import torch

    torch.save({"emulator": "mlp", "payload": Payload(r.root / "pwned")}, r.root / "model.pt")


def missing_model(r: Run):
    """Hole 6: a model path that does not exist is reported before the prepare stage."""
    r.training = {"model": "models/emulator.pt"}


def no_model_no_labels(r: Run):
    """Hole 5: nothing to fit with (no labels to train on, no model): said before the prepare stage."""
    r.training = {"regularizer": "none"}


def model_of_other_grid(r: Run):
    """A model whose wavelengths are no pixels of the survey's grid (trained on another survey's grid): said
    before the prepare stage. (A model on other windows of the same grid is applied on its own grid: issue 20,
    tests/test_apply.py.)"""
    from ddpayne.prepare.grid import desi_grid
    from ddpayne_mlp.emulator import MLPEmulator

    g = desi_grid()[(desi_grid() >= WINDOW[0]) & (desi_grid() <= WINDOW[1])] + 0.4
    MLPEmulator(LABELS, g, [4000, 1, -2.5], [7000, 5, 0.5], n_hidden=5).save(r.root / "model.pt")


def labels_beside_model(r: Run):
    """Hole 6: a reference-label file next to a loaded model is reported, not silently ignored."""
    Table({"TARGETID": [1000], "TEFF": [5772.0]}).write(r.root / "labels.ecsv")
    r.data = {**r.data, "labels": "labels.ecsv"}


def labels_without_id(r: Run):
    """Hole 7: a reference-label file without any identifier column, before training."""
    Table({"NAME": ["sun"], "TEFF": [5772.0], "LOGG": [4.44], "FE_H": [0.0]}).write(r.root / "labels.ecsv")
    r.data = {**r.data, "labels": "labels.ecsv"}
    r.training = {"regularizer": "none", "labels": list(LABELS)}


def reversed_wavelength(r: Run):
    """Hole 8: a coadd whose B arm arrays are stored in decreasing wavelength."""
    coadd(r.root / "coadd-reversed.fits", first_id=5000, n=2, reverse_arm="B")
    r.spectra = ["coadd-reversed.fits", "coadd-good.fits"]


def non_star(r: Run):
    """Hole 9: a galaxy among the stars: its reason reads like text, not like a numpy repr."""
    (r.root / "mwsall.fits").unlink()
    mwsall(r.root / "mwsall.fits", [*map(int, GOOD_IDS), 6000], spectype=["STAR"] * N_GOOD + ["GALAXY"])
    coadd(r.root / "coadd-galaxy.fits", first_id=6000, n=1)
    r.spectra = ["coadd-good.fits", "coadd-galaxy.fits"]


def truncated_file(r: Run):
    """Hole 9: a truncated coadd: its whole-file REJECTED row is named by the file, not '0'."""
    data = (r.root / "coadd-good.fits").read_bytes()
    coadd(r.root / "coadd-cut.fits", first_id=7000, n=2)
    cut = (r.root / "coadd-cut.fits").read_bytes()
    (r.root / "coadd-cut.fits").write_bytes(cut[: len(cut) // 2])
    assert data  # the good file stays whole
    r.spectra = ["coadd-cut.fits", "coadd-good.fits"]


class Payload:
    """Creates a file when unpickled: what a malicious model file could do."""

    def __init__(self, path: Path):
        self.path = str(path)

    def __reduce__(self):
        return (open, (self.path, "w"))


@dataclass
class Case:
    """One row of the table: how to spoil the run, and what ``ddpayne run`` must answer."""

    spoil: Callable[[Run], None]
    #: exit status of ``ddpayne run``
    rc: int = 0
    #: every one of these must be in one log message (case-insensitive)
    message: tuple[str, ...] = ()
    #: {ID: bit}: the row (catalogue or REJECTED) of each ID carries the bit, with a reason containing
    #: ``reason[ID]``
    flags: dict = field(default_factory=dict)
    reason: dict = field(default_factory=dict)
    #: IDs whose FLAG_REASON must not contain these strings
    not_in_reason: tuple[str, ...] = ()
    #: the run must stop before the prepare stage did anything
    before_prepare: bool = False
    #: further checks on the finished run
    extra: Callable[[Run], None] | None = None


def _rv_of_1000_is_main_row(r: Run):
    cat = r.catalogue()
    vrad0 = float(Table.read(SUN / "mwsall-sun-snr100.fits", "RVTAB")["VRAD"][0])
    row = cat[cat["ID"] == "1000"][0]
    assert abs(float(row["RV"]) - vrad0) < 1e-6
    assert not int(row["FLAG"]) & Flag.AMBIGUOUS_CATALOGUE
    assert not {"1002", "1003", "1004"} & {i for i, f in zip(cat["ID"], cat["FLAG"])
                                           if f & Flag.AMBIGUOUS_CATALOGUE}


def _lock_released(r: Run):
    assert not (r.out / "ddpayne.lock").exists()


def _pickle_not_run(r: Run):
    assert not (r.root / "pwned").exists()


def _fit_flags_have_reasons(r: Run):
    """Hole 9: every flag set by the fit stage has a reason in FLAG_REASON."""
    from ddpayne.flags import STAGE_REASONS

    cat = r.catalogue()
    for f, reason in zip(cat["FLAG"], cat["FLAG_REASON"]):
        for bit, text in STAGE_REASONS.items():
            if int(f) & bit:
                assert text in str(reason), (bit, reason)
    assert any(int(f) & 0xFF00 for f in cat["FLAG"])   # the untrained model sets some


BAD = Flag.BAD_INPUT
CASES = {
    "first_files_bad": Case(
        first_files_bad, message=("b-notes.fits", "text file", "remove it from the input"),
        flags={"a-empty.fits": BAD, "b-notes.fits": BAD, "c-broken.fits.gz": BAD, "d-missing.fits": BAD},
        reason={"a-empty.fits": "empty file (0 bytes)", "b-notes.fits": "text file",
                "c-broken.fits.gz": "gzip", "d-missing.fits": "no such file"}, extra=_fit_flags_have_reasons),
    "mixed_surveys": Case(mixed_surveys, rc=2, before_prepare=True,
                          message=("mixes files of 2 surveys", "lamost", "desi", "split the run")),
    "duplicated_targetid": Case(
        duplicated_targetid,
        message=("TARGETID 1001 has 2 equally matching rows in the MWS catalogue mwsall.fits",
                 "remove the wrong row"),
        flags={"1001": Flag.AMBIGUOUS_CATALOGUE}, reason={"1001": "VRAD"}, extra=_rv_of_1000_is_main_row),
    "missing_arm": Case(
        missing_arm, message=("coadd-nob.fits", "arm(s) B (no B_FLUX HDU) missing"),
        flags={"2000": Flag.MISSING_ARM | Flag.FEW_PIXELS, "2001": Flag.MISSING_ARM,
               "3000": Flag.MISSING_ARM},
        reason={"2000": "arm(s) B (no B_FLUX HDU) missing from coadd-nob.fits",
                "3000": "arm(s) Z (no Z_FLUX HDU) missing from coadd-noz.fits"}),
    "masked_window": Case(masked_window, flags={"4000": Flag.FEW_PIXELS},
                          reason={"4000": "of the 1001 pixels the model fits are usable"}),
    "live_lock": Case(live_lock, rc=2, before_prepare=True,
                      message=("in use by another ddpayne run", f"PID {os.getppid()}",
                               "another [output] dir")),
    "stale_lock": Case(stale_lock, message=("stale lock", "taken over"), extra=_lock_released),
    "no_spectra": Case(no_spectra, rc=2, before_prepare=True,
                       message=("[data] spectra is empty", "list the")),
    "output_is_file": Case(output_is_file, rc=2,
                           message=("[output] dir", "is an existing file", "give the path")),
    "output_under_file": Case(output_under_file, rc=2, message=("[output] dir", "results", "is a file")),
    "garbage_model": Case(garbage_model, rc=2, before_prepare=True,
                          message=("model.pt", "not a ddpayne emulator file",
                                   "give a model written by ddpayne")),
    "pickle_model": Case(pickle_model, rc=2, before_prepare=True, message=("model.pt", "never unpickles"),
                         extra=_pickle_not_run),
    "missing_model": Case(missing_model, rc=2, before_prepare=True,
                          message=("[training] model", "models/emulator.pt", "no such file", "fix the path")),
    "no_model_no_labels": Case(no_model_no_labels, rc=2, before_prepare=True,
                               message=("no model to fit with", "[data] labels", "[training] model")),
    "model_of_other_grid": Case(model_of_other_grid, rc=2, before_prepare=True,
                                message=("[training] model", "1001 pixels, 5300.40-6100.40 Å",
                                         "not part of the survey grid", "another survey's grid")),
    "labels_beside_model": Case(labels_beside_model,
                                message=("[data] labels", "labels.ecsv", "is not used")),
    "labels_without_id": Case(labels_without_id, rc=2, before_prepare=True,
                              message=("labels.ecsv", "looked for an identifier (TARGETID, SOURCE_ID",
                                       "RA/DEC", "add the stars' TARGETID")),
    "reversed_wavelength": Case(
        reversed_wavelength, message=("coadd-reversed.fits", "arm B", "reversed", "fix the file"),
        flags={"coadd-reversed.fits": BAD}, reason={"coadd-reversed.fits": "the wavelength array decreases"},
        not_in_reason=("all pixels masked",)),
    "non_star": Case(non_star, flags={"6000": Flag.NOT_STAR},
                     reason={"6000": "RR_SPECTYPE is 'GALAXY', not STAR"}, not_in_reason=("np.str_",)),
    "truncated_file": Case(truncated_file, flags={"coadd-cut.fits": BAD}, reason={"coadd-cut.fits": "coadd-cut"},
                           message=("coadd-cut.fits", "left out")),
}


@pytest.mark.parametrize("name", list(CASES))
def test_bad_input(name, run, caplog, monkeypatch):
    case = CASES[name]
    monkeypatch.chdir(run.root)
    case.spoil(run)
    config = run.write_config()
    with caplog.at_level(logging.INFO):
        run.rc = main(["run", str(config)])
    messages = [r.getMessage() for r in caplog.records]
    assert run.rc == case.rc, messages
    if case.message:
        hits = [m for m in messages if all(s.lower() in m.lower() for s in case.message)]
        assert hits, f"no log message with all of {case.message}: {messages}"
        assert not any("weights_only=False" in m for m in messages)
    if case.before_prepare:
        assert not (run.out / "prepared").exists()
    if case.rc != 0:
        return
    cat = run.catalogue()
    # every good spectrum of the batch is still in the catalogue
    assert set(GOOD_IDS) <= set(cat["ID"]), sorted(cat["ID"])
    for ident, bit in case.flags.items():
        flag, reason = run.row(ident)
        assert flag & int(bit) == int(bit), (ident, flag, reason)
        assert reason.strip(), ident
        if ident in case.reason:
            assert case.reason[ident] in reason, (ident, reason)
        for bad in case.not_in_reason:
            assert bad not in reason, (ident, reason)
    for ident in GOOD_IDS:   # the good spectra are not blamed for the bad inputs
        flag, _ = run.row(ident)
        assert not flag & int(Flag.BAD_INPUT | Flag.MISSING_ARM | Flag.FEW_PIXELS | Flag.ALL_MASKED)
    if case.extra:
        case.extra(run)


def test_lock_is_exclusive(tmp_path):
    """Two locks on one folder: the second is refused while the first is held, and taken after."""
    from ddpayne.pipeline.lock import OutputLockedError, RunLock

    first = RunLock(tmp_path, command="first")
    first.acquire()
    info = first.holder()
    assert info["pid"] == os.getpid() and info["host"] == socket.gethostname() and info["command"] == "first"
    with pytest.raises(OutputLockedError, match="already locked by this process"):
        RunLock(tmp_path).acquire()
    first.release()
    with RunLock(tmp_path):
        assert (tmp_path / "ddpayne.lock").exists()
    assert not (tmp_path / "ddpayne.lock").exists()


def test_lock_of_another_host_is_not_taken(tmp_path):
    from ddpayne.pipeline.lock import OutputLockedError, RunLock

    (tmp_path / "ddpayne.lock").write_text('{"pid": 1, "host": "elsewhere.example", "started": "x"}')
    with pytest.raises(OutputLockedError, match=r"another host .*elsewhere.example.*delete"):
        RunLock(tmp_path).acquire()


def test_gzip_garbage_is_described(tmp_path):
    """The message for an unreadable file says what it is (no "not a FITS file that ..." garble)."""
    from ddpayne.io.spectra import describe_content

    (tmp_path / "x.fits.gz").write_bytes(gzip.compress(b"hello"))
    assert describe_content(tmp_path / "x.fits.gz") == "gzip file whose content is not FITS"
    (tmp_path / "y.fits").write_bytes(b"\x00\x01\x02" * 10)
    assert describe_content(tmp_path / "y.fits").startswith("binary file, not FITS")


def test_label_catalogue_without_identifier_names_what_was_looked_for():
    """Hole 7 through the Python API: the cross-match names the identifier columns it looked for."""
    from ddpayne.io.batch import SpectrumBatch
    from ddpayne.model.training import TrainingSetError
    from ddpayne.model.trainingset import build_training_set

    meta = Table({"ID": ["1000"], "TARGETID": [1000], "RA": [10.0], "DEC": [1.0], "SNR": [50.0], "FLAG": [0]})
    batch = SpectrumBatch(np.arange(5.0), np.ones((1, 5)), np.ones((1, 5)), meta)
    labels = Table({"NAME": ["sun"], "TEFF": [5772.0]})
    with pytest.raises(TrainingSetError,
                       match=r"looked for an identifier \(TARGETID, SOURCE_ID.*RA/DEC.*add TARGETID"):
        build_training_set(batch, labels, ["TEFF"])


def test_lamost_duplicated_obsid_is_flagged():
    """Hole 2 for LAMOST: two catalogue rows of one OBSID with different RVs flag AMBIGUOUS_CATALOGUE."""
    from ddpayne_lamost.reader import LAMOSTReader

    path = sorted((Path(__file__).parent / "data" / "lamost").glob("spec-*"))[0]
    obsid = int(fits.getheader(path)["OBSID"])
    cat = Table({"OBSID": [obsid, obsid], "RV": [10.0, 160.0], "RV_ERR": [1.0, 1.0]})
    meta = LAMOSTReader().read(path, catalogue=cat).meta
    assert meta["FLAG"][0] & Flag.AMBIGUOUS_CATALOGUE
    assert f"OBSID {obsid} has 2 catalogue rows with RV 10.0, 160.0 km/s" in meta["FLAG_REASON"][0]
    assert meta["RV"][0] == 10.0


@pytest.mark.skipif(hasattr(os, "geteuid") and os.geteuid() == 0, reason="root may write anywhere")
def test_unwritable_output_dir(tmp_path):
    """Hole 5: an output folder without write permission is a ConfigError, not a PermissionError traceback."""
    from ddpayne.pipeline.config import ConfigError, check_output_dir

    (tmp_path / "ro").mkdir(mode=0o500)
    with pytest.raises(ConfigError,
                       match=r"\[output\] dir = .*ro is not writable.*give a folder you can write"):
        check_output_dir(tmp_path / "ro")


def test_output_dir_write_failure_is_named(tmp_path, monkeypatch):
    """Hole 5, also as root: whatever stops the probe file being written is reported as the output
    folder's."""
    from ddpayne.pipeline.config import ConfigError, check_output_dir

    def refuse(self, data):
        raise PermissionError(13, "Permission denied", str(self))

    monkeypatch.setattr(Path, "write_bytes", refuse)
    with pytest.raises(ConfigError, match=r"\[output\] dir = .*out is not writable \(PermissionError: "
                                          r"Permission denied\): give a folder you can write to"):
        check_output_dir(tmp_path / "out")


def test_prepare_command_refuses_mixed_surveys(tmp_path, caplog):
    """Hole 1 for ``ddpayne prepare``: files of two surveys are refused before any is prepared."""
    lamost = sorted((Path(__file__).parent / "data" / "lamost").glob("spec-*"))[0]
    desi = coadd(tmp_path / "coadd-good.fits")
    with caplog.at_level(logging.INFO):
        assert main(["prepare", str(lamost), str(desi), "-o", str(tmp_path / "batch.fits")]) == 2
    assert any("mixes files of 2 surveys" in r.getMessage() and "split the run" in r.getMessage()
               for r in caplog.records)
    assert not (tmp_path / "batch.fits").exists()


def test_second_process_is_refused_while_the_first_holds_the_lock(tmp_path):
    """Hole 4 with two real processes: the second is told the first's PID and host; after the first ends,
    the folder is free again."""
    from ddpayne.pipeline.lock import OutputLockedError, RunLock

    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys, time; from ddpayne.pipeline.lock import RunLock\n"
         f"with RunLock({str(tmp_path)!r}, command='first run'):\n    print('held', flush=True)\n"
         "    sys.stdin.readline()"], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(OutputLockedError, match=rf"in use by another ddpayne run \(PID {holder.pid} on host "
                                                    rf"{socket.gethostname()}.*first run"):
            RunLock(tmp_path).acquire()
    finally:
        holder.communicate("\n", timeout=30)
    with RunLock(tmp_path):
        pass
