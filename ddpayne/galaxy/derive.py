"""From stellar labels to the Galaxy in one call: extinction, distance, orbit, population selection.

:func:`derive` chains the star-pair E(B−V) (:mod:`ddpayne.galaxy.starpair`), a
:class:`~ddpayne.galaxy.distances.DistanceEstimator` and an :class:`~ddpayne.galaxy.orbits.OrbitIntegrator`
chosen by name through :mod:`ddpayne.registry` (the core never imports a plugin), and the GES selection
(:mod:`ddpayne.galaxy.selection`), as Zhang et al. (2024, §4.3–4.4).
"""
from __future__ import annotations

import logging
from typing import Any

import numpy as np
from astropy.table import Table

from .. import registry
from ..flags import Flag
from .extinction import ExtinctionTable
from .selection import RangeSelection, get_selection
from .solar import SOLAR, SolarParameters
from .starpair import StarPairExtinction, column

log = logging.getLogger(__name__)


def _merge(out: Table, res: Table, flag: np.ndarray) -> np.ndarray:
    for name in res.colnames:
        if name == "FLAG":
            continue
        out[name] = res[name]
    if "FLAG" in res.colnames:
        flag |= np.asarray(res["FLAG"], dtype=np.int64)
    return flag


def derive(stars: Table, control: Table | None = None, *, distance: str | None = "spectrophotometric",
           orbit: str | None = "galpy", selection: str | RangeSelection | None = "ges",
           distance_control: Table | None = None, ebv_column: str = "EBV_SFD",
           control_min_abs_b: float = 30.0, control_max_ebv: float = 0.05,
           extinction_table: ExtinctionTable | None = None, solar: SolarParameters = SOLAR,
           distance_options: dict[str, Any] | None = None,
           orbit_options: dict[str, Any] | None = None) -> Table:
    """Add E(B−V), distances, orbits and a population flag to a table of stars.

    Parameters
    ----------
    stars : Table
        One row per star: ``RA``, ``DEC`` (deg), ``TEFF``, ``LOGG``, ``FE_H`` (+ ``_ERR``),
        ``PHOT_G_MEAN_MAG``, ``PHOT_BP_MEAN_MAG``, ``PHOT_RP_MEAN_MAG``, ``J``, ``H``, ``KS`` (+ ``_ERR``),
        ``PARALLAX``, ``PARALLAX_ERROR`` (mas), ``PMRA``, ``PMDEC`` (+ ``_ERROR``, mas/yr), ``RUWE``,
        ``NU_EFF_USED_IN_ASTROMETRY``, ``PSEUDOCOLOUR``, ``ECL_LAT``, ``ASTROMETRIC_PARAMS_SOLVED``,
        ``RV`` (+ ``RV_ERR``, km/s). Missing values are allowed: the row is flagged, never dropped.
    control : Table, optional
        Control stars for the star-pair intrinsic colours (low-extinction ones are selected with
        ``ebv_column``, ``control_min_abs_b``, ``control_max_ebv``) and, unless ``distance_control`` is
        given, for the absolute-magnitude calibration. It may be ``stars`` itself. Without a control,
        ``stars`` must already have ``EBV`` (or ``ebv_column``, used as is, as the paper notes SFD98 can be
        at high latitude) and the distance step needs ``distance_control`` or an existing ``DIST``.
    distance, orbit : str or None
        Names of the distance-estimator and orbit-integrator plugins (``None`` skips the step).
    selection : str, RangeSelection or None
        Population selection written as a boolean column (``GES`` for the default).
    distance_control : Table, optional
        Calibration stars for the absolute magnitudes (default: ``control``); E(B−V) is derived for them
        with the same star-pair model when they lack ``EBV``.
    ebv_column : str
        Reference reddening column (e.g. an SFD98 value) of the control stars.
    extinction_table : ExtinctionTable, optional
        Extinction coefficients (default: :func:`ddpayne.galaxy.extinction.default_table`, from ATLAS9 + MOOG
        line-blanketed SEDs; blackbody SEDs when that file is absent).
    solar : SolarParameters
        Solar position and motion passed to the orbit plugin.
    distance_options, orbit_options : dict, optional
        Keyword arguments of the plugins (e.g. ``{"potential": "McMillan17", "n_mc": 50}``).

    Returns
    -------
    Table
        A copy of ``stars`` with ``EBV``, ``EBV_ERR``, ``DIST``, ``DIST_ERR``, ``DIST_SPEC``, ``DIST_PLX``,
        ``M_G``, ``M_KS``, ``JR``, ``JPHI``, ``JZ``, ``ECC``, ``RPERI``, ``RAPO``, ``ZMAX``, ``ENERGY``,
        the selection column and ``FLAG`` (input ``FLAG`` bits kept, :class:`~ddpayne.flags.Flag` bits added).
    """
    out = Table(stars, copy=True)
    n = len(out)
    flag = np.asarray(column(out, "FLAG", 0.0), dtype=np.int64) if "FLAG" in out.colnames \
        else np.zeros(n, dtype=np.int64)

    # 1. extinction
    sp = None
    if control is not None:
        sp = StarPairExtinction(table=extinction_table).fit(control, ebv_column=ebv_column,
                                                            min_abs_b=control_min_abs_b,
                                                            max_ebv=control_max_ebv)
        flag = _merge(out, sp.estimate(out), flag)
    elif "EBV" not in out.colnames:
        if ebv_column in out.colnames:
            log.info("no control sample: using %s as E(B-V)", ebv_column)
            out["EBV"] = column(out, ebv_column)
            out["EBV_ERR"] = 0.1 * np.abs(column(out, ebv_column)) + 0.01
        else:
            raise ValueError("derive: give a control sample (star-pair E(B-V)) or an 'EBV' or "
                             f"{ebv_column!r} column in the stars table")

    # 2. distances
    if distance is not None:
        cal = distance_control if distance_control is not None else control
        if cal is None:
            if "DIST" not in out.colnames:
                raise ValueError("derive: the distance step needs a control sample (control= or "
                                 "distance_control=) to learn absolute magnitudes")
            log.info("no distance control sample: keeping the existing DIST column")
        else:
            if "EBV" not in cal.colnames:
                if sp is None:
                    raise ValueError("derive: distance_control lacks EBV and there is no star-pair model")
                cal = Table(cal, copy=False)
                r = sp.estimate(cal)
                cal["EBV"], cal["EBV_ERR"] = r["EBV"], r["EBV_ERR"]
            est = registry.create("distance", distance, **(distance_options or {}))
            est.train(cal)
            flag = _merge(out, est.estimate(out), flag)

    # 3. orbits
    if orbit is not None:
        opts = {"solar": solar, **(orbit_options or {})}
        integ = registry.create("orbit", orbit, **opts)
        res = integ.orbits(out)
        flag = _merge(out, res, flag)
        out.meta.update(res.meta)

    # 4. population selection
    if selection is not None:
        sel = get_selection(selection)
        try:
            out[getattr(sel, "name", "SELECTED")] = np.asarray(sel(out), dtype=bool)
        except KeyError as exc:
            log.warning("selection skipped: %s", exc)

    out["FLAG"] = flag
    out.meta["GALAXY"] = f"ddpayne.galaxy.derive distance={distance} orbit={orbit}"
    log.info("derive: %d stars; flags set: %s", n,
             {f.name: int(((flag & int(f)) > 0).sum()) for f in (Flag.NO_PHOTOMETRY, Flag.OUT_OF_CONTROL,
                                                                  Flag.NO_PARALLAX, Flag.DISTANCE_TENSION,
                                                                  Flag.NO_ORBIT)})
    return out
