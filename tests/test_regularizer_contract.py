"""The Regularizer contract: the trainer calls only what the ABC declares; options come from a config
table passed unchanged to the plugin, which validates it; old configuration keys still work."""
from __future__ import annotations

import ast
import inspect
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch

import ddpayne
from ddpayne import registry
from ddpayne.model import training
from ddpayne.model.regularizer import Regularizer, RegularizerContext
from ddpayne.model.training import TrainingSettings, train_emulator
from ddpayne.pipeline.config import ConfigDeprecationWarning, config_from_dict, load_config
from test_training_toymodel import LABELS, random_labels, ref_grid, toy_batch, toy_gradients

ROOT = Path(__file__).resolve().parents[1]
SETTINGS = dict(epochs=2, batch_size=20, seed=1, progress=False, validation_fraction=0.2, num_threads=1,
                allow_underdetermined=True)


class L2Weights(Regularizer):
    """A minimal third-party regularizer: ``penalty`` only, not a sum over pixels."""

    name = "l2"
    pixelwise = False

    def __init__(self, strength: float = 1e-3):
        self.strength = strength
        self.calls = 0

    def penalty(self, emulator, pixels=None):
        assert pixels is None          # not pixelwise: always the whole term
        self.calls += 1
        return self.strength * sum((p ** 2).sum() for p in emulator.parameters())


class _Params:
    """Stands in for an emulator: one parameter tensor."""

    def parameters(self):
        return [torch.ones(3)]


def _toy(n=40):
    rng = np.random.default_rng(2)
    lab = random_labels(n, rng)
    return toy_batch(lab, 50, rng), lab


def test_minimal_regularizer_trains_through_the_contract():
    batch, lab = _toy()
    reg = L2Weights(1e-3)
    emu, hist = train_emulator(batch, lab, LABELS, emulator_options={"n_hidden": 4}, regularizer=reg,
                               settings=TrainingSettings(pixel_chunk=30, **SETTINGS))
    assert reg.calls == 2 * 2                    # once per step (2 epochs × 2 batches), never per chunk
    assert np.all(hist["reg"] > 0)
    assert emu.provenance["regularizer"] == {"name": "l2"}


def test_trainer_probes_nothing_and_core_never_branches_on_a_plugin_name():
    """No hasattr / private attributes of the regularizer in the trainer; no comparison with the name of
    a regularizer or emulator plugin anywhere in ddpayne/ (the core holds instances chosen by name)."""
    src = inspect.getsource(training)
    assert "hasattr" not in src and "getattr" not in src and "_prepared" not in src
    names = set(registry.available("regularizer")) | set(registry.available("emulator"))
    for path in (ROOT / "ddpayne").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Compare):
                consts = {v.value for v in (node.left, *node.comparators) if isinstance(v, ast.Constant)}
                assert not consts & names, f"{path}:{node.lineno} compares with a plugin name"
    run_src = (Path(ddpayne.__file__).parent / "pipeline" / "run.py").read_text()
    assert "refs_per_step" not in run_src


def test_options_are_validated_by_the_plugin(tmp_path):
    cls = registry.get("regularizer", "kurucz")
    with pytest.raises(ValueError, match=r"unknown option\(s\) \['refs_per_stp'\].*refs_per_step"):
        cls.from_options({"refs_per_stp": 3})
    with pytest.raises(ValueError, match="unknown option"):
        registry.get("regularizer", "none").from_options({"scale": 2})
    # a relative path is relative to the configuration folder; without one, the run's gradient spectra
    grads = toy_gradients(ref_grid())
    grads.write(tmp_path / "g.fits")
    reg = cls.from_options({"gradients": "g.fits", "refs_per_step": 4}, RegularizerContext(base_dir=tmp_path))
    assert reg.path == tmp_path / "g.fits" and reg.refs_per_step == 4
    asked = []
    ctx = RegularizerContext(base_dir=Path("/nowhere"),
                             gradients=lambda: asked.append(1) or tmp_path / "g.fits")
    assert cls.from_options({}, ctx).path == tmp_path / "g.fits" and asked == [1]
    registry.get("regularizer", "none").from_options({}, ctx)
    assert asked == [1]                          # a regularizer that needs no gradients never builds them


def test_config_table_passes_through_and_old_key_is_mapped(tmp_path):
    table = {"refs_per_step": 8, "weights": {"VMIC": 5.0}}
    cfg = config_from_dict({"training": {"regularizer_options": table}})
    assert cfg.training.regularizer_options == {"refs_per_step": 8, "weights": {"VMIC": 5.0}}
    with pytest.warns(ConfigDeprecationWarning, match=r"\[training\] refs_per_step is deprecated"):
        old = config_from_dict({"training": {"refs_per_step": 8, "epochs": 3}})
    assert old.training.regularizer_options == {"refs_per_step": 8} and old.training.epochs == 3
    with pytest.warns(ConfigDeprecationWarning):
        assert config_from_dict({"training": {"refs_per_step": 0}}).training.regularizer_options == {}
    text = '[training]\nregularizer = "kurucz"\n[training.regularizer_options]\nrefs_per_step = 6\n'
    (tmp_path / "c.toml").write_text(text)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert load_config(tmp_path / "c.toml").training.regularizer_options == {"refs_per_step": 6}


def test_example_config_loads_without_warnings():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        cfg = load_config(ROOT / "examples" / "config.toml")
    reg_cls = registry.get("regularizer", cfg.training.regularizer)
    opts = dict(cfg.training.regularizer_options)
    from ddpayne.model.regularizer import check_option_names

    check_option_names(reg_cls, opts)


def test_abc_defaults_cover_every_trainer_call():
    calls = {"set_training_labels", "check_compatible", "n_constraints_per_pixel", "rows_per_step",
             "describe", "set_step", "penalty", "penalty_backward", "pixelwise", "from_options"}
    assert calls <= set(dir(Regularizer))
    reg = L2Weights()
    reg.set_training_labels(np.zeros((3, 4)))
    reg.set_step(5)
    assert reg.n_constraints_per_pixel == 0 and reg.rows_per_step == 0
    assert reg.penalty_backward(None) is None
    assert float(reg.penalty(_Params())) > 0 and torch is not None
