"""The project's import graph: no circles, and data flows one way (a stage imports only itself and earlier stages).

Every import counts, a late one inside a function too: it still ties the two files together.
"""
import ast
import subprocess
from pathlib import Path

import pytest

from core.paths import REPO

STAGES = ("core", "input", "folds", "models", "ensembles", "submit", "pipeline")   # each imports only those before it


def modules(root: Path, packages=STAGES) -> dict[str, Path]:
    """Dotted module name -> file, for every .py file of the packages."""
    found = {}
    for package in packages:
        for path in sorted((root / package).rglob("*.py")):
            parts = path.relative_to(root).with_suffix("").parts
            found[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return found


def import_graph(root: Path, packages=STAGES) -> dict[str, set[str]]:
    """Module -> the project modules it imports (`from a import b` is a.b when b is a module, else a)."""
    files = modules(root, packages)
    graph = {}
    for name, path in files.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        targets = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                targets |= {alias.name for alias in node.names}
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    anchor = package.split(".")[:len(package.split(".")) - node.level + 1]
                    base = ".".join(anchor + ([node.module] if node.module else []))
                targets |= {f"{base}.{alias.name}" if f"{base}.{alias.name}" in files else base for alias in node.names}
        graph[name] = {t for t in targets if t in files and t != name}
    return graph


def circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Each circle found by a depth-first walk, as the path that closes it (a -> b -> a)."""
    found, done = [], set()

    def walk(node, path):
        if node in path:
            found.append(path[path.index(node):] + [node])
            return
        if node in done:
            return
        for target in sorted(graph[node]):
            walk(target, path + [node])
        done.add(node)

    for node in sorted(graph):
        walk(node, [])
    return found


def test_a_circle_through_a_late_import_is_found(tmp_path):
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "__init__.py").write_text("")
    (tmp_path / "pkg" / "a.py").write_text("from pkg.b import helper\n")
    (tmp_path / "pkg" / "b.py").write_text("def helper():\n    from pkg import a\n    return a\n")
    assert circles(import_graph(tmp_path, ("pkg",))) == [["pkg.a", "pkg.b", "pkg.a"]]


def test_the_project_has_no_import_circle():
    assert circles(import_graph(REPO)) == []


def test_a_stage_imports_only_itself_and_earlier_stages():
    later = [f"{name} imports {target}" for name, targets in import_graph(REPO).items() for target in targets
             if STAGES.index(target.split(".")[0]) > STAGES.index(name.split(".")[0])]
    assert later == []


def test_git_ignores_no_source_file():
    """A source file the artifact patterns of .gitignore swallow would be missing from every clone."""
    listed = subprocess.run(["git", "ls-files", "--others", "--ignored", "--exclude-standard", "--", *STAGES, "tests"],
                            cwd=REPO, capture_output=True, text=True)
    if listed.returncode:
        pytest.skip(f"not a git checkout: {listed.stderr.strip()}")
    assert [f for f in listed.stdout.splitlines() if f.endswith(".py")] == []
