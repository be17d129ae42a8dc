"""The DD-Payne spectral emulator: one small neural network per pixel, evaluated for all pixels at once.

For pixel λ (method notes; Ting et al. 2019; Xiang et al. 2019; Zhang et al. 2024 §3.1)

.. math::

    \\tilde\\ell = \\frac{\\ell - \\ell_{\\min}}{\\ell_{\\max} - \\ell_{\\min}} - 0.5, \\qquad
    f_\\lambda(\\ell) = w_2 \\cdot \\sigma\\big(W_1\\, \\sigma(W_0 \\tilde\\ell + b_0) + b_1\\big) + b_2

with two hidden layers of ``n_hidden`` (paper: 40) neurons. The weights of all pixels are stacked
tensors, ``W0 (n_pix, H, L)``, ``W1 (n_pix, H, H)``, ``w2 (n_pix, H)`` (+ biases), and the pixels are
evaluated together: the first layer is one dense matmul ``(n_pix·H, L) @ (L, n)``, the second a
batched matmul over pixels (``torch.baddbmm``). There is no Python loop over pixels.

Activation: the logistic sigmoid by default (a smooth activation, so that the model's derivatives —
which the regularizer and the fitter use — are smooth; leaky-ReLU derivatives are piecewise constant).
``"silu"`` and ``"tanh"`` are available.

The Jacobian ∂f/∂ℓ is exact and analytic (the chain rule through the two layers, batched the same way)
and expressed per *physical* label unit (divided by ``ℓ_max − ℓ_min``).
"""
from __future__ import annotations

import json
import logging
import math
from pathlib import Path

import numpy as np
import torch

import ddpayne
from ddpayne.exceptions import IncompatibleModelError
from ddpayne.io.atomic import atomic_path
from ddpayne.model.emulator import Emulator

log = logging.getLogger(__name__)

#: Version of the saved-model format written by :meth:`MLPEmulator.save`.
FORMAT_VERSION = 1
#: Identifies files written by this plugin.
FILE_KIND = "ddpayne-mlp-emulator"

_ACTIVATIONS = ("sigmoid", "silu", "tanh")
#: Activation values per pixel block of the hand-written back-propagation (:meth:`MLPEmulator.block_size`).
BLOCK_VALUES = 2**19


def _dtype(dtype) -> torch.dtype:
    if isinstance(dtype, torch.dtype):
        return dtype
    table = {"float32": torch.float32, "float64": torch.float64, "single": torch.float32,
             "double": torch.float64, "float": torch.float32}
    try:
        return table[str(dtype).replace("torch.", "")]
    except KeyError:
        raise ValueError(f"dtype must be float32 or float64, got {dtype!r}") from None


class MLPEmulator(torch.nn.Module, Emulator):
    """Per-pixel two-hidden-layer perceptron (DD-Payne / The Payne architecture).

    Parameters
    ----------
    label_names : sequence of str
        Labels, in the order of the last axis of label arrays.
    wavelength : array_like, shape (n_pix,)
        Vacuum wavelength grid (Å) of the modelled flux.
    label_min, label_max : array_like, shape (n_labels,)
        Label range used for scaling (normally the training-set range), physical units.
    n_hidden : int
        Neurons in each of the two hidden layers (paper: 40).
    activation : {'sigmoid', 'silu', 'tanh'}
        Hidden-layer activation (default sigmoid; see the module docstring).
    seed : int
        Seed of the weight initialisation.
    dtype : {'float32', 'float64'} or torch.dtype
    device : str or torch.device
    """

    name = "mlp"
    pixel_slices = True

    def __init__(self, label_names, wavelength, label_min, label_max, n_hidden: int = 40,
                 activation: str = "sigmoid", seed: int = 0, dtype="float32", device="cpu"):
        torch.nn.Module.__init__(self)
        self.label_names = tuple(str(n) for n in label_names)
        self.wavelength = np.asarray(wavelength, dtype=float).reshape(-1)
        self.label_min = np.asarray(label_min, dtype=float).reshape(-1)
        self.label_max = np.asarray(label_max, dtype=float).reshape(-1)
        n_lab, n_pix = len(self.label_names), self.wavelength.size
        if self.label_min.shape != (n_lab,) or self.label_max.shape != (n_lab,):
            raise ValueError(f"label_min/label_max must have {n_lab} entries (one per label "
                             f"{self.label_names}), got {self.label_min.shape}, {self.label_max.shape}")
        span = self.label_max - self.label_min
        if not np.all(np.isfinite(span)) or np.any(span <= 0):
            bad = [n for n, s in zip(self.label_names, span) if not (np.isfinite(s) and s > 0)]
            raise ValueError(f"label range is empty or not finite for {bad}: every label must vary "
                             f"in the training set (drop constant labels from label_names)")
        if activation not in _ACTIVATIONS:
            raise ValueError(f"activation must be one of {_ACTIVATIONS}, got {activation!r}")
        self.n_hidden = int(n_hidden)
        self.activation = activation
        self.seed = int(seed)
        self.provenance: dict = {}
        dt = _dtype(dtype)
        H = self.n_hidden
        gen = torch.Generator().manual_seed(self.seed)

        def uniform(shape, fan_in):  # torch.nn.Linear's default initialisation, per pixel
            bound = 1.0 / math.sqrt(fan_in)
            return (torch.rand(shape, generator=gen, dtype=torch.float64) * 2 - 1) * bound

        self.W0 = torch.nn.Parameter(uniform((n_pix, H, n_lab), n_lab).to(dt))
        self.b0 = torch.nn.Parameter(uniform((n_pix, H), n_lab).to(dt))
        self.W1 = torch.nn.Parameter(uniform((n_pix, H, H), H).to(dt))
        self.b1 = torch.nn.Parameter(uniform((n_pix, H), H).to(dt))
        self.w2 = torch.nn.Parameter(uniform((n_pix, H), H).to(dt))
        self.b2 = torch.nn.Parameter(uniform((n_pix,), H).to(dt))
        self.register_buffer("_lmin", torch.as_tensor(self.label_min, dtype=dt))
        self.register_buffer("_span", torch.as_tensor(span, dtype=dt))
        self.to(device)

    # ------------------------------------------------------------------ properties
    @property
    def dtype(self) -> torch.dtype:
        return self.W0.dtype

    @property
    def device(self) -> torch.device:
        return self.W0.device

    @property
    def n_pix(self) -> int:
        return self.wavelength.size

    @property
    def hidden_width(self) -> int:
        return self.n_hidden

    @property
    def n_parameters_per_pixel(self) -> int:
        L, H = self.n_labels, self.n_hidden
        return (L * H + H) + (H * H + H) + (H + 1)

    def __repr__(self) -> str:
        return (f"MLPEmulator(labels={list(self.label_names)}, n_pix={self.n_pix}, "
                f"n_hidden={self.n_hidden}, activation={self.activation!r}, dtype={self.dtype}, "
                f"device={self.device})")

    # ------------------------------------------------------------------ the model
    def scale_labels(self, labels: torch.Tensor) -> torch.Tensor:
        """ℓ̃ = (ℓ − ℓ_min)/(ℓ_max − ℓ_min) − 0.5."""
        return (labels - self._lmin) / self._span - 0.5

    def _as_labels(self, labels) -> torch.Tensor:
        x = torch.as_tensor(labels, dtype=self.dtype, device=self.device)
        if x.ndim == 1:
            x = x[None, :]
        if x.ndim != 2 or x.shape[1] != self.n_labels:
            raise ValueError(f"labels must have shape (n, {self.n_labels}) for {self.label_names}, "
                             f"got {tuple(x.shape)}")
        return x

    def _act(self, z):
        if self.activation == "sigmoid":
            return torch.sigmoid(z)
        if self.activation == "silu":
            return torch.nn.functional.silu(z)
        return torch.tanh(z)

    def _act_prime(self, z, a):
        """Derivative of the activation, given its input ``z`` and output ``a``."""
        if self.activation == "sigmoid":
            return a * (1 - a)
        if self.activation == "silu":
            s = torch.sigmoid(z)
            return s * (1 + z * (1 - s))
        return 1 - a * a

    def _act_prime_from(self, z, a, inplace: bool):
        """Activation derivative from the activation ``a`` (overwriting it when ``inplace``).

        Same arithmetic in place or not (so both give identical numbers): sigmoid ``a − a·a``,
        tanh ``1 − a·a``; silu needs its input ``z`` (kept, not overwritten, for silu).
        """
        if self.activation == "sigmoid":
            return a.addcmul_(a, a, value=-1.0) if inplace else torch.addcmul(a, a, a, value=-1.0)
        if self.activation == "tanh":
            return a.mul_(a).neg_().add_(1.0) if inplace else (a * a).neg_().add_(1.0)
        return self._act_prime(z, a)

    def _weights(self, pixels):
        if pixels is None:
            return self.W0, self.b0, self.W1, self.b1, self.w2, self.b2
        return (self.W0[pixels], self.b0[pixels], self.W1[pixels], self.b1[pixels], self.w2[pixels],
                self.b2[pixels])

    def _hidden(self, x, W):
        W0, b0, W1, b1, _, _ = W
        P, H, L = W0.shape
        # layer 0: one dense matmul for all pixels, (P*H, L) @ (L, n) -> (P, H, n)
        z0 = torch.addmm(b0.reshape(P * H, 1), W0.reshape(P * H, L), x.T).view(P, H, -1)
        a0 = self._act(z0)
        # layer 1: batched over pixels, (P, H, H) @ (P, H, n)
        z1 = torch.baddbmm(b1[:, :, None], W1, a0)
        a1 = self._act(z1)
        return z0, a0, z1, a1

    def flux(self, labels, pixels=None) -> torch.Tensor:
        """Normalised flux.

        Parameters
        ----------
        labels : torch.Tensor or array_like, shape (n, n_labels)
            Physical labels (converted to the emulator's dtype and device).
        pixels : slice or index tensor, optional
            Evaluate only these pixels (default all).

        Returns
        -------
        torch.Tensor, shape (n, n_pix)
        """
        x = self.scale_labels(self._as_labels(labels))
        W = self._weights(pixels)
        _, _, _, a1 = self._hidden(x, W)
        w2, b2 = W[4], W[5]
        f = torch.baddbmm(b2[:, None, None], w2[:, None, :], a1)[:, 0, :]  # (P, n)
        return f.T

    forward = flux

    def _flux_and_jacobian(self, xT, pixels, out=None):
        """Flux ``(P, n)`` and ∂f/∂ℓ (physical units) ``(P, n, L)`` of one pixel selection.

        ``xT`` are the scaled labels transposed, ``(L, n)``. When ``out`` is given (shape ``(P, n, ≥L)``)
        the Jacobian is written into ``out[..., :L]``.

        The activations are computed once and their derivatives are formed from them in place (for the
        sigmoid σ' = σ(1 − σ); tanh' = 1 − tanh²), the last layer's weight ``w2`` and the label scaling
        are folded into the (small) weight matrices instead of the ``(P, H, n)`` activations when the
        batch is larger than the hidden layer, and the Jacobian is produced directly in the
        ``(pixel, spectrum, label)`` layout by a batched ``(n, H) @ (H, L)`` product per pixel. Without
        autograd the derivatives overwrite the activation buffers (no extra allocation); with autograd
        recording, the same chain rule runs out of place.
        """
        W0, b0, W1, b1, w2, b2 = self._weights(pixels)
        P, H, L = W0.shape
        n = xT.shape[1]
        inplace = not (torch.is_grad_enabled() and any(w.requires_grad for w in (W0, W1, w2, xT)))
        z0 = torch.addmm(b0.reshape(P * H, 1), W0.reshape(P * H, L), xT).view(P, H, n)
        sig = self.activation == "sigmoid"
        a0 = z0.sigmoid_() if sig and inplace else self._act(z0)
        z1 = torch.baddbmm(b1[:, :, None], W1, a0)
        a1 = z1.sigmoid_() if sig and inplace else self._act(z1)
        f = torch.baddbmm(b2[:, None, None], w2[:, None, :], a1)[:, 0, :]       # (P, n)
        fold = n > H            # fold w2 and 1/span into the weights when that is the cheaper side
        d1 = self._act_prime_from(z1, a1, inplace)                               # σ'(z1)
        if fold:
            d0 = torch.bmm((W1 * w2[:, :, None]).transpose(1, 2), d1)          # ∂f/∂a0  (P, H, n)
        else:
            d1 = d1.mul_(w2[:, :, None]) if inplace else d1 * w2[:, :, None]
            d0 = torch.bmm(W1.transpose(1, 2), d1)
        s0 = self._act_prime_from(z0, a0, inplace)                               # σ'(z0)
        d0 = d0.mul_(s0) if inplace else d0 * s0
        W0s = W0 / self._span if fold else W0
        if out is None:
            jac = torch.bmm(d0.transpose(1, 2), W0s)                             # ∂f/∂ℓ  (P, n, L)
        else:
            jac = torch.bmm(d0.transpose(1, 2), W0s, out=out[:, :, :L])
        if not fold:
            jac = jac.div_(self._span) if inplace else jac / self._span
        return f, jac

    def jacobian(self, labels, pixels=None):
        """Flux and exact analytic derivatives ∂f/∂ℓ per physical label unit.

        Returns
        -------
        flux : torch.Tensor, shape (n, n_pix)
        jac : torch.Tensor, shape (n, n_pix, n_labels)
            A view (pixel-major memory layout).
        """
        x = self.scale_labels(self._as_labels(labels))
        f, jac = self._flux_and_jacobian(x.T, pixels)
        return f.T, jac.transpose(0, 1)

    def normal_equations(self, labels, flux, ivar, pixels=None, block: int | None = None,
                         workers: int | None = None):
        """χ², ``JᵀWJ`` and ``JᵀW r`` of many spectra in one fused, cache-blocked pass.

        For each row ``i`` (``r = flux − f(ℓ_i)``, ``W = diag(ivar)``, ``J`` the exact Jacobian per
        physical label unit)::

            chi2[i] = Σ_λ ivar r²,   A[i] = JᵀWJ,   g[i] = JᵀW r

        The pixels are processed in blocks of ``block`` so that the ``(block, H, n)`` activations stay
        in the CPU cache; ``[√W J | √W r]`` of a block is formed in place and its Gram matrix (one
        batched matmul) gives A and g. Block sums are in the emulator dtype and are accumulated over blocks
        in float64; the residual and χ² are float64 throughout. Equal to building them from
        :meth:`jacobian` (tested).

        Parameters
        ----------
        labels : torch.Tensor, shape (n, n_labels)
            Physical labels.
        flux, ivar : torch.Tensor, shape (n, n_sel)
            Observed flux and inverse variance on the selected pixels (``ivar = 0``: ignored pixel).
        pixels : slice, optional
            The selected pixels (contiguous or strided slice; default all).
        block : int, optional
            Pixels per block (default: chosen so that a block holds about 8k pixel × spectrum pairs).
        workers : int, optional
            CPU worker threads, each running a contiguous share of the blocks with one torch intra-op
            thread (default: ``torch.get_num_threads()``; 1: run in the calling thread with torch's own
            threading). The torch thread count is restored afterwards.

        Returns
        -------
        chi2 : torch.Tensor (n,), A : torch.Tensor (n, L, L), g : torch.Tensor (n, L)
            float64.
        """
        x = self.scale_labels(self._as_labels(labels))
        xT = x.T.contiguous()
        n, L = x.shape
        start, stop, step = (pixels if pixels is not None else slice(None)).indices(self.n_pix)
        n_sel = len(range(start, stop, step))
        # the residual and χ² are formed in float64 (the flux model itself in the emulator dtype)
        flux = torch.as_tensor(flux, dtype=torch.float64, device=self.device)
        ivar = torch.as_tensor(ivar, dtype=torch.float64, device=self.device)
        if flux.shape != (n, n_sel) or ivar.shape != (n, n_sel):
            raise ValueError(f"flux and ivar must have shape ({n}, {n_sel}) (spectra, selected pixels), got "
                             f"{tuple(flux.shape)} and {tuple(ivar.shape)}")
        if block is None:
            block = max(16, min(1024, 8192 // max(n, 1)))
        fT, swT = flux.T, ivar.T.sqrt()
        sw_lo = swT.to(self.dtype)
        starts = list(range(0, n_sel, block))

        def run(ks, single_thread=False):
            if single_thread:
                torch.set_num_threads(1)
            G = torch.zeros((n, L + 1, L + 1), dtype=torch.float64, device=self.device)
            chi2 = torch.zeros(n, dtype=torch.float64, device=self.device)
            with torch.no_grad():
                for k in ks:
                    e = min(n_sel, k + block)
                    sl = slice(start + k * step, start + (e - 1) * step + 1, step)
                    aug = torch.empty((e - k, n, L + 1), dtype=self.dtype, device=self.device)
                    f, _ = self._flux_and_jacobian(xT, sl, out=aug)
                    rs = (fT[k:e] - f).mul_(swT[k:e])                              # √W r, float64
                    chi2 += (rs * rs).sum(0)
                    aug[:, :, L] = rs
                    aug[:, :, :L].mul_(sw_lo[k:e, :, None])
                    G += torch.bmm(aug.permute(1, 2, 0), aug.permute(1, 0, 2))
            return chi2, G

        threads = torch.get_num_threads()
        workers = threads if workers is None else int(workers)
        if workers > 1 and self.device.type == "cpu" and len(starts) >= 2 * workers:
            # coarse-grained parallelism: each worker thread takes a contiguous share of the blocks with
            # one intra-op thread, so the workers synchronise once per call instead of once per tensor
            # operation (which stalls when another process holds a core; see docs/performance_fit.rst)
            from concurrent.futures import ThreadPoolExecutor

            shares = [starts[i * len(starts) // workers:(i + 1) * len(starts) // workers] for i in range(workers)]
            try:
                with ThreadPoolExecutor(workers) as pool:
                    parts = list(pool.map(lambda ks: run(ks, True), shares))
            finally:
                torch.set_num_threads(threads)
            chi2 = sum(p[0] for p in parts)
            G = sum(p[1] for p in parts)
        else:
            chi2, G = run(starts)
        return chi2, G[:, :L, :L].clone(), G[:, :L, L].clone()

    # ------------------------------------------------------------------ training support
    @property
    def manual_backward(self) -> bool:
        """Whether :meth:`accumulate_gradient` is available (sigmoid activation)."""
        return self.activation == "sigmoid"

    def block_size(self, n_rows: int) -> int:
        """Pixels per block of the hand-written back-propagation for ``n_rows`` label rows.

        One block's activation tensors (``block × n_hidden × n_rows`` values) are kept at most
        :data:`BLOCK_VALUES` (2 MiB of float32), a power of two between 8 and 256
        (``benchmarks/bench_blocks.py``, one core, 1767 pixels): for the demo's 10 neurons and 64–96 rows
        256 pixels per block are ~2× faster than 32 (fewer, larger tensor operations); for 40 neurons on
        256–1616 rows blocks of 32–8 pixels, which stay in cache, are fastest.
        """
        per_pixel = max(1, self.n_hidden * int(n_rows))
        return int(2 ** np.clip(np.floor(np.log2(max(BLOCK_VALUES / per_pixel, 1.0))), 3, 8))

    def accumulate_gradient(self, labels, upstream, pixels: slice | None = None,
                            block: int | None = None) -> float:
        """Back-propagate a loss through the network by hand (no autograd graph), block by block.

        For each block of ``block`` pixels the flux of every row of ``labels`` is computed, then
        ``upstream(f, pix)`` (``f``: tensor ``(P_block, n)``, ``pix``: the block's slice) returns
        ``(G, value)`` with ``G = ∂loss/∂f`` of the same shape and the block's loss ``value``;
        ``Σ G · ∂f/∂θ`` is *added* to ``param.grad``. The chain rule is the one of :meth:`jacobian` run
        backwards; blocks keep the activations in the CPU cache, so this moves much less memory than
        autograd on the whole grid and gives the same gradients (tested).

        Parameters
        ----------
        labels : torch.Tensor, shape (n, n_labels)
        upstream : callable
            ``upstream(f, pix) -> (G, value)``.
        pixels : slice, optional
            Contiguous pixel range (default all).
        block : int, optional
            Pixels per block (default: :meth:`block_size` of the number of rows).

        Returns
        -------
        float
            The sum of the blocks' values.
        """
        if not self.manual_backward:
            raise NotImplementedError("accumulate_gradient is written for the sigmoid activation")
        sl = pixels if pixels is not None else slice(0, self.n_pix)
        start, stop, _ = sl.indices(self.n_pix)
        params = (self.W0, self.b0, self.W1, self.b1, self.w2, self.b2)
        total = 0.0
        with torch.no_grad():
            x = self.scale_labels(self._as_labels(labels))
            xT = x.T.contiguous()
            for p in params:
                if p.grad is None:
                    p.grad = torch.zeros_like(p)
            gW0, gb0, gW1, gb1, gw2, gb2 = (p.grad for p in params)
            n = x.shape[0]
            H, L = self.n_hidden, self.n_labels
            block = self.block_size(n) if block is None else int(block)
            for b in range(start, stop, block):
                e = min(b + block, stop)
                P = e - b
                W0, b0, W1, b1, w2, b2 = (p[b:e] for p in params)
                a0 = torch.addmm(b0.reshape(P * H, 1), W0.reshape(P * H, L), xT).view(P, H, n)
                a0.sigmoid_()
                a1 = torch.baddbmm(b1[:, :, None], W1, a0).sigmoid_()
                f = torch.baddbmm(b2[:, None, None], w2[:, None, :], a1)[:, 0, :]      # (P, n)
                g, value = upstream(f, slice(b, e))                                    # ∂L/∂f
                total += float(value)
                gb2[b:e] += g.sum(1)
                gw2[b:e] += torch.bmm(a1, g[:, :, None])[:, :, 0]
                d1 = torch.bmm(w2[:, :, None], g[:, None, :])                          # w2 ⊗ g
                d1.mul_(a1).mul_(a1.neg_().add_(1.0))                                 # · σ'(z1)
                gb1[b:e] += d1.sum(2)
                gW1[b:e].baddbmm_(d1, a0.transpose(1, 2))
                d0 = torch.bmm(W1.transpose(1, 2), d1)
                d0.mul_(a0).mul_(a0.neg_().add_(1.0))                                 # · σ'(z0)
                gb0[b:e] += d0.sum(2)
                gW0[b:e].view(P * H, L).addmm_(d0.view(P * H, n), x)
        return total

    def data_term_backward(self, labels, flux, ivar, pixels: slice | None = None, scale: float = 1.0,
                           block: int | None = None) -> float:
        """The χ² data term ``scale · Σ_i Σ_λ ivar (f_λ(ℓ_i) − flux)²`` over ``pixels``; its gradient is
        added to ``param.grad`` (:meth:`accumulate_gradient`).

        ``flux`` and ``ivar`` have shape ``(n, n_pix_selected)`` (the columns of ``pixels``).
        """
        sl = pixels if pixels is not None else slice(0, self.n_pix)
        start = sl.indices(self.n_pix)[0]
        yT = torch.as_tensor(flux, dtype=self.dtype, device=self.device).T
        wT = torch.as_tensor(ivar, dtype=self.dtype, device=self.device).T

        def upstream(f, pix):
            y = yT[pix.start - start:pix.stop - start]
            r = f - y
            wr = r * wT[pix.start - start:pix.stop - start]
            value = (wr * r).sum() * scale
            return wr.mul_(2.0 * scale), value

        return self.accumulate_gradient(labels, upstream, pixels, block)

    def initialize(self, mean_flux) -> None:
        """Start each pixel's output at ``mean_flux`` for the mid-range labels."""
        mean = torch.as_tensor(np.asarray(mean_flux, dtype=float), dtype=self.dtype, device=self.device)
        if mean.shape != (self.n_pix,):
            raise ValueError(f"mean_flux must have shape ({self.n_pix},), got {tuple(mean.shape)}")
        with torch.no_grad():
            mid = torch.as_tensor(self.label_min + 0.5 * (self.label_max - self.label_min),
                                  dtype=self.dtype, device=self.device)
            f0 = self.flux(mid[None, :])[0]
            self.b2 += mean - f0

    # ------------------------------------------------------------------ joining pixel sets
    @classmethod
    def join(cls, models) -> "MLPEmulator":
        """One emulator from emulators trained on disjoint pixel sets of one grid.

        Every pixel has its own network, so the pixels of a grid can be trained in separate jobs (on
        several cores or machines, e.g. ``benchmarks/science_training.py --pixel-stride K
        --pixel-offset J`` for J = 0…K−1) and joined afterwards; the joined model predicts at each pixel
        exactly what the part that holds it predicts. Pixels are sorted by wavelength.

        Parameters
        ----------
        models : sequence of MLPEmulator
            With the same labels, label scaling, architecture and dtype, and no wavelength in common.

        Raises
        ------
        IncompatibleModelError
            The parts differ in labels, scaling, architecture or dtype, or share pixels.
        """
        models = list(models)
        if not models:
            raise ValueError("join needs at least one MLPEmulator")
        first = models[0]
        for i, m in enumerate(models[1:], 1):
            what = [name for name, same in (
                ("label names", m.label_names == first.label_names),
                ("label scaling (label_min/label_max)",
                 np.array_equal(m.label_min, first.label_min)
                 and np.array_equal(m.label_max, first.label_max)),
                ("n_hidden", m.n_hidden == first.n_hidden),
                ("activation", m.activation == first.activation),
                ("dtype", m.dtype == first.dtype)) if not same]
            if what:
                raise IncompatibleModelError(f"cannot join part {i} to part 0: they differ in "
                                             f"{', '.join(what)}; only parts of one training can be joined")
        wave = np.concatenate([m.wavelength for m in models])
        order = np.argsort(wave, kind="stable")
        wave = wave[order]
        dup = np.unique(wave[1:][np.diff(wave) == 0])
        if dup.size:
            raise IncompatibleModelError(f"cannot join: {dup.size} wavelength(s) are in more than one part "
                                         f"(first {dup[0]:.3f} Å); the parts must hold disjoint pixels")
        out = cls(first.label_names, wave, first.label_min, first.label_max,
                  n_hidden=first.n_hidden, activation=first.activation, seed=first.seed,
                  dtype=str(first.dtype).replace("torch.", ""), device=first.device)
        idx = torch.as_tensor(order, device=first.device)
        with torch.no_grad():
            for name in ("W0", "b0", "W1", "b1", "w2", "b2"):
                joined = torch.cat([getattr(m, name).detach().to(first.device) for m in models])
                getattr(out, name).copy_(joined[idx])
        out.requires_grad_(False)
        out.provenance = {"joined_from": [m.provenance for m in models],
                          "n_pix_of_parts": [m.n_pix for m in models]}
        return out

    # ------------------------------------------------------------------ persistence
    def save(self, path) -> None:
        """Write the model (atomically) to a torch file.

        The file holds the weights, label names, scaling, wavelength grid, architecture, the
        provenance (training settings, regularizer name, options and gradient-file checksum), the
        ddpayne version and the format version (:data:`FORMAT_VERSION`).
        """
        content = {
            "kind": FILE_KIND,
            "emulator": self.name,
            "format_version": FORMAT_VERSION,
            "ddpayne_version": ddpayne.__version__,
            "label_names": list(self.label_names),
            "wavelength": torch.as_tensor(self.wavelength, dtype=torch.float64),
            "label_min": torch.as_tensor(self.label_min, dtype=torch.float64),
            "label_max": torch.as_tensor(self.label_max, dtype=torch.float64),
            "n_hidden": self.n_hidden,
            "activation": self.activation,
            "seed": self.seed,
            "dtype": str(self.dtype).replace("torch.", ""),
            "state": {k: v.detach().cpu().clone() for k, v in self.state_dict().items()},
            "provenance_json": json.dumps(self.provenance, default=str, sort_keys=True),
        }
        with atomic_path(path) as tmp:
            torch.save(content, tmp)
        log.info("saved %r to %s", self, path)

    @classmethod
    def load(cls, path, device=None, dtype=None) -> "MLPEmulator":
        """Read a model written by :meth:`save` (identical predictions).

        Parameters
        ----------
        path : str or path-like
        device : str, optional
            Where to put the weights (default: CPU).
        dtype : {'float32', 'float64'}, optional
            Convert the weights (default: the saved dtype).

        Raises
        ------
        IncompatibleModelError
            Not an MLP emulator file, or a format version this ddpayne cannot read.
        """
        path = Path(path)
        try:
            c = torch.load(path, map_location="cpu", weights_only=True)
        except FileNotFoundError:
            raise
        except Exception as exc:   # weights_only: a pickled object is refused, never run
            from ddpayne.model.emulator import untrusted_model_message

            raise IncompatibleModelError(untrusted_model_message(path, exc)) from None
        if not isinstance(c, dict) or c.get("kind") != FILE_KIND:
            raise IncompatibleModelError(f"{path}: not a ddpayne MLP emulator file")
        version = c.get("format_version")
        if version != FORMAT_VERSION:
            raise IncompatibleModelError(
                f"{path}: MLP emulator file format version {version} (written by ddpayne "
                f"{c.get('ddpayne_version')}); this ddpayne {ddpayne.__version__} reads version "
                f"{FORMAT_VERSION}. Load it with the ddpayne version that wrote it, or re-train the model "
                f"with this version (ddpayne.model.training.train_emulator).")
        model = cls(c["label_names"], c["wavelength"].numpy(), c["label_min"].numpy(),
                    c["label_max"].numpy(), n_hidden=c["n_hidden"], activation=c["activation"],
                    seed=c["seed"], dtype=c["dtype"])
        model.load_state_dict(c["state"])
        model.requires_grad_(False)   # a loaded model is for inference; the trainer re-enables gradients
        model.provenance = json.loads(c.get("provenance_json", "{}"))
        if dtype is not None:
            model.to(_dtype(dtype))
        if device is not None:
            model.to(device)
        return model
