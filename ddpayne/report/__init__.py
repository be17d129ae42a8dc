"""Inspection reports: one page per star showing why its labels are what they are.

* :mod:`ddpayne.report.sources` — from a catalogue row to its prepared spectrum and model;
* :mod:`ddpayne.report.figures` — the plots (Bokeh, or static matplotlib images);
* :mod:`ddpayne.report.pages` — the HTML;
* :mod:`ddpayne.report.build` — :func:`make_report`, behind ``ddpayne inspect``.
"""
from .build import make_report
from .sources import ReportInputError

__all__ = ["ReportInputError", "make_report"]
