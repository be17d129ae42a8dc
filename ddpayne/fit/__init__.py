"""Fitting labels to prepared spectra.

* :mod:`ddpayne.fit.fitter` — the :class:`~ddpayne.fit.fitter.Fitter` interface; implementations are
  plugins (``lm``: batched multi-start Levenberg–Marquardt; ``scipy``: per-spectrum reference), created
  with ``ddpayne.registry.create("fitter", name, **options)``.
* :mod:`ddpayne.fit.results` — the result table every fitter returns (columns documented there).
* :mod:`ddpayne.fit.quality` — ``QFLAG_CHI2`` (paper Eq. 4), bound, coverage and [Fe/H]-floor flags.
* :mod:`ddpayne.fit.cramer_rao` — Cramér–Rao bounds and precision reports (paper Fig. 9).
* :mod:`ddpayne.fit.testing` — an analytic emulator and mock spectra for tests and benchmarks.
"""
