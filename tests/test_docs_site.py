"""The documentation site (mkdocs.yml, docs/) builds with ``mkdocs build --strict``.

Strict: a broken link, a missing page or an API reference that names nothing
fails the build. The build runs in a temporary folder (the repository is
not written to); the checks read what it wrote: the notebooks rendered as
pages, the API reference rendered from the docstrings, BENCHMARKS.md included.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

import convlens

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted(path.stem for path in (ROOT / "docs" / "notebooks").glob("*.ipynb"))

pytest.importorskip("mkdocs", reason="the docs build needs mkdocs (dev or docs extra)")
pytest.importorskip("mkdocs_jupyter", reason="the docs build needs mkdocs-jupyter")
pytest.importorskip("mkdocstrings_handlers.python", reason="the docs build needs mkdocstrings")


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Path:
    """The site as ``mkdocs build --strict`` writes it, in a temporary folder."""
    where = tmp_path_factory.mktemp("site")
    built = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--quiet",
         "--config-file", str(ROOT / "mkdocs.yml"), "--site-dir", str(where / "site")],
        cwd=where,
        env={**os.environ, "NO_MKDOCS_2_WARNING": "1"},
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert built.returncode == 0, built.stdout + built.stderr
    return where / "site"


def _page(site: Path, path: str) -> str:
    return (site / path / "index.html").read_text(encoding="utf-8")


def test_every_lesson_notebook_is_a_page_with_its_code(site):
    assert len(NOTEBOOKS) == 5
    for name in NOTEBOOKS:
        page = _page(site, f"notebooks/{name}")
        assert "import convlens" in re.sub(r"<[^>]+>", "", page), name
        assert (site / "notebooks" / name / f"{name}.ipynb").is_file()  # the download


def test_the_api_reference_is_rendered_from_the_docstrings(site):
    page = re.sub(r"<[^>]+>", "", _page(site, "api"))
    for function in (convlens.explain_pixel, convlens.train, convlens.from_torch):
        first_line = function.__doc__.strip().splitlines()[0]
        words = re.sub(r"[`*]", "", first_line)[:40]  # the sentence, before markup
        assert words in page.replace("&quot;", '"').replace("&#39;", "'"), words


def test_docstring_examples_are_code_not_quotes(site):
    """docs/hooks/doctest_blocks.py: a docstring's >>> lines are a code block, not a quote."""
    page = _page(site, "api")
    assert "<blockquote>" not in page
    assert "doctest: +SKIP" not in page


def test_the_api_page_lists_every_public_name():
    """Each name in convlens's __all__ (but its version) has its ::: block in docs/api.md."""
    api = (ROOT / "docs" / "api.md").read_text(encoding="utf-8")
    blocks = set(re.findall(r"^::: [\w.]*?\.(\w+)$", api, re.M))
    aliases = set(re.findall(r"^`convlens\.(\w+)` is `", api, re.M))
    missing = set(convlens.__all__) - blocks - aliases - {"__version__", "keras"}
    assert not missing, f"docs/api.md does not show {sorted(missing)}"


def test_benchmarks_and_design_notes_are_pages(site):
    benchmarks = _page(site, "benchmarks")
    first_heading = (ROOT / "BENCHMARKS.md").read_text(encoding="utf-8").splitlines()[0]
    assert first_heading.lstrip("# ") in benchmarks
    assert "DESIGN-NOTES" in os.listdir(site)
