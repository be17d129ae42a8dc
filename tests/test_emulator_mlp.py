"""The MLP emulator plugin: forward pass, exact Jacobian, dtypes, save/load, errors."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from ddpayne import registry
from ddpayne.exceptions import IncompatibleModelError
from ddpayne.model.emulator import Emulator, load_emulator

LABELS = ("TEFF", "LOGG", "FE_H")
WAVE = np.linspace(5000.0, 5030.0, 31)
LMIN, LMAX = np.array([4000.0, 1.0, -2.5]), np.array([7000.0, 5.0, 0.5])


def make(**kw):
    return registry.create("emulator", "mlp", label_names=LABELS, wavelength=WAVE, label_min=LMIN,
                           label_max=LMAX, **kw)


def npy(t):
    return t.detach().numpy()


def labels(n=5, seed=0):
    rng = np.random.default_rng(seed)
    return LMIN + rng.uniform(0.05, 0.95, (n, 3)) * (LMAX - LMIN)


def reference_flux(emu, lab):
    """The method-notes equation, pixel by pixel in numpy (independent of the batched code)."""
    x = (lab - emu.label_min) / (emu.label_max - emu.label_min) - 0.5
    W0, b0, W1, b1, w2, b2 = (p.detach().double().numpy() for p in
                              (emu.W0, emu.b0, emu.W1, emu.b1, emu.w2, emu.b2))
    sig = lambda z: 1 / (1 + np.exp(-z))  # noqa: E731
    out = np.empty((len(lab), emu.n_pix))
    for p in range(emu.n_pix):
        h0 = sig(x @ W0[p].T + b0[p])
        h1 = sig(h0 @ W1[p].T + b1[p])
        out[:, p] = h1 @ w2[p] + b2[p]
    return out


def test_registered_and_is_an_emulator():
    cls = registry.get("emulator", "mlp")
    assert issubclass(cls, Emulator)
    emu = make()
    assert emu.label_names == LABELS and emu.n_pix == WAVE.size
    assert emu.n_parameters_per_pixel == 3 * 40 + 40 + 40 * 40 + 40 + 40 + 1
    # the paper's 15-label 40-40 network
    big = registry.create("emulator", "mlp", label_names=[f"L{i}" for i in range(15)], wavelength=WAVE,
                          label_min=np.zeros(15), label_max=np.ones(15))
    assert big.n_parameters_per_pixel == 15 * 40 + 40 + 40 * 40 + 40 + 40 + 1 == 2321


def test_flux_matches_the_equation_pixel_by_pixel():
    emu = make(dtype="float64", seed=3)
    lab = labels(7)
    f = npy(emu.flux(torch.as_tensor(lab)))
    assert f.shape == (7, WAVE.size)
    np.testing.assert_allclose(f, reference_flux(emu, lab), rtol=0, atol=1e-12)
    np.testing.assert_allclose(emu.predict(lab[0]), f[0], atol=1e-12)


@pytest.mark.parametrize("activation", ["sigmoid", "silu", "tanh"])
def test_jacobian_is_exact(activation):
    emu = make(dtype="float64", activation=activation, seed=1)
    lab = torch.as_tensor(labels(4))
    f, jac = emu.jacobian(lab)
    assert jac.shape == (4, WAVE.size, 3)
    np.testing.assert_allclose(npy(f), npy(emu.flux(lab)), atol=1e-14)
    auto = torch.autograd.functional.jacobian(emu.flux, lab)        # (n, P, n, L)
    auto = torch.stack([auto[i, :, i, :] for i in range(4)])
    np.testing.assert_allclose(npy(jac), npy(auto), rtol=1e-10, atol=1e-14)
    # per physical unit: central finite difference with a 1e-3 K / 1e-6 dex step
    h = torch.tensor([1e-3, 1e-6, 1e-6], dtype=torch.float64)
    for k in range(3):
        e = torch.zeros(3, dtype=torch.float64)
        e[k] = h[k]
        fd = (emu.flux(lab + e) - emu.flux(lab - e)) / (2 * h[k])
        np.testing.assert_allclose(npy(jac[:, :, k]), npy(fd), rtol=1e-5, atol=1e-9)


def test_pixel_subset():
    emu = make(dtype="float64")
    lab = torch.as_tensor(labels(3))
    f, jac = emu.jacobian(lab)
    fs, js = emu.jacobian(lab, pixels=slice(5, 12))
    np.testing.assert_allclose(npy(fs), npy(f[:, 5:12]), atol=1e-14)
    np.testing.assert_allclose(npy(js), npy(jac[:, 5:12]), atol=1e-14)
    idx = torch.tensor([0, 7, 30])
    np.testing.assert_allclose(npy(emu.flux(lab, pixels=idx)), npy(f[:, idx]), atol=1e-14)


def test_float32_and_float64_agree():
    e64 = make(dtype="float64", seed=2)
    e32 = make(dtype="float32", seed=2)
    assert e32.dtype == torch.float32 and e64.dtype == torch.float64
    lab = labels(6)
    f32, j32 = e32.jacobian(lab)
    f64, j64 = e64.jacobian(lab)
    assert f32.dtype == torch.float32
    np.testing.assert_allclose(npy(f32), npy(f64), atol=1e-5)
    np.testing.assert_allclose(npy(j32), npy(j64), atol=1e-6, rtol=1e-4)


def test_initialize_sets_the_mean_flux():
    emu = make(dtype="float64")
    mean = np.linspace(0.5, 1.0, WAVE.size)
    emu.initialize(mean)
    mid = (LMIN + LMAX) / 2
    np.testing.assert_allclose(emu.predict(mid), mean, atol=1e-12)


def test_save_load_identical(tmp_path):
    emu = make(seed=4)
    emu.provenance = {"regularizer_checksum": "abc", "training_settings": {"epochs": 3}}
    path = tmp_path / "model.pt"
    emu.save(path)
    back = load_emulator(path)
    assert type(back) is type(emu)
    assert back.label_names == emu.label_names
    np.testing.assert_array_equal(back.wavelength, WAVE)
    np.testing.assert_array_equal(back.label_min, LMIN)
    np.testing.assert_array_equal(back.label_max, LMAX)
    assert back.provenance == emu.provenance
    lab = labels(5)
    np.testing.assert_array_equal(back.predict(lab), emu.predict(lab))
    f1, j1 = emu.jacobian(lab)
    f2, j2 = back.jacobian(lab)
    assert torch.equal(j1, j2)
    as64 = registry.get("emulator", "mlp").load(path, dtype="float64")
    assert as64.dtype == torch.float64
    np.testing.assert_allclose(as64.predict(lab), emu.predict(lab), atol=1e-6)


def test_join_disjoint_pixel_sets_predicts_like_each_part():
    """Parts trained on every 3rd pixel (offsets 0, 1, 2) join into the full grid, pixel for pixel."""
    cls = registry.get("emulator", "mlp")
    parts = [cls(LABELS, WAVE[j::3], LMIN, LMAX, n_hidden=6, seed=10 + j) for j in range(3)]
    joined = cls.join([parts[2], parts[0], parts[1]])   # any order: pixels are sorted by wavelength
    np.testing.assert_array_equal(joined.wavelength, WAVE)
    lab = labels(7)
    f = joined.predict(lab)
    _, jac = joined.jacobian(lab)
    for j, part in enumerate(parts):
        np.testing.assert_array_equal(f[:, j::3], part.predict(lab))
        assert torch.equal(jac[:, j::3], part.jacobian(lab)[1])
    np.testing.assert_allclose(f, reference_flux(joined, lab), atol=1e-5)
    assert joined.provenance["n_pix_of_parts"] == [p.n_pix for p in (parts[2], parts[0], parts[1])]


def test_join_refuses_parts_of_different_trainings():
    cls = registry.get("emulator", "mlp")
    a = cls(LABELS, WAVE[0::2], LMIN, LMAX, n_hidden=6)
    with pytest.raises(IncompatibleModelError, match="label scaling"):
        cls.join([a, cls(LABELS, WAVE[1::2], LMIN, LMAX + 1, n_hidden=6)])
    with pytest.raises(IncompatibleModelError, match="n_hidden"):
        cls.join([a, cls(LABELS, WAVE[1::2], LMIN, LMAX, n_hidden=5)])
    with pytest.raises(IncompatibleModelError, match="more than one part"):
        cls.join([a, cls(LABELS, WAVE[0::4], LMIN, LMAX, n_hidden=6)])
    with pytest.raises(ValueError, match="at least one"):
        cls.join([])


def test_incompatible_format_version(tmp_path):
    emu = make()
    path = tmp_path / "model.pt"
    emu.save(path)
    content = torch.load(path, weights_only=True)
    content["format_version"] = 99
    torch.save(content, tmp_path / "future.pt")
    with pytest.raises(IncompatibleModelError, match="format version 99.*re-train"):
        load_emulator(tmp_path / "future.pt")
    (tmp_path / "junk.pt").write_bytes(b"not a model")
    with pytest.raises(IncompatibleModelError, match="junk.pt"):
        load_emulator(tmp_path / "junk.pt")


def test_bad_construction():
    with pytest.raises(ValueError, match="label range is empty.*LOGG"):
        registry.create("emulator", "mlp", label_names=LABELS, wavelength=WAVE, label_min=LMIN,
                        label_max=np.array([7000.0, 1.0, 0.5]))
    with pytest.raises(ValueError, match="activation"):
        make(activation="relu6")
    with pytest.raises(ValueError, match=r"shape \(n, 3\)"):
        make().flux(torch.zeros(2, 4))


def test_manual_backprop_equals_autograd():
    emu = make(dtype="float64", seed=5)
    rng = np.random.default_rng(1)
    lab = torch.as_tensor(labels(9))
    y = torch.as_tensor(rng.uniform(0.5, 1.0, (9, WAVE.size)))
    w = torch.as_tensor(rng.uniform(0.0, 100.0, (9, WAVE.size)))
    emu.zero_grad()
    loss = ((emu.flux(lab) - y) ** 2 * w).sum() / 9
    loss.backward()
    auto = {k: p.grad.clone() for k, p in emu.named_parameters()}
    emu.zero_grad(set_to_none=True)
    value = emu.data_term_backward(lab, y, w, scale=1 / 9, block=7)     # blocks that do not divide 31
    assert value == pytest.approx(float(loss.detach()), rel=1e-12)
    for k, p in emu.named_parameters():
        np.testing.assert_allclose(npy(p.grad), npy(auto[k]), rtol=1e-10, atol=1e-14, err_msg=k)
    # a pixel range only touches its own parameters
    emu.zero_grad(set_to_none=True)
    emu.data_term_backward(lab, y[:, 4:9], w[:, 4:9], pixels=slice(4, 9), scale=1 / 9)
    assert torch.all(emu.W1.grad[:4] == 0) and torch.all(emu.W1.grad[9:] == 0)
    np.testing.assert_allclose(npy(emu.W1.grad[4:9]), npy(auto["W1"][4:9]), rtol=1e-10, atol=1e-14)
    # the default block size (from the rows and neurons) gives the same gradients as explicit blocks
    emu.zero_grad(set_to_none=True)
    assert emu.data_term_backward(lab, y, w, scale=1 / 9) == pytest.approx(value, rel=1e-12)
    for k, p in emu.named_parameters():
        np.testing.assert_allclose(npy(p.grad), npy(auto[k]), rtol=1e-10, atol=1e-14, err_msg=k)


@pytest.mark.parametrize("hidden, rows, block", [(10, 64, 256), (10, 96, 256), (40, 512, 16), (40, 256, 32),
                                                  (40, 64, 128), (40, 5000, 8), (2, 1, 256)])
def test_block_size_keeps_a_block_near_two_mebibytes(hidden, rows, block):
    """Pixels per block: a power of two in [8, 256] with block × hidden × rows at most 2^19 values
    (benchmarks/bench_blocks.py: small networks on small batches want big blocks, 40 neurons on 512
    rows small ones)."""
    assert make(n_hidden=hidden).block_size(rows) == block


# ---------------------------------------------------------------- the fast (no-autograd) path used by fitters
@pytest.mark.parametrize("activation", ["sigmoid", "silu", "tanh"])
@pytest.mark.parametrize("n", [3, 50])   # 50 > n_hidden: w2 and the label scaling are folded into the weights
def test_fast_jacobian_is_exact(activation, n):
    """Under no_grad the Jacobian reuses activation buffers in place; it must still be the exact derivative."""
    emu = make(dtype="float64", activation=activation, seed=5, n_hidden=40)
    emu.requires_grad_(False)
    lab = torch.as_tensor(labels(n, seed=2))
    with torch.no_grad():
        f, jac = emu.jacobian(lab)
    assert jac.shape == (n, WAVE.size, 3)
    np.testing.assert_allclose(npy(f), npy(emu.flux(lab)), atol=1e-14)
    auto = torch.autograd.functional.jacobian(emu.flux, lab[:3])           # (3, P, 3, L)
    auto = torch.stack([auto[i, :, i, :] for i in range(3)])
    np.testing.assert_allclose(npy(jac[:3]), npy(auto), rtol=1e-10, atol=1e-14)
    h = torch.tensor([1e-3, 1e-6, 1e-6], dtype=torch.float64)     # central differences, physical units
    for k in range(3):
        e = torch.zeros(3, dtype=torch.float64)
        e[k] = h[k]
        fd = (emu.flux(lab + e) - emu.flux(lab - e)) / (2 * h[k])
        np.testing.assert_allclose(npy(jac[:, :, k]), npy(fd), rtol=1e-5, atol=1e-9)
    # identical numbers with autograd recording (out-of-place arithmetic) and without
    emu.requires_grad_(True)
    f2, jac2 = emu.jacobian(lab)
    assert torch.equal(f2.detach(), f) and torch.equal(jac2.detach(), jac)


@pytest.mark.parametrize("dtype, rtol", [("float64", 1e-11), ("float32", 2e-5)])
def test_normal_equations_equal_sums_over_the_jacobian(dtype, rtol):
    """The fused, blocked chi2 / J^T W J / J^T W r equal the same sums built from jacobian() (float64)."""
    emu = make(dtype=dtype, seed=6)
    emu.requires_grad_(False)
    ref = make(dtype="float64", seed=6)
    rng = np.random.default_rng(3)
    n = 45
    lab = torch.as_tensor(labels(n, seed=4))
    with torch.no_grad():
        f_true = ref.flux(torch.as_tensor(labels(n, seed=5)))
    flux = f_true + torch.as_tensor(rng.normal(0, 0.01, f_true.shape))
    ivar = torch.as_tensor(rng.uniform(0.5, 1.5, f_true.shape) * 1e4)
    ivar[:, 3] = 0.0                                              # a masked pixel
    for pixels, block in [(None, None), (None, 4), (slice(2, 29, 3), 2), (slice(1, 31), 7)]:
        sel = slice(None) if pixels is None else pixels
        with torch.no_grad():
            f, J = ref.jacobian(lab, pixels=pixels)
        r = flux[:, sel] - f
        w = ivar[:, sel]
        chi2 = (w * r * r).sum(1)
        A = torch.einsum("npk,np,npl->nkl", J, w, J)
        g = torch.einsum("npk,np,np->nk", J, w, r)
        c2, A2, g2 = emu.normal_equations(lab, flux[:, sel], w, pixels=pixels, block=block)
        assert c2.dtype == A2.dtype == g2.dtype == torch.float64
        np.testing.assert_allclose(npy(c2), npy(chi2), rtol=rtol)
        scale = torch.sqrt(torch.einsum("nkk->nk", A))            # compare A relative to its diagonal
        np.testing.assert_allclose(npy(A2 / scale[:, :, None] / scale[:, None, :]),
                                   npy(A / scale[:, :, None] / scale[:, None, :]), atol=rtol * 10)
        np.testing.assert_allclose(npy(g2 / scale), npy(g / scale), atol=rtol * 10 * np.sqrt(npy(chi2).max()))
        # two worker threads over shares of the blocks: the same sums (to rounding), torch threads restored
        threads = torch.get_num_threads()
        c3, A3, g3 = emu.normal_equations(lab, flux[:, sel], w, pixels=pixels, block=2, workers=2)
        assert torch.get_num_threads() == threads
        np.testing.assert_allclose(npy(c3), npy(chi2), rtol=rtol)
        np.testing.assert_allclose(npy(A3 / scale[:, :, None] / scale[:, None, :]),
                                   npy(A / scale[:, :, None] / scale[:, None, :]), atol=rtol * 10)
    with pytest.raises(ValueError, match="shape"):
        emu.normal_equations(lab, flux[:, :5], ivar[:, :5])
