"""The visible mark: drawn in the bottom-right corner only, readable on black and on white."""

from __future__ import annotations

import numpy as np
import pytest

from happyhorse.media.watermark import Watermark


@pytest.mark.parametrize(("width", "height"), [(1280, 720), (720, 1280), (128, 72)])
@pytest.mark.parametrize("shade", [0, 255])
def test_mark_lies_in_the_corner_and_shows_on_any_background(width: int, height: int, shade: int) -> None:
    frame = np.full((height, width, 3), shade, np.uint8)
    marked = Watermark(width, height).apply(frame.copy())
    changed = np.argwhere((marked != frame).any(axis=2))
    assert len(changed) > 0, "no mark drawn"
    rows, cols = changed[:, 0], changed[:, 1]
    assert rows.min() >= height // 2 and cols.min() >= width // 2, "the mark strays out of the bottom-right corner"
    assert marked.shape == frame.shape and marked.dtype == np.uint8
    # on black the text is light; on white the shaded box is darker than the frame
    if shade == 0:
        assert marked.max() >= 150
    else:
        assert marked.min() <= 200


def test_the_same_mark_on_every_frame() -> None:
    mark = Watermark(320, 180)
    rng = np.random.default_rng(0)
    one, two = (rng.integers(0, 256, (180, 320, 3), dtype=np.uint8) for _ in range(2))
    diff_one = mark.apply(one.copy()).astype(int) - one
    diff_two = mark.apply(two.copy()).astype(int) - two
    assert ((diff_one != 0).any(axis=2) == (diff_two != 0).any(axis=2)).mean() > 0.99
