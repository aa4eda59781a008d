"""MkDocs hook: docstrings' ``>>>`` examples shown as Python console code, not as quotes.

Markdown reads a line starting with ``>`` as a quotation, so the examples in
convlens's docstrings (``>>> run = convlens.train(...)  # doctest: +SKIP``)
would render as nested quotes on the API page. This hook adds a Markdown
preprocessor (before the fenced-code ones) that wraps each example outside
code fences (its ``>>>`` / ``...`` lines and their output, up to a blank
line) in a ```` ```pycon ```` fence and drops doctest flags. It runs before the plugins' own setup (event priority 100),
so mkdocstrings renders docstrings with it too.
"""

from __future__ import annotations

import re

from markdown import Extension, Markdown
from markdown.preprocessors import Preprocessor
from mkdocs.plugins import event_priority

PROMPT = re.compile(r"^(\s*)(>>>|\.\.\.)( |$)")
FENCE = re.compile(r"^\s*(```|~~~)")
FLAGS = re.compile(r"\s*#\s*doctest:.*$")


class DoctestBlocks(Preprocessor):
    """Wrap each example (prompt lines and their output, up to a blank line) in a fence."""

    def run(self, lines: list[str]) -> list[str]:
        out: list[str] = []
        in_fence = False
        in_example = False
        indent = ""
        for line in lines:
            if FENCE.match(line) and not in_example:
                in_fence = not in_fence
            prompt = None if in_fence else PROMPT.match(line)
            if prompt and not in_example:
                out.extend(["", f"{prompt.group(1)}```pycon"])
                in_example = True
            elif in_example and not line.strip():  # a blank line ends it, as in doctest
                out.extend([f"{indent}```", ""])
                in_example = False
            if prompt:
                indent = prompt.group(1)
                line = FLAGS.sub("", line)
            out.append(line)
        if in_example:
            out.append(f"{indent}```")
        return out


class DoctestBlocksExtension(Extension):
    """The Markdown extension holding the preprocessor."""

    def extendMarkdown(self, md: Markdown) -> None:  # noqa: N802 - Markdown's name
        md.preprocessors.register(DoctestBlocks(md), "doctest_blocks", 28)


@event_priority(100)
def on_config(config):
    """Add the extension before mkdocstrings copies the Markdown configuration."""
    config.markdown_extensions.append(DoctestBlocksExtension())
    return config
