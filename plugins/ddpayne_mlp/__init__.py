"""Built-in ddpayne plugin ``mlp``: the DD-Payne per-pixel neural-network emulator.

Select it by name: ``ddpayne.registry.create("emulator", "mlp", label_names=..., wavelength=...,
label_min=..., label_max=...)`` or ``emulator="mlp"`` in :func:`ddpayne.model.training.train_emulator`.
"""
from ddpayne.hookspecs import hookimpl

__version__ = "0.1.0"


@hookimpl
def ddpayne_emulators():
    from .emulator import MLPEmulator

    return [MLPEmulator]
