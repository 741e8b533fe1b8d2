"""Only reconstruction/backend.py may import cupy (DESIGN.md; STYLE.md import-guard test, after prysm)."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
ALLOWED = {"reconstruction/backend.py"}
SKIP_DIRS = {".git", ".venv", "venv", "build", "dist", "__pycache__", ".ruff_cache", ".pytest_cache", "results"}


def _imports_cupy(tree: ast.AST) -> list[int]:
    lines = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            if any(a.name.split(".")[0] in ("cupy", "cupyx") for a in node.names):
                lines.append(node.lineno)
        elif isinstance(node, ast.ImportFrom):
            if node.level == 0 and node.module and node.module.split(".")[0] in ("cupy", "cupyx"):
                lines.append(node.lineno)
        elif isinstance(node, ast.Call):
            # importlib.import_module("cupy") / __import__("cupy")
            f = node.func
            name = f.attr if isinstance(f, ast.Attribute) else getattr(f, "id", "")
            if name in ("import_module", "__import__") and node.args:
                a = node.args[0]
                if isinstance(a, ast.Constant) and isinstance(a.value, str) and a.value.split(".")[0] in ("cupy", "cupyx"):
                    lines.append(node.lineno)
    return lines


def _python_files():
    for p in ROOT.rglob("*.py"):
        rel = p.relative_to(ROOT)
        if any(part in SKIP_DIRS or part.startswith(".") for part in rel.parts[:-1]):
            continue
        yield rel.as_posix(), p


def test_only_backend_imports_cupy():
    offenders = []
    for rel, p in _python_files():
        if rel in ALLOWED:
            continue
        try:
            tree = ast.parse(p.read_text(encoding="utf-8"), filename=rel)
        except SyntaxError:
            continue  # another test reports broken files
        offenders += [f"{rel}:{line}" for line in _imports_cupy(tree)]
    assert not offenders, "cupy imported outside reconstruction/backend.py: " + ", ".join(offenders)


def test_backend_is_found_and_imports_cupy_lazily():
    tree = ast.parse((ROOT / "reconstruction/backend.py").read_text(encoding="utf-8"))
    assert _imports_cupy(tree), "the guard should see backend.py's cupy import"
    top = [n for n in tree.body if isinstance(n, (ast.Import, ast.ImportFrom))]
    assert not _imports_cupy(ast.Module(body=top, type_ignores=[])), "backend.py must import cupy inside functions"


def test_guard_detects_forbidden_forms():
    src = "import cupy as cp\nfrom cupyx.scipy import fft\nimport importlib\nimportlib.import_module('cupy')\n"
    assert _imports_cupy(ast.parse(src)) == [1, 2, 4]
