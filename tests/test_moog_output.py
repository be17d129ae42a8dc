"""Reading MOOG's summary output, including its rare overflowed depths (no MOOG run needed)."""
from __future__ import annotations

import numpy as np
import pytest

from ddpayne_moog.synth import MAX_OVERFLOW_RUN, MAX_OVERFLOW_RUN_CONTINUUM, SynthesisError, _parse_summary, repair_overflows


def _summary(tmp_path, rows):
    text = ["ALL abundances NOT listed below differ from solar by  -2.31 dex",
            "MODEL: ddpayne atmosphere",
            "element Fe: abundance =  5.19",
            "   6688.960   6689.230      0.030      1.000"] + rows
    path = tmp_path / "out2"
    path.write_text("\n".join(text) + "\n")
    return path


def test_overflowed_depths_are_read_as_nan_and_repaired(tmp_path):
    # the line MOOG printed for mock-00508 (two overflowed points between line-free neighbours)
    rows = [" 0.0000 0.0000 0.0000 0.0000 0.0000 0.0000 0.0000************** 0.0000"]
    wave, flux = _parse_summary(_summary(tmp_path, rows))
    assert wave.size == 10 and np.allclose(wave[:2], [6688.96, 6688.99])
    assert np.isnan(flux[7]) and np.isnan(flux[8]) and np.isfinite(flux).sum() == 8
    fixed, n = repair_overflows(flux, "in a test")
    assert n == 2 and np.allclose(fixed, 1.0)


def test_repair_interpolates_and_refuses_too_much():
    flux = np.array([1.0, 0.9, np.nan, 0.7, 0.8])
    fixed, n = repair_overflows(flux)
    assert n == 1 and fixed[2] == pytest.approx(0.8) and np.isnan(flux[2])   # the input is not changed
    same, n0 = repair_overflows(np.ones(4))
    assert n0 == 0
    # six consecutive points, as MOOG printed at 7235 Å for mock-00508, in a run of 3335 points
    run = np.ones(3335)
    run[1533:1539] = np.nan
    assert repair_overflows(run)[1] == 6
    with pytest.raises(SynthesisError, match="run of 11 points .next to a line, limit 10"):
        repair_overflows(np.r_[np.ones(3000), 0.9, np.full(MAX_OVERFLOW_RUN + 1, np.nan), np.ones(3000)])
    with pytest.raises(SynthesisError, match="too many to repair .49 next to lines"):
        bad = np.linspace(0.5, 0.9, 1000)
        bad[10:990:20] = np.nan
        repair_overflows(bad)
    with pytest.raises(SynthesisError, match="ends of the run"):
        repair_overflows(np.array([np.nan, 1.0, 1.0]))


def test_repair_of_gaps_between_continuum_points_in_real_chunk_sizes():
    # a mock-star MOOG run (100 Å at 0.03 Å: 3334 points); mock-00761 printed 12 points at 7043.3 Å (air)
    # and 1 more elsewhere in the same run, all between neighbours of depth 0.0000
    chunk = np.ones(3334)
    chunk[1811:1823] = np.nan
    chunk[142] = np.nan
    fixed, n = repair_overflows(chunk)
    assert n == 13 and np.all(fixed == 1.0)
    wide = np.ones(3334)
    wide[1000:1000 + MAX_OVERFLOW_RUN_CONTINUUM] = np.nan      # 1.2 Å: still repaired
    assert repair_overflows(wide)[1] == MAX_OVERFLOW_RUN_CONTINUUM
    wide[1000 + MAX_OVERFLOW_RUN_CONTINUUM] = np.nan            # 41 points: no longer a glitch
    with pytest.raises(SynthesisError, match="run of 41 points .between continuum, limit 40"):
        repair_overflows(wide)
    many = np.ones(3334)
    for k in range(3):                                         # 3 x 30 = 90 points > 2 % of 3334
        many[500 + 1000 * k:530 + 1000 * k] = np.nan
    with pytest.raises(SynthesisError, match="too many to repair .0 next to lines, 90 between"):
        repair_overflows(many)
