"""A saved model applies to new data as it is (issue 20, item 5).

The model trained by ``ddpayne run`` (tests/small_model.py: two windows of the DESI grid, a 25 Å continuum)
stores its preparation; ``fit_files`` / ``ddpayne fit FILES --model`` and ``ddpayne run`` with ``[training]
model`` prepare new spectra with it, onto exactly the model's grid, whatever ``[prepare]`` says.
"""
from __future__ import annotations

import shutil
import warnings

import numpy as np
import pytest
from small_model import CONTINUUM_WIDTH, LABELS, WINDOWS, one_torch_thread, train_small_model  # noqa: F401

from ddpayne.exceptions import IncompatibleModelError
from ddpayne.fit.results import read_result_table
from ddpayne.io.batch import SpectrumBatch
from ddpayne.model.emulator import load_emulator
from ddpayne.pipeline.apply import fit_files, prepare_for_model, store_recipe
from ddpayne.pipeline.catalogue import read_catalogue
from ddpayne.prepare.recipe import PROVENANCE_KEY, PreparationRecipe, PreparationWarning


@pytest.fixture(scope="module")
def small(tmp_path_factory):
    return train_small_model(tmp_path_factory.mktemp("apply"), fit=True)


@pytest.fixture(scope="module")
def applied(small, tmp_path_factory):
    """``fit_files`` of the survey's files with the saved model, written to a catalogue."""
    out = tmp_path_factory.mktemp("applied") / "catalogue.fits"
    cat = fit_files(small["coadds"], small["model"], catalogue=small["catalogue"], output=out)
    return cat, out


def test_recipe_round_trip_and_grid():
    recipe = PreparationRecipe(windows=[(5000.0, 5200.0), (5250.0, 5450.0)], continuum_width=25.0, reader="desi",
                               settings={"outlier_sigma": 8.0})
    again = PreparationRecipe.from_dict(recipe.to_dict())
    assert again == recipe and again.digest() == recipe.digest()
    assert again.prepare_settings().outlier_sigma == 8.0 and again.prepare_settings().continuum_width == 25.0
    from ddpayne import registry

    desi = registry.create("reader", "desi")
    grid, keep = recipe.grid_and_pixels(desi)
    assert grid[0] >= 4900 and grid[-1] <= 5550 and keep.sum() < grid.size
    # the model's own grid picks exactly the same pixels
    assert np.array_equal(recipe.grid_and_pixels(desi, grid[keep])[1], keep)
    with pytest.raises(IncompatibleModelError, match="not part of the survey grid"):
        recipe.grid_and_pixels(desi, grid[keep] + 0.3)
    with pytest.raises(IncompatibleModelError, match="version"):
        PreparationRecipe.from_dict({**recipe.to_dict(), "version": 99})


def test_trained_model_stores_its_preparation(small):
    emu = load_emulator(small["model"])     # torch.load(weights_only=True): nothing is unpickled
    stored = emu.provenance[PROVENANCE_KEY]
    assert stored["windows"] == WINDOWS and stored["continuum_width"] == CONTINUUM_WIDTH
    assert stored["reader"] == "desi" and stored["margin"] == 100.0
    assert stored["continuum_masks"]["balmer_core_half_width"] > 0
    assert PreparationRecipe.of_model(emu).windows == [tuple(w) for w in WINDOWS]


def test_fit_files_reproduces_the_runs_fit(small, applied):
    """The same spectra, prepared from the files by the model's recipe, get the run's labels."""
    cat, out = applied
    emu = load_emulator(small["model"])
    assert cat.meta["NPIXGRID"] == emu.wavelength.size
    assert cat.meta["LABELS"] == list(LABELS) and len(cat) == 120
    run_fit = read_result_table(small["out"] / "fit.fits")
    mine = {str(i): k for k, i in enumerate(cat["ID"])}
    rows = [mine[str(i)] for i in run_fit["ID"]]
    for n in LABELS:
        assert np.all(np.isfinite(cat[n])) and np.all(np.asarray(cat[f"{n}_ERR"]) > 0)
        # equal up to the fitter's convergence tolerance (it fits another batch of the same spectra)
        assert np.all(np.abs(np.asarray(cat[n])[rows] - run_fit[n]) < 0.01 * run_fit[f"{n}_ERR"]), n
    # the training labels beside the model flag solutions outside its coverage as in the run
    assert np.array_equal(np.asarray(cat["FLAG"])[rows], np.asarray(run_fit["FLAG"]))
    written = read_catalogue(out)
    assert len(written) == 120 and written["TEFF"].unit == "K"


def test_run_with_the_model_prepares_on_its_grid(small, applied, tmp_path, caplog):
    """``ddpayne run`` with ``[training] model`` and a full-grid (or other) ``[prepare]``: the spectra are
    prepared as the model's were, on its grid (formerly: 'resample the batch onto the model grid first')."""
    from ddpayne.pipeline.run import Pipeline

    files = ", ".join(f'"{p}"' for p in small["coadds"])
    for name, prepare in (("full", ""), ("other", "[prepare]\nwave_range = [5400, 6100]\ncontinuum_width = 30\n")):
        cfg = tmp_path / f"{name}.toml"
        cfg.write_text(f'[data]\nspectra = [{files}]\ncatalogue = "{small["catalogue"]}"\n{prepare}'
                       f'[training]\nmodel = "{small["model"]}"\n[derive]\nenabled = false\n'
                       f'[output]\ndir = "{name}"\nfigures = false\n')
        with caplog.at_level("WARNING"):
            Pipeline(cfg).run(["prepare", "fit"])
        cat = read_result_table(tmp_path / name / "fit.fits")
        (prepared,) = [SpectrumBatch.read(p) for p in sorted((tmp_path / name / "prepared").glob("*.fits"))][:1]
        assert np.array_equal(prepared.wavelength, load_emulator(small["model"]).wavelength)
        ref = {str(i): t for i, t in zip(applied[0]["ID"], applied[0]["TEFF"])}
        np.testing.assert_allclose(cat["TEFF"], [ref[str(i)] for i in cat["ID"]], rtol=1e-4)
    assert "[prepare] wave_range = [5400.0, 6100.0] is not used" in caplog.text
    assert "[prepare] continuum_width = 30.0 is not used" in caplog.text


def test_old_model_without_recipe(small, applied, tmp_path):
    """A model file without a stored recipe loads and is applied with the defaults and a warning that says how
    to store the right recipe; once stored, the results are those of the model trained with it."""
    old = tmp_path / "old.pt"
    emu = load_emulator(small["model"])
    del emu.provenance[PROVENANCE_KEY]
    emu.save(old)
    with pytest.warns(PreparationWarning, match="store_recipe"):
        guessed = fit_files(small["coadds"][:1], old, catalogue=small["catalogue"])
    ref = {str(i): t for i, t in zip(applied[0]["ID"], applied[0]["TEFF"])}
    expected = np.array([ref[str(i)] for i in guessed["ID"]])
    # the defaults' 20 Å continuum is not the 25 Å the model was trained with: other spectra, other labels
    assert not np.allclose(guessed["TEFF"], expected, rtol=1e-3)
    store_recipe(old, PreparationRecipe(windows=[tuple(w) for w in WINDOWS], continuum_width=CONTINUUM_WIDTH,
                                        reader="desi"))
    with warnings.catch_warnings():
        warnings.simplefilter("error", PreparationWarning)
        fixed = fit_files(small["coadds"][:1], old, catalogue=small["catalogue"])
    np.testing.assert_allclose(fixed["TEFF"], expected, rtol=1e-4)


def test_refusals(small, tmp_path):
    """Spectra of another survey than the model's, and a file that is no model (never unpickled)."""
    other = tmp_path / "lamost-model.pt"
    shutil.copy(small["model"], other)
    store_recipe(other, PreparationRecipe(windows=[tuple(w) for w in WINDOWS], reader="lamost", survey="LAMOST"))
    with pytest.raises(IncompatibleModelError, match="trained on LAMOST spectra.*'desi'"):
        prepare_for_model(small["coadds"][:1], other, catalogue=small["catalogue"])
    notes = tmp_path / "notes.pt"
    notes.write_text("not a model\n")
    with pytest.raises(IncompatibleModelError, match="not a ddpayne emulator file"):
        fit_files(small["coadds"][:1], notes)


def test_cli_fit_files(small, tmp_path, capsys):
    from ddpayne.pipeline.cli import main

    out = tmp_path / "cat.fits"
    assert main(["fit", str(small["coadds"][0]), "--model", str(small["model"]), "--catalogue",
                 str(small["catalogue"]), "-o", str(out)]) == 0
    text = capsys.readouterr().out
    assert "fitted 60 spectra" in text and "TEFF" in text and len(read_catalogue(out)) == 60
    # without --model, ddpayne fit is the fit stage of one configuration
    assert main(["fit", *map(str, small["coadds"])]) == 2


def test_run_with_an_old_model_uses_a_matching_prepare(small, applied, tmp_path):
    """A model without a stored recipe in a run whose ``[prepare]`` gives exactly its pixels: that ``[prepare]``
    (here with the model's own 25 Å continuum) is used, without a warning."""
    from ddpayne.pipeline.run import Pipeline

    old = tmp_path / "old.pt"
    emu = load_emulator(small["model"])
    del emu.provenance[PROVENANCE_KEY]
    emu.save(old)
    files = ", ".join(f'"{p}"' for p in small["coadds"])
    cfg = tmp_path / "run.toml"
    cfg.write_text(f'[data]\nspectra = [{files}]\ncatalogue = "{small["catalogue"]}"\n[prepare]\n'
                   f'wave_range = {WINDOWS}\ncontinuum_width = {CONTINUUM_WIDTH}\n[training]\nmodel = "{old}"\n'
                   '[derive]\nenabled = false\n[output]\ndir = "out"\nfigures = false\n')
    with warnings.catch_warnings():
        warnings.simplefilter("error", PreparationWarning)
        Pipeline(cfg).run(["prepare", "fit"])
    cat = read_result_table(tmp_path / "out" / "fit.fits")
    ref = {str(i): t for i, t in zip(applied[0]["ID"], applied[0]["TEFF"])}
    np.testing.assert_allclose(cat["TEFF"], [ref[str(i)] for i in cat["ID"]], rtol=1e-4)
