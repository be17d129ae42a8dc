"""Built-in ddpayne plugin: label fitters.

* ``lm`` — :class:`.lm.BatchedLMFitter`: batched, multi-start, bounded Levenberg–Marquardt in torch
  (CPU or CUDA), the production fitter.
* ``scipy`` — :class:`.scipy_fitter.ScipyFitter`: per-spectrum ``scipy.optimize.least_squares``, the
  reference implementation and speed baseline.
"""
from ddpayne.hookspecs import hookimpl

__version__ = "0.1.0"


@hookimpl
def ddpayne_fitters():
    from .lm import BatchedLMFitter
    from .scipy_fitter import ScipyFitter

    return [BatchedLMFitter, ScipyFitter]
