"""Orbits with the galpy plugin: known answers, Stäckel vs integration, bad input, Monte Carlo."""
import astropy.coordinates as coord
import astropy.units as u
import numpy as np
import pytest
from astropy.table import Table

from ddpayne import registry
from ddpayne.flags import Flag
from ddpayne.galaxy.solar import SOLAR
from ddpayne.mock.galaxy import assign_galaxy


def _observables(xyz_kpc, v_kms):
    """Heliocentric RA/DEC/DIST/PM/RV table of stars at Galactocentric positions/velocities."""
    xyz = np.atleast_2d(xyz_kpc)
    v = np.atleast_2d(v_kms)
    c = coord.SkyCoord(x=xyz[:, 0] * u.kpc, y=xyz[:, 1] * u.kpc, z=xyz[:, 2] * u.kpc,
                       v_x=v[:, 0] * u.km / u.s, v_y=v[:, 1] * u.km / u.s, v_z=v[:, 2] * u.km / u.s,
                       frame=SOLAR.galactocentric_frame()).transform_to(coord.ICRS())
    return Table({"RA": c.ra.deg, "DEC": c.dec.deg, "DIST": c.distance.to_value(u.kpc),
                  "PMRA": c.pm_ra_cosdec.to_value(u.mas / u.yr), "PMDEC": c.pm_dec.to_value(u.mas / u.yr),
                  "RV": c.radial_velocity.to_value(u.km / u.s)})


@pytest.fixture(scope="module")
def galpy_orbits():
    return registry.create("orbit", "galpy")


def test_sun_is_on_a_near_circular_disk_orbit(galpy_orbits):
    # a star 1 pc from the Sun (towards the NGP) moving with the Sun: zero heliocentric velocity
    t = Table({"RA": [192.85948], "DEC": [27.12825], "DIST": [0.001], "PMRA": [0.0], "PMDEC": [0.0],
               "RV": [0.0]})
    r = galpy_orbits.orbits(t)
    assert r["FLAG"][0] == 0
    assert r["ECC"][0] < 0.1
    assert r["JZ"][0] < 5.0                       # kpc km/s: W = 7.25 km/s in the disk
    # J_phi = L_z = R0 (vc0 + V) for the solar settings, positive for prograde rotation
    assert r["JPHI"][0] == pytest.approx(SOLAR.r0 * (SOLAR.vc0 + SOLAR.v), rel=0.01)
    assert SOLAR.r0 * 0.95 < r["RPERI"][0] < SOLAR.r0 * 1.05 < r["RAPO"][0] < SOLAR.r0 * 1.4
    assert r["ZMAX"][0] < 0.3


def test_radial_orbit_has_unit_eccentricity(galpy_orbits):
    # purely radial motion in the plane, 10 and 15 kpc from the centre
    t = _observables([[-10.0, 0.5, 0.0], [3.0, -14.7, 0.0]],
                     [[200.0, -10.0, 0.0], [-60.0, 294.0, 0.0]])
    r = galpy_orbits.orbits(t)
    assert np.all(r["ECC"] > 0.95)
    assert np.all(np.abs(r["JPHI"]) < 50.0)
    assert np.all(r["RPERI"] < 1.0)
    assert np.all(np.asarray(r["FLAG"]) == 0)


def test_staeckel_agrees_with_integration():
    stars = assign_galaxy(Table({"TEFF": np.linspace(4500, 6500, 40), "LOGG": np.linspace(2.0, 4.5, 40),
                                 "FE_H": np.linspace(-2.0, 0.2, 40), "MG_FE": np.linspace(0.3, 0.0, 40)}),
                          seed=5)
    stars["DIST"], stars["PMRA"] = stars["DIST_TRUE"], stars["PMRA_TRUE"]
    stars["PMDEC"], stars["RV"] = stars["PMDEC_TRUE"], stars["RV_TRUE"]
    st = registry.create("orbit", "galpy").orbits(stars)
    it = registry.create("orbit", "galpy", method="integrate", t_max_gyr=5.0, n_steps=3001).orbits(stars)
    de = np.abs(np.asarray(st["ECC"] - it["ECC"]))
    # Stäckel approximation vs numerical orbits (measured on 300 mock stars: median |de| 0.012, 90 % < 0.08;
    # r_apo median 0.1 %, z_max median 0.6 %)
    assert np.median(de) < 0.03
    assert np.percentile(de, 90) < 0.12
    rap = np.abs(np.asarray(st["RAPO"] / it["RAPO"]) - 1.0)
    assert np.median(rap) < 0.02 and np.percentile(rap, 90) < 0.05
    zm = np.abs(np.asarray(st["ZMAX"] - it["ZMAX"]))
    assert np.median(zm / np.maximum(np.asarray(it["ZMAX"]), 0.5)) < 0.05


def test_bad_input_is_flagged_not_dropped(galpy_orbits):
    t = _observables([[-8.0, 0.0, 0.1]] * 5, [[10.0, 230.0, 5.0]] * 5)
    t["PMRA"][0] = np.nan
    t["RV"][1] = np.nan
    t["DIST"][2] = -1.0
    t["RV"][3] = 3000.0                         # unbound
    r = galpy_orbits.orbits(t)
    assert len(r) == 5
    flag = np.asarray(r["FLAG"])
    for i in range(4):
        assert flag[i] & int(Flag.NO_ORBIT)
        assert np.isnan(r["JR"][i]) and np.isnan(r["ECC"][i])
    assert flag[4] == 0 and np.isfinite(r["JR"][4])
    # missing columns altogether: all rows flagged
    r = galpy_orbits.orbits(Table({"RA": [1.0], "DEC": [2.0]}))
    assert r["FLAG"][0] & int(Flag.NO_ORBIT)


def test_potential_by_name_and_errors():
    sun = Table({"RA": [192.85948], "DEC": [27.12825], "DIST": [0.001], "PMRA": [0.0], "PMDEC": [0.0],
                 "RV": [0.0]})
    r = registry.create("orbit", "galpy", potential="Irrgang13I").orbits(sun)
    assert r["ECC"][0] < 0.15 and r.meta["ORB_POT"] == "Irrgang13I"
    with pytest.raises(ValueError, match="unknown galpy potential"):
        registry.create("orbit", "galpy", potential="NoSuchPotential")
    with pytest.raises(ValueError, match="method"):
        registry.create("orbit", "galpy", method="rk4")


def test_monte_carlo_errors_are_seeded():
    t = _observables([[-9.0, 1.0, 1.0], [-5.0, -3.0, 4.0]], [[50.0, 180.0, 30.0], [-150.0, 40.0, 90.0]])
    t["DIST_ERR"] = 0.1 * t["DIST"]
    t["PMRA_ERROR"] = 0.05
    t["PMDEC_ERROR"] = 0.05
    t["RV_ERR"] = 2.0
    a = registry.create("orbit", "galpy", n_mc=30, seed=3).orbits(t)
    b = registry.create("orbit", "galpy", n_mc=30, seed=3).orbits(t)
    np.testing.assert_array_equal(a["JR_ERR"], b["JR_ERR"])
    assert np.all(np.asarray(a["JR_ERR"]) > 0) and np.all(np.asarray(a["ECC_ERR"]) > 0)
    assert a["JR_ERR"].unit == u.kpc * u.km / u.s


def test_vectorised_delta_matches_galpy():
    from galpy.actionAngle import estimateDeltaStaeckel
    from galpy.potential import MWPotential2014

    from ddpayne_galpy.orbits import staeckel_delta
    rng = np.random.default_rng(0)
    R, z = rng.uniform(0.05, 5.0, 200), rng.normal(0.0, 1.0, 200)
    np.testing.assert_allclose(staeckel_delta(MWPotential2014, R, z),
                               estimateDeltaStaeckel(MWPotential2014, R, z.copy(), no_median=True),
                               rtol=1e-10)


def test_monte_carlo_errors_describe_the_scatter():
    # observed = truth + known errors; the MC errors should match the actual deviations (pull ~ 1)
    rng = np.random.default_rng(7)
    stars = assign_galaxy(Table({"TEFF": rng.uniform(4500, 6500, 300), "LOGG": rng.uniform(2.0, 4.5, 300),
                                 "FE_H": rng.uniform(-2.0, 0.2, 300), "MG_FE": rng.uniform(0.0, 0.3, 300)}),
                          seed=8)
    true = stars.copy()
    true["DIST"], true["PMRA"], true["PMDEC"], true["RV"] = (stars["DIST_TRUE"], stars["PMRA_TRUE"],
                                                            stars["PMDEC_TRUE"], stars["RV_TRUE"])
    obs = true.copy()
    obs["DIST"] = true["DIST"] * np.exp(rng.normal(0.0, 0.1, 300))
    obs["DIST_ERR"] = 0.1 * obs["DIST"]
    obs["PMRA"] = true["PMRA"] + rng.normal(0.0, 1.0, 300) * stars["PMRA_ERROR"]
    obs["PMDEC"] = true["PMDEC"] + rng.normal(0.0, 1.0, 300) * stars["PMDEC_ERROR"]
    obs["RV"] = true["RV"] + rng.normal(0.0, 1.0, 300)
    obs["RV_ERR"] = 1.0
    r_obs = registry.create("orbit", "galpy", n_mc=25, seed=1).orbits(obs)
    r_true = registry.create("orbit", "galpy").orbits(true)
    for k in ("JPHI", "JR", "ECC"):
        pull = np.asarray((r_obs[k] - r_true[k]) / r_obs[k + "_ERR"])
        pull = pull[np.isfinite(pull)]
        # measured on a derive() run of 1500 mock stars with 50 draws: robust pull widths 0.96-1.04
        assert 0.7 < 1.4826 * np.median(np.abs(pull - np.median(pull))) < 1.4
