"""Sphinx configuration of the ddpayne documentation."""
from __future__ import annotations

import importlib.metadata

project = "ddpayne"
author = "ddpayne developers"
copyright = "2026, ddpayne developers"
release = importlib.metadata.version("ddpayne")
version = release

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.napoleon",
    "sphinx.ext.mathjax",
    "sphinx.ext.intersphinx",
    "sphinx.ext.viewcode",
]
autosummary_generate = True
autodoc_default_options = {"members": True, "undoc-members": False, "show-inheritance": True}
autodoc_typehints = "description"
autodoc_mock_imports: list[str] = []
napoleon_google_docstring = False
napoleon_numpy_docstring = True
napoleon_use_rtype = False
napoleon_use_ivar = True
nitpicky = False
suppress_warnings = ["autosummary.import_cycle"]

intersphinx_mapping = {}  # offline builds: no inventories fetched

templates_path: list[str] = []
exclude_patterns = ["_build", "api/generated"]
html_theme = "alabaster"
html_static_path: list[str] = []
