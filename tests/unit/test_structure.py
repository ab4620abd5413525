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
        if _is_shim(path):
            continue  # an old import path re-exporting its module's new home
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
    """`core.stream` decodes through the request's wire format and sends through its
    transport."""
    tree = ast.parse((SRC / "core" / "stream.py").read_text())
    imported = {
        node.module
        for node in ast.walk(tree)
        if isinstance(node, ast.ImportFrom) and node.module is not None
    }
    named = {module.rpartition(".")[2] for module in imported if module}
    assert not named & {"sse", "openai_chunks", "openai_sse", "aiohttp", "mock"}, imported


#: Old import paths kept for users of the earlier layout: imports of the new homes and an
#: `__all__`, nothing else.
SHIMS = ("sse.py", "chunks.py", "transport.py", "failover.py", "server/limits.py")


def _is_shim(path: Path) -> bool:
    return str(path.relative_to(SRC)) in SHIMS


def test_the_shims_hold_nothing_of_their_own() -> None:
    for name in SHIMS:
        tree = ast.parse((SRC / name).read_text())
        body = [node for node in tree.body if not isinstance(node, ast.Expr)]  # the docstring
        for node in body:
            if isinstance(node, ast.Assign):
                assert [getattr(t, "id", None) for t in node.targets] == ["__all__"], name
            else:
                assert isinstance(node, ast.ImportFrom), name


def _type_only(tree: ast.Module) -> set[int]:
    """The ids of the import nodes under `if TYPE_CHECKING:` (no run-time dependency)."""
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and getattr(node.test, "id", None) == "TYPE_CHECKING":
            found.update(id(child) for child in ast.walk(node))
    return found


def _import_graph() -> dict[str, set[str]]:
    """Module -> the package modules it imports, at the top or inside a function alike (a
    lazy import is still a dependency; one for type checkers only is not). Importing a
    package's submodule is an edge to the submodule, not to the package's `__init__`."""
    graph: dict[str, set[str]] = {}
    known = set(MODULES) | {"codelinkava"}
    for path in _source_files():
        here = _module_name(path)
        if _is_shim(path):
            continue
        edges = graph.setdefault(here, set())
        package = here if path.name == "__init__.py" else here.rpartition(".")[0]
        tree = ast.parse(path.read_text())
        skipped = _type_only(tree)
        for node in ast.walk(tree):
            if id(node) in skipped:
                continue
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                if node.level:
                    base = package.split(".")
                    base = base[: len(base) - (node.level - 1)]
                    module = ".".join(base + ([node.module] if node.module else []))
                else:
                    module = node.module or ""
                targets = [
                    f"{module}.{alias.name}" if f"{module}.{alias.name}" in known else module
                    for alias in node.names
                ]
            else:
                continue
            edges.update(t for t in targets if t in known and t != here)
    return graph


def test_no_import_cycles() -> None:
    """No two modules import each other, however indirectly (the old `_http` <->
    `transport` pair was one): each layer only reaches down. A package's `__init__`
    may import its own submodules (it is their front door), so those edges are left
    out when they point into the package."""
    graph = _import_graph()
    for module, edges in graph.items():
        if SRC.joinpath(*module.split(".")[1:], "__init__.py").exists():
            graph[module] = {edge for edge in edges if not edge.startswith(module + ".")}
    cycles: list[list[str]] = []
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(module: str) -> None:
        state[module] = 1
        stack.append(module)
        for edge in sorted(graph.get(module, ())):
            if state.get(edge) == 1:
                cycles.append([*stack[stack.index(edge) :], edge])
            elif edge not in state:
                visit(edge)
        stack.pop()
        state[module] = 2

    for module in sorted(graph):
        if module not in state:
            visit(module)
    assert not cycles, [" -> ".join(cycle) for cycle in cycles]


def _defined_public_names() -> dict[str, list[str]]:
    """Each public name a module defines itself (a class, function or constant in its
    `__all__`, not one it imports), and the modules that define it."""
    where: dict[str, list[str]] = {}
    for path in _source_files():
        if _is_shim(path) or path.name in ("__init__.py", "__main__.py"):
            continue
        tree = ast.parse(path.read_text())
        defined: set[str] = set()
        for node in tree.body:
            if isinstance(node, ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
                defined.add(node.name)
            elif isinstance(node, ast.Assign):
                defined.update(t.id for t in node.targets if isinstance(t, ast.Name))
            elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
                defined.add(node.target.id)
        exported = set(getattr(importlib.import_module(_module_name(path)), "__all__", ()))
        for name in sorted(defined & exported):
            where.setdefault(name, []).append(_module_name(path))
    return where


def test_no_two_modules_define_the_same_public_name() -> None:
    """One name, one thing: two `Lease`s with different signatures, or two `Response`s,
    make a reader check which one a module means."""
    twice = {name: modules for name, modules in _defined_public_names().items() if len(modules) > 1}
    assert not twice, twice


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


def test_the_reserved_options_are_derived_from_the_providers() -> None:
    """The names no gateway body may carry are the library's options plus every set-up
    option any provider declares -- computed, never a second list kept by hand (a new
    provider's `tenant_url` would otherwise be accepted from a body and pick the host)."""
    from codelinkava.config import LIBRARY_OPTIONS
    from codelinkava.providers import PROVIDERS
    from codelinkava.providers.base import reserved_option_names

    declared = {option.name for p in PROVIDERS.values() for option in p.setup_options}
    assert reserved_option_names() >= frozenset(LIBRARY_OPTIONS) | declared
    wire = (SRC / "server" / "wire.py").read_text()
    assert "reserved_option_names()" in wire and "LIBRARY_OPTIONS" not in wire
