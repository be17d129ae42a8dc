"""The physical-gradient regularizer of DD-Payne (paper Eq. 3, second term) and a no-op regularizer.

For each pixel λ the penalty is

.. math::

    R_\\lambda = \\frac{1}{\\sum_r w_r} \\sum_{r} w_r \\sum_k D_k\\, u_k\\,
        \\big| f'_{k,\\rm model}(\\lambda|\\ell_r) - f'_{k,\\rm phys}(\\lambda|\\ell_r) \\big|

summed over the pixels that are not masked in the gradient file nor in a hydrogen-line window. The
paper sums over the reference points; here the sum is *averaged* over them (weights ``w_r``: 1 inside
the training coverage, 0 or a Gaussian down-weight outside), so that ``D_k`` keeps its meaning whatever
the number of reference points. The trainer minimises Σ_λ (data term_λ + R_λ); since every pixel has its
own network this is the paper's pixel-by-pixel training.

Units: derivatives are per physical unit, and ``u_k`` = 100 for ``TEFF`` (so D_TEFF applies to the
gradient per 100 K) and 1 for the others (per dex, per km/s). Default weights: D = 5 for TEFF and LOGG
and 50 for VMIC, FE_H and the [X/Fe] abundances. A reproduction of Xiang et al. 2019 used D = 5 for VMIC
too; on the 3623-star physical mock (40 neurons, 101 reference points) that left the v_mic gradient spectra
at ρ = 0.85 against the physical ones (0.76 at held-out points), because the training labels tie v_mic to
log g and Teff, while D_VMIC = 50 gave ρ = 0.985 (0.964 held out) with the data term unchanged
(docs/performance_training.rst, "Gradient fidelity").

Model derivative: by default the same forward (or central, as the file says) finite difference with the
same step Δk as the physical gradient (``derivative='finite'``), because for strongly non-linear labels
(Teff, with steps of ~100 K) the finite difference of the physical model is not the tangent; comparing
like with like avoids a bias. ``derivative='analytic'`` uses the emulator's exact Jacobian instead
(cheaper for many labels: one Jacobian instead of n_labels + 1 forward passes).
"""
from __future__ import annotations

import logging
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ddpayne.exceptions import IncompatibleModelError
from ddpayne.model.diagnostics import (align_gradients, excluded_pixels, model_gradients,
                                      reference_coverage)
from ddpayne.model.regularizer import Regularizer, RegularizerContext, check_option_names
from ddpayne.physics.gradients import GradientSpectra

log = logging.getLogger(__name__)

#: Default per-label weights D_k (TEFF per 100 K).
DEFAULT_WEIGHTS: dict[str, float] = {"TEFF": 5.0, "LOGG": 5.0, "VMIC": 50.0}
#: Default weight of FE_H and every [X/Fe].
DEFAULT_ABUNDANCE_WEIGHT = 50.0
#: Unit factors u_k: the regularized derivative of TEFF is per 100 K.
UNIT_FACTORS: dict[str, float] = {"TEFF": 100.0}


class NoRegularizer(Regularizer):
    """No regularization: a purely data-driven model (for comparisons)."""

    name = "none"

    def penalty(self, emulator, pixels=None):
        return torch.zeros((), dtype=emulator.dtype, device=emulator.device)


def check_physics_version(gradients: GradientSpectra, minimum: int | None = None) -> None:
    """Refuse gradient spectra of an older ``physics_version`` than ``minimum`` (default: the bundled
    products' :data:`ddpayne.physics.PHYSICS_VERSION`), naming both versions and what to do."""
    from ddpayne.physics import PHYSICS_VERSION
    minimum = PHYSICS_VERSION if minimum is None else int(minimum)
    have = gradients.provenance.get("physics_version")
    if have is not None and int(have) < minimum:
        src = gradients.provenance.get("source", "the gradient spectra")
        raise ValueError(
            f"{src} was made with physics_version {have}, older than the physics_version {minimum} this "
            f"ddpayne expects (3: hydrogen lines with Stark wings): rebuild it (ddpayne build gradients "
            f"--hydrogen ddpayne/data/hydrogen_desi.fits), or accept it knowingly with regularizer option "
            f"min_physics_version = {have}")


class KuruczRegularizer(Regularizer):
    """Tie the emulator's gradient spectra to physical (Kurucz) ones at reference label points.

    Parameters
    ----------
    gradients : str, path or GradientSpectra, optional
        The gradient-spectra file (or object) on the model's wavelength grid. Default: the DESI product
        ``ddpayne/data/gradients_desi.fits`` when it is installed.
    weights : mapping, optional
        Per-label D_k overriding the defaults (module docstring); a label given weight 0 is not
        regularized.
    labels : sequence of str, optional
        Regularize only these labels (default: every emulator label in the file).
    derivative : {'finite', 'analytic'}
        How the model's gradient is computed (default 'finite'; see the module docstring).
    outside : {'exclude', 'downweight', 'include'}
        What to do with reference points outside the training-label coverage
        (:func:`ddpayne.model.diagnostics.reference_coverage`): drop them (default), weight them by
        exp(−½ (d/softness)²) with d the scaled distance outside, or keep them.
    coverage_margin, coverage_radius : float
        Coverage settings (fraction of each label's range; scaled nearest-training-star distance).
    softness : float
        Scale of the down-weighting (scaled label units).
    mask_hydrogen : {'auto', True, False}
        Hydrogen lines (MOOG-type syntheses lack Stark wings): ``'auto'`` (default) trusts the file's
        mask when it already masks hydrogen-line centres (the DESI product does, with per-line widths
        that keep the Ca II triplet) and otherwise adds ±15 Å windows; ``True`` always adds them;
        ``False`` uses the file's mask only (:func:`ddpayne.model.diagnostics.excluded_pixels`).
    scale : float
        Overall multiplier of the penalty.
    refs_per_step : int, optional
        Use a random subset of this many reference points at each optimiser step (an unbiased estimate
        of the full penalty, scaled by n_used / refs_per_step), to cut the cost of the regularizer on a
        CPU. The subset is drawn from ``(seed, step)`` so that training stays deterministic and resumes
        exactly. Default: all reference points at every step (the paper's loss).
    seed : int
        Seed of the reference-point subsets.
    min_physics_version : int, optional
        Refuse gradient products whose provenance records an older ``physics_version`` (default: the
        bundled products' version, :data:`ddpayne.physics.PHYSICS_VERSION`; products that record none,
        e.g. made elsewhere, are accepted).
    """

    name = "kurucz"

    @classmethod
    def from_options(cls, options: Mapping[str, Any] | None = None,
                     context: RegularizerContext | None = None) -> KuruczRegularizer:
        """Build from the ``[training.regularizer_options]`` table.

        ``gradients``, when given, is a file on the model's grid (relative to ``context.base_dir``);
        otherwise the run's gradient spectra matched to the training grid (``context.gradients()``) are
        used, or else the bundled DESI product. The other keys are the constructor's parameters.

        Raises
        ------
        ValueError
            An unknown option (the message lists the known ones) or an invalid value.
        """
        options = dict(options or {})
        check_option_names(cls, options)
        context = context or RegularizerContext()
        path = options.get("gradients")
        if isinstance(path, (str, os.PathLike)) and str(path):
            path = Path(os.path.expandvars(os.path.expanduser(str(path))))
            options["gradients"] = path if path.is_absolute() else Path(context.base_dir) / path
        elif path is None and context.gradients is not None:
            options["gradients"] = context.gradients()
        return cls(**options)

    def __init__(self, gradients=None, weights: Mapping[str, float] | None = None,
                 labels: Sequence[str] | None = None, derivative: str = "finite",
                 outside: str = "exclude", coverage_margin: float = 0.0, coverage_radius: float = 0.15,
                 softness: float = 0.1, mask_hydrogen="auto", scale: float = 1.0,
                 refs_per_step: int | None = None, seed: int = 0, min_physics_version: int | None = None):
        if gradients is None:
            from ddpayne.physics.build_gradients import DEFAULT_PRODUCT

            if not Path(DEFAULT_PRODUCT).exists():
                raise FileNotFoundError(
                    f"the kurucz regularizer needs gradient spectra: pass regularizer_options="
                    f"{{'gradients': 'file.fits'}} (a GradientSpectra file on the model's grid); the DESI "
                    f"product {DEFAULT_PRODUCT} is not installed (build it with python -m "
                    f"ddpayne.physics.build_gradients), or train with regularizer='none'")
            gradients = DEFAULT_PRODUCT
        if isinstance(gradients, GradientSpectra):
            self.gradients = gradients
            self.path = None
        else:
            self.path = Path(gradients)
            if not self.path.exists():
                raise FileNotFoundError(f"gradient-spectra file {self.path} does not exist")
            self.gradients = GradientSpectra.read(self.path)
            self.gradients.provenance.setdefault("source", str(self.path))
        check_physics_version(self.gradients, min_physics_version)
        if derivative not in ("finite", "analytic"):
            raise ValueError(f"derivative must be 'finite' or 'analytic', got {derivative!r}")
        if outside not in ("exclude", "downweight", "include"):
            raise ValueError(f"outside must be 'exclude', 'downweight' or 'include', got {outside!r}")
        self.weights = dict(weights or {})
        unknown = [k for k in self.weights if k not in self.gradients.label_names]
        if unknown:
            raise ValueError(f"weights given for labels {unknown} that the gradient spectra do not hold "
                             f"({list(self.gradients.label_names)})")
        self.labels = None if labels is None else tuple(labels)
        self.derivative = derivative
        self.outside = outside
        self.coverage_margin = float(coverage_margin)
        self.coverage_radius = float(coverage_radius)
        self.softness = float(softness)
        if mask_hydrogen not in ("auto", True, False):
            raise ValueError(f"mask_hydrogen must be 'auto', True or False, got {mask_hydrogen!r}")
        self.mask_hydrogen = mask_hydrogen
        self.scale = float(scale)
        if refs_per_step is not None and int(refs_per_step) < 1:
            raise ValueError(f"refs_per_step must be >= 1 or None, got {refs_per_step}")
        self.refs_per_step = None if refs_per_step is None else int(refs_per_step)
        self.seed = int(seed)
        self._step = 0
        self._train_labels = None
        self._prepared = None
        self._cache = {}

    # ------------------------------------------------------------------ setup
    def weight_of(self, label: str) -> float:
        """D_k of ``label``."""
        if label in self.weights:
            return float(self.weights[label])
        return DEFAULT_WEIGHTS.get(label, DEFAULT_ABUNDANCE_WEIGHT)

    def set_training_labels(self, labels) -> None:
        """Give the training labels (emulator order) for the nearest-star coverage test."""
        self._train_labels = None if labels is None else np.asarray(labels, dtype=float)
        self._prepared = None

    @property
    def checksum(self) -> str:
        """SHA-256 of the gradient spectra (stored with trained models)."""
        return self.gradients.checksum()

    def check_compatible(self, emulator) -> None:
        """Check the grid and labels against ``emulator`` and prepare the reference data.

        Raises
        ------
        IncompatibleModelError
            Other wavelength grid or label names (the message says what to do), or no reference point
            inside the training coverage when ``outside='exclude'``.
        """
        g = self.gradients
        labels = self.labels
        if labels is None:
            labels = [n for n in emulator.label_names if n in g.label_names]
        labels = [n for n in labels if self.weight_of(n) != 0]
        ref, ei, gi = align_gradients(emulator.label_names, emulator.wavelength, g, labels,
                                      what=f"emulator {emulator.name!r}")
        dist = reference_coverage(ref, emulator.label_names, emulator.label_min, emulator.label_max,
                                  train_labels=self._train_labels, margin=self.coverage_margin,
                                  radius=self.coverage_radius)
        if self.outside == "exclude":
            w = (dist == 0).astype(float)
        elif self.outside == "downweight":
            w = np.exp(-0.5 * (dist / self.softness) ** 2)
        else:
            w = np.ones(len(ref))
        use = np.flatnonzero(w > 1e-6)
        if use.size == 0:
            ranges = dict(zip(emulator.label_names, zip(emulator.label_min, emulator.label_max)))
            raise IncompatibleModelError(
                f"none of the {g.n_ref} reference points of the gradient spectra lies inside the training "
                f"label coverage of the emulator (ranges {ranges}): "
                f"use outside='downweight' or 'include', widen coverage_margin/coverage_radius, or use "
                f"gradient spectra computed inside the training coverage")
        good = ~excluded_pixels(g, self.mask_hydrogen)
        good &= np.all(np.isfinite(g.gradients[np.ix_(use, gi)]), axis=(0, 1))
        dk = np.array([self.weight_of(n) * UNIT_FACTORS.get(n, 1.0) for n in labels])
        coef = (w[use] / w[use].sum())[:, None] * dk[None, :] * self.scale      # (n_use, K)
        self._prepared = dict(labels=tuple(labels), refs=use, ref_weights=w[use], coef=coef,
                              good=good, phys=g.gradients[np.ix_(use, gi)], n_outside=int((dist > 0).sum()),
                              ref_matrix=ref[use], emu_index=ei, steps=g.steps[gi])
        self._cache = {}
        log.info("kurucz regularizer: %d of %d reference points used (%d outside the training coverage, "
                 "outside=%r), %d labels, %d of %d pixels", use.size, g.n_ref,
                 self._prepared["n_outside"], self.outside, len(labels), good.sum(), g.n_pix)

    @property
    def n_constraints_per_pixel(self) -> int:
        """Gradient values that constrain each pixel's network (reference points × labels)."""
        if self._prepared is None:
            return 0
        return len(self._prepared["refs"]) * len(self._prepared["labels"])

    @property
    def rows_per_step(self) -> int:
        """Label rows per pixel that one penalty evaluates (reference points × (labels + 1))."""
        if self._prepared is None:
            return 0
        return len(self._prepared["refs"]) * (len(self._prepared["labels"]) + 1)

    def describe(self) -> dict:
        """Name, options and the gradient-file checksum, for the model's provenance."""
        p = self._prepared or {}
        return {"name": self.name, "path": None if self.path is None else str(self.path),
                "checksum": self.checksum, "derivative": self.derivative, "outside": self.outside,
                "coverage_margin": self.coverage_margin, "coverage_radius": self.coverage_radius,
                "mask_hydrogen": self.mask_hydrogen, "scale": self.scale,
                "labels": list(p.get("labels", [])),
                "weights": {n: self.weight_of(n) for n in p.get("labels", [])},
                "n_refs_used": int(len(p.get("refs", []))), "refs_per_step": self.refs_per_step,
                "seed": self.seed,
                "difference": self.gradients.provenance.get("difference", "forward")}

    def _tensors(self, emulator):
        key = (emulator.dtype, str(emulator.device))
        if key not in self._cache:
            p = self._prepared
            dev, dt = emulator.device, emulator.dtype
            coef = torch.as_tensor(p["coef"], dtype=dt, device=dev)[:, :, None]
            good = torch.as_tensor(p["good"], dtype=dt, device=dev)
            phys = torch.as_tensor(np.where(p["good"], p["phys"], 0.0), dtype=dt, device=dev)
            self._cache = {key: (coef * good, phys)}   # (n_use, K, P) weights incl. pixel mask
        return self._cache[key]

    def set_step(self, step: int) -> None:
        """The optimiser step about to be taken (selects the reference subset of ``refs_per_step``)."""
        self._step = int(step)

    def _subset(self):
        """Indices (into the used reference points) for this step and the unbiasing factor."""
        n_use = len(self._prepared["refs"])
        if self.refs_per_step is None or self.refs_per_step >= n_use:
            return None, 1.0
        rng = np.random.default_rng([self.seed, self._step])
        idx = np.sort(rng.choice(n_use, self.refs_per_step, replace=False))
        return idx, n_use / self.refs_per_step

    # ------------------------------------------------------------------ the penalty
    def penalty_backward(self, emulator, pixels=None):
        """The penalty over ``pixels`` with its gradient added to the emulator's ``param.grad`` by the
        emulator's own hand-written back-propagation (``accumulate_gradient``), or None when that is
        not available (analytic derivatives, or an emulator without it); then use :meth:`penalty`
        with autograd. Both give the same value and gradients (tested).
        """
        if self.derivative != "finite" or not getattr(emulator, "manual_backward", False):
            return None
        if self._prepared is None:
            self.check_compatible(emulator)
        p = self._prepared
        dev, dt = emulator.device, emulator.dtype
        key = ("manual", dt, str(dev))
        if key not in self._cache:
            weight, phys = self._tensors(emulator)
            self._cache[key] = (weight.permute(2, 0, 1).contiguous(), phys.permute(2, 0, 1).contiguous())
        w_pix, phys_pix = self._cache[key]                                 # (P, n_ref, K)
        x = torch.as_tensor(p["ref_matrix"], dtype=dt, device=dev)
        sub, factor = self._subset()
        if sub is not None:
            ti = torch.as_tensor(sub, device=dev)
            w_pix, phys_pix, x = w_pix[:, ti] * factor, phys_pix[:, ti], x[ti]
        steps = torch.as_tensor(p["steps"], dtype=dt, device=dev)
        n_ref, K = x.shape[0], steps.numel()
        eye = torch.zeros((K, emulator.n_labels), dtype=dt, device=dev)
        eye[torch.arange(K), torch.as_tensor(p["emu_index"])] = steps
        plus = (x[:, None, :] + eye[None]).reshape(n_ref * K, -1)
        central = self.gradients.provenance.get("difference", "forward") == "central"
        if central:
            rows = torch.cat([plus, (x[:, None, :] - eye[None]).reshape(n_ref * K, -1)])
        else:
            rows = torch.cat([x, plus])

        def upstream(f, pix):
            P = f.shape[0]
            if central:
                fp = f[:, :n_ref * K].view(P, n_ref, K)
                fm = f[:, n_ref * K:].view(P, n_ref, K)
                model = (fp - fm) / (2 * steps)
            else:
                f0 = f[:, :n_ref]
                fp = f[:, n_ref:].view(P, n_ref, K)
                model = (fp - f0[:, :, None]) / steps
            diff = model - phys_pix[pix]
            wgt = w_pix[pix]
            value = (wgt * diff.abs()).sum()
            if central:
                sg = wgt * torch.sign(diff) / (2 * steps)
                g = torch.cat([sg.reshape(P, -1), -sg.reshape(P, -1)], 1)
            else:
                sg = wgt * torch.sign(diff) / steps
                g = torch.cat([-sg.sum(-1), sg.reshape(P, -1)], 1)
            return g, value

        return emulator.accumulate_gradient(rows, upstream, pixels)

    def penalty(self, emulator, pixels=None):
        """Σ over pixels (of ``pixels``, default all) of R_λ; differentiable in the weights.

        :meth:`check_compatible` must have been called with this emulator.
        """
        if self._prepared is None:
            self.check_compatible(emulator)
        p = self._prepared
        weight, phys = self._tensors(emulator)
        refs = p["refs"]
        sub, factor = self._subset()
        if sub is not None:
            ti = torch.as_tensor(sub, device=weight.device)
            weight, phys, refs = weight[ti] * factor, phys[ti], refs[sub]
        if pixels is not None:
            weight, phys = weight[:, :, pixels], phys[:, :, pixels]
        model = model_gradients(emulator, self.gradients, p["labels"], self.derivative, refs=refs,
                                pixels=pixels)
        return (weight * (model - phys).abs()).sum()
