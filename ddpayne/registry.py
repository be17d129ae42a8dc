"""Finding plugins and choosing implementations by name.

Plugins are discovered through the ``ddpayne`` entry-point group, built-in and third-party alike.
A plugin that fails to import is reported with a :class:`PluginLoadWarning` naming it; the rest of
ddpayne keeps working.

Examples
--------
>>> from ddpayne import registry
>>> sorted(registry.available("reader"))            # doctest: +SKIP
['boss', 'desi', 'lamost']
>>> reader = registry.create("reader", "desi")      # doctest: +SKIP
"""
from __future__ import annotations

import importlib.metadata as metadata
import logging
import warnings
from dataclasses import dataclass, field
from typing import Any

import pluggy

from . import hookspecs
from .exceptions import PluginNotFoundError

log = logging.getLogger(__name__)

#: Entry-point group in which ddpayne looks for plugins.
ENTRY_POINT_GROUP = "ddpayne"

#: The kinds of implementation and the hook that lists them.
KINDS: dict[str, str] = {
    "reader": "ddpayne_readers",
    "emulator": "ddpayne_emulators",
    "regularizer": "ddpayne_regularizers",
    "fitter": "ddpayne_fitters",
    "distance": "ddpayne_distance_estimators",
    "orbit": "ddpayne_orbit_integrators",
    "synthesizer": "ddpayne_synthesizers",
    "linelist": "ddpayne_line_lists",
}


class PluginLoadWarning(UserWarning):
    """A plugin could not be loaded or its hook failed; it is skipped."""


@dataclass
class PluginInfo:
    """What ddpayne knows about one loaded plugin."""

    name: str
    module: str
    distribution: str | None
    version: str | None
    provides: dict[str, list[str]] = field(default_factory=dict)


_manager: pluggy.PluginManager | None = None
_infos: dict[str, PluginInfo] = {}


def _new_manager() -> pluggy.PluginManager:
    pm = pluggy.PluginManager("ddpayne")
    pm.add_hookspecs(hookspecs)
    return pm


def get_plugin_manager(reload: bool = False) -> pluggy.PluginManager:
    """Return the process-wide plugin manager, loading entry points on first use.

    Parameters
    ----------
    reload : bool
        Discard the cached manager and discover plugins again (e.g. after installing one).
    """
    global _manager
    if _manager is None or reload:
        _infos.clear()
        _manager = _new_manager()
        for ep in metadata.entry_points(group=ENTRY_POINT_GROUP):
            if _manager.has_plugin(ep.name):
                continue
            try:
                plugin = ep.load()
            except Exception as exc:  # a broken third-party plugin must not break ddpayne
                warnings.warn(
                    f"ddpayne plugin {ep.name!r} ({ep.value}) could not be loaded and is skipped: "
                    f"{type(exc).__name__}: {exc}", PluginLoadWarning, stacklevel=2)
                continue
            dist = getattr(ep, "dist", None)
            register(plugin, name=ep.name, distribution=dist.name if dist else None,
                     version=dist.version if dist else None)
    return _manager


def register(plugin: Any, name: str | None = None, distribution: str | None = None,
             version: str | None = None) -> None:
    """Register a plugin object (a module or any object with hook implementations) by hand.

    Useful in notebooks and tests; installed plugins are registered automatically.
    """
    pm = get_plugin_manager()
    name = name or getattr(plugin, "__name__", repr(plugin))
    pm.register(plugin, name=name)
    if version is None:
        version = getattr(plugin, "__version__", None)
    _infos[name] = PluginInfo(name=name, module=getattr(plugin, "__name__", repr(plugin)),
                              distribution=distribution, version=version)


def unregister(name: str) -> None:
    """Remove a plugin registered under ``name``."""
    pm = get_plugin_manager()
    plugin = pm.get_plugin(name)
    if plugin is not None:
        pm.unregister(plugin)
    _infos.pop(name, None)


def _collect(kind: str) -> dict[str, tuple[type, str]]:
    if kind not in KINDS:
        raise ValueError(f"unknown plugin kind {kind!r}; kinds are {sorted(KINDS)}")
    pm = get_plugin_manager()
    found: dict[str, tuple[type, str]] = {}
    for impl in pm.hook.__dict__[KINDS[kind]].get_hookimpls():
        try:
            classes = impl.function() or []
        except Exception as exc:
            warnings.warn(f"ddpayne plugin {impl.plugin_name!r} failed listing its {kind}s and is "
                          f"skipped: {type(exc).__name__}: {exc}", PluginLoadWarning, stacklevel=3)
            continue
        for cls in classes:
            cname = getattr(cls, "name", None)
            if not cname:
                warnings.warn(f"ddpayne plugin {impl.plugin_name!r} offers a {kind} without a name: "
                              f"{cls!r}; skipped", PluginLoadWarning, stacklevel=3)
                continue
            if cname in found:
                log.warning("%s %r from plugin %r shadows the one from %r", kind, cname,
                            impl.plugin_name, found[cname][1])
            found[cname] = (cls, impl.plugin_name)
    return found


def available(kind: str) -> dict[str, type]:
    """Return the installed implementations of ``kind`` as ``{name: class}``."""
    return {name: cls for name, (cls, _) in _collect(kind).items()}


def get(kind: str, name: str) -> type:
    """Return the class of the ``kind`` implementation called ``name``.

    Raises
    ------
    PluginNotFoundError
        Listing the names that are available.
    """
    found = available(kind)
    if name not in found:
        raise PluginNotFoundError(
            f"no {kind} plugin named {name!r} is installed; available: {sorted(found) or 'none'}")
    return found[name]


def create(kind: str, name: str, **options: Any) -> Any:
    """Instantiate the ``kind`` implementation called ``name`` with ``options``."""
    return get(kind, name)(**options)


def plugins() -> list[PluginInfo]:
    """Describe every loaded plugin: its name, module, distribution, version and what it provides."""
    get_plugin_manager()
    infos = {name: PluginInfo(**{**info.__dict__, "provides": {}}) for name, info in _infos.items()}
    for kind in KINDS:
        for cname, (_, pname) in _collect(kind).items():
            if pname in infos:
                infos[pname].provides.setdefault(kind, []).append(cname)
    return sorted(infos.values(), key=lambda i: i.name)
