"""The house's rules, read from the source: parts depend one way, the torch-free parts stay so, modules stay small."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SKIP = {"tests", "bench", "runs", "build", ".venv", "docs", "weights_cache"}
TORCH_FREE = {"data", "runtime", "apps", "files", "weights", "errors", "images", "commands", "quality"}
MAX_LINES = 500


def _modules() -> dict[str, Path]:
    """blur2blur's modules (bench scripts and tests aside): dotted name -> file."""
    found = {}
    for path in ROOT.rglob("*.py"):
        parts = path.relative_to(ROOT).parts
        if parts[0] in SKIP or any(part.startswith(".") for part in parts):
            continue
        dotted = ".".join(("blur2blur", *parts))[: -len(".py")].removesuffix(".__init__")
        found[dotted] = path
    return found


def _imports(name: str, path: Path) -> set[str]:
    """Every module `name` imports, at any depth of its code (lazy imports count too)."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            found.add(target)
            found.update(f"{target}.{alias.name}" for alias in node.names)
    return found


def _part(dotted: str) -> str | None:
    """The top-level part of blur2blur a module belongs to (a folder, or a module at the root)."""
    parts = dotted.split(".")
    return parts[1] if parts[0] == "blur2blur" and len(parts) > 1 else None


MODULES = _modules()
IMPORTS = {name: _imports(name, path) for name, path in MODULES.items()}


def test_the_source_is_found():
    assert {"blur2blur.data.sources", "blur2blur.runtime.pipeline", "blur2blur.train.core"} <= set(MODULES)


def test_top_level_parts_depend_one_way():
    edges: dict[str, set[str]] = {}
    for name, imported in IMPORTS.items():
        mine = _part(name)
        for target in imported:
            theirs = _part(target)
            if mine and theirs and theirs != mine and target in MODULES:
                edges.setdefault(mine, set()).add(theirs)
    done: set[str] = set()

    def visit(part: str, path: list[str]) -> None:
        if part in path:
            pytest.fail("import cycle: " + " -> ".join(path[path.index(part):] + [part]))
        if part in done:
            return
        for nxt in sorted(edges.get(part, ())):
            visit(nxt, path + [part])
        done.add(part)

    for part in sorted(edges):
        visit(part, [])


@pytest.mark.parametrize("part", ["evaluate", "runtime", "apps", "data", "export", "models"])
def test_only_training_imports_train(part):
    offenders = sorted(name for name, imported in IMPORTS.items() if _part(name) == part
                       and any(_part(target) == "train" for target in imported))
    assert not offenders


def test_no_benchmark_imports_train():
    """The benchmarks that train run `b2b-train` as a user does (bench/b2b.py): they measure the commands."""
    offenders = sorted(path.name for path in (ROOT / "bench").glob("*.py")
                       if any(_part(target) == "train" for target in _imports(f"bench.{path.stem}", path)))
    assert not offenders


def test_torch_free_parts_import_no_torch():
    offenders = sorted(name for name, imported in IMPORTS.items() if _part(name) in TORCH_FREE
                       and any(target == "torch" or target.startswith("torch.") for target in imported))
    assert not offenders


def test_models_import_only_torch_errors_and_weights():
    allowed = {"models", "errors", "weights", "files"}
    offenders = sorted(f"{name} -> {target}" for name, imported in IMPORTS.items() if _part(name) == "models"
                       for target in imported if target in MODULES and _part(target) not in allowed)
    assert not offenders


def test_no_module_imports_a_command_line_module():
    offenders = sorted(f"{name} -> {target}" for name, imported in IMPORTS.items() for target in imported
                       if target.endswith(".cli") and target in MODULES)
    assert not offenders


def test_only_command_line_modules_import_the_command_helpers():
    offenders = sorted(name for name, imported in IMPORTS.items() if "blur2blur.commands" in imported
                       and not name.endswith(".cli"))
    assert not offenders


def test_no_module_is_over_500_lines():
    long = sorted(f"{name} ({n} lines)" for name, path in MODULES.items()
                  if (n := len(path.read_text().splitlines())) > MAX_LINES)
    assert not long
