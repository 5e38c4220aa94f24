"""Frame arithmetic: valid counts, pass plans, sizes, guidance."""

from __future__ import annotations

import pytest

from happyhorse.engines.diffusers.frames import (
    frame_size_for,
    map_guidance,
    max_frames_per_pass,
    parse_resolution,
    plan_passes,
    render_size,
    valid_frame_count,
)


@pytest.mark.parametrize(
    ("frames", "quantum", "expected"),
    [
        (1, 8, 1),
        (9, 8, 9),
        (10, 8, 17),
        (72, 8, 73),
        (120, 8, 121),
        (121, 8, 121),
        (72, 4, 73),
        (80, 4, 81),
    ],
)
def test_valid_frame_count_is_the_next_qk_plus_1(frames: int, quantum: int, expected: int) -> None:
    assert valid_frame_count(frames, quantum) == expected


@pytest.mark.parametrize("quantum", [4, 8])
@pytest.mark.parametrize("per_pass", [None, 17, 41, 121])
@pytest.mark.parametrize("frames", [1, 24, 72, 120, 121, 122, 360])
def test_pass_plans_cover_the_shot_with_valid_counts(frames: int, quantum: int, per_pass: int | None) -> None:
    plan = plan_passes(frames, quantum, per_pass)
    assert all((count - 1) % quantum == 0 for count in plan)
    new_frames = plan[0] + sum(count - 1 for count in plan[1:])  # later passes repeat one frame
    assert frames <= new_frames < frames + quantum + 1  # covered, with less than one quantum to trim
    if per_pass is None:
        assert len(plan) == 1
    else:
        assert max(plan) <= max_frames_per_pass(per_pass, quantum)


def test_a_long_ltx_shot_takes_several_passes() -> None:
    assert plan_passes(360, 8, 121) == [121, 121, 121]  # 121 + 120 + 120 = 361 ≥ 360
    assert plan_passes(72, 8, 41) == [41, 33]


def test_sizes() -> None:
    assert parse_resolution("1920x1080") == (1920, 1080)
    assert parse_resolution([1280, 720]) == (1280, 720)
    assert frame_size_for((1280, 720), "9:16") == (720, 1280)
    assert frame_size_for((1280, 720), "1:1") == (960, 960)
    assert frame_size_for((1920, 1080), "1:1") == (1440, 1440)
    assert render_size(1280, 720, 32) == (1280, 736)
    assert render_size(960, 960, 32) == (960, 960)


@pytest.mark.parametrize("bad", ["1280", "axb", "1281x720", "8x8", [1280], 1280, "1280x720x3"])
def test_bad_resolutions_say_what_is_wrong(bad: object) -> None:
    with pytest.raises(ValueError, match="resolution"):
        parse_resolution(bad)


def test_guidance_maps_cfg_scale_linearly() -> None:
    assert map_guidance(0.0, (1.0, 7.0)) == 1.0
    assert map_guidance(0.5, (1.0, 7.0)) == 4.0
    assert map_guidance(1.0, (1.0, 7.0)) == 7.0
    with pytest.raises(ValueError, match="cfg_scale"):
        map_guidance(1.5, (1.0, 7.0))
