"""Local linear regression in label space (k nearest neighbours), vectorised.

Used to learn smooth empirical relations from control stars — intrinsic colours for the star-pair method
(:mod:`ddpayne.galaxy.starpair`) and absolute magnitudes for distances — as functions of (Teff, log g,
[Fe/H]): for each query point, the ``k`` nearest control stars in scaled label space are fitted by a
weighted (Gaussian kernel in scaled distance) linear model, evaluated at the query. The local residual
scatter and the number of effective neighbours give the uncertainty; the distance to the nearest
neighbours tells whether the query is inside the control coverage.
"""
from __future__ import annotations

import numpy as np


class LocalLinearRegressor:
    """k-nearest-neighbour local linear regression with per-output missing values.

    Parameters
    ----------
    scales : sequence of float
        Feature scales: features are divided by these before distances are computed (e.g. 150 K, 0.3 dex,
        0.2 dex for Teff, log g, [Fe/H]).
    k : int
        Neighbours per query.
    max_distance : float
        Queries whose ``coverage_k``-th nearest control star is farther than this (scaled distance) are
        *outside coverage*; so are queries beyond the control range (± half a scale) in any feature.
    coverage_k : int
        Neighbour rank used for the coverage test.
    min_neighbours : int
        Minimum number of neighbours with a finite target for a prediction.
    robust_clip : float or None
        If set, :meth:`fit` drops control points whose leave-in residual exceeds ``robust_clip`` times the
        local robust scatter (one pass), e.g. unresolved binaries among absolute-magnitude calibrators.
    workers : int
        Threads for the KD-tree queries.
    """

    def __init__(self, scales, k: int = 48, max_distance: float = 3.0, min_neighbours: int = 8,
                 robust_clip: float | None = None, workers: int = 1, coverage_k: int = 5):
        self.scales = np.asarray(scales, float)
        self.k = int(k)
        self.max_distance = float(max_distance)
        self.min_neighbours = int(min_neighbours)
        self.robust_clip = robust_clip
        self.workers = workers
        self.coverage_k = int(coverage_k)

    def fit(self, X: np.ndarray, Y: np.ndarray) -> "LocalLinearRegressor":
        """Store control features ``X`` (n, d) and targets ``Y`` (n, m); rows with NaN features dropped.

        Raises
        ------
        ValueError
            If fewer than ``min_neighbours`` usable control points remain.
        """
        from scipy.spatial import cKDTree
        X = np.asarray(X, float)
        Y = np.asarray(Y, float)
        if Y.ndim == 1:
            Y = Y[:, None]
        good = np.isfinite(X).all(axis=1) & np.isfinite(Y).any(axis=1)
        if good.sum() < self.min_neighbours:
            raise ValueError(f"only {int(good.sum())} usable control stars (need >= {self.min_neighbours})")
        self.X, self.Y = X[good], Y[good].copy()
        self._tree = cKDTree(self.X / self.scales)
        self.lo, self.hi = self.X.min(axis=0), self.X.max(axis=0)
        if self.robust_clip is not None:
            pred, _, sig, _ = self._predict(self.X, exclude_self=True)
            res = np.abs(self.Y - pred)
            self.Y[res > self.robust_clip * np.maximum(sig, 1e-6)] = np.nan
            keep = np.isfinite(self.Y).any(axis=1)
            self.X, self.Y = self.X[keep], self.Y[keep]
            self._tree = cKDTree(self.X / self.scales)
        return self

    def predict(self, Xq: np.ndarray):
        """Predict at ``Xq`` (q, d).

        Returns
        -------
        mean : array (q, m)
            Local linear prediction (NaN where not possible).
        grad : array (q, m, d)
            Local gradient ∂y/∂x (in feature units).
        scatter : array (q, m)
            Weighted rms of the neighbours' residuals about the local fit (intrinsic + measurement scatter).
        outside : bool array (q,)
            True where the query lies outside the control coverage.
        """
        return self._predict(np.asarray(Xq, float))

    def _predict(self, Xq, exclude_self: bool = False, chunk: int = 20000):
        q = Xq.shape[0]
        d = self.X.shape[1]
        m = self.Y.shape[1]
        mean = np.full((q, m), np.nan)
        grad = np.full((q, m, d), np.nan)
        scat = np.full((q, m), np.nan)
        outside = np.ones(q, dtype=bool)
        finite = np.isfinite(Xq).all(axis=1)
        idx_all = np.flatnonzero(finite)
        kq = min(self.k + int(exclude_self), self.X.shape[0])
        for s in range(0, idx_all.size, chunk):
            ii = idx_all[s:s + chunk]
            xs = Xq[ii] / self.scales
            dist, nb = self._tree.query(xs, k=kq, workers=self.workers)
            if exclude_self:
                dist, nb = dist[:, 1:], nb[:, 1:]
            med = np.median(dist, axis=1)
            dcov = dist[:, min(self.coverage_k, dist.shape[1]) - 1]
            inside = (dcov <= self.max_distance) & np.all((Xq[ii] >= self.lo - 0.5 * self.scales)
                                                         & (Xq[ii] <= self.hi + 0.5 * self.scales), axis=1)
            outside[ii] = ~inside
            h = np.maximum(med, 0.3)[:, None]
            w = np.exp(-0.5 * (dist / h) ** 2)                            # (c, k)
            dx = (self.X[nb] - Xq[ii][:, None, :]) / self.scales          # (c, k, d)
            A = np.concatenate([np.ones(dx.shape[:2] + (1,)), dx], axis=-1)  # (c, k, d+1)
            for j in range(m):
                y = self.Y[nb, j]                                         # (c, k)
                wj = np.where(np.isfinite(y), w, 0.0)
                yj = np.nan_to_num(y)
                nfin = (wj > 0).sum(axis=1)
                AtW = A * wj[..., None]
                M = np.einsum("cki,ckj->cij", AtW, A) + 1e-6 * np.eye(d + 1)
                b = np.einsum("cki,ck->ci", AtW, yj)
                try:
                    coef = np.linalg.solve(M, b[..., None])[..., 0]
                except np.linalg.LinAlgError:
                    coef = np.linalg.lstsq(M.reshape(-1, d + 1), b.reshape(-1), rcond=None)[0]
                res = yj - np.einsum("cki,ci->ck", A, coef)
                wsum = wj.sum(axis=1)
                dof = np.maximum(nfin - (d + 1), 1)
                s2 = (wj * res**2).sum(axis=1) / np.maximum(wsum, 1e-300) * nfin / dof
                ok = nfin >= self.min_neighbours
                mean[ii[ok], j] = coef[ok, 0]
                grad[ii[ok], j] = coef[ok, 1:] / self.scales
                scat[ii[ok], j] = np.sqrt(s2[ok])
        return mean, grad, scat, outside
