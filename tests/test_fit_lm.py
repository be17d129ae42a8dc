"""The batched LM fitter and the scipy reference on an analytic emulator with known truth."""
from __future__ import annotations

import copy

import numpy as np
import pytest
import torch

from ddpayne import registry
from ddpayne.exceptions import IncompatibleModelError
from ddpayne.fit.quality import ABUND_FLAG_BITS
from ddpayne.fit.results import read_result_table, write_result_table
from ddpayne.fit.testing import LineEmulator, mock_batch
from ddpayne.flags import Flag
from ddpayne.io.batch import SpectrumBatch
from ddpayne.labels import LABEL_NAMES
from ddpayne.model.emulator import Emulator

WL = np.arange(4000.0, 4800.0, 0.8)
TRUTH = np.array([5900.0, 4.0, 1.2, -0.5] + [0.1] * 11)
SPREAD = np.array([400.0, 0.4, 0.3, 0.4] + [0.15] * 11)


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """One torch thread: on a shared 2-core machine each of the many small tensor operations of these
    tests otherwise waits for a descheduled second OpenMP thread (×10–20 slower; results do not depend
    on it — the two-worker path of the mlp emulator is tested in tests/test_emulator_mlp.py)."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@pytest.fixture(scope="module")
def emu():
    return LineEmulator(WL, n_lines=220, seed=3)


@pytest.fixture(scope="module")
def labels():
    rng = np.random.default_rng(11)
    return TRUTH + rng.uniform(-1, 1, (12, 15)) * SPREAD


@pytest.fixture(scope="module")
def batch(emu, labels):
    return mock_batch(emu, labels, snr=150, seed=5)


@pytest.fixture(scope="module")
def lm_result(emu, batch):
    return registry.create("fitter", "lm", chunk_size=5).fit(emu, batch)


def test_registry_lists_both_fitters():
    found = registry.available("fitter")
    assert {"lm", "scipy"} <= set(found)


def test_lm_recovers_truth_within_formal_errors(lm_result, labels, batch):
    t = lm_result
    assert list(t["ID"]) == list(batch.meta["ID"])          # one row per spectrum, input order
    assert np.all(t["STATUS"] == 0) and np.all(t["CONVERGED"])
    for k, name in enumerate(LABEL_NAMES):
        pull = (np.asarray(t[name]) - labels[:, k]) / np.asarray(t[f"{name}_ERR"])
        assert np.all(np.abs(pull) < 5), (name, pull)
    # reduced chi2 of a correct model with correct noise is ~1 (n_pix ~ 1000: sd ~ 0.045)
    assert np.all(np.abs(np.asarray(t["RCHI2"]) - 1) < 0.25)
    assert t["TEFF"].unit == "K" and t["FE_H_ERR"].unit == "dex"


def test_lm_chi2_not_worse_than_scipy(emu, batch, lm_result):
    ref = registry.create("fitter", "scipy").fit(emu, batch[:6])
    lm6 = lm_result[:6]
    c_lm, c_sp = np.asarray(lm6["CHI2"]), np.asarray(ref["CHI2"])
    # same minimum to 1e-6 relative; never worse than the reference beyond that
    assert np.all(c_lm <= c_sp * (1 + 1e-6) + 1e-6), np.c_[c_lm, c_sp]
    for name in ("TEFF", "LOGG", "FE_H", "MG_FE"):
        d = np.abs(np.asarray(lm6[name]) - np.asarray(ref[name]))
        assert np.all(d < 0.05 * np.asarray(ref[f"{name}_ERR"])), name


def test_covariance_consistent(lm_result):
    cov = np.asarray(lm_result["COVAR"], dtype=float)
    assert cov.shape == (12, 15, 15)
    assert np.allclose(cov, np.transpose(cov, (0, 2, 1)), rtol=1e-4, atol=0)
    assert np.all(np.linalg.eigvalsh(cov) > 0)
    err = np.asarray(lm_result["TEFF_ERR"])
    assert np.allclose(np.sqrt(cov[:, 0, 0]), err, rtol=1e-5)


def test_chunking_does_not_change_results(emu, batch, lm_result):
    t = registry.create("fitter", "lm", chunk_size=64).fit(emu, batch)
    for name in ("TEFF", "FE_H", "CA_FE", "CHI2"):
        assert np.allclose(t[name], lm_result[name], rtol=1e-6, atol=1e-8)


class TwoMinimaEmulator(Emulator):
    """One line whose depth peaks at two temperatures: chi2(TEFF) has two minima."""

    name = "two-minima-test"
    label_names = ("TEFF", "FE_H")
    label_min = np.array([4000.0, -1.0])
    label_max = np.array([7500.0, 0.5])

    def __init__(self):
        self.wavelength = WL[:200]
        self.phi = torch.as_tensor(np.exp(-0.5 * ((self.wavelength - 4050) / 1.5) ** 2))
        self.psi = torch.as_tensor(np.exp(-0.5 * ((self.wavelength - 4100) / 1.5) ** 2))

    def _depth(self, t):
        a = 0.5 * torch.exp(-(((t - 5000) / 300) ** 2))
        b = 0.6 * torch.exp(-(((t - 6500) / 300) ** 2))
        da = a * (-2 * (t - 5000) / 300 ** 2)
        db = b * (-2 * (t - 6500) / 300 ** 2)
        return a + b, da + db

    def flux(self, labels):
        return self.jacobian(labels)[0]

    def jacobian(self, labels):
        x = torch.as_tensor(labels, dtype=torch.float64)
        d, dd = self._depth(x[:, :1])
        f = 1 - d * self.phi - 0.2 * x[:, 1:2] * self.psi
        jac = torch.stack([-dd * self.phi, -0.2 * self.psi.expand_as(f)], dim=-1)
        return f, jac

    def save(self, path):
        raise NotImplementedError

    @classmethod
    def load(cls, path):
        raise NotImplementedError


def test_multistart_keeps_lowest_chi2():
    emu = TwoMinimaEmulator()
    b = mock_batch(emu, np.array([[6500.0, 0.1]]), snr=100, seed=2)
    starts = (np.array([4900.0, 0.0]), np.array([6300.0, 0.0]))
    for name in ("lm", "scipy"):
        single = [registry.create("fitter", name, starts=(s,)).fit(emu, b) for s in starts]
        c = [float(t["CHI2"][0]) for t in single]
        assert abs(single[0]["TEFF"][0] - 5000) < 100 and abs(single[1]["TEFF"][0] - 6500) < 50
        assert c[0] > 2 * c[1]                                 # the first start ends in the local minimum
        multi = registry.create("fitter", name, starts=starts).fit(emu, b)
        assert multi["CHI2"][0] == pytest.approx(min(c), rel=1e-9)
        assert multi["BEST_START"][0] == 1 and abs(multi["TEFF"][0] - 6500) < 50


def test_fixed_labels(emu, batch, labels):
    fixed = {"TEFF": labels[:, 0], "VMIC": 1.2}
    t = registry.create("fitter", "lm").fit(emu, batch, fixed=fixed)
    assert np.allclose(t["TEFF"], labels[:, 0]) and np.allclose(t["VMIC"], 1.2)
    assert np.all(np.isnan(t["TEFF_ERR"])) and np.all(np.isnan(np.asarray(t["COVAR"])[:, 0, :]))
    pull = (np.asarray(t["FE_H"]) - labels[:, 3]) / np.asarray(t["FE_H_ERR"])
    assert np.all(np.abs(pull) < 5)
    assert t.meta["FIXED"][0] and t.meta["FIXED"][2] and not t.meta["FIXED"][3]
    n_pix = np.asarray(t["N_PIX"])
    assert np.allclose(t["RCHI2"], np.asarray(t["CHI2"]) / (n_pix - 13))
    sp = registry.create("fitter", "scipy").fit(emu, batch[:3], fixed={"TEFF": labels[:3, 0], "VMIC": 1.2})
    assert np.all(np.asarray(t["CHI2"][:3]) <= np.asarray(sp["CHI2"]) * (1 + 1e-6) + 1e-6)


def test_fixing_a_label_the_model_lacks_is_a_clear_error(batch):
    small = LineEmulator(WL, label_names=("TEFF", "LOGG", "FE_H", "MG_FE"), n_lines=50)
    for name in ("lm", "scipy"):
        with pytest.raises(IncompatibleModelError, match="CA_FE"):
            registry.create("fitter", name).fit(small, batch, fixed={"CA_FE": 0.0})


def test_other_grid_is_a_clear_error(emu, batch):
    other = SpectrumBatch(WL + 0.4, batch.flux, batch.ivar, batch.meta)
    with pytest.raises(IncompatibleModelError, match="resample"):
        registry.create("fitter", "lm").fit(emu, other)
    shorter = SpectrumBatch(WL[:-5], batch.flux[:, :-5], batch.ivar[:, :-5], batch.meta)
    with pytest.raises(IncompatibleModelError, match="pixels"):
        registry.create("fitter", "scipy").fit(emu, shorter)


def test_bad_spectra_are_flagged_not_dropped(emu, batch, labels):
    b = batch[:4]
    flux, ivar = b.flux.copy(), b.ivar.copy()
    ivar[1] = 0.0                         # all masked
    ivar[2, :300] = np.nan                # NaN ivar on part of the spectrum
    ivar[3] = np.nan                      # NaN everywhere
    flux[0, 10] = np.nan                  # a NaN flux pixel
    bad = SpectrumBatch(WL, flux, ivar, b.meta)
    for name in ("lm", "scipy"):
        t = registry.create("fitter", name).fit(emu, bad)
        assert len(t) == 4 and list(t["ID"]) == list(b.meta["ID"])
        for i in (1, 3):
            assert t["STATUS"][i] == 3 and np.isnan(t["TEFF"][i])
            assert t["FLAG"][i] & Flag.ALL_MASKED and t["FLAG"][i] & Flag.FIT_FAILED
            assert t["N_PIX"][i] == 0
        assert t["STATUS"][0] == 0 and t["N_PIX"][0] == WL.size - 1
        assert t["STATUS"][2] == 0 and t["N_PIX"][2] == WL.size - 300
        assert abs(t["TEFF"][2] - labels[2, 0]) < 5 * t["TEFF_ERR"][2]
        assert t["FLAG"][0] == 0 and t["FLAG"][2] == 0


def test_at_bound_and_feh_floor_flags(emu):
    lab = np.tile(TRUTH, (3, 1))
    lab[0, 0] = 9000.0                    # far above the Teff training range (7500 + margin)
    lab[1, 3] = -2.6                      # below every floor
    lab[2, 3] = -1.8                      # below the N and Ti floors only
    b = mock_batch(emu, lab, snr=200, seed=1)
    t = registry.create("fitter", "lm").fit(emu, b)
    hi = t.meta["UPPER"][0]
    assert t["TEFF"][0] == pytest.approx(hi)
    assert t["FLAG"][0] & Flag.AT_BOUND and t["BOUND_MASK"][0] & 1
    assert not t["FLAG"][1] & Flag.AT_BOUND
    all_bits = sum(ABUND_FLAG_BITS.values())
    assert t["ABUND_FLAG"][1] == all_bits and t["FLAG"][1] & Flag.BELOW_FEH_FLOOR
    assert t["ABUND_FLAG"][2] == ABUND_FLAG_BITS["N_FE"] | ABUND_FLAG_BITS["TI_FE"]
    assert t["FLAG"][2] & Flag.BELOW_FEH_FLOOR


def test_coverage_flag_from_training_labels(emu):
    rng = np.random.default_rng(0)
    train = TRUTH + rng.normal(0, 1, (400, 15)) * SPREAD * 0.5
    lab = np.vstack([TRUTH, TRUTH + np.r_[1200.0, 0, 0, 0, [0] * 11]])  # second star far in Teff
    b = mock_batch(emu, lab, snr=100, seed=3)
    t = registry.create("fitter", "lm", training_labels=train).fit(emu, b)
    assert np.all(np.isfinite(t["COVERAGE_DIST"]))
    assert not t["FLAG"][0] & Flag.OUT_OF_COVERAGE
    assert t["FLAG"][1] & Flag.OUT_OF_COVERAGE
    assert t["COVERAGE_DIST"][1] > t.meta["COVTHR"] > t["COVERAGE_DIST"][0]


def test_chi2_outlier_flag(emu):
    lab = np.tile(TRUTH, (40, 1))
    b = mock_batch(emu, lab, snr=100, seed=8)
    flux = b.flux.copy()
    flux[7, 200:260] -= 0.3               # an unmodelled absorption feature
    t = registry.create("fitter", "lm").fit(emu, SpectrumBatch(WL, flux, b.ivar, b.meta))
    q = np.asarray(t["QFLAG_CHI2"])
    assert q[7] > 10 and t["FLAG"][7] & Flag.CHI2_OUTLIER
    assert np.sum(np.asarray(t["FLAG"]) & Flag.CHI2_OUTLIER > 0) <= 3


def test_result_table_roundtrip(tmp_path, lm_result):
    p = tmp_path / "fit.fits"
    write_result_table(lm_result, p)
    back = read_result_table(p)
    assert back.colnames == lm_result.colnames
    assert back.meta["LABELS"] == list(LABEL_NAMES)
    assert np.allclose(back["TEFF"], lm_result["TEFF"]) and str(back["FE_H"].unit) == "dex"
    assert np.allclose(back["COVAR"], lm_result["COVAR"])


def test_with_the_mlp_emulator():
    """Random-initialised DD-Payne MLP (the real architecture): LM reaches the truth's chi2 or better."""
    try:
        cls = registry.get("emulator", "mlp")
    except Exception as exc:  # pragma: no cover - the mlp plugin is part of the package
        pytest.fail(f"mlp emulator plugin not available: {exc}")
    lo = np.array([3800.0, 0.5, 0.3, -3.0] + [-0.5] * 11)
    hi = np.array([7500.0, 5.0, 3.0, 0.6] + [0.8] * 11)
    emu = cls(label_names=LABEL_NAMES, wavelength=WL[:400], label_min=lo, label_max=hi, seed=4,
              dtype="float64")
    rng = np.random.default_rng(1)
    lab = lo + (hi - lo) * rng.uniform(0.3, 0.7, (4, 15))
    b = mock_batch(emu, lab, snr=100, seed=9)
    truth_chi2 = np.sum((b.flux - emu.predict(lab)) ** 2 * b.ivar, axis=1)
    t = registry.create("fitter", "lm").fit(emu, b)
    s = registry.create("fitter", "scipy").fit(emu, b)
    assert np.all(np.asarray(t["CHI2"]) <= truth_chi2 * (1 + 1e-6))
    assert np.all(np.asarray(t["CHI2"]) <= np.asarray(s["CHI2"]) * (1 + 1e-6) + 1e-6)


class _NoFusedPath(Emulator):
    """Wraps an emulator and hides its fused ``normal_equations``: the fitter's generic path is used."""

    name = "no-fused-test"

    def __init__(self, inner):
        self.inner = inner
        self.label_names, self.wavelength = inner.label_names, inner.wavelength
        self.label_min, self.label_max = inner.label_min, inner.label_max

    @property
    def dtype(self):
        return self.inner.dtype

    def flux(self, labels):
        return self.inner.flux(labels)

    def jacobian(self, labels, pixels=None):
        return self.inner.jacobian(labels, pixels=pixels)

    def save(self, path):
        raise NotImplementedError

    @classmethod
    def load(cls, path):
        raise NotImplementedError


def _mlp(dtype, n_pix=300, seed=4):
    lo = np.array([3800.0, 0.5, 0.3, -3.0] + [-0.5] * 11)
    hi = np.array([7500.0, 5.0, 3.0, 0.6] + [0.8] * 11)
    emu = registry.create("emulator", "mlp", label_names=LABEL_NAMES, wavelength=WL[:n_pix], label_min=lo,
                          label_max=hi, seed=seed, dtype=dtype)
    emu.requires_grad_(False)
    rng = np.random.default_rng(2)
    lab = np.clip(TRUTH + rng.normal(0, 1, (10, 15)) * np.r_[150.0, 0.15, 0.1, 0.1, [0.05] * 11], lo, hi)
    return emu, lab


def test_fused_normal_equations_path_equals_generic_path():
    """LM through the mlp emulator's fused normal_equations gives the same fit as through jacobian()."""
    emu, lab = _mlp("float64")
    b = mock_batch(emu, lab[:6], snr=100, seed=3)
    fused = registry.create("fitter", "lm").fit(emu, b)
    generic = registry.create("fitter", "lm", pixel_block=64).fit(_NoFusedPath(emu), b)
    np.testing.assert_allclose(fused["CHI2"], generic["CHI2"], rtol=1e-9)
    for name in ("TEFF", "LOGG", "FE_H", "MG_FE"):
        np.testing.assert_allclose(fused[name], generic[name], rtol=0,
                                   atol=1e-4 * float(np.min(generic[f"{name}_ERR"])))
    np.testing.assert_allclose(fused["COVAR"], generic["COVAR"], rtol=1e-5)


def test_lm_not_worse_than_scipy_on_float32_mlp():
    """The speed configuration (float32 mlp, probe on every 4th pixel, gain-ratio damping, Gauss–Newton
    stopping rule): chi2(lm) <= chi2(scipy) (1 + 1e-6) + 1e-6 on every spectrum, same labels within 0.1 sigma."""
    emu, lab = _mlp("float32", n_pix=400)
    b = mock_batch(emu, lab[:8], snr=100, seed=8)
    t = registry.create("fitter", "lm").fit(emu, b)
    s = registry.create("fitter", "scipy").fit(emu, b)
    assert np.all(t["STATUS"] == 0)
    # the optimisers are compared on one exact chi2: the same (float32) weights evaluated in float64,
    # so that float32 rounding of the two code paths (~1e-4 in chi2 here) does not decide the comparison
    e64 = copy.deepcopy(emu).to(torch.float64)

    def chi2(tab):
        x = np.column_stack([np.asarray(tab[n], float) for n in LABEL_NAMES])
        return np.sum((b.flux - e64.predict(x)) ** 2 * b.ivar, axis=1)

    c_lm, c_sp = chi2(t), chi2(s)
    assert np.all(c_lm <= c_sp * (1 + 1e-6) + 1e-6), np.c_[c_lm, c_sp]
    # the reported chi2 (float32 model, float64 residuals) agree with the exact ones to float32 rounding
    np.testing.assert_allclose(t["CHI2"], c_lm, rtol=1e-5)
    for name in ("TEFF", "LOGG", "FE_H", "C_FE", "MG_FE", "CA_FE"):
        d = np.abs(np.asarray(t[name]) - np.asarray(s[name]))
        assert np.all(d < 0.1 * np.asarray(s[f"{name}_ERR"])), name
    np.testing.assert_allclose(t["TEFF_ERR"], s["TEFF_ERR"], rtol=1e-2)


def test_marquardt_damping_option(emu, batch, lm_result):
    t = registry.create("fitter", "lm", chunk_size=12, damping="marquardt", gn_tol=None).fit(emu, batch[:4])
    np.testing.assert_allclose(t["CHI2"], lm_result["CHI2"][:4], rtol=1e-6, atol=1e-6)
    with pytest.raises(ValueError, match="damping"):
        registry.create("fitter", "lm", damping="fast")
