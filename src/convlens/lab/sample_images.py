"""A built-in picture for the convolution lab, drawn in code (no data needed).

The lesson filters a photo of a staircase; this is its stand-in: a building's
front with a cornice, floor ledges, framed windows with glazing bars, a door
between two pillars and front steps. It is full of long vertical and
horizontal lines, so the line filters have something to make pop out.
"""

from __future__ import annotations

import numpy as np

FACADE_SIZE = 256


def facade() -> np.ndarray:
    """The built-in image: a building front, uint8 grayscale of shape (256, 256)."""
    rows = np.arange(FACADE_SIZE, dtype=np.float64)[:, None]
    image = np.broadcast_to(215 - 0.12 * rows, (FACADE_SIZE, FACADE_SIZE)).copy()  # sky
    image[36:, 28:228] = 110  # the wall
    image[36:46, 20:236] = 175  # cornice
    for ledge in (96, 150):
        image[ledge : ledge + 3, 28:228] = 175
    for top in (54, 106):  # two upper floors of four windows each
        for left in (44, 92, 140, 188):
            _window(image, top, left)
    for left in (44, 188):
        _window(image, 162, left)
    image[158:232, 96:102] = 190  # pillars either side of the door
    image[158:232, 154:160] = 190
    image[160:232, 110:146] = 35  # door
    image[160:232, 127:129] = 80  # the door's two leaves
    image[232:, :] = 90  # pavement
    for step in range(3):  # front steps, each wider than the one above
        top = 232 + 8 * step
        image[top : top + 8, 88 - 8 * step : 168 + 8 * step] = 150  # riser
        image[top : top + 2, 88 - 8 * step : 168 + 8 * step] = 205  # tread's lit edge
    noise = np.random.default_rng(0).integers(-3, 4, image.shape)  # a little texture, fixed
    return np.clip(image + noise, 0, 255).astype(np.uint8)  # (256, 256)


def _window(image: np.ndarray, top: int, left: int, height: int = 34, width: int = 28) -> None:
    """Draw a framed window with a cross of glazing bars, in place."""
    image[top : top + height, left : left + width] = 205  # frame
    image[top + 3 : top + height - 3, left + 3 : left + width - 3] = 45  # glass
    middle_row, middle_col = top + height // 2, left + width // 2
    image[middle_row - 1 : middle_row + 1, left : left + width] = 205  # glazing bars
    image[top : top + height, middle_col - 1 : middle_col + 1] = 205
