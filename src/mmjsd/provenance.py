"""Code versions for rerun decisions: a hash of what a step's code *does*, not how it is written.

``code_version("mmjsd.train")`` hashes the abstract syntax trees of the module and of
every ``mmjsd`` module it imports, transitively, with docstrings removed. Snakemake gets
it as a param, so editing a step's code (or code it imports) reruns that step and its
downstream jobs, while comments, docstrings and formatting changes rerun nothing, and
steps that do not import the edited module are untouched. Nothing is imported to compute
it (no torch at Snakefile parse time).
"""

from __future__ import annotations

import ast
import functools
import hashlib
from pathlib import Path

PACKAGE_ROOT = Path(__file__).resolve().parent
PACKAGE = "mmjsd"


def module_path(module: str) -> Path:
    """Source file of an ``mmjsd`` module or package."""
    rel = Path(*module.split(".")[1:])
    package_init = PACKAGE_ROOT / rel / "__init__.py"
    return package_init if package_init.is_file() else (PACKAGE_ROOT / rel).with_suffix(".py")


def _strip_docstrings(tree: ast.AST) -> ast.AST:
    for node in ast.walk(tree):
        body = getattr(node, "body", None)
        if isinstance(body, list) and body and isinstance(body[0], ast.Expr) and isinstance(getattr(body[0], "value", None), ast.Constant) and isinstance(body[0].value.value, str):
            node.body = body[1:] or [ast.Pass()]
    return tree


def _imported_modules(tree: ast.AST, module: str) -> set[str]:
    """``mmjsd`` modules imported anywhere in ``tree`` (absolute imports, ``from mmjsd.x import y`` may name a submodule)."""
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module] + [f"{node.module}.{alias.name}" for alias in node.names]
        else:
            continue
        found.update(n for n in names if n.split(".")[0] == PACKAGE and module_path(n).is_file())
    found.discard(module)
    return found


@functools.lru_cache(maxsize=None)
def _module_fingerprint(module: str) -> tuple[str, frozenset[str]]:
    tree = ast.parse(module_path(module).read_text())
    imports = _imported_modules(tree, module)
    return ast.dump(_strip_docstrings(tree), include_attributes=False), frozenset(imports)


def import_closure(module: str) -> list[str]:
    """``module`` and every ``mmjsd`` module it reaches by imports, sorted."""
    seen: set[str] = set()
    stack = [module]
    while stack:
        current = stack.pop()
        if current in seen:
            continue
        seen.add(current)
        stack.extend(_module_fingerprint(current)[1] - seen)
    return sorted(seen)


def code_version(module: str) -> str:
    """sha256 (first 16 hex digits) over the docstring-free syntax trees of ``module``'s import closure."""
    digest = hashlib.sha256()
    for name in import_closure(module):
        digest.update(name.encode() + b"\0" + _module_fingerprint(name)[0].encode() + b"\0")
    return digest.hexdigest()[:16]
