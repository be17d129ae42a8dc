"""The fit-result table: one row per input spectrum, in input order, with documented columns.

Every :class:`ddpayne.fit.fitter.Fitter` returns the table built by :func:`build_result_table`, so the
catalogue has the same columns whatever fitter produced it. The helpers here also do the input checks
that every fitter shares (:func:`prepare_fit`, which runs :func:`check_grid`, :func:`resolve_fixed`,
:func:`clean_inputs`, :func:`label_bounds` and :func:`starting_points`).

Columns
-------
``ID``
    Spectrum id, copied from ``batch.meta['ID']``.
``<LABEL>`` (one per emulator label, e.g. ``TEFF`` [K], ``LOGG`` [dex], ``VMIC`` [km/s], ``FE_H`` [dex],
``MG_FE`` [dex] …)
    Best-fit label (the lowest χ² over the starting points). NaN when the spectrum could not be fitted
    (``STATUS`` 3, see ``FLAG``).
``<LABEL>_ERR`` (same unit)
    Formal 1σ error, ``sqrt(diag((JᵀWJ)⁻¹))`` with ``J`` the emulator Jacobian at the solution and
    ``W = diag(ivar)``. NaN for labels held fixed and for unfitted spectra.
``COVAR`` (float32, shape ``(n_label, n_label)`` per row, physical units, label order of
``table.meta['LABELS']``)
    Full formal covariance ``(JᵀWJ)⁻¹``; rows/columns of fixed labels are NaN.
``CHI2``
    ``Σ ivar (f_obs − f_model)²`` at the solution, over the good pixels.
``RCHI2``
    ``CHI2 / (N_PIX − n_free)`` with ``n_free`` the number of fitted (not fixed) labels.
``N_PIX``
    Number of good pixels (finite flux, finite ``ivar > 0``) used in the fit.
``QFLAG_CHI2``
    Paper Eq. 4: ``(CHI2 − median) / MAD`` over stars of similar S/N; ``< 3`` marks a good fit. A fitter
    computes it within the batch it was given; the executor recomputes it over the whole catalogue
    (:func:`ddpayne.fit.quality.add_quality_columns`). NaN when too few spectra share the S/N bin.
``STATUS``
    0 converged; 1 stopped at the iteration limit (labels usable, check ``RCHI2``); 2 the fit failed
    (non-finite model or singular system); 3 not fitted (empty or unusable input; see ``FLAG``).
``CONVERGED``
    ``STATUS == 0``.
``N_ITER``
    Levenberg–Marquardt iterations of the winning starting point (function+Jacobian evaluations).
``BEST_START``
    Index of the winning starting point in ``table.meta['STARTS']``.
``SNR``
    Median per-pixel S/N copied from the batch (used for the S/N bins of ``QFLAG_CHI2``).
``COVERAGE_DIST``
    Distance from the solution to the nearest training star in scaled label space (NaN when the
    training labels are unknown); see :func:`ddpayne.fit.quality.coverage_distance`.
``FLAG``
    :class:`ddpayne.flags.Flag` bits: the input batch's bits, plus ``ALL_MASKED`` (no good pixel),
    ``FIT_FAILED`` (``STATUS`` 2 or 3), ``AT_BOUND`` (a fitted label at the edge of the allowed range),
    ``OUT_OF_COVERAGE`` (``COVERAGE_DIST`` beyond the threshold), ``CHI2_OUTLIER`` (``QFLAG_CHI2 ≥ 3``),
    ``BELOW_FEH_FLOOR`` (any ``ABUND_FLAG`` bit set).
``ABUND_FLAG``
    Per-element bits (:data:`ddpayne.fit.quality.ABUND_FLAG_BITS`: bit ``i`` for
    ``ddpayne.labels.ABUNDANCE_LABELS[i]``, i.e. C=1, N=2, O=4, Mg=8, Al=16, Si=32, Ca=64, Ti=128,
    Cr=256, Mn=512, Ni=1024): set when ``FE_H`` is below that element's floor
    (:data:`ddpayne.labels.FE_H_FLOORS`), or the abundance itself is at a bound.
``BOUND_MASK``
    Per-label bits (bit ``k`` for label ``k`` of ``table.meta['LABELS']``): the label is at a bound.
"""
from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from astropy.table import Column, Table

from ..exceptions import IncompatibleModelError
from ..flags import Flag
from ..labels import LABEL_UNIT_STRINGS

log = logging.getLogger(__name__)

#: STATUS values.
STATUS_CONVERGED = 0
STATUS_MAX_ITER = 1
STATUS_FAILED = 2
STATUS_NOT_FITTED = 3

#: Named starting points (physical units) used by the multi-start policy; labels not named take the
#: middle of the training range. Clipped to the fit bounds.
NAMED_STARTS: dict[str, dict[str, float]] = {
    "dwarf": {"TEFF": 5800.0, "LOGG": 4.4, "VMIC": 1.0, "FE_H": 0.0},
    "giant": {"TEFF": 4700.0, "LOGG": 2.4, "VMIC": 1.5, "FE_H": -0.3},
    "metal_poor": {"TEFF": 5600.0, "LOGG": 3.0, "VMIC": 1.5, "FE_H": -1.8,
                   "O_FE": 0.3, "MG_FE": 0.3, "SI_FE": 0.3, "CA_FE": 0.3, "TI_FE": 0.25},
}


def check_grid(emulator, batch, rtol: float = 1e-7) -> None:
    """Raise :class:`~ddpayne.exceptions.IncompatibleModelError` unless the batch is on the model's grid.

    Parameters
    ----------
    emulator : Emulator
    batch : SpectrumBatch
    rtol : float
        Relative tolerance on each wavelength.
    """
    w_model = np.asarray(emulator.wavelength, dtype=float)
    w_batch = np.asarray(batch.wavelength, dtype=float)
    src = batch.provenance.get("source", batch.provenance.get("path", "the spectrum batch"))
    if w_model.shape != w_batch.shape:
        raise IncompatibleModelError(
            f"{src}: spectra have {w_batch.size} pixels ({w_batch.min():.2f}-{w_batch.max():.2f} Å) but the "
            f"emulator {type(emulator).__name__} predicts {w_model.size} pixels "
            f"({w_model.min():.2f}-{w_model.max():.2f} Å); prepare (resample) the spectra for this model with "
            "ddpayne.pipeline.apply.prepare_for_model (or fit them with fit_files / ddpayne fit FILES --model)")
    if not np.allclose(w_model, w_batch, rtol=rtol, atol=0.0):
        bad = int(np.argmax(np.abs(w_model - w_batch)))
        raise IncompatibleModelError(
            f"{src}: wavelength grid differs from the emulator's (pixel {bad}: {w_batch[bad]:.4f} Å vs "
            f"{w_model[bad]:.4f} Å); prepare (resample) the spectra for this model with "
            "ddpayne.pipeline.apply.prepare_for_model (or fit them with fit_files / ddpayne fit FILES --model)")


def clean_inputs(batch) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Flux and ivar ready for fitting, with per-spectrum input flags.

    Non-finite flux, non-finite or negative ivar become bad pixels (``ivar = 0``); the count of such
    pixels is logged with the spectrum ids.

    Returns
    -------
    flux, ivar : ndarray (n, n_pix), float64
    n_good : ndarray (n,), int
        Number of good pixels.
    flags : ndarray (n,), int64
        The batch's ``FLAG`` (0 when absent) with ``ALL_MASKED`` added for spectra without good pixels.
    """
    flux = np.asarray(batch.flux, dtype=np.float64)
    ivar = np.asarray(batch.ivar, dtype=np.float64)
    bad_ivar = ~np.isfinite(ivar)
    bad = bad_ivar | ~np.isfinite(flux) | (ivar <= 0)
    n_nan = bad_ivar.sum(axis=1)
    if np.any(n_nan):
        ids = np.asarray(batch.meta["ID"])[n_nan > 0]
        log.warning("%d spectra have non-finite ivar (masked as bad pixels): %s", len(ids),
                    ", ".join(map(str, ids[:10])) + (" ..." if len(ids) > 10 else ""))
    ivar = np.where(bad, 0.0, ivar)
    flux = np.where(bad, 0.0, flux)
    n_good = (ivar > 0).sum(axis=1)
    flags = (np.asarray(batch.meta["FLAG"], dtype=np.int64).copy() if "FLAG" in batch.meta.colnames
             else np.zeros(len(batch), dtype=np.int64))
    flags[n_good == 0] |= int(Flag.ALL_MASKED)
    return flux, ivar, n_good, flags


def resolve_fixed(label_names: Sequence[str], fixed: Mapping[str, object] | None,
                  n_spec: int) -> tuple[np.ndarray, np.ndarray]:
    """Turn ``{label: value or per-spectrum array}`` into a mask and a value array.

    Returns
    -------
    mask : ndarray (n_label,), bool
        True for fixed labels.
    values : ndarray (n_spec, n_label)
        The fixed values (NaN where not fixed).

    Raises
    ------
    IncompatibleModelError
        A fixed label that the model does not have (naming it and the model's labels).
    ValueError
        A per-spectrum array of the wrong length or a non-finite value.
    """
    names = list(label_names)
    mask = np.zeros(len(names), dtype=bool)
    values = np.full((n_spec, len(names)), np.nan)
    for key, val in (fixed or {}).items():
        if key not in names:
            raise IncompatibleModelError(
                f"cannot fix label {key!r}: the emulator has no such label (its labels are {names})")
        k = names.index(key)
        arr = np.asarray(val, dtype=float)
        if arr.ndim == 0:
            arr = np.full(n_spec, float(arr))
        if arr.shape != (n_spec,):
            raise ValueError(f"fixed value for {key!r} must be a scalar or have {n_spec} entries, "
                             f"got shape {arr.shape}")
        if not np.all(np.isfinite(arr)):
            raise ValueError(f"fixed value for {key!r} contains non-finite values")
        mask[k] = True
        values[:, k] = arr
    if mask.all():
        raise ValueError("all labels are fixed; nothing to fit")
    return mask, values


def label_bounds(emulator, margin: float = 0.05) -> tuple[np.ndarray, np.ndarray]:
    """Fit bounds: the training range widened by ``margin`` × its width on each side."""
    lo = np.asarray(emulator.label_min, dtype=float)
    hi = np.asarray(emulator.label_max, dtype=float)
    width = hi - lo
    return lo - margin * width, hi + margin * width


def starting_points(emulator, starts: Sequence[str] = ("dwarf", "giant", "metal_poor", "mean"),
                    margin: float = 0.05) -> tuple[list[str], np.ndarray]:
    """The multi-start initial labels, in physical units, clipped to the fit bounds.

    Parameters
    ----------
    emulator : Emulator
    starts : sequence of str or array
        Names from :data:`NAMED_STARTS` and ``"mean"`` (the emulator's ``label_mean`` attribute when it
        has one, else the middle of the training range).
    margin : float
        As in :func:`label_bounds`.

    Returns
    -------
    names : list of str
    x0 : ndarray (n_start, n_label)
    """
    names = list(emulator.label_names)
    lo, hi = label_bounds(emulator, margin)
    mid = 0.5 * (np.asarray(emulator.label_min, float) + np.asarray(emulator.label_max, float))
    mean = getattr(emulator, "label_mean", None)
    mean = mid if mean is None else np.asarray(mean, dtype=float)
    rows, out_names = [], []
    for s in starts:
        if isinstance(s, str):
            if s == "mean":
                row = mean.copy()
            elif s in NAMED_STARTS:
                row = mean.copy()
                for key, val in NAMED_STARTS[s].items():
                    if key in names:
                        row[names.index(key)] = val
            else:
                raise ValueError(f"unknown starting point {s!r}; known: {sorted(NAMED_STARTS)} and 'mean'")
            out_names.append(s)
        else:
            row = np.asarray(s, dtype=float)
            if row.shape != (len(names),):
                raise ValueError(f"a starting point must have {len(names)} labels, got {row.shape}")
            out_names.append("custom")
        rows.append(np.clip(row, lo, hi))
    return out_names, np.array(rows)


@dataclass
class FitInputs:
    """Everything a fitter needs from ``(emulator, batch, fixed)``, checked once (:func:`prepare_fit`)."""

    label_names: list[str]
    fixed_mask: np.ndarray      # (n_label,) bool
    fixed_vals: np.ndarray      # (n_spec, n_label), NaN where not fixed
    flux: np.ndarray            # (n_spec, n_pix) float64, bad pixels 0
    ivar: np.ndarray            # (n_spec, n_pix) float64, bad pixels 0
    n_good: np.ndarray          # (n_spec,) good pixels
    flags: np.ndarray           # (n_spec,) input FLAG bits (+ ALL_MASKED)
    lower: np.ndarray           # (n_label,) fit bounds
    upper: np.ndarray
    start_names: list[str]
    starts: np.ndarray          # (n_start, n_label) starting labels

    @property
    def n_free(self) -> int:
        """Number of fitted (not fixed) labels."""
        return int((~self.fixed_mask).sum())


def prepare_fit(emulator, batch, fixed: Mapping[str, object] | None = None,
                starts: Sequence = ("dwarf", "giant", "metal_poor", "mean"), margin: float = 0.05) -> FitInputs:
    """The input handling shared by every fitter: grid check, fixed labels, cleaned flux/ivar, bounds, starts.

    Parameters
    ----------
    emulator : Emulator
    batch : SpectrumBatch
    fixed : mapping, optional
        ``{label: value or per-spectrum array}`` held fixed (:func:`resolve_fixed`).
    starts : sequence
        Starting points (:func:`starting_points`).
    margin : float
        Bound margin (:func:`label_bounds`).

    Raises
    ------
    IncompatibleModelError
        The batch is on another grid (:func:`check_grid`), or a fixed label is not one of the model's.
    """
    check_grid(emulator, batch)
    names = list(emulator.label_names)
    fixed_mask, fixed_vals = resolve_fixed(names, fixed, len(batch))
    flux, ivar, n_good, flags = clean_inputs(batch)
    lo, hi = label_bounds(emulator, margin)
    start_names, x0 = starting_points(emulator, starts, margin)
    return FitInputs(names, fixed_mask, fixed_vals, flux, ivar, n_good, flags, lo, hi, start_names, x0)


def build_result_table(ids, label_names: Sequence[str], labels: np.ndarray, covar: np.ndarray,
                       chi2: np.ndarray, n_pix: np.ndarray, n_free: int, status: np.ndarray,
                       n_iter: np.ndarray, flags: np.ndarray, best_start: np.ndarray | None = None,
                       snr: np.ndarray | None = None, meta: Mapping | None = None) -> Table:
    """Assemble the result table described in this module's docstring.

    ``QFLAG_CHI2``, ``COVERAGE_DIST``, ``ABUND_FLAG`` and ``BOUND_MASK`` are created empty (NaN/0) and
    filled by :func:`ddpayne.fit.quality.add_quality_columns`.
    """
    n = len(chi2)
    names = list(label_names)
    covar = np.asarray(covar, dtype=float)
    t = Table(meta=dict(meta or {}))
    t.meta["LABELS"] = names
    t["ID"] = Column(np.asarray(ids), description="Spectrum id (from the input batch)")
    for k, name in enumerate(names):
        unit = LABEL_UNIT_STRINGS.get(name)
        t[name] = Column(labels[:, k], unit=unit, description=f"Best-fit {name}")
    with np.errstate(invalid="ignore"):
        err = np.sqrt(np.einsum("nkk->nk", covar))
    for k, name in enumerate(names):
        unit = LABEL_UNIT_STRINGS.get(name)
        t[f"{name}_ERR"] = Column(err[:, k], unit=unit,
                                  description=f"Formal 1-sigma error of {name}, sqrt(diag((J^T W J)^-1))")
    t["COVAR"] = Column(covar.astype(np.float32),
                        description="Formal covariance (J^T W J)^-1, physical units, label order of "
                                    "meta['LABELS']")
    t["CHI2"] = Column(chi2, description="sum ivar (f_obs - f_model)^2 over good pixels")
    dof = np.maximum(np.asarray(n_pix) - n_free, 1)
    t["RCHI2"] = Column(np.asarray(chi2) / dof, description="CHI2 / (N_PIX - number of fitted labels)")
    t["N_PIX"] = Column(np.asarray(n_pix, dtype=np.int32), description="Number of good pixels used")
    t["QFLAG_CHI2"] = Column(np.full(n, np.nan),
                             description="(CHI2 - median)/MAD within S/N bins (paper Eq. 4); < 3 is good")
    status = np.asarray(status, dtype=np.int16)
    t["STATUS"] = Column(status, description="0 converged, 1 iteration limit, 2 failed, 3 not fitted")
    t["CONVERGED"] = Column(status == STATUS_CONVERGED, description="STATUS == 0")
    t["N_ITER"] = Column(np.asarray(n_iter, dtype=np.int32), description="Iterations of the best start")
    t["BEST_START"] = Column(np.full(n, -1, np.int16) if best_start is None
                             else np.asarray(best_start, dtype=np.int16),
                             description="Index of the winning starting point in meta['STARTS']")
    t["SNR"] = Column(np.full(n, np.nan) if snr is None else np.asarray(snr, dtype=float),
                      description="Median per-pixel S/N of the input spectrum")
    t["COVERAGE_DIST"] = Column(np.full(n, np.nan),
                                description="Nearest-neighbour distance to the training labels "
                                            "(scaled label space)")
    flags = np.asarray(flags, dtype=np.int64).copy()
    flags[status >= STATUS_FAILED] |= int(Flag.FIT_FAILED)
    t["FLAG"] = Column(flags, description="ddpayne.flags.Flag bits")
    t["ABUND_FLAG"] = Column(np.zeros(n, dtype=np.int32),
                             description="Per-element bits: [Fe/H] below the element's floor or at bound")
    t["BOUND_MASK"] = Column(np.zeros(n, dtype=np.int32),
                             description="Per-label bits (meta['LABELS'] order): label at a bound")
    return t


def empty_result_table(emulator, batch, meta: Mapping | None = None) -> Table:
    """A result table of unfitted rows (NaN labels, ``STATUS`` 3) for ``batch``."""
    n, L = len(batch), len(emulator.label_names)
    _, _, n_good, flags = clean_inputs(batch)
    return build_result_table(batch.meta["ID"], emulator.label_names, np.full((n, L), np.nan),
                              np.full((n, L, L), np.nan), np.full(n, np.nan), n_good, L,
                              np.full(n, STATUS_NOT_FITTED), np.zeros(n), flags,
                              snr=batch.meta["SNR"] if "SNR" in batch.meta.colnames else None, meta=meta)


def _json_meta(meta: Mapping) -> str:
    import json

    def default(o):
        if isinstance(o, np.ndarray):
            return o.tolist()
        if isinstance(o, np.generic):
            return o.item()
        return str(o)

    return json.dumps(dict(meta), default=default)


def result_table_hdu(table: Table):
    """A FITS binary-table HDU of a result table, with ``table.meta`` kept as JSON (keyword ``FITMETA``)."""
    from astropy.io import fits

    t = table.copy(copy_data=False)
    t.meta = {}
    units = {}
    for c in t.colnames:  # FITS has no 'dex'; write the unit strings as they are (TUNITn)
        if t[c].unit is not None:
            units[c] = t[c].unit.to_string()
            t[c].unit = None
    hdu = fits.table_to_hdu(t)
    for i, c in enumerate(t.colnames, start=1):
        if c in units:
            hdu.header[f"TUNIT{i}"] = units[c]
    hdu.name = "FIT"
    hdu.header["FITMETA"] = _json_meta(table.meta)
    return hdu


def write_result_table(table: Table, path, overwrite: bool = True) -> None:
    """Write a result table to FITS atomically (meta kept as JSON in ``FITMETA``)."""
    from astropy.io import fits

    from ..io.atomic import atomic_path

    hdul = fits.HDUList([fits.PrimaryHDU(), result_table_hdu(table)])
    with atomic_path(path, overwrite=overwrite) as tmp:
        hdul.writeto(tmp)


def read_result_table(path) -> Table:
    """Read a result table written by :func:`write_result_table` (or the executor), restoring its meta."""
    import json

    from astropy.io import fits

    with fits.open(path, memmap=False) as h:
        name = "FIT" if "FIT" in h else 1
        raw_meta = h[name].header.get("FITMETA", "{}")
    import astropy.units as u

    t = Table.read(path, hdu=name, character_as_bytes=False, unit_parse_strict="silent",
                   mask_invalid=False)
    for c in t.colnames:
        if t[c].unit is not None:
            t[c].unit = u.Unit(str(t[c].unit), parse_strict="silent")
    t.meta.clear()
    t.meta.update(json.loads(raw_meta))
    return t
