"""The Kurucz physical-gradient regularizer (paper Eq. 3, second term) and the no-op regularizer."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from ddpayne import registry
from ddpayne.exceptions import IncompatibleModelError
from ddpayne.model.regularizer import Regularizer
from ddpayne.physics.gradients import GradientSpectra
from ddpayne.prepare.masks import hydrogen_mask

LABELS = ("TEFF", "LOGG", "FE_H", "MG_FE")
WAVE = np.arange(4830.0, 4900.0, 1.0)          # contains H-beta (4862.68 Å vacuum)
LMIN = np.array([4500.0, 1.0, -2.0, -0.2])
LMAX = np.array([6500.0, 5.0, 0.5, 0.5])
STEPS = np.array([100.0, 0.1, 0.1, 0.1])


def emulator(seed=0, dtype="float64"):
    return registry.create("emulator", "mlp", label_names=LABELS, wavelength=WAVE, label_min=LMIN,
                           label_max=LMAX, n_hidden=8, seed=seed, dtype=dtype)


def refs(n=6, seed=1):
    rng = np.random.default_rng(seed)
    return LMIN + rng.uniform(0.1, 0.9, (n, 4)) * (LMAX - LMIN)


def own_gradients(emu, ref, mask=None):
    """Gradient spectra that are exactly the emulator's own forward differences."""
    base = emu.predict(ref)
    pert = np.stack([emu.predict(ref + STEPS[k] * np.eye(4)[k]) for k in range(4)], axis=1)
    return GradientSpectra.from_spectra(WAVE, ref, STEPS, base, pert, LABELS, mask=mask)


def test_registered():
    for name in ("kurucz", "none"):
        assert issubclass(registry.get("regularizer", name), Regularizer)
    emu = emulator()
    none = registry.create("regularizer", "none")
    assert float(none.penalty(emu).detach()) == 0.0


def test_zero_for_the_models_own_gradients():
    emu = emulator()
    reg = registry.create("regularizer", "kurucz", gradients=own_gradients(emu, refs()))
    reg.check_compatible(emu)
    other = emulator(seed=5)
    assert float(reg.penalty(emu).detach()) < 1e-9 * float(reg.penalty(other).detach())
    assert float(reg.penalty(other).detach()) > 0


def test_matches_hand_computation():
    emu = emulator()
    ref = refs()
    rng = np.random.default_rng(3)
    phys = rng.normal(0, 0.05, (len(ref), 4, WAVE.size)) / np.array([100, 1, 1, 1])[None, :, None]
    mask = np.zeros(WAVE.size, bool)
    mask[:3] = True
    g = GradientSpectra(WAVE, LABELS, ref, STEPS, phys, emu.predict(ref), mask=mask)
    weights = {"TEFF": 2.0, "MG_FE": 7.0}
    reg = registry.create("regularizer", "kurucz", gradients=g, weights=weights)
    reg.check_compatible(emu)
    # by hand: forward differences of the model, D_k (TEFF per 100 K), mean over refs, sum over pixels
    f0 = emu.predict(ref)
    model = np.stack([(emu.predict(ref + STEPS[k] * np.eye(4)[k]) - f0) / STEPS[k] for k in range(4)], 1)
    d = np.array([2.0 * 100, 5.0, 50.0, 7.0])
    good = ~mask & ~hydrogen_mask(WAVE)
    expect = (d[None, :, None] * np.abs(model - phys))[:, :, good].sum() / len(ref)
    assert float(reg.penalty(emu).detach()) == pytest.approx(expect, rel=1e-10)
    # chunks of pixels add up to the whole
    parts = sum(float(reg.penalty(emu, pixels=slice(a, a + 16)).detach())
                for a in range(0, WAVE.size, 16))
    assert parts == pytest.approx(expect, rel=1e-10)
    desc = reg.describe()
    assert desc["checksum"] == g.checksum() and desc["weights"]["TEFF"] == 2.0


def test_default_weights():
    """D = 5 for TEFF (per 100 K) and LOGG; 50 for VMIC (measured: docs/performance_training.rst) and abundances."""
    g = GradientSpectra(WAVE, LABELS, refs(), STEPS, np.zeros((len(refs()), 4, WAVE.size)),
                        emulator().predict(refs()))
    reg = registry.create("regularizer", "kurucz", gradients=g)
    assert [reg.weight_of(n) for n in ("TEFF", "LOGG", "VMIC", "FE_H", "MG_FE", "NI_FE")] == \
        [5.0, 5.0, 50.0, 50.0, 50.0, 50.0]


def test_masked_and_hydrogen_pixels_are_excluded():
    emu = emulator()
    ref = refs()
    h = hydrogen_mask(WAVE)
    assert h.any() and not h.all()
    mask = np.zeros(WAVE.size, bool)
    mask[-2:] = True
    g = own_gradients(emu, ref, mask=mask)
    grads = g.gradients.copy()
    grads[:, :, h | mask] += 1e3                     # garbage where it must not count
    bad = GradientSpectra(WAVE, LABELS, ref, STEPS, grads, g.base_flux, mask=mask)
    reg = registry.create("regularizer", "kurucz", gradients=bad)
    assert float(reg.penalty(emu).detach()) < 1e-9
    keep_h = registry.create("regularizer", "kurucz", gradients=bad, mask_hydrogen=False)
    assert float(keep_h.penalty(emu).detach()) > 1e3
    # a file that masks hydrogen itself (narrowly, as the DESI product keeps the Ca II triplet) is
    # trusted by the default 'auto': pixels 5-15 Å from H-beta count
    narrow = np.abs(WAVE - 4862.68) <= 4.0
    own_h = own_gradients(emu, ref, mask=narrow)
    grads = own_h.gradients.copy()
    wing = h & ~narrow
    grads[:, :, wing] += 1.0
    trusted = GradientSpectra(WAVE, LABELS, ref, STEPS, grads, own_h.base_flux, mask=narrow)
    auto = registry.create("regularizer", "kurucz", gradients=trusted)
    always = registry.create("regularizer", "kurucz", gradients=trusted, mask_hydrogen=True)
    assert float(auto.penalty(emu).detach()) > 1.0
    assert float(always.penalty(emu).detach()) < 1e-9


def test_analytic_derivative_close_to_finite():
    emu = emulator()
    g = own_gradients(emu, refs())
    fin = registry.create("regularizer", "kurucz", gradients=g)
    ana = registry.create("regularizer", "kurucz", gradients=g, derivative="analytic")
    other = emulator(seed=9)
    # for the model's own gradients the analytic penalty is only the finite-difference error
    assert float(fin.penalty(emu).detach()) < 1e-9
    assert 0 < float(ana.penalty(emu).detach()) < 0.05 * float(ana.penalty(other).detach())


def test_differentiable_in_the_weights():
    emu = emulator(dtype="float32")
    g = own_gradients(emulator(seed=7), refs())
    reg = registry.create("regularizer", "kurucz", gradients=g)
    reg.penalty(emu).backward()
    assert emu.W0.grad is not None and emu.W0.grad.abs().sum() > 0
    assert torch.isfinite(emu.W1.grad).all()


def test_reference_points_outside_the_coverage():
    emu = emulator()
    ref = refs(6)
    ref[0, 2] = -3.0                                 # [Fe/H] below the training range
    ref[1, 0] = 7000.0                               # too hot
    g = own_gradients(emulator(seed=2), ref)
    excl = registry.create("regularizer", "kurucz", gradients=g)
    excl.check_compatible(emu)
    assert excl.describe()["n_refs_used"] == 4
    assert excl.n_constraints_per_pixel == 4 * 4
    down = registry.create("regularizer", "kurucz", gradients=g, outside="downweight")
    down.check_compatible(emu)
    w = down._prepared["ref_weights"]
    # Gaussian down-weight of the scaled distance outside the box (softness 0.1)
    assert np.all(w[2:] == 1)
    assert w[0] == pytest.approx(np.exp(-0.5 * (1.0 / 2.5 / 0.1) ** 2))      # 1 dex below / 2.5 dex
    assert w[1] == pytest.approx(np.exp(-0.5 * (500 / 2000 / 0.1) ** 2))     # 500 K above / 2000 K
    incl = registry.create("regularizer", "kurucz", gradients=g, outside="include")
    incl.check_compatible(emu)
    assert incl.describe()["n_refs_used"] == 6
    # nearest-training-star test: training stars only in one corner exclude far reference points
    near = registry.create("regularizer", "kurucz", gradients=g)
    near.set_training_labels(np.repeat(ref[2:3], 10, axis=0))
    near.check_compatible(emu)
    assert near.describe()["n_refs_used"] == 1
    all_out = GradientSpectra(WAVE, LABELS, ref[:2], STEPS, g.gradients[:2], g.base_flux[:2])
    with pytest.raises(IncompatibleModelError, match="inside the training label coverage"):
        registry.create("regularizer", "kurucz", gradients=all_out).check_compatible(emu)


def test_incompatible_grid_or_labels(tmp_path):
    emu = emulator()
    g = own_gradients(emu, refs())
    path = tmp_path / "grad.fits"
    g.write(path)
    other_grid = registry.create("emulator", "mlp", label_names=LABELS, wavelength=WAVE + 0.5,
                                 label_min=LMIN, label_max=LMAX)
    reg = registry.create("regularizer", "kurucz", gradients=path)
    with pytest.raises(IncompatibleModelError, match="grad.fits.*wavelength grid.*rebuild"):
        reg.check_compatible(other_grid)
    more_labels = registry.create("emulator", "mlp", label_names=LABELS + ("CA_FE",), wavelength=WAVE,
                                  label_min=np.append(LMIN, -0.5), label_max=np.append(LMAX, 0.5))
    with pytest.raises(IncompatibleModelError, match="CA_FE"):
        reg.check_compatible(more_labels)
    # a model with fewer labels than the file is fine (extra labels of the file are not used)...
    # ...but here the file defines the reference point for every model label, so 3 of 4 works
    sub = registry.create("emulator", "mlp", label_names=LABELS[:3], wavelength=WAVE, label_min=LMIN[:3],
                          label_max=LMAX[:3])
    reg.check_compatible(sub)
    assert reg.describe()["labels"] == list(LABELS[:3])
    with pytest.raises(FileNotFoundError):
        registry.create("regularizer", "kurucz", gradients=tmp_path / "missing.fits")
    with pytest.raises(ValueError, match="VMIC"):
        registry.create("regularizer", "kurucz", gradients=g, weights={"VMIC": 1.0})


@pytest.mark.parametrize("central", [False, True])
def test_manual_backprop_equals_autograd(central):
    emu = emulator()
    ref = refs()
    other = emulator(seed=4)
    base = other.predict(ref)
    pert = np.stack([other.predict(ref + STEPS[k] * np.eye(4)[k]) for k in range(4)], axis=1)
    minus = np.stack([other.predict(ref - STEPS[k] * np.eye(4)[k]) for k in range(4)], axis=1)
    g = GradientSpectra.from_spectra(WAVE, ref, STEPS, base, pert, LABELS,
                                     minus_flux=minus if central else None)
    reg = registry.create("regularizer", "kurucz", gradients=g)
    emu.zero_grad()
    value = reg.penalty(emu)
    value.backward()
    auto = {k: p.grad.clone() for k, p in emu.named_parameters()}
    emu.zero_grad(set_to_none=True)
    manual = reg.penalty_backward(emu)
    assert manual == pytest.approx(float(value.detach()), rel=1e-12)
    scale = max(float(a.abs().max()) for a in auto.values())
    for k, p in emu.named_parameters():      # (b2 drops out of a finite difference: ~0 gradient)
        np.testing.assert_allclose(p.grad.numpy(), auto[k].numpy(), rtol=1e-9, atol=1e-11 * scale,
                                   err_msg=k)
    assert registry.create("regularizer", "kurucz", gradients=g,
                           derivative="analytic").penalty_backward(emu) is None


def test_reference_subsets_per_step_are_unbiased_and_deterministic():
    emu = emulator()
    g = own_gradients(emulator(seed=6), refs(12))
    full = registry.create("regularizer", "kurucz", gradients=g)
    sub = registry.create("regularizer", "kurucz", gradients=g, refs_per_step=3, seed=1)
    total = float(full.penalty(emu).detach())
    values = []
    for step in range(150):
        sub.set_step(step)
        values.append(float(sub.penalty(emu).detach()))
    assert np.mean(values) == pytest.approx(total, rel=0.1)          # unbiased estimate
    assert np.std(values) > 0
    sub.set_step(17)
    a = float(sub.penalty(emu).detach())
    b = sub.penalty_backward(emu)                                     # same subset, same value
    assert a == pytest.approx(b, rel=1e-12)
    sub.set_step(3)
    sub.set_step(17)
    assert float(sub.penalty(emu).detach()) == a


def test_default_gradient_product(monkeypatch, tmp_path):
    import ddpayne.physics.build_gradients as bg

    monkeypatch.setattr(bg, "DEFAULT_PRODUCT", tmp_path / "absent.fits")
    with pytest.raises(FileNotFoundError, match="needs gradient spectra.*regularizer='none'"):
        registry.create("regularizer", "kurucz")
    emu = emulator()
    own_gradients(emu, refs()).write(tmp_path / "absent.fits")
    reg = registry.create("regularizer", "kurucz")
    assert reg.describe()["path"] == str(tmp_path / "absent.fits")
    # the file stores float16 gradients (~5e-4 relative), so the own-gradient penalty is small, not 0
    assert float(reg.penalty(emu).detach()) < 0.01 * float(reg.penalty(emulator(seed=8)).detach())
