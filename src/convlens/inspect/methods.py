"""The attribution methods, described: one table the CLI, the page and the figures read.

Each entry says what the method is called, how the page lists it, whether its
maps are signed and what red (and blue) mean. How each is computed is
inspect/attribution.py's COMPUTE, under the same name (a test holds the two
together). No torch: `convlens why --help` lists the methods without it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from convlens.errors import ConvlensError


@dataclass(frozen=True)
class Method:
    """One attribution method: how to compute it and how to read its map."""

    name: str  # what --method and the page call it
    title: str  # the page's menu entry
    signed: bool  # whether its maps go below 0 (then blue means against the class)
    red: str  # what red means, with {target} for the class explained
    score: str  # what a map's value is, with {target} and {cells} (a window, "8x8")
    blue: str = ""  # what blue means (signed maps only)
    reads_layer: bool = False  # True: --layer chooses the layer it reads

    def legend(self, target: str) -> str:
        """What a map shows, in one line for a figure's title or the page."""
        red = f"red: {self.red.format(target=target)}"
        return f"{red}, blue: {self.blue}" if self.blue else red

    def meaning(self, target: str, cells: str) -> str:
        """What the map's values are, in one sentence (``cells``: its window, "8x8")."""
        return self.score.format(target=target, cells=cells)

    def as_dict(self) -> dict[str, Any]:
        """JSON for the page's menu: {"name", "title", "signed", "reads_layer"}."""
        return {
            "name": self.name,
            "title": self.title,
            "signed": self.signed,
            "reads_layer": self.reads_layer,
        }


METHODS: dict[str, Method] = {
    method.name: method
    for method in (
        Method(
            "gradcam",
            "Grad-CAM (last convolution)",
            signed=False,
            red="pixels that raised the score for {target}",
            score="Each cell's value is how strongly the layer's maps that raise {target}'s "
            "score (its logit) fire there; a cell is {cells} input pixels wide (the layer's "
            "receptive field), so the map is coarse.",
            reads_layer=True,
        ),
        Method(
            "saliency",
            "Saliency (input gradient)",
            signed=True,
            red="pixels whose brightening would raise the score for {target}",
            score="Each pixel's value is how fast {target}'s score (its logit) changes as the "
            "pixel brightens: the gradient, summed over the colour channels.",
            blue="lower it",
        ),
        Method(
            "integrated-gradients",
            "Integrated gradients",
            signed=True,
            red="pixels that raised the score for {target}",
            score="Each pixel's value is its share of {target}'s score (its logit) minus the "
            "score of a black image; the values add up to that difference.",
            blue="lowered it",
        ),
        Method(
            "occlusion",
            "Occlusion (sliding black patch)",
            signed=True,
            red="pixels whose covering with black lowered the score for {target}",
            score="Each pixel's value is how much {target}'s score (its logit) falls, on "
            "average, when a black {cells} patch covers it.",
            blue="raised it",
        ),
    )
}


def check_method(method: str) -> str:
    """The method's name, or one sentence listing the ones there are."""
    if method not in METHODS:
        raise ConvlensError(
            f"unknown attribution method {method!r}; choose one of {', '.join(METHODS)}."
        )
    return method


def describe(method: str, class_name: str) -> str:
    """What a map of ``method`` shows, in one line for a figure's title or the page."""
    return METHODS[check_method(method)].legend(class_name)


def meaning(method: str, class_name: str, cells: str = "") -> str:
    """What a map's values are, in one sentence (``cells``: Grad-CAM's receptive field or the
    occlusion patch, "8x8")."""
    return METHODS[check_method(method)].meaning(class_name, cells)


