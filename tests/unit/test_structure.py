"""The package keeps its own rules: honest `__all__` lists, short functions, seams used.

Read from the source with `ast`, so a rule broken anywhere in `src/` fails here,
not in a review.
"""

from __future__ import annotations

import ast
import importlib
import importlib.util
import pkgutil
from pathlib import Path

import pytest

import codelinkava

SRC = Path(codelinkava.__file__).parent
MODULES = sorted(
    name
    for _finder, name, _pkg in pkgutil.walk_packages(codelinkava.__path__, "codelinkava.")
    if not name.endswith("__main__")
)
#: The longest function allowed, in lines (docstring included).
MAX_FUNCTION_LINES = 60
PROVIDER_CLASSES = ("LocalModel", "CodeLinkAva", "OpenAICompatible", "Anthropic")


def _source_files() -> list[Path]:
    return sorted(SRC.rglob("*.py"))


def _module_name(path: Path) -> str:
    parts = path.relative_to(SRC.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


@pytest.mark.parametrize("name", MODULES)
def test_every_name_in_all_exists(name: str) -> None:
    module = importlib.import_module(name)
    exported = getattr(module, "__all__", None)
    assert exported is not None, f"{name} has no __all__"
    missing = [item for item in exported if not hasattr(module, item)]
    assert not missing, f"{name}.__all__ lists names it does not have: {missing}"
    assert len(set(exported)) == len(exported), f"{name}.__all__ repeats a name"


def _imports_from_package(path: Path) -> list[tuple[str, str, int]]:
    """(module, name, line) for every `from <codelinkava module> import name` in a file."""
    tree = ast.parse(path.read_text())
    here = _module_name(path)
    package = here if path.name == "__init__.py" else here.rpartition(".")[0]
    found = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.ImportFrom):
            continue
        if node.level:
            base = package.split(".")
            base = base[: len(base) - (node.level - 1)]
            target = ".".join(base + ([node.module] if node.module else []))
        else:
            target = node.module or ""
        if not target.startswith("codelinkava"):
            continue
        for alias in node.names:
            found.append((target, alias.name, node.lineno))
    return found


@pytest.mark.parametrize("path", _source_files(), ids=lambda p: str(p.relative_to(SRC)))
def test_modules_import_only_what_others_export(path: Path) -> None:
    """httpx's habit: a module's `__all__` is its whole public face, inside the package too."""
    wrong = []
    for target, name, line in _imports_from_package(path):
        module = importlib.import_module(target)
        if hasattr(module, "__path__") and importlib.util.find_spec(f"{target}.{name}"):
            continue  # a submodule of a package
        if name not in getattr(module, "__all__", ()):
            wrong.append(f"line {line}: {name} from {target}")
    assert not wrong, f"{path.name} imports names outside their module's __all__: {wrong}"


@pytest.mark.parametrize("path", _source_files(), ids=lambda p: str(p.relative_to(SRC)))
def test_no_function_is_longer_than_sixty_lines(path: Path) -> None:
    tree = ast.parse(path.read_text())
    long = [
        f"{node.name} ({node.end_lineno - node.lineno + 1} lines)"  # type: ignore[operator]
        for node in ast.walk(tree)
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
        and node.end_lineno - node.lineno + 1 > MAX_FUNCTION_LINES  # type: ignore[operator]
    ]
    assert not long, f"{path.name}: {long}"


def test_no_provider_is_named_by_class_outside_the_providers_package() -> None:
    """The CLI, the gateway and the router ask a provider what they need; they never test
    `provider is LocalModel`. Only the public exports may name the classes."""
    offenders = []
    for path in _source_files():
        relative = path.relative_to(SRC)
        if relative.parts[0] == "providers" or relative == Path("__init__.py"):
            continue
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.Name) and node.id in PROVIDER_CLASSES:
                offenders.append(f"{relative}:{node.lineno} {node.id}")
            if isinstance(node, ast.alias) and node.name in PROVIDER_CLASSES:
                offenders.append(f"{relative} imports {node.name}")
    assert not offenders, offenders


def test_the_core_names_no_format_and_no_transport() -> None:
    """`_chat` decodes through the request's wire format and sends through its transport."""
    tree = ast.parse((SRC / "_chat.py").read_text())
    imported = {
        node.module
        for node in ast.walk(tree)
        if isinstance(node, ast.ImportFrom) and node.module is not None
    }
    assert not imported & {"sse", "chunks", "formats.openai_sse", "_http", "aiohttp"}, imported


def test_the_version_is_written_once() -> None:
    root = SRC.parent.parent
    assert 'dynamic = ["version"]' in (root / "pyproject.toml").read_text()
    hits = [
        str(path.relative_to(SRC))
        for path in _source_files()
        if codelinkava.__version__ in path.read_text()
    ]
    assert hits == ["_version.py"], hits


TESTS = Path(__file__).resolve().parent.parent
#: The one package every suite may import from.
SHARED = "support"
SUITES = sorted(
    path.name
    for path in TESTS.iterdir()
    if path.is_dir() and path.name != SHARED and any(path.glob("*.py"))
)


def _test_files() -> list[Path]:
    return sorted(path for path in TESTS.rglob("*.py") if "__pycache__" not in path.parts)


def _suite_imports(path: Path) -> list[str]:
    """What in `path` reaches into another suite or into a test module."""
    suite = path.relative_to(TESTS).parts[0]
    wrong = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            targets = [(alias.name, 0) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            module = node.module or ""
            targets = [(module, node.level)]
            if not module:  # `from . import name`
                targets = [(alias.name, node.level) for alias in node.names]
        else:
            continue
        for target, level in targets:
            parts = target.split(".") if target else []
            if level > 1:
                wrong.append(f"line {node.lineno}: {'.' * level}{target} leaves the suite")
            elif level == 0 and parts and parts[0] in SUITES and parts[0] != suite:
                wrong.append(f"line {node.lineno}: {target} is another suite's")
            elif any(part.startswith("test_") for part in parts):
                wrong.append(f"line {node.lineno}: {target} is a test module")
    return wrong


@pytest.mark.parametrize("path", _test_files(), ids=lambda p: str(p.relative_to(TESTS)))
def test_no_suite_imports_another(path: Path) -> None:
    """Suites share helpers through `tests/support/` only: none imports another suite's
    modules or a test module, so each can be moved, run or deleted on its own."""
    assert not _suite_imports(path), _suite_imports(path)


def test_the_suites_are_found() -> None:
    assert {"unit", "integration", "routing", "e2e"} <= set(SUITES)
    assert (TESTS / SHARED / "__init__.py").is_file()
