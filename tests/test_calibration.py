"""Systematic errors from validation stars (:mod:`ddpayne.fit.calibration`) on cases of known truth."""
from __future__ import annotations

import numpy as np
import pytest
from astropy.table import Table

from ddpayne.fit.calibration import MIN_STARS, robust_sigma, systematic_errors, total_error_columns
from ddpayne.flags import Flag


def _case(n, sys, formal, ref_err, seed=0, n_bad=0):
    """Validation fits with a known model error ``sys`` on top of formal and reference-label noise."""
    rng = np.random.default_rng(seed)
    truth = rng.uniform(4500, 6500, n)
    fit = Table({"ID": [f"s{i}" for i in range(n)],
                 "TEFF": truth + rng.normal(0, sys, n) + rng.normal(0, formal, n),
                 "TEFF_ERR": np.full(n, formal), "FLAG": np.zeros(n, np.int64)})
    if n_bad:   # failed fits far off: flagged, must not count
        fit["TEFF"][:n_bad] += 5000.0
        fit["FLAG"][:n_bad] = int(Flag.AT_BOUND)
    ref = Table({"ID": fit["ID"], "TEFF": truth + rng.normal(0, ref_err, n), "TEFF_ERR": np.full(n, ref_err)})
    return fit, ref


@pytest.mark.parametrize("sys", [40.0, 80.0])
def test_recovers_a_known_model_error(sys):
    # 400 validation stars, formal 25 K, reference errors 60 K (the mock's LAMOST/APOGEE-like errors)
    fit, ref = _case(400, sys, 25.0, 60.0, seed=int(sys), n_bad=8)
    t = systematic_errors(fit, ref, ["TEFF"])
    row = t[0]
    assert row["N"] == 392                                      # the 8 flagged rows are left out
    assert abs(row["SYS"] - sys) < 3 * row["SYS_UNCERTAINTY"]
    assert abs(row["SYS"] - sys) / sys < 0.25
    assert row["SYS_UNCERTAINTY"] < 0.3 * sys
    assert row["MEDIAN_ERR"] == 25.0 and row["REF_ERR"] == 60.0


def test_no_model_error_gives_a_small_bound():
    fit, ref = _case(300, 0.0, 25.0, 60.0, seed=3)
    row = systematic_errors(fit, ref, ["TEFF"])[0]
    # zero within its stated uncertainty, which is itself small against the 65 K noise
    assert row["SYS"] < 3 * row["SYS_UNCERTAINTY"] and row["SYS_UNCERTAINTY"] < 30.0


def test_too_few_stars_and_missing_errors():
    fit, ref = _case(MIN_STARS - 1, 50.0, 25.0, 60.0)
    row = systematic_errors(fit, ref, ["TEFF"])[0]
    assert row["N"] == MIN_STARS - 1 and np.isnan(row["SYS"])
    # without reference errors the whole excess counts (an upper bound on the model error)
    fit, ref = _case(400, 40.0, 25.0, 60.0, seed=5)
    ref.remove_column("TEFF_ERR")
    row = systematic_errors(fit, ref, ["TEFF"])[0]
    assert row["REF_ERR"] == 0.0 and row["SYS"] > 60.0
    ref["TEFF_ERR"] = np.nan                                      # an all-NaN error column: the same
    assert systematic_errors(fit, ref, ["TEFF"])[0]["SYS"] == row["SYS"]


def test_repeat_spectra_share_one_reference_row():
    fit, ref = _case(100, 50.0, 25.0, 60.0, seed=7)
    twice = Table(fit, copy=True)
    both = Table(np.concatenate([fit.as_array(), twice.as_array()]))
    t = systematic_errors(both, ref, ["TEFF"])
    assert t[0]["N"] == 200


def test_total_error_columns():
    cat = Table({"TEFF_ERR": [30.0, 40.0], "LOGG_ERR": [0.05, 0.07]})
    sys = Table({"LABEL": ["TEFF", "LOGG", "FE_H"], "SYS": [40.0, np.nan, 0.1]})
    tot = total_error_columns(cat, sys)
    assert tot.colnames == ["TEFF_ERR_TOT", "LOGG_ERR_TOT"]      # FE_H: not in the catalogue
    assert np.allclose(tot["TEFF_ERR_TOT"], [50.0, np.hypot(40, 40)])
    assert np.all(np.isnan(tot["LOGG_ERR_TOT"]))                  # unknown, not zero
    assert str(tot["TEFF_ERR_TOT"].unit) == "K"


def test_star_by_star_with_unequal_errors():
    """Half the stars bright (formal 10 K), half faint (formal 90 K): the star-by-star solution recovers the
    40 K model error, which the median errors alone would not (the median sits between the two groups)."""
    rng = np.random.default_rng(21)
    n = 600
    formal = np.where(np.arange(n) % 2 == 0, 10.0, 90.0)
    truth = rng.uniform(4500, 6500, n)
    fit = Table({"ID": [f"s{i}" for i in range(n)],
                 "TEFF": truth + rng.normal(0, 40.0, n) + rng.normal(0, 1, n) * formal,
                 "TEFF_ERR": formal, "FLAG": np.zeros(n, np.int64)})
    ref = Table({"ID": fit["ID"], "TEFF": truth + rng.normal(0, 30.0, n), "TEFF_ERR": np.full(n, 30.0)})
    row = systematic_errors(fit, ref, ["TEFF"])[0]
    assert abs(row["SYS"] - 40.0) < 8.0, row["SYS"]
    # and the total errors then describe both groups: robust width of (fit - truth)/ERR_TOT near 1
    tot = total_error_columns(fit, Table({"LABEL": ["TEFF"], "SYS": [row["SYS"]]}))["TEFF_ERR_TOT"]
    z = (np.asarray(fit["TEFF"]) - truth) / np.asarray(tot)
    for group in (0, 1):
        zz = z[group::2]
        assert abs(1.4826 * np.median(np.abs(zz - np.median(zz))) - 1.0) < 0.15


def test_robust_sigma_is_a_gaussian_sigma_that_ignores_outliers_and_nans():
    rng = np.random.default_rng(3)
    x = rng.normal(5.0, 2.0, (40000, 3))
    x[:400, 0] = 1e6            # 1 % wild outliers
    x[:100, 1] = np.nan
    x[100:18000, 1] = np.inf      # 45 %: ignored like NaN, not counted as huge values
    x[:, 2] = np.nan
    s = robust_sigma(x, axis=0)
    assert s[0] == pytest.approx(2.0, rel=0.03) and s[1] == pytest.approx(2.0, rel=0.03)
    assert np.isnan(s[2])                       # no finite value: NaN, not an error
    assert robust_sigma(x[:, 1]) == pytest.approx(s[1], rel=1e-12)
    assert np.isnan(robust_sigma([np.nan, np.inf]))
