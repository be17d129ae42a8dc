"""Gradient diagnostics (model vs physical gradient spectra) and the training figures (Figs. 3 and 4)."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from astropy.table import Table
from matplotlib.figure import Figure

from ddpayne import registry
from ddpayne.model.diagnostics import gradient_correlation, model_gradients, reference_coverage
from ddpayne.physics.gradients import GradientSpectra
from ddpayne.plots.training import plot_gradient_comparison, plot_loss_history
from test_training_toymodel import LABELS, STEPS, WAVE, ref_grid, toy_gradients

LMIN = np.array([4600.0, 2.0, -1.5, -0.2])
LMAX = np.array([6400.0, 4.6, 0.3, 0.5])


def emulator(seed=0):
    return registry.create("emulator", "mlp", label_names=LABELS, wavelength=WAVE, label_min=LMIN,
                           label_max=LMAX, n_hidden=6, seed=seed, dtype="float64")


def own(emu, ref):
    base = emu.predict(ref)
    pert = np.stack([emu.predict(ref + STEPS[k] * np.eye(4)[k]) for k in range(4)], 1)
    return GradientSpectra.from_spectra(WAVE, ref, STEPS, base, pert, LABELS)


def test_correlation_is_one_for_the_models_own_gradients_and_low_for_another():
    emu = emulator()
    g = own(emu, ref_grid())
    rho = gradient_correlation(emu, g)
    assert list(rho["LABEL"]) == list(LABELS)
    np.testing.assert_allclose(rho["RHO"], 1.0, atol=1e-9)
    np.testing.assert_allclose(rho["RMS_DIFF"], 0.0, atol=1e-9)
    assert np.all(rho["N_REF"] == len(ref_grid()))
    other = gradient_correlation(emulator(seed=3), toy_gradients(ref_grid()))
    assert np.all(np.abs(other["RHO"]) < 0.9)


def test_correlation_uses_only_reference_points_inside_the_coverage():
    emu = emulator()
    ref = ref_grid()
    g = own(emu, ref)
    grads = g.gradients.copy()
    outside = np.array([[7000.0, 3.0, -0.5, 0.1]])              # too hot for the training set
    g2 = GradientSpectra(WAVE, LABELS, np.vstack([ref, outside]), STEPS,
                         np.concatenate([grads, -grads[:1]]), np.vstack([g.base_flux, g.base_flux[:1]]))
    rho = gradient_correlation(emu, g2)
    assert np.all(rho["N_REF"] == len(ref))
    np.testing.assert_allclose(rho["RHO"], 1.0, atol=1e-9)
    d = reference_coverage(g2.ref_labels, LABELS, LMIN, LMAX)
    assert np.all(d[:-1] == 0) and d[-1] == pytest.approx(600 / 1800)
    # nearest-training-star criterion
    train = np.repeat(ref[:1], 5, axis=0)
    d = reference_coverage(ref, LABELS, LMIN, LMAX, train_labels=train, radius=0.15)
    assert d[0] == 0 and np.all(d[1:] > 0)


def test_analytic_and_finite_model_gradients_agree_for_small_steps():
    emu = emulator()
    ref = ref_grid()[:4]
    small = GradientSpectra(WAVE, LABELS, ref, STEPS / 1000, np.zeros((4, 4, WAVE.size)),
                            np.ones((4, WAVE.size)))
    with torch.no_grad():
        fin = model_gradients(emu, small, method="finite").numpy()
        ana = model_gradients(emu, small, method="analytic").numpy()
    np.testing.assert_allclose(fin, ana, rtol=1e-3, atol=1e-3 * np.abs(ana).max())


def test_figures(tmp_path):
    hist = Table({"epoch": np.arange(50), "data_train": 10 / (1 + np.arange(50.0)),
                  "data_val": 11 / (1 + np.arange(50.0)), "reg": 5 / np.sqrt(1 + np.arange(50.0)),
                  "loss_val": np.zeros(50), "lr": np.full(50, 0.01)})
    fig = plot_loss_history(hist, title="toy")
    assert isinstance(fig, Figure)
    ax = fig.axes[0]
    assert len(ax.lines) == 3 and ax.get_yscale() == "log"
    fig.savefig(tmp_path / "fig3.png")
    emu = emulator()
    g = toy_gradients(ref_grid())
    fig = plot_gradient_comparison(emu, g, "MG_FE", ref=2, wavelength_range=(5010, 5070))
    ax = fig.axes[0]
    assert len(ax.lines) == 2
    model_line = ax.lines[1].get_ydata()
    with torch.no_grad():
        expect = model_gradients(emu, g, ["MG_FE"], refs=[2]).numpy()[0, 0]
    sel = (WAVE >= 5010) & (WAVE <= 5070)
    np.testing.assert_allclose(model_line, expect[sel])
    assert "ρ =" in ax.get_legend().get_texts()[1].get_text()
    fig.savefig(tmp_path / "fig4.png")
    assert (tmp_path / "fig4.png").stat().st_size > 1000
    with pytest.raises(IndexError):
        plot_gradient_comparison(emu, g, "MG_FE", ref=999)


def test_tracked_pixel_loss_curve():
    from ddpayne.model.training import TrainingSettings, train_emulator
    from test_training_toymodel import random_labels, toy_batch

    rng = np.random.default_rng(0)
    lab = random_labels(40, rng)
    s = TrainingSettings(epochs=3, batch_size=16, progress=False, num_threads=1, allow_underdetermined=True,
                         track_pixels=(14, 40))
    emu, hist = train_emulator(toy_batch(lab, 50, rng), lab, LABELS, emulator_options={"n_hidden": 4},
                               regularizer_options={"gradients": toy_gradients(ref_grid())}, settings=s)
    for c in ("data_train_14", "data_val_14", "reg_14", "reg_40"):
        assert c in hist.colnames and np.all(np.isfinite(hist[c]))
    # the average over pixels is the mean of the per-pixel terms: one pixel is of the same order
    assert 0 < hist["data_val_40"][-1] < 100 * hist["data_val"][-1] * WAVE.size
    fig = plot_loss_history(hist, pixel=14)
    assert fig.axes[0].get_ylabel() == "loss of pixel 14" and len(fig.axes[0].lines) == 3
    with pytest.raises(KeyError, match="track_pixels"):
        plot_loss_history(hist, pixel=3)
