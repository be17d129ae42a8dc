"""Built-in ddpayne plugin: orbits and actions with galpy (``OrbitIntegrator`` named ``"galpy"``)."""
from ddpayne.hookspecs import hookimpl

__version__ = "0.1.0"


@hookimpl
def ddpayne_orbit_integrators():
    from .orbits import GalpyOrbits
    return [GalpyOrbits]
