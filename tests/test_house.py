"""The house's rules (docs/DESIGN-NOTES.md), read from the code's own imports.

Packages stand on floors; a module imports only its own package and packages
on lower floors (never a peer on its own floor, never one above). No import
circle. Imports of convlens inside functions only where start-up time needs
them (cli/: `convlens --help` imports no torch); a third-party import inside
a function says why in a comment. `import
convlens`, `convlens --help` and `convlens summary` import no torch.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

import convlens

ROOT = Path(convlens.__file__).parent
GROUND = {"errors", "fsutil", "images", "version"}
FLOORS = {
    "ground": 0,
    "lab": 1,
    "model": 1,
    "data": 1,
    "runs": 2,
    "training": 3,
    "inspect": 3,
    "interop": 3,
    "views": 4,
    "web": 5,
    "notebook": 6,
    "cli": 7,
}
FACE = {"convlens", "convlens.__main__", "convlens.keras"}  # the face's doors import anything, lazily
FUNCTION_LEVEL_ALLOWED = ("convlens.cli.",)


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def package(module: str) -> str:
    """The room a module lives in: its package, or "ground" for the top-level modules."""
    parts = module.split(".")
    if len(parts) == 1:
        return "face"
    return "ground" if parts[1] in GROUND or len(parts) == 2 and parts[1] not in FLOORS else parts[1]


MODULES = {module_name(p): p for p in sorted(ROOT.rglob("*.py"))}


def imports(path: Path) -> list[tuple[str, int, bool, ast.AST]]:
    """(imported convlens module, line, at module level, node) for every import in ``path``."""
    tree = ast.parse(path.read_text())
    top = {id(node) for node in tree.body}
    for node in tree.body:  # an `if TYPE_CHECKING:` block counts as module level
        if isinstance(node, ast.If):
            top |= {id(inner) for inner in ast.walk(node)}
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("convlens"):
            for alias in node.names:
                full = f"{node.module}.{alias.name}"
                target = full if full in MODULES else node.module
                found.append((target, node.lineno, id(node) in top, node))
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.startswith("convlens"):
                    found.append((alias.name, node.lineno, id(node) in top, node))
    return found


def test_every_package_has_a_floor():
    rooms = {package(m) for m in MODULES} - {"face"}
    assert rooms <= set(FLOORS), f"a package without a floor: {rooms - set(FLOORS)}"


@pytest.mark.parametrize("module", sorted(m for m in MODULES if m not in FACE))
def test_imports_point_down(module):
    here = package(module)
    for target, line, _, _ in imports(MODULES[module]):
        there = package(target)
        if there in (here, "face") and target != "convlens":
            continue
        assert target != "convlens", f"{module}:{line} imports the package's face"
        assert FLOORS[there] < FLOORS[here], (
            f"{module}:{line} imports {target}: {there} (floor {FLOORS[there]}) is not below "
            f"{here} (floor {FLOORS[here]})"
        )


def test_no_import_circles():
    graph = {
        module: {t for t, _, top, _ in imports(path) if top and t in MODULES and t != module}
        for module, path in MODULES.items()
    }
    circles = [c for c in _strongly_connected(graph) if len(c) > 1]
    assert not circles, f"import circles: {circles}"


def test_convlens_is_imported_inside_functions_only_where_start_up_needs_it():
    hidden = [
        f"{module}:{line} imports {target}"
        for module, path in MODULES.items()
        if module not in FACE and not module.startswith(FUNCTION_LEVEL_ALLOWED)
        for target, line, top, _ in imports(path)
        if not top
    ]
    assert not hidden, "imports inside functions:\n" + "\n".join(hidden)


def test_third_party_imports_inside_functions_say_why():
    silent = []
    for module, path in MODULES.items():
        lines = path.read_text().splitlines()
        tree = ast.parse(path.read_text())
        top = {id(node) for node in tree.body} | {
            id(inner) for node in tree.body if isinstance(node, ast.If) for inner in ast.walk(node)
        }
        for node in ast.walk(tree):
            if isinstance(node, (ast.Import, ast.ImportFrom)) and id(node) not in top:
                name = node.module if isinstance(node, ast.ImportFrom) else node.names[0].name
                if name and name.startswith("convlens"):
                    continue
                said = "#" in lines[node.lineno - 1] or lines[node.lineno - 2].strip().startswith("#")
                if not said:
                    silent.append(f"{module}:{node.lineno} imports {name}")
    assert not silent, "say why each is imported inside a function:\n" + "\n".join(silent)


def test_cli_topics_import_no_other_topic():
    for module, path in MODULES.items():
        if not module.startswith("convlens.cli.") or module == "convlens.cli.main":
            continue
        for target, line, _, _ in imports(path):
            if target.startswith("convlens.cli"):
                assert target in ("convlens.cli.base", "convlens.cli.progress"), (
                    f"{module}:{line} imports {target}; a topic imports only cli.base"
                )


@pytest.mark.parametrize(
    "code",
    [
        "import convlens",
        "import sys; from convlens.cli.main import main; sys.argv = ['convlens', '--help']\n"
        "try:\n    main()\nexcept SystemExit:\n    pass",
        "from convlens.cli.main import main; main(['summary'])",
        "from convlens.cli.main import main; main(['summary', '--model', 'lenet5', '--json'])",
    ],
)
def test_start_up_imports_no_torch(code):
    check = f"{code}\nimport sys\nassert 'torch' not in sys.modules, 'torch was imported'"
    result = subprocess.run([sys.executable, "-c", check], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-2000:]


def test_the_public_api_names_resolve():
    for name in convlens.__all__:
        assert getattr(convlens, name) is not None, name


def _strongly_connected(graph: dict[str, set[str]]) -> list[list[str]]:
    """Tarjan's strongly connected components."""
    index, low, stack, on_stack, found = {}, {}, [], set(), []
    counter = [0]

    def visit(node: str) -> None:
        index[node] = low[node] = counter[0]
        counter[0] += 1
        stack.append(node)
        on_stack.add(node)
        for nxt in graph.get(node, ()):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                item = stack.pop()
                on_stack.discard(item)
                component.append(item)
                if item == node:
                    break
            found.append(sorted(component))

    sys.setrecursionlimit(10_000)
    for node in graph:
        if node not in index:
            visit(node)
    return found
