"""The package's layout: steps at the top level, libraries in subpackages (docs/design.md §2).

A reader looking for what ``python -m mmjsd.<step>`` runs finds it as a top-level module (or a step package with
a ``__main__``); everything a step imports lives in a subpackage. These tests read the source tree, so a module
added in the wrong place fails here rather than in review.
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import mmjsd

PACKAGE_DIR = Path(mmjsd.__file__).parent
#: Subpackages that are steps (``python -m mmjsd.<package>`` runs their ``__main__``); every other is a library.
STEP_PACKAGES = {"tables", "bench"}
#: Directories of the package that hold data, not code.
DATA_DIRS = {"resources"}


def step_modules() -> list[str]:
    return sorted(path.stem for path in PACKAGE_DIR.glob("*.py") if path.stem != "__init__")


def subdirectories() -> list[str]:
    return sorted(path.name for path in PACKAGE_DIR.iterdir() if path.is_dir() and path.name != "__pycache__")


def runs_main_when_executed(tree: ast.Module) -> bool:
    """A top-level ``if __name__ == "__main__":`` whose body calls ``main`` (directly or through ``main_guard``)."""
    for node in tree.body:
        if not (isinstance(node, ast.If) and isinstance(node.test, ast.Compare)):
            continue
        sides = [node.test.left, *node.test.comparators]
        if not (
            {"__name__"} == {s.id for s in sides if isinstance(s, ast.Name)}
            and {"__main__"} == {s.value for s in sides if isinstance(s, ast.Constant)}
        ):
            continue
        return any(
            isinstance(n, ast.Name) and n.id == "main" for n in ast.walk(ast.Module(body=node.body, type_ignores=[]))
        )
    return False


def test_every_top_level_module_is_a_step():
    modules = step_modules()
    assert {"acquire", "train", "evaluate", "summary", "gpu_slots"} <= set(modules), modules
    for name in modules:
        tree = ast.parse((PACKAGE_DIR / f"{name}.py").read_text())
        functions = {node.name for node in tree.body if isinstance(node, ast.FunctionDef)}
        assert "main" in functions, f"mmjsd/{name}.py is not a step (no main); move it into a library subpackage"
        assert runs_main_when_executed(tree), f"mmjsd/{name}.py does not run main under if __name__ == '__main__'"


def test_every_subpackage_is_a_library_or_a_step_package():
    found = subdirectories()
    assert {"core", "reporting", "models", "tables", "bench"} <= set(found), found
    for name in found:
        directory = PACKAGE_DIR / name
        if name in DATA_DIRS:
            assert not list(directory.rglob("*.py")), f"mmjsd/{name}/ holds data only"
            continue
        assert (directory / "__init__.py").is_file(), f"mmjsd/{name}/ is neither a package nor a data directory"
        has_main = (directory / "__main__.py").is_file()
        assert has_main == (name in STEP_PACKAGES), (
            f"mmjsd/{name}/: a step package has a __main__ and is listed in STEP_PACKAGES; a library has neither"
        )
        nested_mains = [
            str(p.relative_to(PACKAGE_DIR)) for p in directory.rglob("__main__.py") if p.parent != directory
        ]
        assert not nested_mains, f"steps are top-level modules or packages, not {nested_mains}"


# Runs every step's --help the way `python -m` does (runpy, as __main__) in one child interpreter, so torch is
# imported once; each help text goes to its own JSON entry with the exit status.
HELP_DRIVER = """
import contextlib, io, json, runpy, sys
results = {}
for step in sys.argv[1:]:
    out = io.StringIO()
    sys.argv = [step, "--help"]
    with contextlib.redirect_stdout(out):
        try:
            runpy.run_module(step, run_name="__main__", alter_sys=True)
            code = None
        except SystemExit as stop:
            code = stop.code
    results[step] = {"code": code, "help": out.getvalue()}
print(json.dumps(results))
"""


def test_every_step_explains_itself_with_help():
    steps = [f"mmjsd.{name}" for name in [*step_modules(), *sorted(STEP_PACKAGES)]]
    done = subprocess.run([sys.executable, "-c", HELP_DRIVER, *steps], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    results = json.loads(done.stdout.splitlines()[-1])
    assert sorted(results) == sorted(steps)
    for step, result in results.items():
        assert result["code"] in (0, None), f"{step} --help exited with {result['code']}"
        assert result["help"].startswith("usage:") and "-h, --help" in result["help"], (
            f"{step}: {result['help'][:300]!r}"
        )


TESTS_DIR = Path(__file__).parent


def imported_modules(path: Path) -> set[str]:
    """Top-level names of the modules ``path`` imports (absolute imports)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module.split(".")[0])
    return found


def test_test_modules_share_builders_through_helpers_only():
    """Shared builders live in helpers.py (fixtures in conftest.py): no test module, nor helpers, imports a test
    module or conftest, whose collection side effects and fixtures pytest owns."""
    modules = sorted(TESTS_DIR.glob("*.py"))
    assert TESTS_DIR / "helpers.py" in modules
    for path in modules:
        wrong = {name for name in imported_modules(path) if name.startswith("test_") or name == "conftest"}
        assert not wrong, f"tests/{path.name} imports {sorted(wrong)}; move what it shares into tests/helpers.py"
