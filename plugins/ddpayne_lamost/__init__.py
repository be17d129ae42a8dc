"""Built-in ddpayne plugin: the LAMOST low-resolution spectrum reader.

Registered through the ``ddpayne`` entry-point group as ``lamost``; it provides the ``lamost`` reader.
"""
from ddpayne.hookspecs import hookimpl

__version__ = "0.1.0"


@hookimpl
def ddpayne_readers():
    from .reader import LAMOSTReader

    return [LAMOSTReader]
