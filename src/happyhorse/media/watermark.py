"""A small visible mark in the bottom-right corner of every frame (DashScope's ``parameters.watermark``).

Drawn after the engine, before the encoder, so every engine gets it and an engine never has to know.
The mark's coverage is drawn once per render (text through Pillow's bundled font, as an alpha mask);
each frame then costs one blend over a small corner patch, not a text draw.
"""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageDraw, ImageFont

MARK_TEXT = "HappyHorse"
TEXT_OPACITY = 0.85
BOX_SHADE = 0.35  # the text sits on a darkened box, so it reads on white as well as on black


class Watermark:
    """The mark for one frame size; ``apply`` stamps it onto a frame in place."""

    def __init__(self, width: int, height: int, text: str = MARK_TEXT) -> None:
        size = max(8, min(width, height) // 22)  # the short side: a portrait frame gets the same mark
        font = ImageFont.load_default(size=size)
        left, top, right, bottom = (round(v) for v in font.getbbox(text))
        pad = max(2, size // 4)
        mask = Image.new("L", (right - left + 2 * pad, bottom - top + 2 * pad), 0)
        ImageDraw.Draw(mask).text((pad - left, pad - top), text, fill=255, font=font)
        alpha = np.asarray(mask, np.float32) / 255.0 * TEXT_OPACITY
        # Never larger than the frame: a tiny frame shows the part of the mark that fits.
        self.alpha = alpha[:height, :width, None]
        margin = max(2, height // 40)
        mark_h, mark_w = self.alpha.shape[:2]
        self.top = max(0, height - mark_h - margin)
        self.left = max(0, width - mark_w - margin)

    def apply(self, frame: np.ndarray) -> np.ndarray:
        """Shade the corner box, then blend white text over it."""
        h, w = self.alpha.shape[:2]
        patch = frame[self.top : self.top + h, self.left : self.left + w].astype(np.float32)
        patch *= 1.0 - BOX_SHADE
        patch += (255.0 - patch) * self.alpha
        frame[self.top : self.top + h, self.left : self.left + w] = patch.round().astype(np.uint8)
        return frame
