"""Built-in ddpayne plugin: the DESI coadd/spectra reader and the MWS catalogue.

Registered through the ``ddpayne`` entry-point group as ``desi``; it provides the ``desi`` reader.
"""
from ddpayne.hookspecs import hookimpl

__version__ = "0.1.0"


@hookimpl
def ddpayne_readers():
    from .reader import DESIReader

    return [DESIReader]
