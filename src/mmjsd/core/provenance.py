"""Code versions for rerun decisions: a hash of what a step's code *does*, not how it is written.

``code_version("mmjsd.train", "mmjsd.models.mopoe")`` hashes the abstract syntax trees of
the named modules and of every module they import, transitively, with docstrings
removed. Snakemake gets it as a param, so editing a step's code (or code it imports)
reruns that step and its downstream jobs, while comments, docstrings and formatting
changes rerun nothing, and steps that do not import the edited module are untouched.

Followed imports are those of ``mmjsd`` and of the plugin packages whose modules are
named (a plugin's sibling modules count for it). Implementations the registry imports by
name (:mod:`mmjsd.core.registry`: model classes, evaluators, networks) are not imports in the
syntax tree: the Snakefile names them, per job, from the specs the job uses, so editing
one objective's model reruns that objective's jobs only. Nothing is imported to compute
a version (no torch at Snakefile parse time): sources are found on ``sys.path`` as the
import system would find them.
"""

from __future__ import annotations

import ast
import functools
import hashlib
import sys
from importlib.machinery import PathFinder, SourceFileLoader
from pathlib import Path

PACKAGE = "mmjsd"


def module_source(module: str) -> Path | None:
    """The source file of ``module`` (a package's ``__init__.py``), found
    without importing anything; None when absent."""
    path: list[str] | None = None
    spec = None
    parts = module.split(".")
    for depth in range(1, len(parts) + 1):
        spec = PathFinder.find_spec(".".join(parts[:depth]), path if path is not None else sys.path)
        if spec is None:
            return None
        path = list(spec.submodule_search_locations or [])
        if depth < len(parts) and not path:
            return None
    if spec is None or not isinstance(spec.loader, SourceFileLoader) or spec.origin is None:
        return None
    return Path(spec.origin)


def _strip_docstrings(tree: ast.AST) -> ast.AST:
    for node in ast.walk(tree):
        body = getattr(node, "body", None)
        if (
            isinstance(body, list)
            and body
            and isinstance(body[0], ast.Expr)
            and isinstance(getattr(body[0], "value", None), ast.Constant)
            and isinstance(body[0].value.value, str)
        ):
            node.body = body[1:] or [ast.Pass()]
    return tree


def _imported_modules(tree: ast.AST, module: str, packages: frozenset[str]) -> set[str]:
    """Modules of ``packages`` imported anywhere in ``tree`` (absolute imports;
    ``from a.b import c`` may name a submodule)."""
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module] + [f"{node.module}.{alias.name}" for alias in node.names]
        else:
            continue
        found.update(n for n in names if n.split(".")[0] in packages and module_source(n) is not None)
    found.discard(module)
    return found


@functools.cache
def _module_fingerprint(module: str, packages: frozenset[str]) -> tuple[str, frozenset[str]]:
    source = module_source(module)
    if source is None:
        raise FileNotFoundError(f"no source file for module {module} on the Python path")
    tree = ast.parse(source.read_text())
    imports = _imported_modules(tree, module, packages)
    return ast.dump(_strip_docstrings(tree), include_attributes=False), frozenset(imports)


def _packages(modules: tuple[str, ...]) -> frozenset[str]:
    """``mmjsd`` and the top-level packages of the named modules."""
    return frozenset({PACKAGE} | {module.split(".")[0] for module in modules})


def import_closure(*modules: str) -> list[str]:
    """The ``modules`` and every module of theirs or ``mmjsd`` they reach by imports, sorted."""
    packages = _packages(modules)
    seen: set[str] = set()
    stack = list(modules)
    while stack:
        current = stack.pop()
        if current in seen:
            continue
        seen.add(current)
        stack.extend(_module_fingerprint(current, packages)[1] - seen)
    return sorted(seen)


def code_version(*modules: str) -> str:
    """sha256 (first 16 hex digits) over the docstring-free syntax trees of the ``modules``' import closure."""
    packages = _packages(modules)
    digest = hashlib.sha256()
    for name in import_closure(*modules):
        digest.update(name.encode() + b"\0" + _module_fingerprint(name, packages)[0].encode() + b"\0")
    return digest.hexdigest()[:16]
