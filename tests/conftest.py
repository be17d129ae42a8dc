"""Shared fixtures: paths of the bundled test data."""
from __future__ import annotations

from pathlib import Path

import matplotlib
import pytest

matplotlib.use("Agg")

DATA = Path(__file__).parent / "data"


@pytest.fixture(scope="session")
def data_dir() -> Path:
    return DATA


@pytest.fixture(scope="session")
def desi_files() -> list[Path]:
    return sorted((DATA / "desi").glob("*.fits"))


@pytest.fixture(scope="session")
def lamost_files() -> list[Path]:
    return sorted((DATA / "lamost").glob("spec-*"))


@pytest.fixture(scope="session")
def sun_dir() -> Path:
    return Path(__file__).parent.parent / "ddpayne" / "data" / "sun"
