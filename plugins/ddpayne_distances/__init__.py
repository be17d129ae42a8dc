"""Built-in ddpayne plugin: spectro-photometric + parallax distances (``DistanceEstimator`` named
``"spectrophotometric"``)."""
from ddpayne.hookspecs import hookimpl

__version__ = "0.1.0"


@hookimpl
def ddpayne_distance_estimators():
    from .spectrophotometric import SpectroPhotometricDistance
    return [SpectroPhotometricDistance]
