"""Built-in ddpayne plugin ``kurucz``: regularizers for training the DD-Payne emulator.

- ``kurucz``: the physical-gradient regularizer (paper Eq. 3, second term), reading a gradient-spectra
  file (:class:`ddpayne.physics.gradients.GradientSpectra`).
- ``none``: no regularization (a purely data-driven model, for comparisons).
"""
from ddpayne.hookspecs import hookimpl

__version__ = "0.1.0"


@hookimpl
def ddpayne_regularizers():
    from .regularizer import KuruczRegularizer, NoRegularizer

    return [KuruczRegularizer, NoRegularizer]
