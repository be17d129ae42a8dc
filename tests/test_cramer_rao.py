"""Cramér–Rao bounds, precision reports, and the quality-flag functions."""
from __future__ import annotations

import types

import numpy as np
import pytest
from astropy.table import Table

from ddpayne import registry
from ddpayne.fit import cramer_rao as crb
from ddpayne.fit import quality
from ddpayne.fit.testing import LineEmulator
from ddpayne.labels import LABEL_NAMES

WL = np.arange(4000.0, 4600.0, 0.8)
TRUTH = np.array([5900.0, 4.0, 1.2, -0.5] + [0.1] * 11)


def test_fisher_matrix_matches_direct_formula():
    rng = np.random.default_rng(0)
    G = rng.normal(size=(500, 4))
    ivar = rng.uniform(10, 100, 500)
    ivar[:20] = 0.0
    F = crb.fisher_matrix(G, ivar)
    assert np.allclose(F, G.T @ np.diag(ivar) @ G)
    bound = crb.cramer_rao_bound(G, ivar)
    assert np.allclose(bound, np.sqrt(np.diag(np.linalg.inv(F))))
    # a fixed (known) label: the bound of the others is the inverse of the reduced Fisher matrix
    b2 = crb.cramer_rao_bound(G, ivar, fixed=[False, True, False, False])
    sub = np.linalg.inv(F[np.ix_([0, 2, 3], [0, 2, 3])])
    assert np.isnan(b2[1]) and np.allclose(b2[[0, 2, 3]], np.sqrt(np.diag(sub)))
    # scaling: bound ∝ 1/S/N
    assert np.allclose(crb.cramer_rao_bound(G, 4 * ivar), bound / 2)


def test_bound_handles_wildly_different_label_units():
    rng = np.random.default_rng(1)
    G = rng.normal(size=(300, 3)) * np.array([1e-4, 1.0, 10.0])   # per K vs per dex
    b = crb.cramer_rao_bound(G, np.full(300, 1e4))
    F = G.T @ G * 1e4
    assert np.allclose(b, np.sqrt(np.diag(np.linalg.inv(F))), rtol=1e-8)


@pytest.fixture(scope="module")
def emu():
    return LineEmulator(WL, n_lines=180, seed=5)


def test_crb_from_emulator_equals_formal_error_of_noiseless_fit(emu):
    from ddpayne.fit.testing import mock_batch

    b = mock_batch(emu, TRUTH[None], snr=100, seed=0)
    b.flux[:] = emu.predict(TRUTH[None])             # noiseless: the fit lands on the truth
    t = registry.create("fitter", "lm").fit(emu, b)
    bound = crb.crb_from_emulator(emu, TRUTH, b.ivar[0])[0]
    err = np.array([t[f"{n}_ERR"][0] for n in LABEL_NAMES])
    assert np.allclose(err, bound, rtol=1e-4)


def test_noise_realisations_scatter_matches_bound(emu):
    """Fits of 60 noise realisations: scatter within the sampling error of the bound, formal ≈ bound."""
    fitter = registry.create("fitter", "lm", chunk_size=30)
    rep, fits = crb.noise_realisation_report(fitter, emu, TRUTH, snr=100, n_real=60, seed=3)
    ratio = np.asarray(rep["SCATTER_OVER_CRB"])
    # the standard deviation of 60 draws has a relative sampling error of 1/sqrt(2*59) ≈ 9 %: 4 sigma
    assert np.all(np.abs(ratio - 1) < 0.37), dict(zip(rep["LABEL"], ratio))
    assert np.all(np.abs(np.asarray(rep["FORMAL_ERR"]) / np.asarray(rep["CRB"]) - 1) < 0.05)
    assert len(fits) == 60 and rep.meta["N_REAL"] == 60


def _fake_gradient_spectra():
    rng = np.random.default_rng(4)
    n_pix, names = 400, ("TEFF", "LOGG", "FE_H")
    refs = np.array([[5800.0, 4.4, 0.0], [4700.0, 2.5, -0.5], [5900.0, 4.0, -0.5]])
    grads = rng.normal(size=(3, 3, n_pix)) * np.array([1e-4, 0.05, 0.1])[None, :, None]
    mask = np.zeros(n_pix, bool)
    mask[:50] = True
    return types.SimpleNamespace(label_names=names, ref_labels=refs, gradients=grads,
                                 base_flux=np.ones((3, n_pix)), mask=mask)


def test_crb_from_gradient_spectra_picks_nearest_reference_and_masks():
    gs = _fake_gradient_spectra()
    t = crb.crb_from_gradients(gs, labels={"TEFF": 5900, "LOGG": 4.0, "FE_H": -0.5}, snr=100)
    assert t.meta["REF"] == 2
    G = gs.gradients[2].T
    ivar = np.full(G.shape[0], 1e4)
    ivar[:50] = 0
    assert np.allclose(t["CRB"], np.sqrt(np.diag(np.linalg.inv(G.T @ (ivar[:, None] * G)))))
    t2 = crb.crb_from_gradients(gs, ref=0, snr=50, label_names=["TEFF", "FE_H"])
    assert list(t2["LABEL"]) == ["TEFF", "FE_H"] and t2.meta["REF"] == 0


def test_precision_from_repeats_recovers_known_scatter():
    rng = np.random.default_rng(2)
    n_targets, sigma = 3000, np.array([20.0, 0.05])
    true = rng.normal([5500, 4.0], [500, 0.5], (n_targets, 2))
    rows = []
    for k in range(n_targets):
        for _ in range(2 if k % 3 else 3):          # some targets observed three times
            rows.append((k, *(true[k] + rng.normal(0, sigma))))
    rows += [(n_targets + i, 5000.0, 3.0) for i in range(50)]   # singles: ignored
    t = Table(rows=rows, names=("TARGETID", "TEFF", "LOGG"))
    prec, n_pairs = crb.precision_from_repeats(t, ["TEFF", "LOGG"])
    assert n_pairs == n_targets
    assert np.allclose(prec, sigma, rtol=0.06)
    rep = crb.precision_report(["TEFF", "LOGG"], crb=sigma / 2, repeats=prec)
    assert np.allclose(rep["REPEAT_OVER_CRB"], 2, rtol=0.06)
    assert list(rep["UNIT"]) == ["K", "dex"]


def test_qflag_chi2_per_snr_bin_and_definition():
    rng = np.random.default_rng(0)
    snr = np.r_[np.full(600, 20.0), np.full(600, 100.0)]
    chi2 = np.r_[rng.normal(1000, 10, 600), rng.normal(3000, 50, 600)]
    chi2[5] = 1300.0                                 # outlier in the low-S/N bin
    q = quality.qflag_chi2(chi2, snr, n_per_bin=600)
    lo = chi2[:600]
    med = np.median(lo)
    assert q[5] == pytest.approx((1300 - med) / np.mean(np.abs(lo - med)))
    # per bin, q >= 3 is a ~2.4 sigma cut (mean abs deviation = 0.8 sigma): ~1 % of the stars
    assert np.sum(q >= 3) < 25 and q[5] > 3
    # without S/N bins the outlier hides among the high-S/N stars' larger chi2
    assert quality.qflag_chi2(chi2, None)[5] < 3
    qm = quality.qflag_chi2(chi2, snr, n_per_bin=600, deviation="median")
    assert qm[5] == pytest.approx((1300 - med) / np.median(np.abs(lo - med)))
    q_small = quality.qflag_chi2(chi2[:10], snr[:10])
    assert np.all(np.isnan(q_small))                # too few stars for a median
    q_nan = quality.qflag_chi2(np.r_[np.nan, chi2[:100]], None, min_per_bin=20)
    assert np.isnan(q_nan[0]) and np.all(np.isfinite(q_nan[1:]))


def test_coverage_model_and_bound_mask():
    rng = np.random.default_rng(1)
    train = rng.uniform(0, 1, (2000, 3))
    cov = quality.CoverageModel(train, np.zeros(3), np.ones(3))
    inside, outside = np.array([[0.5, 0.5, 0.5]]), np.array([[2.0, 0.5, 0.5]])
    assert not cov.outside(inside)[0] and cov.outside(outside)[0]
    assert cov.distance(outside)[0] == pytest.approx(1.0, abs=0.05)
    assert np.isnan(cov.distance(np.array([[np.nan, 0, 0]]))[0])
    m = quality.at_bound_mask([[0.0, 0.5], [0.5, 1.0]], [0, 0], [1, 1], fixed=[False, True])
    assert m.tolist() == [[True, False], [False, False]]


def test_precision_figure(tmp_path):
    import matplotlib

    matplotlib.use("Agg")
    from ddpayne.plots.precision import plot_precision_vs_crb

    names = ["TEFF", "LOGG", "FE_H", "MG_FE"]
    rep = crb.precision_report(names, crb=[10.0, 0.01, 0.01, 0.02], scatter=[20.0, 0.02, 0.02, 0.03],
                               formal=[18.0, 0.02, 0.02, 0.03], meta={"SNR": 100})
    fig = plot_precision_vs_crb(rep)
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.get_xticklabels()] == ["TEFF/100", "LOGG", "FE_H", "MG_FE"]
    bars = [p.get_height() for p in ax.patches]
    assert np.allclose(bars, [0.1, 0.01, 0.01, 0.02])          # Teff drawn per 100 K
    fig.savefig(tmp_path / "fig9.png")
    assert (tmp_path / "fig9.png").stat().st_size > 1000


def test_crb_from_gradients_photon_noise_uses_base_flux():
    gs = _fake_gradient_spectra()
    gs.base_flux = np.full_like(gs.base_flux, 0.25)          # every pixel at a quarter of the continuum
    t = crb.crb_from_gradients(gs, ref=1, snr=100)
    ref = crb.crb_from_gradients(gs, ref=1, snr=100, use_flux=False)
    # sigma = sqrt(0.25)/100 = half of 1/100: the bound halves
    assert np.allclose(t["CRB"], 0.5 * ref["CRB"])


def test_crb_from_the_committed_desi_gradient_product():
    """Physical bound at the paper's Fig. 9 star (Teff 5900, logg 4.0, [Fe/H] -0.5) from the DESI product."""
    from pathlib import Path

    from ddpayne.physics.gradients import GradientSpectra

    path = Path(crb.__file__).parents[1] / "data" / "gradients_desi.fits"
    gs = GradientSpectra.read(path)
    t = crb.crb_from_gradients(gs, labels={"TEFF": 5900, "LOGG": 4.0, "FE_H": -0.5}, snr=100)
    b = dict(zip(t["LABEL"], t["CRB"]))
    assert np.all(np.isfinite(t["CRB"])) and np.all(t["CRB"] > 0)
    # orders of magnitude of the paper's Fig. 9 bounds at S/N = 100: ~10 K, ~0.01-0.03 dex
    assert 3 < b["TEFF"] < 40 and 0.003 < b["LOGG"] < 0.06 and 0.002 < b["FE_H"] < 0.03
    # oxygen has only the 7774 Å triplet in the DESI range: the least constrained abundance
    assert b["O_FE"] == max(v for k, v in b.items() if k.endswith("_FE"))
    t50 = crb.crb_from_gradients(gs, ref=t.meta["REF"], snr=50)
    assert np.allclose(t50["CRB"], 2 * t["CRB"])


def test_crb_per_spectrum_matches_single_point_bound_and_noise():
    """Per-spectrum bounds: the nearest reference point, each spectrum's own ivar, fitted labels only."""
    gs = _fake_gradient_spectra()
    names = ["TEFF", "LOGG", "FE_H"]
    npix = gs.gradients.shape[2]
    labels = np.array([[5900, 4.0, -0.5], [5890, 4.1, -0.4], [np.nan] * 3])
    ivar = np.full((3, npix), 1e4)
    ivar[1] *= 4.0                      # S/N twice as high
    out, ref = crb.crb_per_spectrum(gs, labels, ivar, names)
    single = crb.crb_from_gradients(gs, ref=2, ivar=np.full(npix, 1e4), label_names=names)
    assert ref.tolist() == [2, 2, -1]
    assert np.allclose(out[0], single["CRB"])
    assert np.allclose(out[1], out[0] / 2)
    # fewer fitted labels: the bound of the others shrinks (or stays)
    out2, _ = crb.crb_per_spectrum(gs, labels[:, [0, 2]], ivar, ["TEFF", "FE_H"])
    assert np.all(out2[0] <= out[0][[0, 2]] + 1e-12)
    assert np.all(np.isnan(out[2]))
    with pytest.raises(ValueError, match="pixels"):
        crb.crb_per_spectrum(gs, labels, ivar[:, :10], names)


def test_catalogue_precision_report_from_repeats():
    """Repeat pairs scattered at 1.5x their (varying) bounds give REPEAT_OVER_CRB = 1.5 within 10 %."""
    rng = np.random.default_rng(7)
    n_star = 3000
    tid = np.arange(n_star)
    bound = rng.uniform(0.01, 0.05, n_star)                 # per-star bound: S/N differs from star to star
    true = rng.normal(0, 0.2, n_star)
    rows = []
    for k in range(2):
        b = bound * rng.uniform(0.9, 1.1, n_star)           # the two spectra of a star: similar S/N
        rows.append(Table({"TARGETID": tid, "MG_FE": true + rng.normal(0, 1, n_star) * 1.5 * b,
                           "MG_FE_CRB": b, "MG_FE_ERR": 1.2 * b}))
    single = Table({"TARGETID": [10**6], "MG_FE": [0.0], "MG_FE_CRB": [0.02], "MG_FE_ERR": [0.02]})
    from astropy.table import vstack
    cat = vstack([rows[0], single, rows[1]])
    rep = crb.catalogue_precision_report(cat)
    assert rep.meta["N_PAIRS"] == n_star and list(rep["LABEL"]) == ["MG_FE"]
    assert rep["REPEAT_OVER_CRB"][0] == pytest.approx(1.5, rel=0.1)
    assert rep["FORMAL_ERR"][0] / rep["CRB"][0] == pytest.approx(1.2, rel=0.05)
    # formal errors of 1.2x the bound, scatter of 1.5x the bound: repeats scatter by 1.25 formal errors
    assert rep["REPEAT_OVER_ERR"][0] == pytest.approx(1.5 / 1.2, rel=0.1)
    # no repeats: bounds and errors only
    rep1 = crb.catalogue_precision_report(rows[0])
    assert rep1.meta["N_PAIRS"] == 0 and np.isnan(rep1["REPEAT_OVER_CRB"][0]) and np.isfinite(rep1["CRB"][0])
    assert crb.catalogue_precision_report(Table({"TARGETID": [1], "MG_FE": [0.1]})) is None


def test_catalogue_precision_report_leaves_out_bound_and_failed_pairs():
    """A pair with the label at a bound (identical values) or a failed fit must not count as 'precise'."""
    from ddpayne.flags import Flag
    rng = np.random.default_rng(3)
    n = 400
    a = Table({"TARGETID": np.arange(n), "FE_H": rng.normal(0, 1, n) * 0.02, "FE_H_CRB": np.full(n, 0.02),
               "BOUND_MASK": np.zeros(n, np.int64), "FLAG": np.zeros(n, np.int64)})
    b = a.copy()
    b["FE_H"] = rng.normal(0, 1, n) * 0.02
    # 100 pairs stuck at the bound: identical values; 50 failed fits
    b["FE_H"][:100] = a["FE_H"][:100]
    a["BOUND_MASK"][:100] = 1 << 1          # FE_H is label 1 of LABELS
    b["FLAG"][100:150] = int(Flag.FIT_FAILED)
    b["FE_H"][100:150] = 5.0
    from astropy.table import vstack
    cat = vstack([a, b])
    cat.meta["LABELS"] = ["TEFF", "FE_H"]
    rep = crb.catalogue_precision_report(cat)
    assert rep["REPEAT_OVER_CRB"][0] == pytest.approx(1.0, rel=0.15)   # sqrt(2)*0.02 / sqrt(2)*0.02
