"""The trainer: science on the analytic toy physics, determinism, exact resume, bad input."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from astropy.table import Table

from ddpayne.exceptions import IncompatibleModelError
from ddpayne.model.diagnostics import gradient_correlation, model_gradients
from ddpayne.model.emulator import load_emulator
from ddpayne.model.training import TrainingSetError, TrainingSettings, split_by_star, train_emulator
from test_training_toymodel import (LABELS, WAVE, mg_of_feh, random_labels, ref_grid, toy_batch, toy_flux,
                                    toy_gradients)

FAST = dict(seed=0, progress=False, validation_fraction=0.2, num_threads=1, allow_underdetermined=True)


@pytest.fixture(scope="module")
def correlated():
    """300 stars whose [Mg/Fe] follows [Fe/H] within 0.02 dex, S/N 50; both trained models."""
    rng = np.random.default_rng(0)
    lab = random_labels(300, rng, mg_trend=True)
    batch = toy_batch(lab, 50, rng)
    grads = toy_gradients(ref_grid(mg_trend=True))
    settings = TrainingSettings(epochs=150, batch_size=100, learning_rate=0.03, final_learning_rate=0.001,
                                **FAST)
    out = {"labels": lab, "batch": batch, "gradients": grads}
    for reg in ("kurucz", "none"):
        out[reg] = train_emulator(batch, lab, LABELS, emulator_options={"n_hidden": 10}, regularizer=reg,
                                  regularizer_options={"gradients": grads} if reg == "kurucz" else None,
                                  settings=settings)
    return out


def off_trend_stars(n=60):
    """Stars that break the training sample's [Mg/Fe]–[Fe/H] correlation by ±0.15 dex."""
    lab = random_labels(n, np.random.default_rng(7), mg_trend=True)
    lab[:, 2] = np.clip(lab[:, 2], -1.3, 0.2)
    lab[:, 3] = mg_of_feh(lab[:, 2]) + np.where(np.arange(n) % 2, 0.15, -0.15)
    return lab


def fit_mg(emu, flux, labels):
    """χ² grid search for MG_FE with the other labels at their true values."""
    grid = np.linspace(-0.5, 1.0, 151)
    x = np.repeat(labels[:, None, :], grid.size, 1)
    x[:, :, 3] = grid[None]
    model = emu.predict(x.reshape(-1, 4)).reshape(len(labels), grid.size, -1)
    return grid[((model - flux[:, None]) ** 2).sum(-1).argmin(1)]


def test_trained_model_reproduces_flux_and_physical_gradients(correlated):
    emu, hist = correlated["kurucz"]
    test = random_labels(100, np.random.default_rng(5), mg_trend=True)
    rms = np.sqrt(np.mean((emu.predict(test) - toy_flux(test)) ** 2))
    assert rms < 0.02                              # noise per pixel is 0.02 (S/N 50)
    rho = gradient_correlation(emu, correlated["gradients"], train_labels=correlated["labels"])
    assert list(rho["LABEL"]) == list(LABELS)
    assert np.all(rho["N_REF"] > 10)
    r = dict(zip(rho["LABEL"], rho["RHO"]))
    # a short fast training: TEFF, FE_H, MG_FE >= 0.9; LOGG (line widths) >= 0.7 here
    assert r["TEFF"] >= 0.9 and r["FE_H"] >= 0.9 and r["MG_FE"] >= 0.9, r
    assert r["LOGG"] >= 0.7, r
    assert hist["reg"][-1] < 0.5 * hist["reg"][0]


def test_regularizer_separates_mg_from_fe(correlated):
    """With [Mg/Fe] tied to [Fe/H] in the training set, only the regularized model learns how the
    spectrum responds to Mg itself; it recovers [Mg/Fe] of stars off the trend clearly better."""
    test = off_trend_stars()
    truth = toy_gradients(test)
    rng = np.random.default_rng(11)
    flux = toy_flux(test) + rng.normal(0, 0.02, (len(test), WAVE.size))
    departure = test[:, 3] - mg_of_feh(test[:, 2])          # ±0.15 dex
    result = {}
    for reg in ("kurucz", "none"):
        emu = correlated[reg][0]
        with torch.no_grad():
            g = model_gradients(emu, truth, ["MG_FE"]).double().numpy()[:, 0]
        rho = np.corrcoef(g.ravel(), truth.gradients[:, 3].ravel())[0, 1]
        fit = fit_mg(emu, flux, test)
        found = fit - mg_of_feh(test[:, 2])                 # recovered departure from the trend
        slope = np.sum(found * departure) / np.sum(departure ** 2)
        rms = np.sqrt(np.mean((fit - test[:, 3]) ** 2))
        result[reg] = dict(rho=rho, slope=slope, corr=np.corrcoef(found, departure)[0, 1], rms=rms)
    k, n = result["kurucz"], result["none"]
    # the model's own d f / d[Mg/Fe] is physical only with the regularizer
    assert k["rho"] > 0.9 and n["rho"] < 0.5, result
    # regularized: the departures from the trend are recovered (slope ~1); unregularized: not at all
    assert 0.7 < k["slope"] < 1.3 and k["corr"] > 0.6, result
    assert n["slope"] < 0.3 and n["corr"] < 0.3, result
    assert k["rms"] < 0.8 * n["rms"], result


def small_problem(n=60, seed=0):
    rng = np.random.default_rng(seed)
    lab = random_labels(n, rng)
    return toy_batch(lab, 50, rng), lab


def settings(**kw):
    base = dict(epochs=4, batch_size=16, learning_rate=0.01, final_learning_rate=0.001, **FAST)
    base.update(kw)
    return TrainingSettings(**base)


def states_equal(a, b):
    return all(torch.equal(a.state_dict()[k], b.state_dict()[k]) for k in a.state_dict())


def test_deterministic_history_and_output(tmp_path):
    batch, lab = small_problem()
    g = toy_gradients(ref_grid())
    kw = dict(emulator_options={"n_hidden": 6}, regularizer_options={"gradients": g}, settings=settings())
    e1, h1 = train_emulator(batch, lab, LABELS, output=tmp_path / "m.pt", **kw)
    e2, h2 = train_emulator(batch, lab, LABELS, **kw)
    assert states_equal(e1, e2)
    assert list(h1.colnames) == ["epoch", "data_train", "data_val", "reg", "loss_val", "lr",
                                 "seconds"]
    np.testing.assert_array_equal(np.asarray(h1["data_val"]), np.asarray(h2["data_val"]))
    assert len(h1) == 4 and h1["lr"][0] == pytest.approx(0.01) and h1["lr"][-1] == pytest.approx(0.001)
    # best-validation model kept
    assert e1.provenance["best_epoch"] == int(np.argmin(h1["loss_val"]))
    assert e1.provenance["regularizer_checksum"] == g.checksum()
    assert e1.provenance["training_settings"]["epochs"] == 4
    back = load_emulator(tmp_path / "m.pt")
    np.testing.assert_array_equal(back.predict(lab[:5]), e1.predict(lab[:5]))
    assert back.provenance["regularizer_checksum"] == g.checksum()
    e3, _ = train_emulator(batch, lab, LABELS, **{**kw, "settings": settings(seed=1)})
    assert not states_equal(e1, e3)


def test_exact_resume_after_a_kill(tmp_path):
    batch, lab = small_problem()
    g = toy_gradients(ref_grid())
    # (with a random subset of the reference points at each step: resume must reproduce the subsets)
    kw = dict(emulator_options={"n_hidden": 6}, regularizer_options={"gradients": g, "refs_per_step": 5},
              settings=settings(epochs=5, checkpoint_every=1))
    straight, h_straight = train_emulator(batch, lab, LABELS, **kw)

    class Killed(Exception):
        pass

    def kill(epoch, row):
        if epoch == 2:
            raise Killed

    with pytest.raises(Killed):
        train_emulator(batch, lab, LABELS, checkpoint_dir=tmp_path, callback=kill, **kw)
    assert (tmp_path / "checkpoint.pt").exists() and (tmp_path / "history.ecsv").exists()
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]
    seen = []
    resumed, h_resumed = train_emulator(batch, lab, LABELS, checkpoint_dir=tmp_path,
                                        callback=lambda e, r: seen.append(e), **kw)
    assert seen == [3, 4]                                  # epochs 0-2 were checkpointed
    assert states_equal(straight, resumed)
    for col in ("epoch", "data_train", "data_val", "reg", "loss_val", "lr"):
        np.testing.assert_array_equal(np.asarray(h_straight[col]), np.asarray(h_resumed[col]))
    # a finished run loads from its checkpoint without training again
    again = []
    done, h_done = train_emulator(batch, lab, LABELS, checkpoint_dir=tmp_path,
                                  callback=lambda e, r: again.append(e), **kw)
    assert again == [] and states_equal(done, straight) and len(h_done) == 5
    # a checkpoint from another run is refused
    with pytest.raises(IncompatibleModelError, match="another training run"):
        train_emulator(batch, lab[::-1].copy(), LABELS, checkpoint_dir=tmp_path, **kw)


def test_split_is_by_star():
    ids = np.repeat([f"star{i}" for i in range(20)], 3)
    train, val = split_by_star(ids, 0.25, seed=3)
    assert len(train) + len(val) == 60 and len(val) == 15
    assert not set(ids[train]) & set(ids[val])
    batch, lab = small_problem(60)
    batch.meta["STAR_ID"] = ids
    emu, _ = train_emulator(batch, lab, LABELS, emulator_options={"n_hidden": 4}, regularizer="none",
                            settings=settings(epochs=1, validation_fraction=0.25))
    assert emu.provenance["n_stars"] == 20 and emu.provenance["n_val"] == 15


def test_labels_as_table_and_pixel_chunks_agree():
    batch, lab = small_problem()
    tab = Table(lab, names=LABELS)
    kw = dict(emulator_options={"n_hidden": 6}, regularizer="none", settings=settings(epochs=2))
    e1, h1 = train_emulator(batch, tab, **kw)
    assert e1.label_names == LABELS
    e2, h2 = train_emulator(batch, lab, LABELS, **{**kw, "settings": settings(epochs=2, pixel_chunk=20)})
    np.testing.assert_allclose(np.asarray(h1["data_val"]), np.asarray(h2["data_val"]), rtol=1e-4)


def test_bad_input_errors():
    batch, lab = small_problem()
    bad = lab.copy()
    bad[3, 2] = np.nan
    with pytest.raises(TrainingSetError, match=r"NaN.*s3 \(FE_H\).*build_training_set"):
        train_emulator(batch, bad, LABELS, regularizer="none", settings=settings())
    s = settings(allow_underdetermined=False)
    # 4 labels, 40-40 network: 4*40+40 + 40*40+40 + 40+1 = 1881 parameters per pixel
    with pytest.raises(TrainingSetError, match=r"48 training spectra.*fewer than the 1881 free parameters"
                                               r".*n_hidden"):
        train_emulator(batch, lab, LABELS, regularizer="none", settings=s)
    const = lab.copy()
    const[:, 1] = 4.0
    with pytest.raises(TrainingSetError, match="LOGG.*same value"):
        train_emulator(batch, const, LABELS, regularizer="none", settings=settings())
    g = toy_gradients(ref_grid())
    other = g.subset(labels=["TEFF", "LOGG", "FE_H"])
    with pytest.raises(IncompatibleModelError, match="MG_FE"):
        train_emulator(batch, lab, LABELS, regularizer_options={"gradients": other}, settings=settings())
    from ddpayne.physics.gradients import GradientSpectra
    shifted = GradientSpectra(WAVE + 0.3, g.label_names, g.ref_labels, g.steps, g.gradients, g.base_flux)
    with pytest.raises(IncompatibleModelError, match="wavelength grid"):
        train_emulator(batch, lab, LABELS, regularizer_options={"gradients": shifted}, settings=settings())
    with pytest.raises(TrainingSetError, match="shape"):
        train_emulator(batch, lab[:10], LABELS, regularizer="none", settings=settings())


def test_manual_and_autograd_backprop_train_alike():
    batch, lab = small_problem()
    g = toy_gradients(ref_grid())
    kw = dict(emulator_options={"n_hidden": 6}, regularizer_options={"gradients": g})
    e1, h1 = train_emulator(batch, lab, LABELS, settings=settings(dtype="float64"), **kw)
    e2, h2 = train_emulator(batch, lab, LABELS, settings=settings(dtype="float64", backprop="autograd"), **kw)
    for col in ("data_train", "data_val", "reg"):
        np.testing.assert_allclose(np.asarray(h1[col]), np.asarray(h2[col]), rtol=1e-7)
    np.testing.assert_allclose(e1.predict(lab[:4]), e2.predict(lab[:4]), atol=1e-8)


@pytest.mark.slow
def test_longer_training_reaches_the_gradient_target_for_every_label():
    """Independent labels, 600 epochs: model vs physical gradients ρ >= 0.9 for all four labels and
    the flux reproduced to a third of the noise (~40 s on one core)."""
    rng = np.random.default_rng(0)
    lab = random_labels(300, rng)
    batch = toy_batch(lab, 50, rng)
    grads = toy_gradients(ref_grid())
    s = TrainingSettings(epochs=600, batch_size=64, learning_rate=0.03, final_learning_rate=0.001, **FAST)
    emu, hist = train_emulator(batch, lab, LABELS, emulator_options={"n_hidden": 10},
                               regularizer_options={"gradients": grads}, settings=s)
    rho = gradient_correlation(emu, grads, train_labels=lab)
    assert np.all(rho["RHO"] >= 0.9), rho
    test = random_labels(200, np.random.default_rng(5))
    assert np.sqrt(np.mean((emu.predict(test) - toy_flux(test)) ** 2)) < 0.02 / 3
    assert hist["data_val"][-1] < 1.3


def test_continue_training_a_loaded_model(tmp_path):
    batch, lab = small_problem()
    kw = dict(emulator_options={"n_hidden": 6}, regularizer="none")
    e1, h1 = train_emulator(batch, lab, LABELS, settings=settings(epochs=2), output=tmp_path / "m.pt", **kw)
    assert not any(p.requires_grad for p in e1.parameters())       # inference-ready
    loaded = load_emulator(tmp_path / "m.pt")
    assert not any(p.requires_grad for p in loaded.parameters())
    e2, h2 = train_emulator(batch, lab, LABELS, emulator=loaded, regularizer="none",
                            settings=settings(epochs=2))
    assert h2["data_train"][0] < h1["data_train"][0]
    np.testing.assert_array_equal(e2.label_min, e1.label_min)


@pytest.mark.slow
def test_regularizer_helps_a_full_fit(correlated):
    """All four labels fitted by the ``lm`` fitter on stars off the [Mg/Fe]–[Fe/H] relation: without the
    regularizer the model mistakes Mg for Fe and [Fe/H] goes wrong; with it both are recovered."""
    from ddpayne import registry

    test = off_trend_stars()
    batch = toy_batch(test, 50, np.random.default_rng(11))
    rms = {}
    for reg in ("kurucz", "none"):
        res = registry.create("fitter", "lm").fit(correlated[reg][0], batch)
        fit = np.column_stack([np.asarray(res[n], float) for n in LABELS])
        rms[reg] = dict(zip(LABELS, np.sqrt(np.mean((fit - test) ** 2, axis=0))))
    assert rms["kurucz"]["FE_H"] < 0.15 and rms["kurucz"]["MG_FE"] < 0.06, rms
    assert rms["kurucz"]["FE_H"] < 0.4 * rms["none"]["FE_H"], rms
    assert rms["kurucz"]["MG_FE"] < rms["none"]["MG_FE"], rms
