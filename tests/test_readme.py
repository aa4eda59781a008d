"""README.md stays a front page: under 16,000 characters, with the two set-up commands.

The rest lives in the documentation site (docs/, mkdocs.yml); README's links
into it must point at files that exist.
"""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text(encoding="utf-8")
RUN_THE_MAIN_JOB = (
    "apt-get update && apt-get install -y dataset-fashion-mnist && pip install torch==2.13.0 "
    "&& pip install . && convlens train"
)
RUN_THE_TESTS = (
    "apt-get update && apt-get install -y dataset-fashion-mnist chromium && pip install "
    'torch==2.13.0 && pip install -e ".[dev]" && python -m pytest -q'
)


def test_readme_is_under_16000_characters():
    assert len(README) < 16_000, f"README.md is {len(README):,} characters; move text into docs/"


def test_readme_keeps_the_two_set_up_commands():
    commands = re.findall(r"```bash\n(.*?)\n```", README, re.S)
    assert RUN_THE_MAIN_JOB in commands
    assert RUN_THE_TESTS in commands


def test_readme_links_point_at_files_that_exist():
    links = re.findall(r"\]\(([^)#]+)(?:#[^)]*)?\)", README)
    local = [link for link in links if not re.match(r"[a-z]+://", link)]
    assert local, "README links into the docs"
    for link in local:
        assert (ROOT / link).exists(), link
