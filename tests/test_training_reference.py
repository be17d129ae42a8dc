"""Training is reproducible across refactorings: same seed -> same model as a stored reference.

``tests/data/training_reference.npz`` was made with the trainer *before* ``_train`` was split into small
steps (issue 22). Each case below trains a tiny model on the analytic toy physics (a few seconds in all)
through a different code path of the trainer: hand-written back-propagation (CPU default), autograd,
pixel chunks with a subset of reference points per step, and no regularizer with tracked pixels. The
trained weights and the loss history must match the reference within float32 tolerance.

Regenerate (only when a change of the results is intended, and say why in the commit)::

    DDPAYNE_REGENERATE=1 python -m pytest tests/test_training_reference.py
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from ddpayne.model.training import TrainingSettings, train_emulator
from test_training_toymodel import LABELS, random_labels, ref_grid, toy_batch, toy_gradients

REFERENCE = Path(__file__).parent / "data" / "training_reference.npz"

#: name -> (regularizer, regularizer options, settings overrides)
CASES = {
    "manual_kurucz": ("kurucz", {}, {}),
    "autograd_kurucz": ("kurucz", {}, {"backprop": "autograd"}),
    "chunks_subset": ("kurucz", {"refs_per_step": 5, "seed": 3}, {"backprop": "autograd", "pixel_chunk": 30}),
    "none_tracked": ("none", {}, {"track_pixels": (3, 40)}),
}
HISTORY_COLUMNS = ("data_train", "data_val", "reg", "loss_val", "lr")


def _train_case(name: str) -> dict[str, np.ndarray]:
    reg, reg_options, overrides = CASES[name]
    rng = np.random.default_rng(11)
    lab = random_labels(60, rng)
    batch = toy_batch(lab, 50, rng)
    if reg == "kurucz":
        reg_options = {"gradients": toy_gradients(ref_grid()), **reg_options}
    settings = TrainingSettings(epochs=4, batch_size=25, learning_rate=0.03, final_learning_rate=0.003,
                                seed=5, progress=False, validation_fraction=0.2, num_threads=1,
                                allow_underdetermined=True, **overrides)
    emu, hist = train_emulator(batch, lab, LABELS, emulator_options={"n_hidden": 6}, regularizer=reg,
                               regularizer_options=reg_options, settings=settings)
    out = {f"{name}/param/{k}": v.detach().cpu().numpy() for k, v in emu.state_dict().items()}
    for col in hist.colnames:
        if col in HISTORY_COLUMNS or col.startswith(("data_train_", "data_val_", "reg_")):
            out[f"{name}/history/{col}"] = np.asarray(hist[col], float)
    out[f"{name}/best_epoch"] = np.array(emu.provenance["best_epoch"])
    return out


def regenerate() -> None:
    """Write the reference file from the current trainer."""
    arrays: dict[str, np.ndarray] = {}
    for name in CASES:
        arrays.update(_train_case(name))
    np.savez_compressed(REFERENCE, **arrays)


@pytest.mark.parametrize("name", list(CASES))
def test_training_matches_stored_reference(name):
    if os.environ.get("DDPAYNE_REGENERATE") and name == next(iter(CASES)):
        regenerate()
    ref = np.load(REFERENCE)
    got = _train_case(name)
    expected = {k: ref[k] for k in ref.files if k.startswith(f"{name}/")}
    assert sorted(got) == sorted(expected)
    for key, value in expected.items():
        np.testing.assert_allclose(got[key], value, rtol=2e-4, atol=2e-6, err_msg=key)
