"""The explorer's one convention for a panel (issue 21).

A panel is a module web/<panel>.py whose ``router(state)`` returns a FastAPI
APIRouter with its routes (its bodies beside them) and whose script is
static/js/<panel>.js; create_app only includes web.app.PANELS. These tests
fail when a route is added to app.py itself, when a panel module is left out
of PANELS, when a script belongs to no panel, or when the shared state
imports a panel.
"""

from __future__ import annotations

import ast
import pkgutil
from importlib import import_module
from pathlib import Path

import pytest
from starlette.routing import Mount, Route

import convlens.web
from convlens.web.app import PANELS, create_app
from convlens.web.page import STATIC_DIR

# web/ modules that are shared infrastructure, not panels
INFRASTRUCTURE = {
    "app",
    "state",
    "bodies",
    "store",
    "uploads",
    "pictures",
    "server",
    "model_views",
    "job_manager",
    "job_process",
    "doors",
    "fitting",
}
SHARED_SCRIPTS = {"api", "charts", "draw"}  # imported by several panels' scripts
SCRIPT_OF = {"images": "playground"}  # the image chooser is part of the playground's script

def panel_names() -> list[str]:
    return sorted(
        info.name
        for info in pkgutil.iter_modules(convlens.web.__path__)
        if info.name not in INFRASTRUCTURE
    )


def short_name(module) -> str:
    return module.__name__.rsplit(".", 1)[1]


def flat_routes(routes):
    """Every route, looking inside included routers (FastAPI >= 0.16x keeps them whole)."""
    for route in routes:
        inner = getattr(route, "original_router", None)
        if inner is not None:
            yield from flat_routes(inner.routes)
        else:
            yield route


def route_keys(route: Route) -> set[tuple[str, str]]:
    return {(route.path, method) for method in route.methods or ()}


@pytest.fixture(scope="module")
def app(tmp_path_factory):
    return create_app(tmp_path_factory.mktemp("runs"))


def test_every_panel_module_has_a_router_and_is_included() -> None:
    names = panel_names()
    assert "page" in names and "why" in names
    for name in names:
        module = import_module(f"convlens.web.{name}")
        assert callable(getattr(module, "router", None)), f"web/{name}.py has no router(state)"
    assert sorted(short_name(panel) for panel in PANELS) == names
    assert len(PANELS) == len(set(PANELS))


def test_every_route_comes_from_exactly_one_panel(app) -> None:
    state = app.state.explorer
    owner: dict[tuple[str, str], str] = {}
    for panel in PANELS:
        name = short_name(panel)
        for route in panel.router(state).routes:
            assert isinstance(route, Route), f"{name} holds {route!r}, not a route"
            for key in route_keys(route):
                assert key not in owner, f"{key} is in both {owner[key]} and {name}"
                owner[key] = name

    served: dict[tuple[str, str], str] = {}
    mounts = []
    for route in flat_routes(app.router.routes):
        if isinstance(route, Mount):
            mounts.append(route)
            continue
        if route.path == app.openapi_url:  # FastAPI's own
            continue
        module = route.endpoint.__module__
        for key in route_keys(route):
            assert key not in served, f"{key} is served twice"
            served[key] = module.removeprefix("convlens.web.")
    stray = sorted(set(served.items()) ^ set(owner.items()))
    assert not stray, f"routes not their panel's, or in app.py itself: {stray}"
    assert [(m.path, m.name) for m in mounts] == [("/static", "static")]
    assert str(mounts[0].app.directory) == str(STATIC_DIR)


def test_every_panel_has_its_script() -> None:
    scripts = STATIC_DIR / "js"
    for name in panel_names():
        script = SCRIPT_OF.get(name, name)
        assert (scripts / f"{script}.js").is_file(), f"web/{name}.py has no js/{script}.js"
    for name, script in SCRIPT_OF.items():  # an exception says so where it is made
        assert f"static/js/{script}.js" in import_module(f"convlens.web.{name}").__doc__


def test_every_script_belongs_to_a_panel_or_is_shared() -> None:
    panels = {SCRIPT_OF.get(name, name) for name in panel_names()}
    scripts = {path.stem for path in (STATIC_DIR / "js").glob("*.js")}
    assert scripts - panels - SHARED_SCRIPTS == set(), "a script of no panel"
    assert scripts == panels | SHARED_SCRIPTS
    assert '<script type="module" src="/static/js/page.js">' in (
        STATIC_DIR / "index.html"
    ).read_text(encoding="utf-8")


def imported_modules(path: Path) -> set[str]:
    """The convlens modules a file imports (``from convlens.web import x`` counts as web.x)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
            found |= {f"{node.module}.{alias.name}" for alias in node.names}
    return {name for name in found if name.startswith("convlens.")}  # "convlens" alone: allowed


def test_only_app_gathers_the_panels_and_the_shared_state_knows_none() -> None:
    # (that web/ imports only lower floors is tests/test_house.py's rule for every package)
    web = Path(convlens.web.__file__).parent
    panels = {f"convlens.web.{name}" for name in panel_names()}
    for path in web.glob("*.py"):
        imported = imported_modules(path)
        if path.stem in INFRASTRUCTURE - {"app"}:  # only app.py gathers the panels
            assert not imported & panels, f"{path.name} imports a panel"
    state = imported_modules(web / "state.py")  # the shared state knows no panel
    assert {name.split(".")[2] for name in state if name.startswith("convlens.web.")} <= {
        "job_manager",
        "store",
    }
