"""The synthetic engine follows the request visibly: prompt on screen, pinned images, elements, sound."""

from __future__ import annotations

import time
import types

import numpy as np
import pytest

from happyhorse.engines.base import AUDIO_SAMPLE_RATE, FRAME_SIZES, Element, EngineError, Shot
from happyhorse.engines.synthetic import SyntheticEngine

W, H = 320, 180
MAGENTA = (255, 0, 255)  # brighter than any scene colour can be: only an element thumbnail has it


def make_shot(prompt: str = "a red fox runs through snow", **overrides: object) -> Shot:
    fields: dict = {"index": 0, "prompt": prompt, "num_frames": 12, "width": W, "height": H, "seed": 7}
    fields.update(overrides)
    return Shot(**fields)


def render(shot: Shot) -> tuple[list[np.ndarray], np.ndarray | None]:
    clip = SyntheticEngine().render(shot, lambda fraction: None)
    return list(clip.frames), clip.audio


def diff(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.abs(a.astype(np.int16) - b.astype(np.int16)).mean())


def white_pixels(frame: np.ndarray) -> int:
    """Text is near-white; the scene's colours never are."""
    return int((frame.min(axis=2) > 200).sum())


def colour_pixels(frame: np.ndarray, colour: tuple[int, int, int]) -> int:
    return int((frame == np.array(colour, np.uint8)).all(axis=2).sum())


def picture(colour: tuple[int, int, int], size: tuple[int, int] = (H, W)) -> np.ndarray:
    img = np.zeros((*size, 3), np.uint8)
    img[...] = colour
    img[: size[0] // 2, : size[1] // 2] = (255 - colour[0], 128, colour[2] // 2)
    return img


def test_frame_sizes_follow_the_table() -> None:
    engine = SyntheticEngine()
    for (mode, aspect), size in FRAME_SIZES.items():
        assert engine.frame_size(mode, aspect) == size
    with pytest.raises(EngineError, match="unsupported"):
        engine.frame_size("ultra", "16:9")


def test_yields_exactly_the_frames_asked_for_from_a_generator() -> None:
    clip = SyntheticEngine().render(make_shot(num_frames=17), lambda fraction: None)
    assert isinstance(clip.frames, types.GeneratorType)
    frames = list(clip.frames)
    assert len(frames) == 17
    assert all(f.shape == (H, W, 3) and f.dtype == np.uint8 for f in frames)
    assert len({id(f) for f in frames}) == 17  # fresh arrays: a consumer may keep them


def test_same_shot_is_bit_identical() -> None:
    frames_a, audio_a = render(make_shot())
    frames_b, audio_b = render(make_shot())
    assert all(np.array_equal(a, b) for a, b in zip(frames_a, frames_b, strict=True))
    assert audio_a is not None and audio_b is not None and np.array_equal(audio_a, audio_b)


def test_different_prompt_or_seed_is_a_different_scene() -> None:
    base = render(make_shot())[0][0]
    assert diff(base, render(make_shot("a lighthouse in a storm"))[0][0]) > 15
    assert diff(base, render(make_shot(seed=8))[0][0]) > 15


def test_the_scene_moves() -> None:
    frames, _ = render(make_shot(num_frames=24))
    assert diff(frames[0], frames[1]) > 0.1
    assert diff(frames[0], frames[-1]) > 2


def test_prompt_and_preview_label_are_on_screen() -> None:
    short = render(make_shot("a fox"))[0][0]
    long = render(make_shot("a fox, then a long sentence about snowy hills, pine forests and a frozen river"))[0][0]
    assert white_pixels(long) > white_pixels(short) > 100
    badge = short[: H // 5, : W // 2]
    assert white_pixels(badge) > 50  # "SYNTHETIC PREVIEW" in the top left corner
    caption = short[H // 2 :]
    assert white_pixels(caption) > 20


def test_first_frame_is_the_first_image_exactly_then_the_video_moves_away() -> None:
    first = picture((40, 120, 200))
    frames, _ = render(make_shot(first_frame=first))
    assert np.array_equal(frames[0], first)
    assert not np.array_equal(frames[1], first)
    assert white_pixels(frames[0]) == white_pixels(first)  # no overlay on a pinned frame
    assert white_pixels(frames[-1]) > 50  # later frames carry the caption
    assert diff(frames[-1], first) < 60  # still the same picture, zoomed in


def test_last_frame_is_the_last_image_exactly() -> None:
    last = picture((200, 60, 30))
    frames, _ = render(make_shot(last_frame=last))
    assert np.array_equal(frames[-1], last)
    assert not np.array_equal(frames[0], last)


def test_first_and_last_image_dissolve_into_each_other() -> None:
    first, last = picture((20, 20, 220)), picture((230, 200, 20))
    frames, _ = render(make_shot(num_frames=25, first_frame=first, last_frame=last))
    assert np.array_equal(frames[0], first) and np.array_equal(frames[-1], last)
    middle = frames[12].astype(np.float32)
    blend = (first.astype(np.float32) + last.astype(np.float32)) / 2
    assert diff(middle, blend) < diff(middle, first) and diff(middle, blend) < diff(middle, last)
    to_last = [diff(f, last) for f in frames[1:-1]]
    assert to_last == sorted(to_last, reverse=True) or to_last[0] > to_last[-1]


def test_pinned_images_of_the_wrong_shape_are_refused() -> None:
    with pytest.raises(EngineError, match="first_frame"):
        SyntheticEngine().render(make_shot(first_frame=np.zeros((10, 10, 3), np.uint8)), lambda f: None)


def test_elements_named_in_the_prompt_appear_and_others_do_not() -> None:
    hero = Element("hero", "a magenta cube", [np.full((90, 120, 3), MAGENTA, np.uint8)])
    named = render(make_shot("@hero crosses the bridge", elements=[hero]))[0]
    unnamed = render(make_shot("someone crosses the bridge", elements=[hero]))[0]
    longer_name = render(make_shot("@heroes cross the bridge", elements=[hero]))[0]
    assert min(colour_pixels(f, MAGENTA) for f in named) > 200
    assert max(colour_pixels(f, MAGENTA) for f in unnamed + longer_name) == 0
    # the thumbnail moves through the scene
    rows, cols = np.nonzero((named[0] == MAGENTA).all(axis=2))
    rows_end, cols_end = np.nonzero((named[-1] == MAGENTA).all(axis=2))
    assert (rows.mean(), cols.mean()) != (rows_end.mean(), cols_end.mean())


def test_soundtrack_covers_the_shot_and_follows_the_prompt() -> None:
    _, audio = render(make_shot(num_frames=36))
    assert audio is not None and audio.dtype == np.float32
    assert audio.shape == (2, 36 * AUDIO_SAMPLE_RATE // 24)
    assert np.abs(audio).max() <= 1.0
    assert float(np.sqrt((audio**2).mean())) > 0.02
    _, other = render(make_shot("a lighthouse in a storm", num_frames=36))
    assert other is not None and not np.allclose(audio, other)
    assert render(make_shot(sound=False))[1] is None


def test_progress_is_reported_frame_by_frame() -> None:
    seen: list[float] = []
    clip = SyntheticEngine().render(make_shot(num_frames=8), seen.append)
    for _ in clip.frames:
        pass
    assert seen == [pytest.approx((i + 1) / 8) for i in range(8)]


def test_720p_frames_are_cheap() -> None:
    """The whole point of the sandbox engine: a frame costs milliseconds, not the encoder's time."""
    shot = make_shot(num_frames=48, width=1280, height=720)
    start = time.perf_counter()
    clip = SyntheticEngine().render(shot, lambda fraction: None)
    for _ in clip.frames:
        pass
    assert (time.perf_counter() - start) / 48 < 0.05  # measured ~3 ms; generous for a busy machine
