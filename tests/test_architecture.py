"""The codebase's layers, checked: imports run one way, functions fit on a screen.

Library modules (`keras_vae/`) are at the bottom; `export/` builds on them; the commands
(`python -m keras_vae.train`, `.evaluate`, `.plot`, `.bench`, `python -m export`,
`python -m export.bench`) sit on top; `serving/` stands alone (it is copied onto devices
and servers' clients without this project).
"""

from __future__ import annotations

import ast
import os

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PACKAGES = ("keras_vae", "export", "serving")
COMMANDS = {"keras_vae.train", "keras_vae.evaluate", "keras_vae.plot", "keras_vae.bench",
            "export.__main__", "export.bench"}
LONGEST_FUNCTION = 60
LONGEST_FILE = 400


def _modules() -> dict[str, ast.Module]:
    found = {}
    for package in PACKAGES:
        for folder, _, files in os.walk(os.path.join(ROOT, package)):
            for name in files:
                if name.endswith(".py"):
                    path = os.path.join(folder, name)
                    module = os.path.relpath(path, ROOT)[:-3].replace(os.sep, ".")
                    with open(path) as f:
                        found[module.removesuffix(".__init__")] = ast.parse(f.read())
    return found


MODULES = _modules()


def _imports(tree: ast.Module) -> set[str]:
    """Every module an `import` or `from … import` names, at any depth of the file."""
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
            names |= {f"{node.module}.{alias.name}" for alias in node.names}
    return names


def _importers(of: tuple[str, ...], among: str) -> list[str]:
    return sorted(f"{module} imports {name}" for module, tree in MODULES.items()
                  if module.split(".")[0] == among
                  for name in _imports(tree) if name.split(".")[0] in of)


def test_the_library_imports_neither_export_nor_serving():
    assert _importers(("export", "serving"), "keras_vae") == []


def test_export_does_not_import_serving():
    assert _importers(("serving",), "export") == []


def test_serving_imports_nothing_of_the_project():
    assert _importers(("keras_vae", "export"), "serving") == []


def test_only_commands_import_commands():
    found = sorted(f"{module} imports {name}" for module, tree in MODULES.items()
                   if module not in COMMANDS for name in _imports(tree) if name in COMMANDS)
    assert found == []


@pytest.mark.parametrize("module", sorted(MODULES))
def test_no_function_is_longer_than_a_screen(module):
    long = [f"{node.name}: {node.end_lineno - node.lineno + 1} lines"
            for node in ast.walk(MODULES[module])
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))
            and node.end_lineno - node.lineno + 1 > LONGEST_FUNCTION]
    assert long == []


def test_no_file_is_longer_than_400_lines():
    long = []
    for package in PACKAGES:
        for folder, _, files in os.walk(os.path.join(ROOT, package)):
            for name in files:
                if name.endswith(".py"):
                    with open(os.path.join(folder, name)) as f:
                        lines = sum(1 for _ in f)
                    if lines > LONGEST_FILE:
                        long.append(f"{os.path.relpath(os.path.join(folder, name), ROOT)}: {lines}")
    assert long == []
