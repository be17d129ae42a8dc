"""A build patch for MOOG's line-opacity sum: the same Voigt approximations in loops a compiler vectorises.

MOOG spends about 70 % of a synthesis in ``Taukap.f``: at every wavelength and depth it sums
``kapnu0 * voigt(a, v)`` over the lines within the opacity reach, calling ``Voigt.f`` (the
Landolt-Börnstein approximations, five cases selected by branches on ``a`` and ``v``) once per line.
The branches stop the compiler from vectorising the loop, so every line costs several scalar divisions
and, near the line core, a scalar ``exp``.

This patch replaces the two loops in ``Taukap.f`` by a call to ``lineksum``, a subroutine that evaluates
*the same formulae* (the same constants, written as in ``Voigt.f``) without branches:

1. For every line: ``v`` (from ``rdop = c / (wave1 * dopp)``, which the patched ``Nearly.f`` stores next to
   ``dopp`` when a line set is read, instead of a division per line, depth and wavelength), the
   Lorentz-wing series of case 4 (``a <= 0.2``, ``v >= 5``) and, at depths where some line has
   ``a > 0.2``, the asymptotic series of case 1 (``a > 1.4`` or ``a + v > 3.2``), selected by ``a``;
2. for the lines from the first to the last with ``v < 5`` (a contiguous range, since MOOG's lines are
   sorted in wavelength; the range is found, not assumed): the core formulae of cases 2 and 3, with a
   vectorised ``exp``;
3. the sum over lines in four partial sums. Lines with ``a = 0`` (case 5) make ``lineksum`` fall back to
   MOOG's own loop and ``voigt``.

Only the order of floating-point operations changes (reciprocals instead of divisions, a vectorised
``exp`` accurate to a few ulp, reassociated sums): relative changes of ~1e-15. The MOOG depths, which are
written with four decimals, were identical at every one of the 312,169 points of full 3590–9835 Å
syntheses (``python benchmarks/bench_synthesis.py --set build``; docs/performance_synthesis.rst), and a
test compares the two builds on short windows.

``Taukap.f`` is compiled without link-time optimisation and with ``-fno-trapping-math`` (so that
gfortran if-converts the case selection; it does not change any result when no trap is enabled, and
MOOG enables none).
"""
from __future__ import annotations

from pathlib import Path

#: MOOG's loop over the ordinary lines in ``Taukap.f`` (2019 release), replaced by a ``lineksum`` call.
_WEAK_LOOP = """         kapnu(i) = 0.0
         do j=lim1,lim2
            v = 2.997929d10*dabs(wave-wave1(j))/
     .             (wave1(j)*dopp(j,i))            
            kapnu(i) = kapnu(i) + kapnu0(j,i)*voigt(a(j,i),v)
         enddo                                     
"""
#: MOOG's loop over the strong lines in ``Taukap.f``.
_STRONG_LOOP = """            do j=nlines+1,nlines+nstrong
               v = 2.997929d10*dabs(wave-wave1(j))/
     .             (wave1(j)*dopp(j,i)) 
               kapnu(i) = kapnu(i) + kapnu0(j,i)*voigt(a(j,i),v)    
            enddo
"""

#: The subroutine appended to ``Taukap.f`` (fixed-form Fortran 77 with F90 ``merge``/``exit``).
LINEKSUM = """

      subroutine lineksum (j1, j2, i, sum)
c******************************************************************************
c     ddpayne patch: adds kapnu0*voigt(a,v) of lines j1..j2 at depth i to
c     sum, with the approximations of Voigt.f evaluated in loops that the
c     compiler vectorises (see ddpayne_moog/vectorvoigt.py).
c******************************************************************************

      implicit real*8 (a-h,o-z)
      include 'Linex.com'
      include 'Ddpvgt.com'
      real*8 tv(2600), tt(2600), rsqpi, rsqpi2
      logical core
      parameter (rsqpi = 1.0d0/dble(1.772454))
      parameter (rsqpi2 = rsqpi*rsqpi)

      n = j2 - j1 + 1
      if (n .le. 0) return
      if (n .gt. 2600) then
         write (*,*) 'lineksum: more than 2600 lines'
         stop
      endif
c*****cases without an exponential, for every line: the Lorentz wing
c     (case 4: a <= 0.2, v >= 5) and, where some line has a > 0.2, the
c     asymptotic series (case 1); v uses rdop = c/(wave1*dopp) from nearly
      nbig = 0
      do k=1,n
         if (a(j1+k-1,i) .gt. 0.2) nbig = nbig + 1
      enddo
      if (nbig .eq. 0) then
         do k=1,n
            j = j1 + k - 1
            v = dabs(wave-wave1(j))*rdop(j,i)
            tv(k) = v
            wr = 1.0d0/(v*v)
            tt(k) = kapnu0(j,i)*(a(j,i)*wr*(1.0 + 1.5*wr
     .              + 3.75*(wr*wr))*rsqpi2)
         enddo
      else
         do k=1,n
            j = j1 + k - 1
            v = dabs(wave-wave1(j))*rdop(j,i)
            tv(k) = v
            aa = a(j,i)
            a2 = aa*aa
            v2 = v*v
            wr = 1.0d0/v2
            f4 = aa*wr*(1.0 + 1.5*wr + 3.75*(wr*wr))*rsqpi2
            ru = 1.0d0/(1.4142136*(a2 + v2))
            ru2 = ru*ru
            f1 = 0.7978847*aa*ru*(1.0 + (3.0*v2-a2)*ru2 + (15.0*v2*v2
     .           -30.0*a2*v2+3.0*a2*a2)*(ru2*ru2))*rsqpi
            tt(k) = kapnu0(j,i)*merge(f4, f1, aa .le. 0.2)
         enddo
      endif
c*****the range of lines from the first to the last with v < 5
      klo = n + 1
      do k=1,n
         if (tv(k) .lt. 5.0) then
            klo = k
            exit
         endif
      enddo
      khi = 0
      do k=n,klo,-1
         if (tv(k) .lt. 5.0) then
            khi = k
            exit
         endif
      enddo
c*****core formulae there: case 3 (a <= 0.2) and case 2 (a <= 1.4, a+v <= 3.2)
      do k=klo,khi
         j = j1 + k - 1
         v = tv(k)
         aa = a(j,i)
         a2 = aa*aa
         v2 = v*v
         h0 = dexp(-min(v2, 30.d0))
         h1a = -1.12470432-0.15516677*v+3.28867591*v2-2.34357915*v*v2
     .         +0.42139162*v2*v2
         h1b = -4.48480194+9.39456063*v-6.61487486*v2+1.98919585*v*v2
     .         -0.2204165*v2*v2
         h1c = (0.554153432+0.278711796*v-0.188325687*v2
     .         +0.042991293*v*v2-0.003278278*v2*v2)/(v2 - 1.5)
         h1 = merge(h1a, merge(h1b, h1c, v .lt. 2.4), v .lt. 1.3)
         h2 = (1.0 - 2.0*v2)*h0
         f3 = (h0 + h1*aa + h2*a2)*rsqpi
         u = 0.979895023-0.962846325*aa+0.532770573*a2
     .       -0.122727278*aa*a2
         g1 = h1 + 1.1283790*h0
         g2 = h2 - h0 + 1.1283790*g1
         g3 = 0.37612635*(1.0-h2) - 0.6666667*v2*g1 + 1.1283790*g2
         g4 = 0.6666667*v2*v2*h0 - 0.37612635*g1 + 1.1283790*g3
         f2 = u*(h0 + g1*aa + g2*a2 + g3*aa*a2 + g4*a2*a2)*rsqpi
         f = merge(f3, f2, aa .le. 0.2)
         core = v .lt. 5.0 .and. (aa .le. 0.2 .or.
     .          (aa .le. 1.4 .and. aa+v .le. 3.2))
         tt(k) = merge(kapnu0(j,i)*f, tt(k), core)
      enddo
c*****the sum: four partial sums, or MOOG's loop if a line has a = 0 (case 5)
      nz = 0
      do k=1,n
         if (a(j1+k-1,i) .eq. 0.) nz = nz + 1
      enddo
      if (nz .eq. 0) then
         s1 = 0.
         s2 = 0.
         s3 = 0.
         s4 = 0.
         m = 4*(n/4)
         do k=1,m,4
            s1 = s1 + tt(k)
            s2 = s2 + tt(k+1)
            s3 = s3 + tt(k+2)
            s4 = s4 + tt(k+3)
         enddo
         do k=m+1,n
            s1 = s1 + tt(k)
         enddo
         sum = sum + ((s1 + s2) + (s3 + s4))
      else
         s = sum
         do k=1,n
            j = j1 + k - 1
            if (a(j,i) .ne. 0.) then
               s = s + tt(k)
            else
               s = s + kapnu0(j,i)*voigt(a(j,i),tv(k))
            endif
         enddo
         sum = s
      endif
      return
      end
"""

#: The common block holding ``rdop = c / (wave1 * dopp)`` for every line and depth (set in ``Nearly.f``).
DDPVGT_COM = """
c     ddpayne patch: c/(wave1*dopp) of each line at each depth, set in
c     nearly with dopp and used by lineksum (ddpayne_moog/vectorvoigt.py)
      real*8 rdop(2500,100)
      common/ddpvgt/rdop
"""
_NEARLY_DOPP = "               dopp(j,i) = dsqrt(1.6631d8*t(i)/amass(j)+vturb(i)**2)\n"
_NEARLY_INCLUDE = "      include 'Linex.com'\n"

#: Flags changed for ``Taukap.f`` relative to the other sources.
TAUKAP_EXTRA_FLAGS = ("-fno-trapping-math",)
TAUKAP_DROPPED_FLAGS = ("-flto",)


def patch_taukap(src: Path) -> None:
    """Replace the line-opacity loops of ``src/Taukap.f`` by ``lineksum`` calls and append ``lineksum``;
    make ``src/Nearly.f`` store ``rdop = c / (wave1 * dopp)`` (common block ``ddpvgt``) next to ``dopp``.

    Raises
    ------
    ValueError
        If ``Taukap.f`` or ``Nearly.f`` is not the 2019 release's (the code to replace is not found
        verbatim).
    """
    path = Path(src) / "Taukap.f"
    text = path.read_text()
    if text.count(_WEAK_LOOP) != 1 or text.count(_STRONG_LOOP) != 1 or "lineksum" in text:
        raise ValueError(f"{path} is not MOOG's February 2019 Taukap.f: the line-opacity loops to replace "
                         f"were not found (build the 'stock' variant instead)")
    text = text.replace(_WEAK_LOOP, "         kapnu(i) = 0.0\n         call lineksum (lim1, lim2, i, kapnu(i))\n")
    text = text.replace(_STRONG_LOOP,
                        "            call lineksum (nlines+1, nlines+nstrong, i, kapnu(i))\n")
    path.write_text(text + LINEKSUM)
    nearly = Path(src) / "Nearly.f"
    ntext = nearly.read_text()
    if ntext.count(_NEARLY_DOPP) != 1 or ntext.count(_NEARLY_INCLUDE) != 1:
        raise ValueError(f"{nearly} is not MOOG's February 2019 Nearly.f: the Doppler-width line to extend "
                         f"was not found (build the 'stock' variant instead)")
    ntext = ntext.replace(_NEARLY_INCLUDE, _NEARLY_INCLUDE + "      include 'Ddpvgt.com'\n")
    ntext = ntext.replace(_NEARLY_DOPP, _NEARLY_DOPP + "               rdop(j,i) = 2.997929d10/(wave1(j)*dopp(j,i))\n")
    nearly.write_text(ntext)
    (Path(src) / "Ddpvgt.com").write_text(DDPVGT_COM)


def taukap_flags(fflags: list[str]) -> list[str]:
    """Compiler flags for the patched ``Taukap.f`` given the flags of the other sources."""
    return [f for f in fflags if f not in TAUKAP_DROPPED_FLAGS] + list(TAUKAP_EXTRA_FLAGS)
