"""An element with several reference images shows every one of them in turn, not only the first."""

from __future__ import annotations

import numpy as np

from happyhorse.engines.base import Element, Shot
from happyhorse.engines.synthetic import SyntheticEngine

COLOURS = [(255, 0, 255), (0, 255, 255), (255, 255, 0)]  # saturated: no scene colour is this bright


def pixels(frame: np.ndarray, colour: tuple[int, int, int]) -> int:
    return int((frame == np.array(colour, np.uint8)).all(axis=2).sum())


def render(num_frames: int, images: int) -> list[np.ndarray]:
    pictures = [np.full((90, 120, 3), colour, np.uint8) for colour in COLOURS[:images]]
    shot = Shot(
        index=0,
        prompt="@hero crosses the bridge",
        num_frames=num_frames,
        width=320,
        height=180,
        seed=7,
        elements=[Element("hero", "a cube", pictures)],
    )
    return list(SyntheticEngine().render(shot, lambda fraction: None).frames)


def shown(frame: np.ndarray, images: int) -> list[int]:
    return [i for i, colour in enumerate(COLOURS[:images]) if pixels(frame, colour) > 200]


def test_every_reference_image_shows_in_turn() -> None:
    frames = render(24 * 4, 3)  # 4 s at 24 fps, 3 images
    seen = [shown(frame, 3) for frame in frames]
    assert all(len(s) == 1 for s in seen), "one picture at a time, always one"
    order = [s[0] for i, s in enumerate(seen) if i == 0 or s != seen[i - 1]]
    assert order[:4] == [0, 1, 2, 0], order


def test_a_short_shot_still_shows_every_image() -> None:
    frames = render(24, 3)  # 1 s, 3 images: each gets a third of a second
    assert {s[0] for s in (shown(frame, 3) for frame in frames)} == {0, 1, 2}


def test_a_later_shot_badge_shows_the_task_seed() -> None:
    """The badge of shot 2 reads the task's seed (what the status and the task card report)."""
    from happyhorse.engines.synthetic import _Scene

    def badge(**fields: int | None) -> np.ndarray:
        shot = Shot(index=1, prompt="a cat walks in", num_frames=12, width=320, height=180, **fields)  # type: ignore[arg-type]
        return _Scene(shot).overlays[0][0]

    assert np.array_equal(badge(seed=999, task_seed=4242), badge(seed=4242))
    assert not np.array_equal(badge(seed=999, task_seed=4242), badge(seed=999))
