"""The hydrogen correction: line identification, the product, its application, and the real Sun."""
import builtins
import importlib.util
from pathlib import Path

import numpy as np
import pytest
from astropy.table import Table

from ddpayne.labels import LABEL_NAMES
from ddpayne.physics import hydrogen as hyd
from ddpayne.physics.build_gradients import product_mask
from ddpayne.physics.runner import blanketing, degraded_flux
from ddpayne.physics.sun_check import real_sun, wing_rms
from ddpayne.prepare.continuum import normalise
from ddpayne.prepare.grid import desi_grid
from ddpayne.prepare.masks import BALMER_VAC, PASCHEN_VAC

SUN_SYNTH = Path(__file__).parent / "data" / "sun_synthetic_hydrogen.npz"
HAVE_PYSME = importlib.util.find_spec("pysme") is not None


def test_hydrogen_levels_from_the_rydberg_formula():
    from ddpayne_pysme.lines import hydrogen_levels, species_name
    # air wavelengths of H-alpha, H-beta, H-delta, P12, P16 and a series-limit Paschen member
    lv = hydrogen_levels([6562.797, 4861.323, 4101.734, 8750.46, 8502.48, 8215.72])
    assert lv.tolist() == [[2, 3], [2, 4], [2, 6], [3, 12], [3, 16], [3, 78]]
    assert hydrogen_levels([6000.0]).tolist() == [[0, 0]]
    assert species_name(26.0) == "Fe 1" and species_name(20.1) == "Ca 2" and species_name(607.0) == "CN 1"


def _analytic_product(n=40, seed=1):
    """A product whose ln C is a known smooth function of (Teff, logg, [Fe/H])."""
    rng = np.random.default_rng(seed)
    grid = desi_grid()
    prod = hyd.HydrogenCorrection.empty(grid)
    truth = lambda t, g, f: (-0.1 * ((t - 4000) / 2500) ** 2 * (1 - 0.05 * g)
                             * np.exp(-0.5 * ((grid[prod.pixels] - 4862.68) / 15) ** 2) * (1 + 0.1 * f))
    for _ in range(n):
        lab = {k: 0.0 for k in LABEL_NAMES}
        lab.update(TEFF=rng.uniform(4000, 6500), LOGG=rng.uniform(1, 5), FE_H=rng.uniform(-2.5, 0.4))
        prod = prod.with_node(lab, truth(lab["TEFF"], lab["LOGG"], lab["FE_H"]))
    return grid, prod, truth


def test_product_round_trip_and_interpolation(tmp_path):
    grid, prod, truth = _analytic_product()
    path = tmp_path / "h.fits"
    prod.write(path)
    back = hyd.HydrogenCorrection.read(path)
    assert len(back) == 40 and np.array_equal(back.pixels, prod.pixels)
    # exact at a node, accurate between nodes, 1 outside the windows
    node = {k: back.nodes[k][3] for k in ("TEFF", "LOGG", "FE_H")}
    assert np.allclose(back.log_at(node)[0], back.log_correction[3], atol=1e-5)
    f = back.factor({"TEFF": 6000.0, "LOGG": 4.2, "FE_H": -0.3})[0]
    assert np.allclose(np.log(f[back.pixels]), truth(6000.0, 4.2, -0.3), atol=2e-3)
    outside = np.setdiff1d(np.arange(grid.size), back.pixels)
    assert np.all(f[outside] == 1.0)
    # windows avoid the Balmer series limit and cover H-alpha ... H12 and the Paschen lines
    w = grid[back.pixels]
    assert w.min() >= 3755 and np.all([np.any(np.abs(w - c) < 1) for c in np.r_[BALMER_VAC, PASCHEN_VAC]])
    cv = back.cross_validate(k=5)
    assert cv.shape == (5, back.pixels.size) and np.abs(cv).max() < 5e-3


def test_product_refuses_other_files_and_too_few_nodes(tmp_path):
    with pytest.raises(FileNotFoundError, match="ddpayne synth hydrogen"):
        hyd.HydrogenCorrection.read(tmp_path / "none.fits")
    Table({"A": [1]}).write(tmp_path / "t.fits")
    with pytest.raises(ValueError, match="not a ddpayne hydrogen-correction file"):
        hyd.HydrogenCorrection.read(tmp_path / "t.fits")
    prod = hyd.HydrogenCorrection.empty(desi_grid())
    with pytest.raises(ValueError, match="at least 5"):
        prod.factor({"TEFF": 5000.0, "LOGG": 4.0, "FE_H": 0.0})


def _sun():
    d = np.load(SUN_SYNTH)
    grid = d["wave"]
    factor = np.ones(grid.size)
    factor[d["pixels"]] = np.exp(d["log_correction"])
    return grid, d["moog_flux"].astype(float), factor


def test_correction_of_a_normalised_spectrum_matches_renormalising():
    """Applying C to a stored (pseudo-continuum-normalised) spectrum through the blanketing bins equals
    normalising the corrected true-continuum flux, to well below survey noise."""
    grid, flux, factor = _sun()
    good = np.isfinite(flux)
    norm, ivar, _ = normalise(grid, np.where(good, flux, 1.0), good.astype(float))
    b0, bs, bins = blanketing(grid[good], flux[good])
    exact, _, _ = normalise(grid, np.where(good, flux * factor, 1.0), good.astype(float))
    approx = hyd.correct_normalised(grid, np.where(ivar > 0, norm, np.nan), factor, b0, bs, bins)
    sel = good & np.isfinite(approx) & (grid > 3650) & (grid < 9780)
    diff = approx[sel] - exact[sel]
    assert np.sqrt(np.mean(diff ** 2)) < 1.5e-3 and np.abs(diff).max() < 0.01
    # and the correction really deepened the H-beta wing (the 20 A pseudo-continuum absorbs part of it)
    wing = (np.abs(grid - 4862.68) > 3) & (np.abs(grid - 4862.68) < 10)
    assert np.mean(norm[wing] - exact[wing]) > 0.015


def test_degraded_flux_applies_the_correction_at_the_results_labels():
    grid, flux, _ = _sun()
    _, prod, _ = _analytic_product()
    good = np.isfinite(flux)
    norm, ivar, _ = normalise(grid, np.where(good, flux, 1.0), good.astype(float))
    b0, bs, bins = blanketing(grid[good], flux[good])
    result = {"wavelength": grid, "flux": np.where(ivar > 0, norm, np.nan), "blanket": bins,
              "blanket_start": b0, "blanket_step": bs, "labels": {"TEFF": 6300.0, "LOGG": 4.0, "FE_H": 0.0}}
    _, plain = degraded_flux(result)
    _, corr = degraded_flux(result, hydrogen=prod)
    far = np.abs(grid - 6000.0) < 50
    assert np.allclose(corr[far], plain[far], atol=2e-3)          # no H line: unchanged
    wing = np.abs(grid - 4850.0) < 3
    assert np.all(corr[wing] < plain[wing] - 0.01)                 # H-beta wing deepened
    with pytest.raises(ValueError, match="DESI grid"):
        degraded_flux(result, instrument="lamost", hydrogen=prod)
    with pytest.raises(ValueError, match="blanketing"):
        degraded_flux({k: v for k, v in result.items() if k != "blanket"}, hydrogen=prod)


def test_corrected_product_mask_keeps_wings_and_masks_cores():
    grid = desi_grid()
    old, new = product_mask(grid), product_mask(grid, hydrogen_corrected=True)
    corrected = grid >= 3755
    assert new[corrected].sum() < 0.6 * old[corrected].sum()
    for c in (6564.61, 4862.68, 8752.88):
        assert new[np.argmin(np.abs(grid - c))]                    # cores stay masked
        assert not new[np.argmin(np.abs(grid - (c - 8.0)))]        # wings are now used
    assert new[grid < 3750].all()                                  # uncorrected series limit
    for ca in (8500.36, 8544.44, 8664.52):                         # the Ca II triplet stays usable
        assert not new[np.argmin(np.abs(grid - ca))]


def _scaled_rms(wave, model, sun, centres, span):
    """rms after one free scale factor (the window's continuum level)."""
    from ddpayne.physics.sun_check import wing_pixels
    sel = wing_pixels(wave, centres, span)
    k = np.sum(sun[sel] * model[sel]) / np.sum(model[sel] ** 2)
    return np.sqrt(np.mean((sun[sel] - k * model[sel]) ** 2))


def test_real_sun_hydrogen_wings():
    """The synthetic Sun with the hydrogen correction against the real Sun's Balmer and Paschen wings
    (cores excluded). Measured (docs/hydrogen.rst): H-alpha 0.017/0.010, H-beta 0.014/0.010,
    P12-P16 0.021/0.018 (inner/outer); H-gamma and H-delta sit in a region where the synthetic metal
    lines are ~0.04 deeper than the Sun *far from any hydrogen line* too, so their raw rms is metal-line
    dominated; with one scale factor per window their inner wings match to <= 0.016."""
    from ddpayne.physics.sun_check import WING_WINDOWS
    grid, flux, factor = _sun()
    wave, sun = real_sun()
    new_flux, old_flux = np.interp(wave, grid, flux * factor), np.interp(wave, grid, flux)
    new = wing_rms(wave, new_flux, sun)
    old = wing_rms(wave, old_flux, sun)
    assert np.all(new["N_PIX"] >= 8)
    rms = {(r["LINE"], r["PART"]): r["RMS"] for r in new}
    before = {(r["LINE"], r["PART"]): r["RMS"] for r in old}
    for line in ("H_ALPHA", "H_BETA"):
        assert rms[line, "inner"] <= 0.02 and rms[line, "outer"] <= 0.02
    assert rms["P12_P16", "inner"] <= 0.022 and rms["P12_P16", "outer"] <= 0.02
    assert rms["H_BETA", "inner"] < 0.4 * before["H_BETA", "inner"]      # 0.052 without the wings
    assert rms["H_DELTA", "inner"] < 0.6 * before["H_DELTA", "inner"]    # 0.045 without the wings
    windows = {name: (c, inner) for name, c, inner, _ in WING_WINDOWS}
    for line in ("H_GAMMA", "H_DELTA"):
        assert _scaled_rms(wave, new_flux, sun, *windows[line]) <= 0.016
    assert _scaled_rms(wave, new_flux, sun, *windows["H_DELTA"]) < \
        0.6 * _scaled_rms(wave, old_flux, sun, *windows["H_DELTA"])


@pytest.mark.synthesis
@pytest.mark.skipif(not HAVE_PYSME, reason="PySME is not installed: pip install --no-deps pysme-astro==1.2.0")
def test_pysme_synthesis_around_h_beta_reproduces_the_stored_correction():
    from ddpayne_moog.synth import MoogSynthesizer
    from ddpayne_pysme.synth import SmeSynthesizer

    from ddpayne.physics.runner import DEFAULT_MOCK_SETTINGS
    sun = {"TEFF": 5772.0, "LOGG": 4.44, "FE_H": 0.0, "VMIC": 1.0}
    grid = desi_grid()
    window = [(4830.0, 4895.0)]
    base = (MoogSynthesizer(settings=DEFAULT_MOCK_SETTINGS),
            MoogSynthesizer(settings=DEFAULT_MOCK_SETTINGS, hydrogen=False))
    logc = hyd.correction_at(SmeSynthesizer(), SmeSynthesizer(hydrogen=False), sun, grid, windows=window,
                             base=base)
    pix = hyd.window_pixels(grid, window)
    d = np.load(SUN_SYNTH)
    stored = dict(zip(d["pixels"], d["log_correction"]))
    inner = np.abs(grid[pix] - 4862.68) > 8     # away from the shortened window's edges
    ref = np.array([stored[p] for p in pix])
    assert np.abs(logc - ref)[inner & (np.abs(grid[pix] - 4862.68) < 20)].max() < 5e-3
    assert np.all(logc[np.abs(grid[pix] - 4853.0) < 1] < -0.02)   # Stark wing: several per cent deep


def test_missing_pysme_names_the_install_commands(monkeypatch):
    from ddpayne_pysme import synth
    real_import = builtins.__import__

    def no_pysme(name, *args, **kwargs):
        if name.startswith("pysme"):
            raise ImportError("No module named 'pysme'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_pysme)
    with pytest.raises(synth.PySMEMissingError, match=r"pip install --no-deps pysme-astro==1\.2\.0"):
        synth.require_pysme()


def test_regularizer_refuses_an_older_physics_version():
    from ddpayne_kurucz.regularizer import KuruczRegularizer

    from ddpayne.physics import PHYSICS_VERSION
    from ddpayne.physics.build_gradients import DEFAULT_PRODUCT
    from ddpayne.physics.gradients import GradientSpectra
    g = GradientSpectra.read(DEFAULT_PRODUCT)
    assert g.provenance["physics_version"] == PHYSICS_VERSION
    g.provenance["physics_version"] = PHYSICS_VERSION - 1
    g.provenance["source"] = "old.fits"
    with pytest.raises(ValueError, match=rf"old.fits was made with physics_version {PHYSICS_VERSION - 1}, "
                                         rf"older than the physics_version {PHYSICS_VERSION}"):
        KuruczRegularizer(g)
    KuruczRegularizer(g, min_physics_version=PHYSICS_VERSION - 1)      # accepted knowingly
    del g.provenance["physics_version"]
    KuruczRegularizer(g)                                               # a product made elsewhere


class _Failing:
    """A stand-in synthesizer: a Gaussian 'H line' whose depth grows with Teff; fails above 6400 K."""

    def __init__(self, hydrogen=True):
        self.hydrogen = hydrogen

    def provenance(self):
        return {"synthesis_code": "test stand-in"}

    def synthesize(self, labels, lo, hi):
        w = np.arange(lo, hi, 0.05)
        if labels["TEFF"] > getattr(self, "limit", 6400.0):
            raise RuntimeError("atmosphere outside the grid")
        depth = 0.1 * labels["TEFF"] / 6000 if self.hydrogen else 0.0
        return w, 1 - depth * np.exp(-0.5 * ((w - 4862.68) / 8) ** 2)


def test_build_hydrogen_reports_failed_nodes_and_resumes(tmp_path, monkeypatch):
    from ddpayne import registry
    from ddpayne.physics.hydrogen_build import build_hydrogen
    monkeypatch.setattr(registry, "get", lambda kind, name: _Failing)
    cands = Table({n: np.zeros(4) for n in LABEL_NAMES})
    cands["TEFF"] = [5800.0, 6500.0, 4500.0, 5000.0]
    cands["LOGG"] = [4.4, 4.0, 2.0, 4.6]
    out = tmp_path / "h.fits"
    prod = build_hydrogen(out, cands, 4, base=None)
    assert len(prod) == 3                                   # the failing star is left out, not a hole
    failed = hyd.HydrogenCorrection.read(out).provenance["failed_nodes"]
    assert len(failed) == 1 and "outside the grid" in failed[0]["reason"] and failed[0]["labels"]["TEFF"] == 6500
    again = build_hydrogen(out, cands, 4, base=None)        # a rerun retries only the failed node
    assert len(again) == 3 and len(again.provenance["failed_nodes"]) == 1
    monkeypatch.setattr(_Failing, "limit", 7000.0, raising=False)
    fixed = build_hydrogen(out, cands, 4, base=None)
    assert len(fixed) == 4 and fixed.provenance["failed_nodes"] == []
    assert fixed.log_correction.min() < -0.05 and np.all(np.isfinite(fixed.log_correction))


def test_build_hydrogen_with_two_processes_matches_one(tmp_path, monkeypatch):
    from ddpayne import registry
    from ddpayne.physics.hydrogen_build import build_hydrogen
    monkeypatch.setattr(registry, "get", lambda kind, name: _Failing)
    cands = Table({n: np.zeros(5) for n in LABEL_NAMES})
    cands["TEFF"] = [5800.0, 6300.0, 4500.0, 5000.0, 6000.0]
    cands["LOGG"] = [4.4, 4.0, 2.0, 4.6, 3.5]
    one = build_hydrogen(tmp_path / "one.fits", cands, 5, base=None)
    two = build_hydrogen(tmp_path / "two.fits", cands, 5, base=None, processes=2)
    assert np.array_equal(one.nodes["TEFF"], two.nodes["TEFF"])
    assert np.array_equal(one.log_correction, two.log_correction)


def test_bundled_products_carry_the_hydrogen_correction():
    """The bundled library and gradient product are of this ddpayne's physics version, built with the
    bundled hydrogen-correction product as it is (the same nodes)."""
    from ddpayne.mock.library import MockLibrary
    from ddpayne.physics import PHYSICS_VERSION
    from ddpayne.physics.build_gradients import DEFAULT_PRODUCT
    from ddpayne.physics.gradients import GradientSpectra
    lib = MockLibrary.read()
    grad = GradientSpectra.read(DEFAULT_PRODUCT)
    prod = hyd.HydrogenCorrection.read(Path(hyd.__file__).parent.parent / "data" / "hydrogen_desi.fits")
    for p in (lib.provenance, grad.provenance):
        assert p["physics_version"] == PHYSICS_VERSION >= 3
        assert p["hydrogen"]["n_nodes"] == len(prod) >= 20
        assert p["hydrogen"]["hydrogen_version"] == hyd.HYDROGEN_VERSION
    # the library's warm stars have Stark wings: H-beta wing pixels deeper than in cool stars
    w = lib.wavelength
    wing = (np.abs(w - 4862.68) > 3) & (np.abs(w - 4862.68) < 10)
    teff = np.asarray(lib.labels["TEFF"])
    warm, cool = lib.flux[teff > 6100][:, wing].mean(), lib.flux[teff < 4800][:, wing].mean()
    assert warm < 0.95 and warm < cool - 0.03     # physics 2 (no Stark wings): 0.984


@pytest.mark.synthesis
@pytest.mark.skipif(not HAVE_PYSME, reason="PySME is not installed: pip install --no-deps pysme-astro==1.2.0")
def test_pysme_leaves_no_files_and_keeps_the_environment(tmp_path, monkeypatch):
    import os

    from ddpayne_pysme.synth import SmeSynthesizer
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    _, f = SmeSynthesizer().synthesize({"TEFF": 5772.0, "LOGG": 4.44, "FE_H": 0.0}, 4855.0, 4870.0)
    assert np.all(np.isfinite(f)) and f.min() < 0.5                 # the H-beta core
    assert os.getcwd() == str(tmp_path) and list(tmp_path.iterdir()) == []
    assert os.environ["XDG_CACHE_HOME"] == str(tmp_path / "cache")


def test_builders_refuse_a_hydrogen_product_for_another_survey_before_any_work(tmp_path):
    from ddpayne.exceptions import DDPayneError
    _, prod, _ = _analytic_product()
    with pytest.raises(DDPayneError, match="cannot be applied to 'lamost' products"):
        hyd.load(prod, "lamost")
    with pytest.raises(DDPayneError, match="no hydrogen-correction file"):
        hyd.load(tmp_path / "missing.fits")
    assert hyd.load(None, "lamost") is None and hyd.load(prod) is prod
