"""Batched Levenberg–Marquardt fitter: many spectra, many starting points, one torch loop.

Every spectrum is fitted from several starting points (dwarf, giant, metal-poor, training mean) at
once: the ``n_spec × n_start`` problems are stacked on the leading axis of the emulator call, so a
single :meth:`Emulator.jacobian` evaluation per iteration serves all of them. Each problem has its
own damping λ and its own convergence test; converged problems drop out of the active set, so late
iterations cost only what is still moving. After ``prune_after`` iterations only the lowest-χ² start of
each spectrum continues (set ``prune_after=None`` to run every start to convergence).

Algorithm (Marquardt 1963, with bounds by projection). With ``r = f_obs − f(ℓ)``, ``W = diag(ivar)``,
``A = JᵀWJ``, ``g = JᵀWr`` (``J`` the emulator's exact Jacobian), a trial step solves
``(A + λ D) δ = g`` in labels scaled by the bound range (``D = diag(A)``, floored); labels at a bound
whose gradient points outward are held for that step; the trial is clipped to the bounds and
accepted when it lowers χ². The damping follows the gain ratio ρ = (actual χ² decrease) / (decrease
predicted by the linear model, ``2gᵀδ − δᵀAδ``) (Nielsen 1999; Madsen, Nielsen & Tingleff 2004,
"Methods for non-linear least squares problems", §3.2): on acceptance λ ← λ·max(1/3, 1 − (2ρ − 1)³),
on rejection λ ← λ·ν with ν doubling (``damping="marquardt"``: the fixed ÷5 / ×10). A problem converges
when the undamped Gauss–Newton step from its current point predicts a χ² decrease ``gᵀA⁻¹g`` below
``gn_tol`` (then χ² is above the minimum by about that much, so no further evaluation is spent), when an
accepted step changes χ² by less than ``max(ftol × χ², chi2_atol)`` or moves every scaled label by less
than ``xtol``, or when λ exceeds ``lambda_max`` (no step can lower χ²: a minimum to working precision).
Formal covariance: ``(JᵀWJ)⁻¹`` at the solution, free labels only.

Cost: one emulator evaluation (flux + Jacobian + the normal equations) per iteration for all active
problems together; with the ``mlp`` emulator this is its fused, cache-blocked ``normal_equations``.
Residuals and χ² are float64; the network runs in its own dtype (float32 for speed). On a machine
shared with other jobs use one torch thread per process (``torch.set_num_threads(1)``; the executor's
parallel backends do this): the many short parallel regions of a batched evaluation stall when one of
the two cores is busy (docs/performance_fit.rst: ×10 slower with 2 threads at load ≈ 8).
"""
from __future__ import annotations

import logging
import math
import time
import warnings
from collections.abc import Mapping, Sequence

import numpy as np

from ddpayne.fit import quality, results
from ddpayne.fit.fitter import Fitter

log = logging.getLogger(__name__)


def resolve_device(device: str | None):
    """``"auto"`` → CUDA when available, else CPU; ``"cuda"`` without a GPU → CPU with a warning."""
    import torch

    device = "auto" if device is None else str(device)
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    dev = torch.device(device)
    if dev.type == "cuda" and not torch.cuda.is_available():
        warnings.warn(f"device {device!r} was requested but CUDA is not available; fitting on the CPU",
                      RuntimeWarning, stacklevel=3)
        return torch.device("cpu")
    return dev


def move_emulator(emulator, device) -> None:
    """Move an emulator to ``device`` when it can move (has a ``to`` method); raise if it cannot."""
    current = getattr(emulator, "device", None)
    if current is not None and str(current) == str(device):
        return
    if hasattr(emulator, "to"):
        emulator.to(device)
    elif device.type != "cpu":
        raise RuntimeError(f"emulator {type(emulator).__name__} cannot be moved to {device} (no .to method)")


def _accepts_pixels(emulator) -> bool:
    """Whether ``emulator.jacobian`` takes a ``pixels`` keyword (evaluation on a pixel subset)."""
    import inspect

    try:
        return "pixels" in inspect.signature(emulator.jacobian).parameters
    except (TypeError, ValueError):
        return False


class _Problems:
    """State of a stack of LM problems (one row per spectrum × start)."""

    def __init__(self, x, spec, chi2, A, g, lam):
        import torch

        self.x, self.spec, self.chi2, self.A, self.g, self.lam = x, spec, chi2, A, g, lam
        self.nu = torch.full_like(lam, 2.0)
        m = x.shape[0]
        self.done = torch.zeros(m, dtype=torch.bool, device=x.device)
        self.failed = ~torch.isfinite(chi2)
        self.done |= self.failed
        self.n_iter = torch.zeros(m, dtype=torch.int32, device=x.device)

    def take(self, idx) -> "_Problems":
        new = object.__new__(_Problems)
        for key in ("x", "spec", "chi2", "A", "g", "lam", "nu", "done", "failed", "n_iter"):
            setattr(new, key, getattr(self, key)[idx])
        return new


class BatchedLMFitter(Fitter):
    """Batched, multi-start, bounded Levenberg–Marquardt fitter (torch; CPU or CUDA).

    Parameters
    ----------
    device : str
        ``"cpu"``, ``"cuda"``, ``"cuda:1"`` or ``"auto"`` (CUDA when available). The emulator is moved
        there when it has a ``to`` method.
    chunk_size : int
        Spectra fitted together; ``chunk_size × len(starts)`` problems share each emulator call, which
        bounds memory (the emulator Jacobian is ``n_pix × n_label`` numbers per problem).
    starts : sequence
        Starting points: names of :data:`ddpayne.fit.results.NAMED_STARTS`, ``"mean"``, or label arrays.
    margin : float
        Labels are bounded to the emulator's training range widened by ``margin`` × its width.
    max_iter : int
        Iteration limit per problem (``STATUS`` 1 when reached).
    prune_after : int or None
        Iterations after which only each spectrum's best start continues (None: all run to the end).
    ftol, xtol : float
        Convergence tolerances (relative χ² change; step in range-scaled labels).
    chi2_atol : float
        Absolute χ² change below which an accepted step counts as converged (default 1e-3: the labels
        then move by ≪ 0.1 σ, statistically nothing).
    lambda0, lambda_max : float
        Initial damping; damping at which a problem is declared converged (no improving step exists).
    training_labels : array (n_train, n_label), optional
        Training labels for the coverage flag; default the emulator's ``training_labels`` attribute
        when it has one (no coverage flag otherwise).
    coverage_quantile, coverage_factor : float
        Coverage threshold (see :class:`ddpayne.fit.quality.CoverageModel`).
    coverage_labels : sequence of str or None
        Labels spanning the coverage space (default TEFF, LOGG, FE_H: the atmospheric parameters that
        define where the training set lives; None: all labels — in 15 dimensions nearest-neighbour
        distances are large for every star and the flag loses power).
    qflag_n_per_bin : int
        Stars per S/N bin for ``QFLAG_CHI2`` within the batch.
    pixel_block : int or None
        Pixels per block. For an emulator with a fused ``normal_equations`` method (``mlp``) None lets
        the emulator choose cache-sized blocks (recommended). For other emulators that support pixel
        subsets (``jacobian(x, pixels=...)``), ``JᵀWJ`` and ``JᵀWr`` are accumulated over blocks of this
        many pixels (None: 1024), so memory does not scale with ``n_pix × chunk``.
    probe_stride : int
        During the multi-start probe (the first ``prune_after`` iterations, all starts) use every
        ``probe_stride``-th pixel only, when the emulator supports pixel subsets: the probe only has to
        rank the starts' basins. The winners are then re-evaluated and iterated on all pixels, so the
        final labels, χ² and errors are full-resolution ones. 1 disables it.
    damping : {'nielsen', 'marquardt'}
        Damping update: gain-ratio (default) or Marquardt's fixed factors.
    gn_tol : float or None
        Converged when the undamped Gauss–Newton step predicts a χ² decrease below this (absolute χ²;
        default 1e-4, i.e. labels within ~0.01 σ of the minimum). None disables the rule.
    progress : bool
        Show a tqdm bar over chunks.
    """

    name = "lm"

    def __init__(self, device: str = "cpu", chunk_size: int = 64,
                 starts: Sequence = ("dwarf", "giant", "metal_poor", "mean"), margin: float = 0.05,
                 max_iter: int = 100, prune_after: int | None = 4, ftol: float = 1e-9, xtol: float = 1e-6,
                 chi2_atol: float = 1e-3,
                 lambda0: float = 1e-2, lambda_max: float = 1e10, training_labels=None,
                 coverage_quantile: float = 0.99, coverage_factor: float = 1.5,
                 coverage_labels: Sequence[str] | None = ("TEFF", "LOGG", "FE_H"), qflag_n_per_bin: int = 500,
                 pixel_block: int | None = None, probe_stride: int = 4, damping: str = "nielsen",
                 gn_tol: float | None = 1e-4, progress: bool = False):
        if chunk_size < 1:
            raise ValueError(f"chunk_size must be >= 1, got {chunk_size}")
        self.device = device
        self.chunk_size = int(chunk_size)
        self.starts = tuple(starts)
        self.margin = float(margin)
        self.max_iter = int(max_iter)
        self.prune_after = None if prune_after is None else int(prune_after)
        self.ftol, self.xtol = float(ftol), float(xtol)
        self.chi2_atol = float(chi2_atol)
        self.lambda0, self.lambda_max = float(lambda0), float(lambda_max)
        self.training_labels = training_labels
        self.coverage_quantile, self.coverage_factor = coverage_quantile, coverage_factor
        self.coverage_labels = None if coverage_labels is None else tuple(coverage_labels)
        self.qflag_n_per_bin = int(qflag_n_per_bin)
        self.pixel_block = None if pixel_block is None else int(pixel_block)
        self.probe_stride = max(1, int(probe_stride))
        if damping not in ("nielsen", "marquardt"):
            raise ValueError(f"damping must be 'nielsen' or 'marquardt', got {damping!r}")
        self.damping = damping
        self.gn_tol = None if gn_tol is None else float(gn_tol)
        self.progress = progress
        #: statistics of the last :meth:`fit` call (problems, emulator calls, evaluations, seconds)
        self.stats: dict[str, float] = {}

    # ------------------------------------------------------------------ public
    def fit(self, emulator, batch, fixed: Mapping[str, object] | None = None):
        """Fit every spectrum of ``batch`` (a :class:`~ddpayne.io.batch.SpectrumBatch`).

        Parameters
        ----------
        emulator : Emulator
            On the batch's wavelength grid.
        batch : SpectrumBatch
        fixed : mapping, optional
            ``{label: value}`` (scalar, or one value per spectrum) held fixed.

        Returns
        -------
        astropy.table.Table
            One row per spectrum in input order; columns in :mod:`ddpayne.fit.results`.

        Raises
        ------
        IncompatibleModelError
            The batch is on another grid, or a fixed label is not one of the emulator's.
        """
        inp = results.prepare_fit(emulator, batch, fixed, self.starts, self.margin)
        names, fixed_mask, fixed_vals = inp.label_names, inp.fixed_mask, inp.fixed_vals
        flux, ivar, n_good, flags = inp.flux, inp.ivar, inp.n_good, inp.flags
        lo, hi, start_names, x0, n_free = inp.lower, inp.upper, inp.start_names, inp.starts, inp.n_free
        L, n = len(names), len(batch)
        dev = resolve_device(self.device)
        move_emulator(emulator, dev)

        labels = np.full((n, L), np.nan)
        covar = np.full((n, L, L), np.nan)
        chi2 = np.full(n, np.nan)
        status = np.full(n, results.STATUS_NOT_FITTED, dtype=np.int16)
        n_iter = np.zeros(n, dtype=np.int32)
        best = np.full(n, -1, dtype=np.int16)
        fittable = n_good > n_free
        idx_all = np.flatnonzero(fittable)
        stats = {"problems": 0, "evaluations": 0, "calls": 0, "seconds": 0.0}
        t0 = time.perf_counter()
        chunks = [idx_all[i:i + self.chunk_size] for i in range(0, idx_all.size, self.chunk_size)]
        bar = None
        if self.progress and chunks:
            from tqdm.auto import tqdm
            bar = tqdm(total=idx_all.size, unit="spec", desc="lm fit")
        for idx in chunks:
            out = self._fit_chunk(emulator, dev, flux[idx], ivar[idx], x0, fixed_mask, fixed_vals[idx],
                                  lo, hi, stats)
            labels[idx], covar[idx], chi2[idx], status[idx], n_iter[idx], best[idx] = out
            if bar is not None:
                bar.update(idx.size)
        if bar is not None:
            bar.close()
        stats["seconds"] = time.perf_counter() - t0
        self.stats = stats
        if np.any(~fittable):
            log.info("%d spectra not fitted (fewer good pixels than free labels)", int((~fittable).sum()))
        meta = {"FITTER": self.name, "STARTS": start_names, "LOWER": lo.tolist(), "UPPER": hi.tolist(),
                "FIXED": fixed_mask.tolist(), "MARGIN": self.margin}
        table = results.build_result_table(batch.meta["ID"], names, labels, covar, chi2, n_good, n_free,
                                           status, n_iter, flags, best_start=best,
                                           snr=batch.meta["SNR"] if "SNR" in batch.meta.colnames else None,
                                           meta=meta)
        coverage = self._coverage(emulator)
        quality.add_quality_columns(table, lo, hi, fixed_mask, coverage=coverage,
                                    n_per_bin=self.qflag_n_per_bin)
        return table

    # ------------------------------------------------------------------ internals
    def _coverage(self, emulator):
        tl = self.training_labels
        if tl is None:
            tl = getattr(emulator, "training_labels", None)
        if tl is None:
            return None
        return quality.CoverageModel(tl, emulator.label_min, emulator.label_max,
                                     quantile=self.coverage_quantile, factor=self.coverage_factor,
                                     columns=quality.coverage_columns(emulator.label_names, self.coverage_labels))

    def _evaluate(self, emulator, x, fobs, w, stats, stride: int = 1):
        """χ², A = JᵀWJ and g = JᵀWr (float64) at labels ``x``.

        Emulators with a fused ``normal_equations(labels, flux, ivar, pixels=, block=)`` method (the
        ``mlp`` emulator) compute the three in one cache-blocked pass. Otherwise, when the emulator's
        ``jacobian`` accepts ``pixels=`` and blocks are used, the sums run over pixel blocks of
        ``pixel_block`` (default 1024): memory per problem is then ``pixel_block × n_label`` instead of
        ``n_pix × n_label``.
        """
        import torch

        P = fobs.shape[1]
        m, L = x.shape[0], x.shape[1]
        with torch.no_grad():
            if hasattr(emulator, "normal_equations"):
                sel = slice(0, P, stride)
                fo, ww = (fobs, w) if stride == 1 else (fobs[:, sel], w[:, sel])
                chi2, A, g = emulator.normal_equations(x, fo, ww, pixels=sel, block=self.pixel_block)
                stats["evaluations"] += m * fo.shape[1] / P
                stats["calls"] += 1
                bad = ~torch.isfinite(chi2) | ~torch.isfinite(A).all(-1).all(-1) | ~torch.isfinite(g).all(-1)
                return torch.where(bad, torch.full_like(chi2, math.inf), chi2), A, g
            blocks = [None]
            if _accepts_pixels(emulator) and ((self.pixel_block or 1024) < P or stride > 1):
                step = self.pixel_block or 1024
                step = max(stride, step - step % stride)
                blocks = [slice(s, min(P, s + step), stride) for s in range(0, P, step)]
            chi2 = torch.zeros(m, dtype=torch.float64, device=x.device)
            A = torch.zeros((m, L, L), dtype=torch.float64, device=x.device)
            g = torch.zeros((m, L), dtype=torch.float64, device=x.device)
            n_used = 0
            for blk in blocks:
                if blk is None:
                    f, J = emulator.jacobian(x)
                    fo, ww = fobs, w
                else:
                    f, J = emulator.jacobian(x, pixels=blk)
                    fo, ww = fobs[:, blk], w[:, blk]
                n_used += fo.shape[1]
                sw = ww.sqrt()
                rs = (fo - f) * sw
                J = J * sw.unsqueeze(-1)
                Jt = J.transpose(1, 2)
                chi2 += (rs * rs).sum(-1).double()
                A += torch.bmm(Jt, J).double()
                g += torch.bmm(Jt, rs.unsqueeze(-1)).squeeze(-1).double()
                del f, J, Jt, rs
        stats["evaluations"] += m * n_used / P
        stats["calls"] += 1
        bad = ~torch.isfinite(chi2) | ~torch.isfinite(A).all(-1).all(-1) | ~torch.isfinite(g).all(-1)
        chi2 = torch.where(bad, torch.full_like(chi2, math.inf), chi2)
        return chi2, A, g

    def _fit_chunk(self, emulator, dev, flux, ivar, x0, fixed_mask, fixed_vals, lo, hi, stats):
        import torch

        dtype = emulator.dtype
        n, S, L = flux.shape[0], x0.shape[0], x0.shape[1]
        # observed flux and ivar stay float64: residuals and χ² are float64, the model in its own dtype
        fobs = torch.as_tensor(flux, dtype=torch.float64, device=dev)
        w = torch.as_tensor(ivar, dtype=torch.float64, device=dev)
        lo_t = torch.as_tensor(lo, dtype=torch.float64, device=dev)
        hi_t = torch.as_tensor(hi, dtype=torch.float64, device=dev)
        scale = hi_t - lo_t
        free = torch.as_tensor(~fixed_mask, device=dev)
        # problems: spectrum-major, start-minor
        x = np.repeat(x0[None], n, axis=0)                      # (n, S, L)
        fv = np.repeat(fixed_vals[:, None, :], S, axis=1)
        x = np.where(fixed_mask[None, None, :], fv, x).reshape(n * S, L)
        x = torch.as_tensor(x, dtype=torch.float64, device=dev)
        spec = torch.arange(n, device=dev).repeat_interleave(S)
        stats["problems"] += n * S
        probe = S > 1 and self.prune_after is not None and self.probe_stride > 1 and _accepts_pixels(emulator)
        stride = self.probe_stride if probe else 1
        chi2, A, g = self._evaluate(emulator, x.to(dtype), fobs[spec], w[spec], stats, stride)
        lam = torch.full((n * S,), self.lambda0, dtype=torch.float64, device=dev)
        P = _Problems(x, spec, chi2, A, g, lam)
        pruned = S == 1
        it = 0
        while True:
            act = torch.nonzero(~P.done).squeeze(1)
            if not pruned and (act.numel() == 0 or (self.prune_after is not None and it >= self.prune_after)):
                P = P.take(self._best_rows(P, n, S))
                pruned = True
                if stride > 1:  # the probe used a pixel subset: restart the winners on all pixels
                    stride = 1
                    c2, A2, g2 = self._evaluate(emulator, P.x.to(dtype), fobs[P.spec], w[P.spec], stats)
                    P.chi2, P.A, P.g = c2, A2, g2
                    P.done = P.failed | ~torch.isfinite(c2)
                    P.lam = torch.full_like(P.lam, self.lambda0)
                    P.nu = torch.full_like(P.lam, 2.0)
                continue
            if act.numel() == 0 or it >= self.max_iter:
                break
            it += 1
            xa, Aa, ga, la = P.x[act], P.A[act], P.g[act], P.lam[act]
            dx, dec0 = self._step(xa, Aa, ga, la, free, lo_t, hi_t, scale)
            if self.gn_tol is not None:
                # the undamped Gauss–Newton step predicts a χ² decrease below gn_tol: already at the
                # minimum (χ² above it by about that much); stop without another evaluation
                at_min = dec0 <= self.gn_tol
                if at_min.any():
                    P.done[act[at_min]] = True
                    keep = ~at_min
                    act, xa, Aa, ga, la, dx = act[keep], xa[keep], Aa[keep], ga[keep], la[keep], dx[keep]
                    if act.numel() == 0:
                        continue
            xt = torch.minimum(torch.maximum(xa + dx, lo_t), hi_t)
            xt = torch.where(free, xt, xa)
            dxe = xt - xa
            pred = 2 * (ga * dxe).sum(-1) - (dxe.unsqueeze(-2) @ Aa @ dxe.unsqueeze(-1))[:, 0, 0]
            sp = P.spec[act]
            c2, At, gt = self._evaluate(emulator, xt.to(dtype), fobs[sp], w[sp], stats, stride)
            P.n_iter[act] += 1
            old = P.chi2[act]
            accept = c2 < old
            dchi = old - c2
            step = ((xt - xa) / scale).abs().amax(-1)
            conv = accept & ((dchi <= torch.clamp(self.ftol * c2, min=self.chi2_atol)) | (step <= self.xtol))
            if self.damping == "nielsen":  # gain-ratio update (Nielsen 1999; Madsen, Nielsen & Tingleff 2004)
                nu = P.nu[act]
                rho = dchi / pred.clamp(min=1e-300)
                shrink = torch.clamp(1 - (2 * rho.clamp(max=1.0) - 1) ** 3, min=1 / 3)
                la = torch.where(accept, (la * shrink).clamp(min=1e-12), la * nu)
                P.nu[act] = torch.where(accept, torch.full_like(nu, 2.0), nu * 2)
            else:  # Marquardt's fixed factors
                la = torch.where(accept, (la / 5).clamp(min=1e-12), la * 10)
            stalled = la > self.lambda_max
            a_idx = act[accept]
            P.x[a_idx] = xt[accept]
            P.chi2[a_idx] = c2[accept]
            P.A[a_idx] = At[accept]
            P.g[a_idx] = gt[accept]
            P.lam[act] = la
            P.done[act] = conv | stalled
        if not pruned:  # iteration limit reached before pruning
            P = P.take(self._best_rows(P, n, S))
            if stride > 1:  # chi2 and errors on all pixels
                P.chi2, P.A, P.g = self._evaluate(emulator, P.x.to(dtype), fobs[P.spec], w[P.spec], stats)
        # P now has one row per spectrum, in order
        x = P.x
        cov = self._covariance(P.A, free, scale)
        status = torch.where(P.done, torch.zeros_like(P.n_iter), torch.ones_like(P.n_iter))
        status = torch.where(P.failed | ~torch.isfinite(P.chi2), torch.full_like(status, 2), status)
        x_np = x.cpu().numpy()
        cov_np = cov.cpu().numpy()
        chi2_np = P.chi2.cpu().numpy()
        failed = status.cpu().numpy() == 2
        x_np[failed] = np.nan
        cov_np[failed] = np.nan
        chi2_np[~np.isfinite(chi2_np)] = np.nan
        best_np = (self._last_best if S > 1 else np.zeros(n, dtype=np.int16))
        return (x_np, cov_np, chi2_np, status.cpu().numpy(), P.n_iter.cpu().numpy(), best_np)

    def _best_rows(self, P, n, S):
        import torch

        c = torch.where(torch.isfinite(P.chi2), P.chi2, torch.full_like(P.chi2, math.inf)).view(n, S)
        b = torch.argmin(c, dim=1)
        self._last_best = b.cpu().numpy().astype(np.int16)
        return torch.arange(n, device=c.device) * S + b

    @staticmethod
    def _step(x, A, g, lam, free, lo, hi, scale):
        """Damped Gauss–Newton step with outward-pushing bound labels held."""
        import torch

        As = A * (scale[:, None] * scale[None, :])
        gs = g * scale
        eps = 1e-9 * scale
        hold = (~free).unsqueeze(0) | ((x <= lo + eps) & (g < 0)) | ((x >= hi - eps) & (g > 0))
        keep = (~hold).double()
        d = torch.diagonal(As, dim1=-2, dim2=-1)
        dmax = d.amax(-1, keepdim=True).clamp(min=1e-300)
        d = torch.maximum(d, 1e-6 * dmax)
        M = As + torch.diag_embed(lam.unsqueeze(-1) * d)
        M = M * keep.unsqueeze(-1) * keep.unsqueeze(-2) + torch.diag_embed(1.0 - keep)
        rhs = (gs * keep).unsqueeze(-1)
        # damped step and the undamped Gauss–Newton step (for its predicted decrease gᵀA⁻¹g), one solve
        M0 = As * keep.unsqueeze(-1) * keep.unsqueeze(-2) + torch.diag_embed(1.0 - keep)
        sol, info = torch.linalg.solve_ex(torch.stack([M, M0]), torch.stack([rhs, rhs]))
        ds, d0 = sol[0].squeeze(-1), sol[1].squeeze(-1)
        bad = (info[0] != 0) | ~torch.isfinite(ds).all(-1)
        if bad.any():  # singular system: fall back to a steepest-descent-like step
            ds[bad] = (gs[bad] * keep[bad]) / (lam[bad].unsqueeze(-1) * d[bad])
        dec0 = (gs * keep * d0).sum(-1)
        dec0 = torch.where((info[1] != 0) | ~torch.isfinite(dec0) | (dec0 < 0), torch.full_like(dec0, math.inf), dec0)
        return ds * keep * scale, dec0

    @staticmethod
    def _covariance(A, free, scale):
        """``(JᵀWJ)⁻¹`` over the free labels, physical units; NaN for fixed labels."""
        import torch

        m, L = A.shape[0], A.shape[1]
        fi = torch.nonzero(free).squeeze(1)
        s = scale[fi]
        Af = A[:, fi][:, :, fi] * (s[:, None] * s[None, :])
        inv, info = torch.linalg.inv_ex(Af)
        bad = (info != 0) | ~torch.isfinite(inv).all(-1).all(-1)
        if bad.any():
            inv[bad] = torch.linalg.pinv(Af[bad])
        cov = torch.full((m, L, L), math.nan, dtype=torch.float64, device=A.device)
        cf = inv * (s[:, None] * s[None, :])
        rows = fi.view(-1, 1).expand(-1, fi.numel())
        cov[:, rows, fi.view(1, -1).expand(fi.numel(), -1)] = cf
        return cov
