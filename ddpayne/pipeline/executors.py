"""Fitting a survey: one task per input file, serial / multiprocessing / dask.distributed backends.

:func:`run_fit` fits every spectrum of a list of input files (one task per file, e.g. one DESI healpix
coadd) and writes one catalogue. It is built to run for days and be killed:

* **Resumable.** (One run per output at a time.) Each finished file becomes a *part* ``<output>.parts/<index>-<name>-<hash>.fits``,
  written atomically (:func:`ddpayne.io.atomic.atomic_path`) by the driver. A restarted run skips
  files whose part exists and is readable, so a killed run continues where it stopped, with no
  duplicated or lost rows (a part is all of a file's rows or nothing).
* **Streaming.** At most ``2 × n_workers`` files are in flight; a worker holds one file's spectra
  (fitted in chunks of the fitter's ``chunk_size``), the driver holds one file's result table at a
  time. Memory does not grow with the number of spectra. The final merge streams the parts into
  ``output`` row block by row block (it keeps only the ``CHI2`` and ``SNR`` columns of the whole run,
  to recompute ``QFLAG_CHI2`` over the full catalogue: paper Eq. 4 needs all stars of similar S/N).
* **Backends.** ``"serial"`` (in-process), ``"multiprocessing"`` (a spawn-context process pool), and
  ``"dask"`` (``dask.distributed``: a ``LocalCluster`` by default, or ``scheduler="tcp://host:8786"``
  for a real cluster; the workers need ddpayne installed and the input files visible).
* **Progress.** A tqdm bar in spectra, with the rate in spectra/s.
* **GPU.** ``device="cuda"`` (or ``"auto"``) is passed to the fitter, which falls back to the CPU with a
  warning when no GPU is available.

A file that cannot be read is logged and listed in the returned summary; the run continues, the
file gets no part (a later run retries it) and the final catalogue is written without it.
"""
from __future__ import annotations

import hashlib
import logging
import os
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

log = logging.getLogger(__name__)

BACKENDS = ("serial", "multiprocessing", "dask")


@dataclass
class FitRunSummary:
    """What :func:`run_fit` did."""

    output: Path | None
    n_files: int
    n_skipped: int
    n_fitted_files: int
    n_rows: int
    n_rows_new: int
    seconds: float
    failed: dict[str, str] = field(default_factory=dict)

    @property
    def spectra_per_second(self) -> float:
        return self.n_rows_new / self.seconds if self.seconds > 0 else float("nan")


@dataclass
class _RunSpec:
    """Everything a worker needs; pickled once per worker."""

    emulator: Any
    fitter: Any
    fitter_options: dict
    fixed: dict | None
    loader: Callable | None
    keep_meta: tuple
    threads: int | None
    token: str = ""


# ---------------------------------------------------------------------------------------------- worker side
_WORKER_CACHE: dict[str, tuple] = {}


def _build(spec: _RunSpec):
    """The emulator and fitter of ``spec``, built once per process."""
    cached = _WORKER_CACHE.get(spec.token)
    if cached is not None:
        return cached
    import torch

    from .. import registry
    from ..model.emulator import Emulator, load_emulator

    if spec.threads:
        torch.set_num_threads(int(spec.threads))
    emu = spec.emulator
    if isinstance(emu, (str, os.PathLike)):
        emu = load_emulator(emu)
    elif not isinstance(emu, Emulator) and callable(emu):
        emu = emu()
    fitter = spec.fitter
    if isinstance(fitter, str):
        fitter = registry.create("fitter", fitter, **spec.fitter_options)
    _WORKER_CACHE.clear()
    _WORKER_CACHE[spec.token] = (emu, fitter)
    return emu, fitter


def _default_loader(path):
    from ..io.batch import SpectrumBatch

    return SpectrumBatch.read(path)


def fit_file(path: str, spec: _RunSpec):
    """Fit one input file (the task of every backend). Returns the result table."""
    from astropy.table import Column

    emu, fitter = _build(spec)
    loader = spec.loader or _default_loader
    batch = loader(path)
    table = fitter.fit(emu, batch, fixed=spec.fixed)
    for col in spec.keep_meta:
        if col not in batch.meta.colnames:
            raise KeyError(f"{path}: batch metadata has no column {col!r} (requested in keep_meta)")
        if col not in table.colnames:
            table[col] = batch.meta[col]
    table["SOURCE_FILE"] = Column(np.full(len(table), str(path)), description="Input file of the spectrum")
    return table


# ---------------------------------------------------------------------------------------------- driver side
def part_path(parts_dir: Path, index: int, path) -> Path:
    """The part file of input ``index`` (stable across runs for the same input path)."""
    h = hashlib.sha1(str(Path(path).resolve()).encode()).hexdigest()[:10]
    stem = Path(path).name.split(".")[0][:40]
    return parts_dir / f"{index:06d}-{stem}-{h}.fits"


def _part_ok(p: Path) -> bool:
    if not p.exists():
        return False
    try:
        from astropy.io import fits

        with fits.open(p, memmap=False) as h:
            return "FIT" in h and h["FIT"].header.get("DDPDONE", False)
    except Exception:  # a corrupt part is refitted
        log.warning("part %s is unreadable; its file will be fitted again", p)
        return False


def _write_part(table, p: Path) -> None:
    from astropy.io import fits

    from ..fit.results import result_table_hdu
    from ..io.atomic import atomic_path

    hdu = result_table_hdu(table)
    hdu.header["DDPDONE"] = True
    with atomic_path(p, overwrite=True) as tmp:
        fits.HDUList([fits.PrimaryHDU(), hdu]).writeto(tmp)


def run_fit(inputs: Sequence, output, emulator, fitter="lm", fitter_options: Mapping | None = None,
            fixed: Mapping | None = None, loader: Callable | None = None, backend: str = "serial",
            n_workers: int | None = None, threads_per_worker: int | None = None, scheduler: str | None = None,
            device: str | None = None, keep_meta: Sequence[str] = (), progress: bool = True,
            merge: bool = True, qflag_n_per_bin: int = 500, max_files: int | None = None) -> FitRunSummary:
    """Fit every spectrum of ``inputs`` and write the catalogue ``output`` (resumable).

    Parameters
    ----------
    inputs : sequence of path
        Input files, one task each; read by ``loader``.
    output : path
        Final catalogue (FITS; columns of :mod:`ddpayne.fit.results` plus ``SOURCE_FILE`` and
        ``keep_meta``). Parts go to ``<output>.parts/``.
    emulator : Emulator, path, or callable
        An emulator instance (pickled to workers), a saved emulator file (loaded in each worker with
        :func:`ddpayne.model.emulator.load_emulator`: best for clusters) or a picklable zero-argument
        callable returning one.
    fitter : str or Fitter
        Fitter plugin name (created in each worker with ``fitter_options``) or an instance.
    fitter_options : mapping, optional
        Options of the fitter plugin (e.g. ``chunk_size``, ``starts``).
    fixed : mapping, optional
        Labels held fixed (see :meth:`ddpayne.fit.fitter.Fitter.fit`).
    loader : callable, optional
        ``loader(path) -> SpectrumBatch`` (picklable; default :meth:`SpectrumBatch.read`).
    backend : {"serial", "multiprocessing", "dask"}
    n_workers : int, optional
        Worker processes (default: CPU count // threads_per_worker; ignored for ``serial``).
    threads_per_worker : int, optional
        torch threads per worker. Default: torch's own setting for ``serial``, 1 for the parallel
        backends (one process per core).
    scheduler : str, optional
        dask scheduler address; default a ``LocalCluster`` of ``n_workers`` processes.
    device : str, optional
        ``"cpu"``, ``"cuda"``, ``"auto"``: passed to the fitter as its ``device`` option.
    keep_meta : sequence of str
        Batch metadata columns copied into the catalogue (e.g. ``TARGETID``).
    progress : bool
        tqdm bar (spectra, spectra/s).
    merge : bool
        Merge the parts into ``output`` at the end (when every file succeeded or was skipped).
    qflag_n_per_bin : int
        S/N bin size for the catalogue-wide ``QFLAG_CHI2``.
    max_files : int, optional
        Stop after fitting this many new files (for tests and incremental runs; no merge then).

    Returns
    -------
    FitRunSummary
    """
    if backend not in BACKENDS:
        raise ValueError(f"unknown backend {backend!r}; choose one of {BACKENDS}")
    output = Path(output)
    parts_dir = output.with_name(output.name + ".parts")
    parts_dir.mkdir(parents=True, exist_ok=True)
    for stale in parts_dir.glob(".*.tmp*"):  # half-written parts of a killed run (one run per output)
        log.info("removing %s left by an interrupted run", stale)
        stale.unlink(missing_ok=True)
    inputs = [str(p) for p in inputs]
    if threads_per_worker is None and backend != "serial":
        threads_per_worker = 1
    options = dict(fitter_options or {})
    if device is not None and isinstance(fitter, str):
        options["device"] = device
    elif device is not None and hasattr(fitter, "device"):
        fitter.device = device
    token = hashlib.sha1(f"{id(emulator)}-{time.time()}-{os.getpid()}".encode()).hexdigest()
    spec = _RunSpec(emulator, fitter, options, dict(fixed) if fixed else None, loader, tuple(keep_meta),
                    threads_per_worker, token)
    parts = [part_path(parts_dir, i, p) for i, p in enumerate(inputs)]
    todo = [i for i, p in enumerate(parts) if not _part_ok(p)]
    if max_files is not None:
        todo = todo[:max_files]
    n_skipped = len(inputs) - len([i for i, p in enumerate(parts) if not _part_ok(p)])
    if n_skipped:
        log.info("resuming: %d of %d files already fitted (parts in %s)", n_skipped, len(inputs), parts_dir)
    failed: dict[str, str] = {}
    t0 = time.perf_counter()
    bar = None
    if progress:
        from tqdm.auto import tqdm
        bar = tqdm(unit="spec", desc=f"fit ({backend})", dynamic_ncols=True)
    counts = {"rows": 0, "files": 0}

    def done(i: int, table=None, error: BaseException | None = None):
        if error is not None:
            failed[inputs[i]] = f"{type(error).__name__}: {error}"
            log.error("fitting %s failed: %s", inputs[i], failed[inputs[i]])
            return
        _write_part(table, parts[i])
        counts["rows"] += len(table)
        counts["files"] += 1
        if bar is not None:
            bar.update(len(table))
            bar.set_postfix(files=f"{counts['files'] + n_skipped}/{len(inputs)}")

    try:
        if backend == "serial":
            _run_serial(todo, inputs, spec, done)
        elif backend == "multiprocessing":
            _run_multiprocessing(todo, inputs, spec, done, n_workers or _default_workers(threads_per_worker))
        else:
            _run_dask(todo, inputs, spec, done, n_workers or _default_workers(threads_per_worker), scheduler,
                      threads_per_worker)
    finally:
        if bar is not None:
            bar.close()
    seconds = time.perf_counter() - t0
    complete = all(_part_ok(p) for p in parts)
    out = None
    n_rows = counts["rows"]
    ok_parts = [p for p in parts if _part_ok(p)] if merge else []
    if merge and not ok_parts:
        log.error("no file was fitted successfully; no catalogue written")
    elif merge and (max_files is None or complete):
        if not complete:
            log.warning("%d files failed; the catalogue %s is written without them (rerun to retry)",
                        len(failed), output)
        n_rows = merge_parts(ok_parts, output, qflag_n_per_bin=qflag_n_per_bin)
        out = output
    return FitRunSummary(out, len(inputs), n_skipped, counts["files"], n_rows, counts["rows"], seconds, failed)


def _default_workers(threads) -> int:
    return max(1, (os.cpu_count() or 1) // max(1, int(threads or 1)))


def _run_serial(todo, inputs, spec, done):
    for i in todo:
        try:
            table = fit_file(inputs[i], spec)
        except Exception as exc:  # one bad file never stops the run
            done(i, error=exc)
            continue
        done(i, table)


def _run_multiprocessing(todo, inputs, spec, done, n_workers):
    import concurrent.futures as cf
    import multiprocessing as mp

    ctx = mp.get_context("spawn")
    with cf.ProcessPoolExecutor(max_workers=n_workers, mp_context=ctx) as pool:
        pending: dict = {}
        queue = list(todo)
        while queue or pending:
            while queue and len(pending) < 2 * n_workers:
                i = queue.pop(0)
                pending[pool.submit(fit_file, inputs[i], spec)] = i
            finished, _ = cf.wait(pending, return_when=cf.FIRST_COMPLETED)
            for fut in finished:
                i = pending.pop(fut)
                exc = fut.exception()
                if exc is not None:
                    done(i, error=exc)
                else:
                    done(i, fut.result())


def _run_dask(todo, inputs, spec, done, n_workers, scheduler, threads_per_worker):
    from distributed import Client, LocalCluster, as_completed

    cluster = None
    if scheduler:
        client = Client(scheduler)
    else:
        cluster = LocalCluster(n_workers=n_workers, threads_per_worker=1, processes=True,
                               dashboard_address=None)
        client = Client(cluster)
    try:
        spec_f = client.scatter(spec, broadcast=True)
        queue = list(todo)
        limit = 2 * max(1, len(client.scheduler_info().get("workers", {})) or n_workers)
        futures = {}
        ac = as_completed()
        while queue and len(futures) < limit:
            i = queue.pop(0)
            f = client.submit(fit_file, inputs[i], spec_f, pure=False)
            futures[f.key] = i
            ac.add(f)
        for fut in ac:
            i = futures.pop(fut.key)
            if fut.status == "error":
                done(i, error=fut.exception())
            else:
                done(i, fut.result())
            fut.release()
            if queue:
                j = queue.pop(0)
                f = client.submit(fit_file, inputs[j], spec_f, pure=False)
                futures[f.key] = j
                ac.add(f)
    finally:
        client.close()
        if cluster is not None:
            cluster.close()


# ---------------------------------------------------------------------------------------------- merging
def merge_parts(parts: Sequence, output, qflag_n_per_bin: int = 500) -> int:
    """Stream result parts into one FITS catalogue (atomically), recomputing catalogue-wide quality.

    ``QFLAG_CHI2`` and the ``CHI2_OUTLIER`` bit are recomputed over all rows (paper Eq. 4 compares each
    star with all stars of similar S/N); every other column is copied. Parts are read one at a time.

    Returns
    -------
    int
        Number of rows written.
    """
    import json

    from astropy.io import fits

    from ..fit.quality import QFLAG_CHI2_LIMIT, qflag_chi2
    from ..fit.results import read_result_table, result_table_hdu
    from ..flags import Flag
    from ..io.atomic import atomic_path

    parts = [Path(p) for p in parts]
    if not parts:
        raise ValueError("no parts to merge")
    # pass 1: sizes, string widths, chi2 and S/N of every row
    chi2, snr, widths, sizes, meta = [], [], {}, [], None
    for p in parts:
        t = read_result_table(p)
        meta = meta or dict(t.meta)
        sizes.append(len(t))
        chi2.append(np.asarray(t["CHI2"], float))
        snr.append(np.asarray(t["SNR"], float) if "SNR" in t.colnames else np.full(len(t), np.nan))
        for c in t.colnames:
            if t[c].dtype.kind in "SU":
                widths[c] = max(widths.get(c, 1), t[c].dtype.itemsize // (4 if t[c].dtype.kind == "U" else 1))
    chi2, snr = np.concatenate(chi2), np.concatenate(snr)
    q = qflag_chi2(chi2, snr, n_per_bin=qflag_n_per_bin)
    total = int(sum(sizes))
    # pass 2: stream rows
    with atomic_path(output, overwrite=True) as tmp, open(tmp, "wb") as fh:
        fits.PrimaryHDU().writeto(fh)
        header_written, start, ncols = None, 0, None
        for p, n in zip(parts, sizes):
            t = read_result_table(p)
            t.meta = dict(meta)
            for c, w in widths.items():
                t[c] = t[c].astype(f"U{w}")
            qq = q[start:start + n]
            t["QFLAG_CHI2"][:] = qq
            flags = np.asarray(t["FLAG"], dtype=np.int64) & ~int(Flag.CHI2_OUTLIER)
            with np.errstate(invalid="ignore"):
                flags[qq >= QFLAG_CHI2_LIMIT] |= int(Flag.CHI2_OUTLIER)
            t["FLAG"][:] = flags
            hdu = result_table_hdu(t)
            hdu.header["FITMETA"] = json.dumps({**meta, "N_PARTS": len(parts)}, default=str)
            if header_written is None:
                hdr = hdu.header.copy()
                hdr["NAXIS2"] = total
                fh.write(hdr.tostring().encode("ascii"))
                header_written = hdr
                ncols = hdr["TFIELDS"]
            elif hdu.header["NAXIS1"] != header_written["NAXIS1"] or hdu.header["TFIELDS"] != ncols:
                raise ValueError(f"{p}: columns differ from the first part's; cannot merge")
            raw = _big_endian_bytes(hdu)
            if len(raw) != header_written["NAXIS1"] * n:
                raise ValueError(f"{p}: unexpected row size while merging")
            fh.write(raw)
            start += n
        nbytes = header_written["NAXIS1"] * total
        pad = (-nbytes) % 2880
        fh.write(b"\0" * pad)
    log.info("merged %d parts (%d rows) into %s", len(parts), total, output)
    return total


def _big_endian_bytes(hdu) -> bytes:
    """The on-disk (FITS, big-endian) bytes of a binary table HDU's rows."""
    import io

    from astropy.io import fits

    buf = io.BytesIO()
    fits.HDUList([fits.PrimaryHDU(), hdu]).writeto(buf)
    raw = buf.getvalue()
    with fits.open(io.BytesIO(raw)) as h:
        loc = h[1].fileinfo()["datLoc"]
        n = h[1].header["NAXIS1"] * h[1].header["NAXIS2"]
    return raw[loc:loc + n]
