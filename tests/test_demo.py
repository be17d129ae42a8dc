"""The README's first command keeps working: ``ddpayne demo`` (in its quick form)."""
from __future__ import annotations

from astropy.table import Table

from ddpayne.pipeline.cli import main


def test_demo_quick(tmp_path, capsys):
    assert main(["demo", "--quick", "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "real Sun" in out and "MOCK DESI survey" in out
    # honest about the data: either the physical library or the analytic stand-in is named
    assert "ANALYTIC STAND-IN" in out or "physical library" in out
    assert "Validation against the mock's truth" in out and "GES selection" in out
    v = Table.read(tmp_path / "validation.ecsv")
    assert {"TEFF", "LOGG", "FE_H"} <= set(v["QUANTITY"]) and all(v["N"] > 0)
    assert (tmp_path / "run" / "catalogue.fits").exists()
    assert (tmp_path / "prepared-sun.fits").exists()
    assert len(list((tmp_path / "run" / "figures").glob("*.png"))) >= 4
