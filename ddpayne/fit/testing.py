"""An analytic emulator with an exact Jacobian, for tests, benchmarks and examples.

:class:`LineEmulator` is a sum of Gaussian absorption lines whose depths depend smoothly and
non-linearly on the labels: ``f(λ) = 1 − Σ_j d_j(ℓ) φ_j(λ)`` with
``d_j = d_max,j · sigmoid(a_j · ℓ̃ + b_j)``, ``ℓ̃`` the labels scaled to the training range and ``φ_j`` a
unit-depth Gaussian profile. Each line responds to the atmospheric labels (TEFF, LOGG, VMIC, FE_H)
and to one abundance, like a metal line in a real spectrum, so the Fisher matrix is well conditioned
and the truth is known exactly. It is *not* a stellar model; it stands in for one where the test is
about fitting, not about physics.
"""
from __future__ import annotations

import numpy as np

from ..labels import ABUNDANCE_LABELS, LABEL_NAMES
from ..model.emulator import Emulator

#: Default label range of :class:`LineEmulator` (a DESI-MWS-like training range).
DEFAULT_RANGE: dict[str, tuple[float, float]] = {
    "TEFF": (3800.0, 7500.0), "LOGG": (0.5, 5.0), "VMIC": (0.3, 3.0), "FE_H": (-3.0, 0.6),
    **{name: (-0.5, 0.8) for name in ABUNDANCE_LABELS},
}


class LineEmulator(Emulator):
    """Analytic Gaussian-line emulator (see module docstring).

    Parameters
    ----------
    wavelength : array (n_pix,)
        Grid (Å).
    label_names : sequence of str
        Subset of :data:`ddpayne.labels.LABEL_NAMES` (default all 15).
    n_lines : int
        Number of lines, spread uniformly over the grid.
    seed : int
        Seed of the line list.
    width : float
        Gaussian σ of the lines in Å.
    label_min, label_max : array, optional
        Training range (default :data:`DEFAULT_RANGE`).
    dtype : torch dtype, optional
        Default float64.
    """

    name = "line-test"

    def __init__(self, wavelength, label_names=LABEL_NAMES, n_lines: int = 300, seed: int = 1,
                 width: float = 1.2, label_min=None, label_max=None, dtype=None):
        import torch

        self.label_names = tuple(label_names)
        self.wavelength = np.asarray(wavelength, dtype=float)
        L = len(self.label_names)
        self.label_min = (np.array([DEFAULT_RANGE[n][0] for n in self.label_names]) if label_min is None
                          else np.asarray(label_min, dtype=float))
        self.label_max = (np.array([DEFAULT_RANGE[n][1] for n in self.label_names]) if label_max is None
                          else np.asarray(label_max, dtype=float))
        self._dtype = torch.float64 if dtype is None else dtype
        rng = np.random.default_rng(seed)
        centers = np.sort(rng.uniform(self.wavelength[0], self.wavelength[-1], n_lines))
        a = np.zeros((n_lines, L))
        atm = [k for k, n in enumerate(self.label_names) if n in ("TEFF", "LOGG", "VMIC", "FE_H")]
        abund = [k for k, n in enumerate(self.label_names) if n in ABUNDANCE_LABELS]
        for j in range(n_lines):
            for k in atm:
                name = self.label_names[k]
                a[j, k] = {"TEFF": -rng.uniform(1.0, 3.0), "LOGG": rng.normal(0, 0.8),
                           "VMIC": rng.uniform(0.1, 0.5), "FE_H": rng.uniform(1.5, 3.0)}[name]
            if abund:
                k = abund[j % len(abund)]
                a[j, k] = rng.uniform(1.5, 3.0)
        self.coef = a
        self.offset = rng.normal(0.0, 0.5, n_lines)
        self.depth = rng.uniform(0.1, 0.6, n_lines)
        # line profiles as a sparse (n_pix, n_lines) matrix, truncated at 6 sigma
        rows, cols, vals = [], [], []
        for j, c in enumerate(centers):
            lo_i, hi_i = np.searchsorted(self.wavelength, [c - 6 * width, c + 6 * width])
            pix = np.arange(lo_i, hi_i)
            rows.append(pix)
            cols.append(np.full(pix.size, j))
            vals.append(np.exp(-0.5 * ((self.wavelength[pix] - c) / width) ** 2))
        idx = np.vstack([np.concatenate(rows), np.concatenate(cols)])
        self.centers = centers
        self._phi = torch.sparse_coo_tensor(torch.as_tensor(idx), torch.as_tensor(np.concatenate(vals)),
                                            (self.wavelength.size, n_lines),
                                            check_invariants=False).to(self._dtype).coalesce()
        self._a = torch.as_tensor(a, dtype=self._dtype)
        self._b = torch.as_tensor(self.offset, dtype=self._dtype)
        self._dmax = torch.as_tensor(self.depth, dtype=self._dtype)
        self._lmin = torch.as_tensor(self.label_min, dtype=self._dtype)
        self._span = torch.as_tensor(self.label_max - self.label_min, dtype=self._dtype)
        self._device = torch.device("cpu")

    @property
    def dtype(self):
        return self._dtype

    @property
    def device(self):
        return self._device

    def to(self, device):
        """Move the tensors to ``device``."""
        import torch

        device = torch.device(device)
        for key in ("_phi", "_a", "_b", "_dmax", "_lmin", "_span"):
            setattr(self, key, getattr(self, key).to(device))
        self._device = device
        return self

    def _depths(self, labels):
        import torch

        x = torch.as_tensor(labels, dtype=self._dtype, device=self.device)
        xs = (x - self._lmin) / self._span - 0.5
        s = torch.sigmoid(xs @ self._a.T + self._b)
        return s, self._dmax * s

    def flux(self, labels):
        import torch

        _, d = self._depths(labels)
        return 1.0 - torch.sparse.mm(self._phi, d.T).T

    def jacobian(self, labels):
        import torch

        s, d = self._depths(labels)
        n, nl, L = d.shape[0], d.shape[1], self._a.shape[1]
        dd = (self._dmax * s * (1 - s)).unsqueeze(-1) * (self._a / self._span)  # (n, lines, L)
        f = 1.0 - torch.sparse.mm(self._phi, d.T).T
        jp = torch.sparse.mm(self._phi, dd.permute(1, 0, 2).reshape(nl, n * L))   # (P, n*L)
        jac = -jp.view(-1, n, L).permute(1, 0, 2).contiguous()                    # (n, P, L)
        return f, jac

    def save(self, path) -> None:  # pragma: no cover - not needed for a test model
        raise NotImplementedError("LineEmulator is rebuilt from its seed; it is not saved")

    @classmethod
    def load(cls, path):  # pragma: no cover
        raise NotImplementedError("LineEmulator is rebuilt from its seed; it is not saved")


def mock_batch(emulator, labels, snr: float = 100.0, seed: int = 0, ids=None):
    """Noisy mock spectra of known labels from an emulator, as a :class:`~ddpayne.io.batch.SpectrumBatch`.

    The noise is Gaussian with σ = 1/snr per pixel (flux is continuum-normalised), ``ivar = snr²``.
    """
    from astropy.table import Table

    from ..io.batch import SpectrumBatch

    labels = np.atleast_2d(np.asarray(labels, dtype=float))
    f = emulator.predict(labels)
    rng = np.random.default_rng(seed)
    flux = f + rng.normal(0.0, 1.0 / snr, f.shape)
    ivar = np.full(f.shape, snr ** 2)
    n = len(labels)
    meta = Table({"ID": np.asarray(ids) if ids is not None else np.array([f"mock{i:06d}" for i in range(n)]),
                  "SNR": np.full(n, float(snr)), "FLAG": np.zeros(n, dtype=np.int64)})
    return SpectrumBatch(emulator.wavelength, flux, ivar, meta, {"source": "ddpayne.fit.testing.mock_batch"})
