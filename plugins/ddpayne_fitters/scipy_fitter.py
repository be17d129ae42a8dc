"""Reference fitter: one ``scipy.optimize.least_squares`` call per spectrum and starting point.

This is what The Payne does (Ting et al. 2019: per-spectrum bounded least squares on the emulator),
kept as the correctness reference and the speed baseline for :mod:`.lm`. It uses the same starting
points, bounds, fixed-label handling, covariance definition and result table as the batched fitter;
only the optimiser differs (scipy's trust-region-reflective ``trf`` with the emulator's exact
Jacobian, labels scaled by the bound range through ``x_scale``).
"""
from __future__ import annotations

import logging
import time
from collections.abc import Mapping, Sequence

import numpy as np

from ddpayne.fit import quality, results
from ddpayne.fit.fitter import Fitter

log = logging.getLogger(__name__)


class ScipyFitter(Fitter):
    """Per-spectrum ``scipy.optimize.least_squares`` (``trf``) fitter, multi-start.

    Parameters
    ----------
    starts, margin
        As :class:`.lm.BatchedLMFitter`.
    ftol, xtol, gtol : float
        Passed to ``least_squares``.
    max_nfev : int, optional
        Passed to ``least_squares``.
    training_labels, coverage_quantile, coverage_factor, coverage_labels, qflag_n_per_bin
        As :class:`.lm.BatchedLMFitter`.
    progress : bool
        tqdm bar over spectra.
    """

    name = "scipy"

    def __init__(self, starts: Sequence = ("dwarf", "giant", "metal_poor", "mean"), margin: float = 0.05,
                 ftol: float = 1e-8, xtol: float = 1e-8, gtol: float = 1e-8, max_nfev: int | None = None,
                 training_labels=None, coverage_quantile: float = 0.99, coverage_factor: float = 1.5,
                 coverage_labels: Sequence[str] | None = ("TEFF", "LOGG", "FE_H"),
                 qflag_n_per_bin: int = 500, progress: bool = False):
        self.starts = tuple(starts)
        self.margin = float(margin)
        self.ftol, self.xtol, self.gtol = ftol, xtol, gtol
        self.max_nfev = max_nfev
        self.training_labels = training_labels
        self.coverage_quantile, self.coverage_factor = coverage_quantile, coverage_factor
        self.coverage_labels = None if coverage_labels is None else tuple(coverage_labels)
        self.qflag_n_per_bin = int(qflag_n_per_bin)
        self.progress = progress
        self.stats: dict[str, float] = {}

    def fit(self, emulator, batch, fixed: Mapping[str, object] | None = None):
        """Fit every spectrum of ``batch``; see :meth:`.lm.BatchedLMFitter.fit`."""
        import torch
        from scipy.optimize import least_squares

        inp = results.prepare_fit(emulator, batch, fixed, self.starts, self.margin)
        names, fixed_mask, fixed_vals = inp.label_names, inp.fixed_mask, inp.fixed_vals
        flux, ivar, n_good, flags = inp.flux, inp.ivar, inp.n_good, inp.flags
        lo, hi, start_names, x0s, n_free = inp.lower, inp.upper, inp.start_names, inp.starts, inp.n_free
        L, n = len(names), len(batch)
        free = ~fixed_mask
        scale = (hi - lo)[free]
        labels = np.full((n, L), np.nan)
        covar = np.full((n, L, L), np.nan)
        chi2 = np.full(n, np.nan)
        status = np.full(n, results.STATUS_NOT_FITTED, dtype=np.int16)
        n_iter = np.zeros(n, dtype=np.int32)
        best = np.full(n, -1, dtype=np.int16)
        dtype = emulator.dtype
        nfev_total = 0
        t0 = time.perf_counter()
        it = range(n)
        if self.progress:
            from tqdm.auto import tqdm
            it = tqdm(it, unit="spec", desc="scipy fit")
        for i in it:
            good = ivar[i] > 0
            if good.sum() <= n_free:
                continue
            sw = np.sqrt(ivar[i][good])
            fo = flux[i][good]
            base = np.where(fixed_mask, fixed_vals[i], 0.0)
            cache: dict = {}

            def model(p, base=base, good=good, cache=cache):
                key = p.tobytes()
                if cache.get("key") != key:
                    full = base.copy()
                    full[free] = p
                    with torch.no_grad():
                        f, J = emulator.jacobian(torch.as_tensor(full[None], dtype=dtype))
                    cache.update(key=key, f=f.detach().cpu().numpy()[0][good].astype(float),
                                 J=J.detach().cpu().numpy()[0][good][:, free].astype(float))
                return cache["f"], cache["J"]

            def fun(p, sw=sw, fo=fo):
                return sw * (model(p)[0] - fo)

            def jac(p, sw=sw):
                return sw[:, None] * model(p)[1]

            best_cost, best_res, best_k = np.inf, None, -1
            for k, x0 in enumerate(x0s):
                p0 = np.where(fixed_mask, fixed_vals[i], x0)[free]
                try:
                    res = least_squares(fun, p0, jac=jac, bounds=(lo[free], hi[free]), method="trf",
                                        x_scale=scale, ftol=self.ftol, xtol=self.xtol, gtol=self.gtol,
                                        max_nfev=self.max_nfev)
                except (ValueError, np.linalg.LinAlgError) as exc:
                    log.warning("spectrum %s start %d: least_squares failed: %s", batch.meta["ID"][i], k, exc)
                    continue
                nfev_total += res.nfev
                if np.isfinite(res.cost) and res.cost < best_cost:
                    best_cost, best_res, best_k = res.cost, res, k
            if best_res is None:
                status[i] = results.STATUS_FAILED
                continue
            full = np.where(fixed_mask, fixed_vals[i], 0.0)
            full[free] = best_res.x
            labels[i] = full
            f, J = model(best_res.x)
            Jw = sw[:, None] * J * scale[None, :]
            A = Jw.T @ Jw
            try:
                cf = np.linalg.inv(A)
            except np.linalg.LinAlgError:
                cf = np.linalg.pinv(A)
            cf = cf * np.outer(scale, scale)
            c = np.full((L, L), np.nan)
            c[np.ix_(free, free)] = cf
            covar[i] = c
            chi2[i] = 2.0 * best_res.cost
            status[i] = results.STATUS_CONVERGED if best_res.status > 0 else results.STATUS_MAX_ITER
            n_iter[i] = best_res.nfev
            best[i] = best_k
        self.stats = {"seconds": time.perf_counter() - t0, "evaluations": nfev_total, "problems": n * len(x0s)}
        meta = {"FITTER": self.name, "STARTS": start_names, "LOWER": lo.tolist(), "UPPER": hi.tolist(),
                "FIXED": fixed_mask.tolist(), "MARGIN": self.margin}
        table = results.build_result_table(batch.meta["ID"], names, labels, covar, chi2, n_good, n_free,
                                           status, n_iter, flags, best_start=best,
                                           snr=batch.meta["SNR"] if "SNR" in batch.meta.colnames else None,
                                           meta=meta)
        tl = self.training_labels if self.training_labels is not None else getattr(emulator, "training_labels",
                                                                                   None)
        coverage = (None if tl is None else
                    quality.CoverageModel(tl, emulator.label_min, emulator.label_max,
                                          quantile=self.coverage_quantile, factor=self.coverage_factor,
                                     columns=quality.coverage_columns(emulator.label_names, self.coverage_labels)))
        quality.add_quality_columns(table, lo, hi, fixed_mask, coverage=coverage, n_per_bin=self.qflag_n_per_bin)
        return table
