"""HTML pieces for what a notebook shows of convlens objects (their ``_repr_html_``).

Ground floor: the standard library, NumPy and Pillow. Styles are inline (no
``<style>`` block), because a notebook that is not trusted, and the sanitizer
of some front-ends, drop style blocks but keep the attributes; every piece of
text is escaped. Pictures are PNG ``data:`` URLs, drawn pixelated so each
pixel of a 28x28 image stays a visible square.
"""

from __future__ import annotations

import base64
import html
import io
from collections.abc import Iterable, Sequence

import numpy as np
from PIL import Image

FONT = "font-family: system-ui, -apple-system, 'Segoe UI', sans-serif; font-size: 13px"
MONO = "font-family: ui-monospace, 'SFMono-Regular', Menlo, Consolas, monospace"
CELL = "padding: 2px 8px; border-bottom: 1px solid #e3e3e3; text-align: left; vertical-align: top"
MUTED = "color: #5f6368"


def escape(value: object) -> str:
    """Any value as HTML-escaped text."""
    return html.escape(str(value), quote=True)


def png_bytes(pixels: np.ndarray) -> bytes:
    """uint8 (H, W), (H, W, 1) or (H, W, 3) pixels as PNG bytes."""
    array = np.asarray(pixels)
    if array.ndim == 3 and array.shape[2] == 1:
        array = array[:, :, 0]
    buffer = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(array.astype(np.uint8))).save(buffer, format="png")
    return buffer.getvalue()


def picture(pixels: np.ndarray, alt: str, width: int = 168) -> str:
    """An <img> of uint8 pixels, ``width`` CSS pixels wide, each pixel a crisp square."""
    url = "data:image/png;base64," + base64.b64encode(png_bytes(pixels)).decode("ascii")
    style = f"width: {width}px; image-rendering: pixelated; border: 1px solid #d0d0d0"
    return f'<img src="{url}" alt="{escape(alt)}" style="{style}">'


def figure(content: str, caption: str) -> str:
    """A picture (or table) with its caption beneath, side by side with the next one."""
    return (
        f'<figure style="display: inline-block; margin: 0 18px 8px 0; vertical-align: top">'
        f'{content}<figcaption style="{FONT}; {MUTED}; max-width: 260px">{caption}</figcaption>'
        f"</figure>"
    )


def number_grid(
    values: np.ndarray, format_number, chosen: tuple[int, int] | None = None, title: str = ""
) -> str:
    """A small 2-D array as a table of its numbers; ``chosen`` (row, col) is outlined."""
    rows = []
    for r, row in enumerate(np.asarray(values).reshape(values.shape[0], -1)):
        cells = []
        for c, value in enumerate(row):
            mark = "; outline: 2px solid #0a84ff" if chosen == (r, c) else ""
            style = f"{MONO}; padding: 2px 6px; text-align: right; border: 1px solid #e3e3e3{mark}"
            cells.append(f'<td style="{style}">{escape(format_number(value))}</td>')
        rows.append(f"<tr>{''.join(cells)}</tr>")
    head = f'<caption style="{FONT}; text-align: left">{escape(title)}</caption>' if title else ""
    return f'<table style="border-collapse: collapse; margin: 0">{head}{"".join(rows)}</table>'


def table(head: Sequence[str], rows: Iterable[Sequence[str]]) -> str:
    """A table whose cells are HTML already (escape text before); ``head`` is plain text."""
    header = "".join(
        f'<th style="{CELL}; font-weight: 600; white-space: nowrap">{escape(h)}</th>' for h in head
    )
    body = "".join(
        "<tr>" + "".join(f'<td style="{CELL}">{cell}</td>' for cell in row) + "</tr>"
        for row in rows
    )
    return (
        f'<div style="overflow-x: auto; max-width: 100%">'
        f'<table style="{FONT}; border-collapse: collapse; margin: 4px 0">'
        f"<thead><tr>{header}</tr></thead><tbody>{body}</tbody></table></div>"
    )


def block(title: str, *parts: str) -> str:
    """The frame of every rich repr: a bold title line, then the parts."""
    heading = f'<div style="{FONT}; font-weight: 600; margin: 2px 0 6px">{escape(title)}</div>'
    return (
        f'<div class="convlens-repr" style="{FONT}; margin-bottom: 12px">{heading}'
        f"{''.join(parts)}</div>"
    )


def paragraph(text: str, muted: bool = False, mono: bool = False) -> str:
    """One line of escaped text."""
    style = FONT + (f"; {MUTED}" if muted else "") + (f"; {MONO}" if mono else "")
    return f'<p style="{style}; margin: 4px 0">{escape(text)}</p>'
