"""Built-in ddpayne plugin ``pysme``: LTE synthesis with hydrogen line profiles by Spectroscopy Made Easy.

Provides the Synthesizer ``pysme`` (:class:`ddpayne_pysme.synth.SmeSynthesizer`): PyPI ``pysme-astro``
(Piskunov & Valenti 2017; Wehrhahn et al. 2023) on the same ATLAS9 atmospheres and linemake lines as the
``moog`` plugin, with Stark (Vidal–Cooper–Smith / Stehlé–Hutcheon), self (Barklem–Piskunov–O'Mara),
radiative and Doppler broadened Balmer and Paschen lines. ddpayne uses it for the hydrogen correction
of the MOOG spectra (:mod:`ddpayne.physics.hydrogen`).

``pysme-astro`` 1.2.0 declares ``astropy<8`` and ``pandas<3`` although it runs unchanged with newer
ones: install it without its pins (``pip install --no-deps pysme-astro==1.2.0`` after
``pip install 'ddpayne[hydrogen]'``, see ``docs/install.rst``) so that pip does not downgrade astropy.
"""
from ddpayne.hookspecs import hookimpl

__version__ = "0.1.0"


@hookimpl
def ddpayne_synthesizers():
    from .synth import SmeSynthesizer
    return [SmeSynthesizer]
