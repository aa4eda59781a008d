"""docs/DESIGN-NOTES.md stays true: its paths exist, and its walk-through names what the code has."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from convlens.model.layers import LAYER_TYPES

ROOT = Path(__file__).resolve().parents[1]
NOTES = (ROOT / "docs" / "DESIGN-NOTES.md").read_text(encoding="utf-8")
WALK = NOTES.split("## Adding a layer type: ")[1].split("\n## ")[0]


FILES = [p.relative_to(ROOT).as_posix() for p in ROOT.glob("**/*") if ".git" not in p.parts]


def exists(path: str) -> bool:
    """A path as the notes write it: whole, or within its package's section (state.py)."""
    return any(name == path or name.endswith(f"/{path}") for name in FILES)


@pytest.mark.parametrize("path", sorted(set(re.findall(r"`([\w/.-]+\.(?:py|js|md))`", NOTES))))
def test_every_file_the_notes_name_exists(path):
    assert exists(path), f"DESIGN-NOTES.md names {path}, which is not there"


def test_the_walk_through_names_what_its_files_hold():
    files = re.findall(r"`((?:src|tests)/[\w/.]+\.py)`", WALK)
    text = "\n".join((ROOT / f).read_text(encoding="utf-8") for f in files)
    names = set(re.findall(r"`([A-Za-z_]\w*)(?:\(\))?`", WALK)) - {"Slice"}
    missing = sorted(name for name in names if not re.search(rf"\b{name}\b", text))
    assert not missing, f"the walk-through names {missing}, which its files do not hold"


def test_the_walk_through_layer_is_registered_with_the_facets_it_states():
    kind = NOTES.split("## Adding a layer type: ")[1].split("\n")[0].strip()
    cls = LAYER_TYPES[kind]
    for facet, value in re.findall(r'`(\w+) = "(\w+)"`', WALK):
        assert getattr(cls, facet) == value, facet
    for facet, value in re.findall(r'`(\w+) = \("(\w+)",\)`', WALK):
        assert getattr(cls, facet) == (value,), facet
