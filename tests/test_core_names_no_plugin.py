"""The core (``ddpayne/``) names no plugin package: it calls hooks, plugins implement them (issue 22).

Every module under ``ddpayne/`` is parsed: no import of a plugin package (``plugins/*``), and no string in
the code (docstrings and comments aside, which may point a reader to a plugin) that names one, such as
``importlib.import_module("ddpayne_moog.sed")``. Hook names that happen to equal a plugin's package name
(the hook ``ddpayne_fitters`` and the package ``ddpayne_fitters``) are not plugin names.
"""
from __future__ import annotations

import ast
import re
from pathlib import Path

import ddpayne
from ddpayne import hookspecs

ROOT = Path(ddpayne.__file__).resolve().parent
PLUGINS = sorted(p.parent.name for p in (ROOT.parent / "plugins").glob("*/__init__.py"))
HOOKS = {name for name in dir(hookspecs) if name.startswith("ddpayne_")}


def _docstrings(tree: ast.AST) -> set[int]:
    ids = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
            body = node.body
            if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
                ids.add(id(body[0].value))
    return ids


def plugin_names_in(path: Path, root: Path = ROOT.parent) -> list[str]:
    """``path:line: what`` (path relative to ``root``) for every import or code string naming a plugin package."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    pattern = re.compile(r"\b(" + "|".join(map(re.escape, PLUGINS)) + r")\b")
    docs = _docstrings(tree)
    hits = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0:
            names = [node.module or ""]
        elif isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docs:
            names = [m.group(0) for m in pattern.finditer(node.value) if node.value.strip() not in HOOKS]
        else:
            continue
        hits += [f"{path.relative_to(root)}:{node.lineno}: {n}" for n in names
                 if n.split(".")[0] in PLUGINS]
    return hits


def test_the_plugins_are_found():
    assert {"ddpayne_desi", "ddpayne_moog", "ddpayne_kurucz"} <= set(PLUGINS)


def test_core_names_no_plugin_package():
    hits = [h for path in sorted(ROOT.rglob("*.py")) for h in plugin_names_in(path)]
    assert not hits, "the core names plugin packages:\n" + "\n".join(hits)


def test_the_check_finds_a_named_plugin(tmp_path):
    src = tmp_path / "probe.py"
    src.write_text('"""ddpayne_moog in a docstring is fine."""\nimport ddpayne_desi\n'
                   'x = __import__("ddpayne_moog.sed")\ny = "ddpayne_fitters"  # a hook name\n')
    assert [h.split(": ")[1] for h in plugin_names_in(src, tmp_path)] == ["ddpayne_desi", "ddpayne_moog"]
