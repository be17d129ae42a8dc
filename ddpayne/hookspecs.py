"""The extension points of ddpayne: the one file a plugin author reads.

ddpayne is assembled from plugins, as pytest is. A plugin is an importable module (or object) that
implements some of the hooks below with :data:`hookimpl` and is announced through the ``ddpayne``
entry-point group::

    # setup.cfg of a plugin package
    [options.entry_points]
    ddpayne =
        boss = ddpayne_boss

Each hook returns a list of classes of one kind; every class carries a unique ``name`` (class attribute)
by which users select it (``ddpayne.registry.create("reader", "boss")`` or ``reader = "boss"`` in a
TOML config). The classes derive from the abstract interfaces named in each hook; those interfaces are
the contract. All hooks are collected (no ``firstresult``): every plugin contributes.

One hook is not a kind of implementation: :func:`ddpayne_cli_commands` lets a plugin add commands to
``ddpayne synth`` and ``ddpayne build`` (e.g. the ``moog`` plugin's extinction-table builder).

Built-in implementations (DESI and LAMOST readers, the MLP emulator, the Kurucz gradient regularizer,
the batched and scipy fitters, distances, galpy orbits, the MOOG synthesizer) are plugins in the same
way; the core never imports them.
"""
from __future__ import annotations

import pluggy

#: Marker for hook specifications (used only by ddpayne itself).
hookspec = pluggy.HookspecMarker("ddpayne")
#: Marker for hook implementations: decorate your plugin's functions with it.
hookimpl = pluggy.HookimplMarker("ddpayne")


@hookspec
def ddpayne_readers():
    """Spectrum readers provided by the plugin.

    Returns
    -------
    list of type
        Subclasses of :class:`ddpayne.io.readers.SpectrumReader`. A reader identifies its files by
        content (``identify``) and turns them into :class:`ddpayne.io.readers.SurveySpectra`, whose
        arms are specutils ``Spectrum`` objects.
    """


@hookspec
def ddpayne_emulators():
    """Spectral emulators: subclasses of :class:`ddpayne.model.emulator.Emulator`.

    An emulator maps labels to normalised flux on a wavelength grid and gives its exact Jacobian.
    """


@hookspec
def ddpayne_regularizers():
    """Training regularizers: subclasses of :class:`ddpayne.model.regularizer.Regularizer`.

    A regularizer adds a term to the training loss (in DD-Payne: the mismatch between the emulator's
    gradient spectra and physical ones, paper Eq. 3). The pipeline builds it with
    :meth:`~ddpayne.model.regularizer.Regularizer.from_options`, passing the configuration's
    ``[training.regularizer_options]`` table unchanged (the plugin validates it) and a
    :class:`~ddpayne.model.regularizer.RegularizerContext` (the configuration's folder and the run's gradient
    spectra on the training grid).
    """


@hookspec
def ddpayne_fitters():
    """Label fitters: subclasses of :class:`ddpayne.fit.fitter.Fitter`."""


@hookspec
def ddpayne_distance_estimators():
    """Distance estimators: subclasses of :class:`ddpayne.galaxy.distances.DistanceEstimator`."""


@hookspec
def ddpayne_orbit_integrators():
    """Orbit integrators: subclasses of :class:`ddpayne.galaxy.orbits.OrbitIntegrator`."""


@hookspec
def ddpayne_synthesizers():
    """Physical spectrum synthesizers: subclasses of :class:`ddpayne.physics.synthesizer.Synthesizer`."""


@hookspec
def ddpayne_line_lists():
    """Atomic and molecular line lists: subclasses of :class:`ddpayne.physics.lines.LineList`.

    Used to name the spectral features a label's information comes from (the ``inspect`` report and
    :mod:`ddpayne.fit.information`); the ``moog`` plugin offers ``linemake``.
    """


@hookspec
def ddpayne_cli_commands(groups):
    """Commands the plugin adds to the ``ddpayne`` command line.

    Parameters
    ----------
    groups : dict of str to argparse subparsers
        The command groups, ``"synth"`` (physical synthesis, resumable) and ``"build"`` (assembling data
        products), each the object returned by ``add_subparsers``. Add a command with
        ``groups["build"].add_parser(name, help=...)`` and give it ``set_defaults(func=f)``: ``f(args)``
        runs it and returns the exit status; a :class:`ddpayne.exceptions.DDPayneError` it raises is
        reported in one line (exit status 2).

    Notes
    -----
    Called on every start of the ``ddpayne`` command, for every plugin (no ``firstresult``): import
    heavy modules inside ``f``, not here. A name already taken makes the plugin's commands be skipped
    with a warning.

    Examples
    --------
    >>> @hookimpl                                              # doctest: +SKIP
    ... def ddpayne_cli_commands(groups):
    ...     p = groups["build"].add_parser("boss-table", help="...")
    ...     p.add_argument("--out", required=True)
    ...     p.set_defaults(func=lambda args: my_builder(args.out) or 0)
    """
