"""MOOG build helpers: clear errors without a compiler (runs everywhere, builds nothing)."""
import pytest

import ddpayne_moog.build as build


def test_missing_gfortran_gives_clear_error(monkeypatch):
    monkeypatch.delenv("FC", raising=False)
    monkeypatch.setattr(build.shutil, "which", lambda name: None)
    with pytest.raises(build.MoogBuildError, match="gfortran was not found.*apt-get install gfortran"):
        build.moog_binary()


def test_cache_dir_env(monkeypatch, tmp_path):
    monkeypatch.setenv("DDPAYNE_MOOG_CACHE", str(tmp_path))
    assert build.cache_dir() == tmp_path


def test_patch_raises_strong_line_limit(tmp_path):
    """The strong-line patch on a minimal copy of MOOG's Inlines.f statements."""
    src = tmp_path
    (src / "Begin.f").write_text("      open (nfbarklem,file='$DATADIR/Barklem.dat')\n")
    (src / "Moogsilent.f").write_text("      moogpath = '$SRCDIR'\n      machine = \"$MACHINE\"\n")
    inl = ("      real*8 swave1(40), satom1(40), se(40),sgf(40),\n"
           "     .       sdampnum(40),sd0(40),swidth(40), scharge(40)\n"
           "         do j=1,41\n         if (nstrong .gt. 40) then\n")
    (src / "Inlines.f").write_text(inl)
    build._patch(src)
    out = (src / "Inlines.f").read_text()
    assert f"({build.MAX_STRONG})" in out and "(40)" not in out
    assert f"do j=1,{build.MAX_STRONG + 1}" in out and f"nstrong .gt. {build.MAX_STRONG}" in out
    assert str(src) in (src / "Begin.f").read_text()
    assert "smstub.c" in [p.name for p in src.iterdir()]


def test_taukap_patch_refuses_other_sources(tmp_path):
    """The line-opacity patch replaces MOOG's loops verbatim or refuses with a message naming the file."""
    from ddpayne_moog.vectorvoigt import (_NEARLY_DOPP, _STRONG_LOOP, _WEAK_LOOP, patch_taukap,
                                          taukap_flags)
    (tmp_path / "Taukap.f").write_text("      subroutine taukap\n      end\n")
    with pytest.raises(ValueError, match="Taukap.f is not MOOG's February 2019"):
        patch_taukap(tmp_path)
    (tmp_path / "Taukap.f").write_text("      do i=1,ntau\n" + _WEAK_LOOP + "         if (x) then\n"
                                       + _STRONG_LOOP + "         endif\n      enddo\n")
    with pytest.raises(ValueError, match="Nearly.f is not MOOG's February 2019"):
        (tmp_path / "Nearly.f").write_text("      subroutine nearly\n      end\n")
        patch_taukap(tmp_path)
    (tmp_path / "Taukap.f").write_text("      do i=1,ntau\n" + _WEAK_LOOP + "         if (x) then\n"
                                       + _STRONG_LOOP + "         endif\n      enddo\n")
    (tmp_path / "Nearly.f").write_text("      include 'Linex.com'\n" + _NEARLY_DOPP)
    patch_taukap(tmp_path)
    assert "rdop(j,i) = 2.997929d10/(wave1(j)*dopp(j,i))" in (tmp_path / "Nearly.f").read_text()
    assert "common/ddpvgt/rdop" in (tmp_path / "Ddpvgt.com").read_text()
    out = (tmp_path / "Taukap.f").read_text()
    assert "call lineksum (lim1, lim2, i, kapnu(i))" in out
    assert "call lineksum (nlines+1, nlines+nstrong, i, kapnu(i))" in out
    assert out.count("subroutine lineksum") == 1 and "voigt(a(j,i),v)" not in out
    with pytest.raises(ValueError):      # patched twice
        patch_taukap(tmp_path)
    assert taukap_flags(["-O3", "-flto", "-w"]) == ["-O3", "-w", "-fno-trapping-math"]
