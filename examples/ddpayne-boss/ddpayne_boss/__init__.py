"""ddpayne-boss: an example third-party plugin that teaches ddpayne to read SDSS/BOSS spectra."""
from ddpayne.hookspecs import hookimpl

__version__ = "0.1.0"


@hookimpl
def ddpayne_readers():
    """Offer the BOSS reader to ddpayne."""
    from .reader import BOSSReader

    return [BOSSReader]


def example_file() -> str:
    """Path of the bundled BOSS spectrum."""
    from importlib import resources

    return str(resources.files(__name__).joinpath("data", "spec-3586-55181-0500.fits"))
