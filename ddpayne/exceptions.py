"""Exceptions raised by ddpayne; each names the input it is about."""
from __future__ import annotations


class DDPayneError(Exception):
    """Base class of all ddpayne errors."""


class SpectrumFileError(DDPayneError):
    """A spectrum or catalogue file cannot be read as the format it claims to be.

    Parameters
    ----------
    path : str
        The offending file.
    reason : str
        What is wrong with it.
    """

    def __init__(self, path, reason: str):
        self.path = str(path)
        self.reason = reason
        super().__init__(f"{self.path}: {reason}")


class UnknownFormatError(SpectrumFileError):
    """No installed reader identifies the file."""


class PluginNotFoundError(DDPayneError, KeyError):
    """A plugin was requested by a name that no installed plugin provides."""

    def __str__(self) -> str:  # KeyError quotes its message; keep it readable
        return str(self.args[0])


class IncompatibleModelError(DDPayneError):
    """A saved model, gradient file or spectrum batch does not match what it is used with."""
