"""Build the hydrogen-correction product node by node, resumably (``ddpayne synth hydrogen``).

**Nodes.** The correction is computed at labels taken from the stars it will correct: the mock library's
stars and the gradient product's reference points, ordered by farthest-point sampling in the
interpolation coordinates of :mod:`ddpayne.physics.hydrogen` (the first node is the star nearest the
Sun), so that every prefix of the order covers the label space as evenly as it can and the product
improves with every node. A node uses all 15 labels of its star: exact for that star.

**Resuming.** The product file itself is the state: each finished node is appended and the file
rewritten atomically; a rerun skips the nodes already in it (matched by their labels), so a killed run
loses only the node in flight. One run per product (a lock next to it).
"""
from __future__ import annotations

import logging
import time
from pathlib import Path

import numpy as np
from astropy.table import Table, vstack

from ..io.atomic import workdir_lock
from ..labels import LABEL_NAMES
from .hydrogen import HYDROGEN_VERSION, HydrogenCorrection, correction_at, scaled_coordinates

log = logging.getLogger(__name__)

#: Label of the first node's target: the Sun (IAU nominal values).
SUN = {"TEFF": 5772.0, "LOGG": 4.44, "FE_H": 0.0}


def candidate_labels(library: Table | None, references: Table | None) -> Table:
    """The label rows nodes are drawn from (library stars, then reference points), 15 label columns.

    With a library, reference points outside its [Fe/H] range are left out: their correction is
    extrapolated from the nearest nodes (H I lines depend weakly on [Fe/H]), and MOOG cannot synthesise
    the metals-only spectrum of the nearly line-free hydrogen windows at [Fe/H] = −3 (its depths
    overflow).
    """
    if library is not None and len(library) and references is not None and len(references):
        feh = np.asarray(library["FE_H"], float)
        keep = (np.asarray(references["FE_H"], float) >= feh.min()) & (np.asarray(references["FE_H"], float)
                                                                       <= feh.max())
        references = references[keep]
    parts = [Table({n: np.asarray(t[n], float) for n in LABEL_NAMES}) for t in (library, references)
             if t is not None and len(t)]
    if not parts:
        raise ValueError("no candidate labels for hydrogen-correction nodes (empty library and references)")
    return vstack(parts)


def node_order(candidates: Table, n: int) -> np.ndarray:
    """Indices of ``n`` candidates in farthest-point order, starting nearest the Sun."""
    x = scaled_coordinates(candidates)
    sun = scaled_coordinates(SUN)[0]
    first = int(np.argmin(((x - sun) ** 2).sum(axis=1)))
    order = [first]
    dist = ((x - x[first]) ** 2).sum(axis=1)
    for _ in range(min(n, len(x)) - 1):
        nxt = int(np.argmax(dist))
        order.append(nxt)
        dist = np.minimum(dist, ((x - x[nxt]) ** 2).sum(axis=1))
    return np.array(order, int)


def _done(product: HydrogenCorrection, labels: Table) -> np.ndarray:
    if len(product) == 0:
        return np.zeros(len(labels), bool)
    have = np.column_stack([np.asarray(product.nodes[n], float) for n in LABEL_NAMES])
    want = np.column_stack([np.asarray(labels[n], float) for n in LABEL_NAMES])
    return np.array([np.any(np.all(np.abs(have - w) < 1e-6, axis=1)) for w in want])


_WORKER: dict = {}


def _init_worker(synthesizer: str, base: str | None, base_options: dict | None, grid: np.ndarray) -> None:
    import signal
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _WORKER.update(_synthesizers(synthesizer, base, base_options), grid=grid)


def _synthesizers(synthesizer: str, base: str | None, base_options: dict | None) -> dict:
    from .. import registry
    cls = registry.get("synthesizer", synthesizer)
    pair = None
    if base is not None:
        opts = _base_options(base_options)
        bcls = registry.get("synthesizer", base)
        pair = (bcls(hydrogen=True, **opts), bcls(hydrogen=False, **opts))
    return {"with_h": cls(hydrogen=True), "metals": cls(hydrogen=False), "base": pair}


def _node(labels: dict) -> tuple[dict, np.ndarray | None, str | None, float]:
    """One node in a worker: (labels, ln C or None, failure reason or None, seconds)."""
    t0 = time.monotonic()
    w = _WORKER
    try:
        logc = correction_at(w["with_h"], w["metals"], labels, w["grid"], base=w["base"])
        return labels, logc, None, time.monotonic() - t0
    except Exception as err:   # noqa: BLE001 - one star's synthesis failing must not stop the build
        return labels, None, f"{type(err).__name__}: {err}"[:500], time.monotonic() - t0


def build_hydrogen(out: str | Path, candidates: Table, n_nodes: int, synthesizer: str = "pysme",
                   max_seconds: float | None = None, grid: np.ndarray | None = None,
                   base: str | None = "moog", base_options: dict | None = None,
                   processes: int = 1) -> HydrogenCorrection:
    """Compute nodes in farthest-point order until ``n_nodes`` are in ``out`` (or ``max_seconds`` pass).

    Parameters
    ----------
    out : path
        The product file (created, or extended where a previous run stopped).
    candidates : astropy.table.Table
        Label rows to draw nodes from (:func:`candidate_labels`).
    n_nodes : int
        Number of nodes wanted in all.
    synthesizer : str
        Name of an installed Synthesizer plugin whose constructor takes ``hydrogen=True/False``.
    max_seconds : float, optional
        Stop (after the node in flight) once this much time has passed.
    grid : ndarray, optional
        Survey grid (default: DESI).
    base : str or None
        Synthesizer plugin of the spectra to be corrected (its own H I lines are divided out, see
        :func:`~ddpayne.physics.hydrogen.correction_at`); its constructor takes ``hydrogen=`` and
        ``base_options``. Default ``"moog"`` with the mock library's settings.
    processes : int
        Worker processes computing nodes at once (the parent writes the product in node order).
    """
    from ..prepare.grid import desi_grid
    out = Path(out)
    grid = desi_grid() if grid is None else np.asarray(grid, float)
    with workdir_lock(out.parent, name=f".{out.name}.lock"):
        product = HydrogenCorrection.read(out) if out.exists() else HydrogenCorrection.empty(grid)
        if not np.array_equal(product.wavelength, grid):
            raise ValueError(f"{out} was built on another wavelength grid; use a new output file")
        order = node_order(candidates, n_nodes)
        todo = order[~_done(product, candidates[order])]
        if todo.size == 0:
            log.info("hydrogen correction %s: all %d nodes present", out, len(product))
            return product
        product.provenance.update({"synthesis": _provenance(synthesizer), "hydrogen_version": HYDROGEN_VERSION,
                                   "windows_vac": [list(w) for w in _windows()], "resolution": "desi",
                                   "interpolation": "thin-plate-spline RBF of ln C in (TEFF/250, LOGG/0.5, "
                                                    "FE_H/0.5)"})
        if base is not None:
            product.provenance["base"] = {"synthesizer": base, **_base_options(base_options)}
        jobs = [{n: float(candidates[n][i]) for n in LABEL_NAMES} for i in todo]
        start = time.monotonic()
        for k, (labels, logc, reason, seconds) in enumerate(
                _results(jobs, processes, (synthesizer, base, base_options, grid)), 1):
            if reason is not None:
                log.error("hydrogen node at %s failed and is left out (a rerun retries it): %s",
                          {n: labels[n] for n in ("TEFF", "LOGG", "FE_H")}, reason)
                failed = [f for f in product.provenance.get("failed_nodes", []) if f["labels"] != labels]
                product.provenance["failed_nodes"] = failed + [{"labels": labels, "reason": reason}]
            else:
                product = product.with_node(labels, logc)
            product.write(out)
            spent = time.monotonic() - start
            log.info("hydrogen node %s (Teff %.0f, logg %.2f, [Fe/H] %+.2f) in %.0f s; %d in the product, "
                     "%d left, ETA %.0f min", "failed" if reason else "done", labels["TEFF"], labels["LOGG"],
                     labels["FE_H"], seconds, len(product), len(jobs) - k, spent / k * (len(jobs) - k) / 60)
            if max_seconds is not None and spent > max_seconds:
                log.info("stopping after %.0f s as asked; rerun to resume", spent)
                break
        return product


def _base_options(base_options: dict | None) -> dict:
    """Constructor options of the base synthesizer: default, the mock library's MOOG settings."""
    from .runner import DEFAULT_MOCK_SETTINGS
    return {"settings": DEFAULT_MOCK_SETTINGS} if base_options is None else dict(base_options)


def _provenance(synthesizer: str) -> dict:
    from .. import registry
    cls = registry.get("synthesizer", synthesizer)
    return cls(hydrogen=True).provenance()


def _results(jobs: list[dict], processes: int, init: tuple):
    """Node results in job order, from ``processes`` workers (or this process)."""
    if processes <= 1:
        _init_worker(*init)
        for j in jobs:
            yield _node(j)
        return
    import multiprocessing as mp
    with mp.get_context("fork").Pool(processes, initializer=_init_worker, initargs=init) as pool:
        yield from pool.imap(_node, jobs)


def _windows():
    from .hydrogen import WINDOWS_VAC
    return WINDOWS_VAC
