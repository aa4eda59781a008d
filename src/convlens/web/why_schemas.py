"""Request and response bodies of the explorer's "why" routes (web/why.py).

Kept beside schemas.py, in their own module, so the page's contract for
attribution maps and filter portraits reads in one place.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

from convlens.inspect.attribution import METHODS

Method = Literal[tuple(METHODS)]  # type: ignore[valid-type]


class AttributionRequest(BaseModel):
    """One image's attribution map toward one class, as the journey shows the image."""

    run: str
    image: str = Field(description="an ImageInfo id")
    invert: Literal["auto", "yes", "no"] = "auto"
    method: Method = "gradcam"
    target: int | None = Field(None, description="a class number; null: the predicted class")
    layer: str | None = Field(None, description="Grad-CAM's layer; null: the last Conv2D")


class AttributionBody(BaseModel):
    """The map (H, W) at the input's size, drawn two ways, and what it means."""

    run: str
    method: str
    layer: str | None
    target_index: int
    target_name: str
    predicted_index: int
    title: str = Field(description='what the colours mean: "red: pixels that raised ..."')
    note: str = Field(description="how it was computed (layer, steps, patch)")
    delta: float | None = Field(None, description="integrated gradients' completeness error")
    shape: list[int]
    min: float
    max: float
    signed: bool = Field(description="true: blue below 0 (all but Grad-CAM)")
    overlay: str = Field(description="PNG data URL: the input with the map laid over it")
    map: str = Field(description="PNG data URL: the map alone")
    milliseconds: float = Field(description="the server's time to compute and draw it")


class PortraitRequest(BaseModel):
    """One filter of a layer with maps: what it responds to."""

    run: str
    layer: str
    filter: int = Field(ge=0)
    count: int = Field(6, ge=1, le=12, description="how many of the top test images")


class PortraitPatch(BaseModel):
    """A test image exciting the filter, and the patch its strongest value sees."""

    test_index: int
    class_name: str
    value: float
    png: str
    window: list[int] = Field(description="top, left, bottom, right (ends excluded), pixels")


class PortraitBody(BaseModel):
    """Top test patches of one filter and an input synthesised to excite it."""

    run: str
    layer: str
    filter: int
    filters: int = Field(description="how many filters the layer has")
    field: list[int] = Field(description="the receptive field, rows x columns of input pixels")
    field_why: str
    test_images: int
    never_fires: bool = Field(description="no test image makes it positive")
    synthesised: str = Field(description="PNG data URL of the synthesised input")
    patches: list[PortraitPatch]
