"""Built-in ddpayne plugin: galpy (being written)."""
from ddpayne.hookspecs import hookimpl  # noqa: F401

__version__ = "0.1.0"
