"""The README's and docs' example commands write where a learner runs them, never into the repository."""

from __future__ import annotations

import re
from pathlib import Path, PurePosixPath

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("**/*.md"))]
WRITES = re.compile(r"--out[ =](\S+)")


def written_paths(text: str) -> list[str]:
    """Every ``--out PATH`` of the shell examples (```bash blocks) in a Markdown page."""
    blocks = re.findall(r"```(?:bash|sh|console)\n(.*?)```", text, re.S)
    return [match for block in blocks for match in WRITES.findall(block)]


def test_the_example_finder_sees_an_out_path():
    assert written_paths("```bash\nconvlens why --out docs/why.png\n```") == ["docs/why.png"]


def test_examples_write_to_the_current_directory():
    into_folders = {
        f"{page.relative_to(ROOT)}: {path}"
        for page in PAGES
        for path in written_paths(page.read_text(encoding="utf-8"))
        if len(PurePosixPath(path.strip("'\"")).parts) > 1 and not path.startswith("runs/")
    }
    assert not into_folders, f"examples that write into a folder (a tracked file?): {into_folders}"
