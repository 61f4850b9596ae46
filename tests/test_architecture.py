"""How the house is wired: no private names cross modules, and light modules stay light."""

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("vizkit", "models")
SOURCES = sorted(
    p
    for folder in (*PACKAGES, "benchmarks", "examples", "tests")
    for p in (ROOT / folder).rglob("*.py")
)


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _absolute(path: Path, node: ast.ImportFrom) -> str:
    if not node.level:
        return node.module or ""
    package = _module_name(path).split(".")
    if path.name != "__init__.py":
        package = package[:-1]
    base = package[: len(package) - node.level + 1]
    return ".".join(base + ([node.module] if node.module else []))


def _private_imports(path: Path, source: str | None = None) -> list[str]:
    """Imports in ``path`` (or ``source`` read as if it were at ``path``) of private names."""
    found = []
    text = path.read_text(encoding="utf-8") if source is None else source
    for node in ast.walk(ast.parse(text)):
        if isinstance(node, ast.ImportFrom):
            module = _absolute(path, node)
            if module.split(".")[0] not in (*PACKAGES, "benchmarks", "tests"):
                continue
            if any(
                part.startswith("_") and not part.startswith("__") for part in module.split(".")
            ):
                found.append(f"from {module} import ...")
            found += [
                f"from {module} import {a.name}"
                for a in node.names
                if a.name.startswith("_") and not a.name.startswith("__")
            ]
        elif isinstance(node, ast.Import):
            found += [
                f"import {a.name}"
                for a in node.names
                if a.name.split(".")[0] in PACKAGES
                and any(p.startswith("_") and not p.startswith("__") for p in a.name.split("."))
            ]
    return found


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: str(p.relative_to(ROOT)))
def test_no_module_imports_another_modules_private_names(path):
    assert _private_imports(path) == []


def test_the_check_finds_private_imports():
    source = (
        "from .graph import _set, forward\n"
        "from ..report import export\n"
        "from vizkit.report._old import thing\n"
        "import vizkit._x\n"
        "from numpy import _private_numpy_is_not_ours\n"
    )
    found = _private_imports(ROOT / "vizkit" / "core" / "example.py", source)
    assert found == [
        "from vizkit.core.graph import _set",
        "from vizkit.report._old import ...",
        "import vizkit._x",
    ]


LIGHT = """
import sys
import vizkit, vizkit.registry, vizkit.cli, vizkit.core.checks, vizkit.core.files
import vizkit.core.jsonutil, vizkit.engines, vizkit.engines.reductions
vizkit.cli.build_parser()
heavy = sorted(m for m in ("tensorflow", "keras", "matplotlib", "ray") if m in sys.modules)
print(heavy)
"""


def test_registry_cli_and_helpers_import_no_heavy_library():
    done = subprocess.run([sys.executable, "-c", LIGHT], capture_output=True, text=True, cwd=ROOT)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


def test_every_zoo_module_registers_itself():
    import models
    from models.registry import get_builder

    zoo = ROOT / "models" / "zoo"
    helpers = {"__init__", "blocks", "inception_blocks"}
    families = {p.stem for p in zoo.glob("*.py")} - helpers
    registered_in = {get_builder(n).__module__.rsplit(".", 1)[-1] for n in models.list_models()}
    assert families == registered_in
