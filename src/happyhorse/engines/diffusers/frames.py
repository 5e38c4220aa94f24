"""Frame arithmetic for the diffusers engine: sizes, valid frame counts and pass plans. Torch-free.

A video model renders a frame count it was built for — ``q·k + 1`` frames, where ``q`` is the VAE's
temporal compression (8 for LTX-2, 4 for Wan) — at a size that is a multiple of its spatial
stride. A shot asks for any count at 24 fps and any even size, so the engine renders the nearest
valid shape that covers the request and trims it back. A shot longer than one pass is rendered as
several passes, each starting from the last frame of the one before (that frame is then dropped,
so it is not shown twice).
"""

from __future__ import annotations

import math

ASPECT_RATIOS = ("16:9", "9:16", "1:1")


def parse_resolution(value: object) -> tuple[int, int]:
    """``"1280x720"`` or ``[1280, 720]`` → (1280, 720); even sides of at least 16 pixels."""
    if isinstance(value, str):
        parts = value.lower().replace("×", "x").split("x")
        if len(parts) != 2 or not all(p.strip().isdigit() for p in parts):
            raise ValueError(f"resolution must look like '1280x720', got {value!r}")
        width, height = (int(p) for p in parts)
    elif isinstance(value, list | tuple) and len(value) == 2 and all(type(v) is int for v in value):
        width, height = value
    else:
        raise ValueError(f"resolution must be 'WIDTHxHEIGHT' or [width, height], got {value!r}")
    if width < 16 or height < 16 or width % 2 or height % 2:
        raise ValueError(f"resolution sides must be even and at least 16, got {width}x{height}")
    return width, height


def frame_size_for(resolution: tuple[int, int], aspect_ratio: str) -> tuple[int, int]:
    """The (width, height) for an aspect ratio, from the 16:9 ``resolution`` of a profile.

    9:16 swaps the sides; 1:1 keeps the pixel count (1280x720 → 960x960). Sides stay even, as
    H.264 needs.
    """
    width, height = resolution
    if aspect_ratio == "16:9":
        return width, height
    if aspect_ratio == "9:16":
        return height, width
    if aspect_ratio == "1:1":
        side = 2 * round(math.sqrt(width * height) / 2)
        return side, side
    raise ValueError(f"aspect_ratio must be one of {', '.join(ASPECT_RATIOS)}, got {aspect_ratio!r}")


def render_size(width: int, height: int, multiple: int) -> tuple[int, int]:
    """The smallest size a model with spatial stride ``multiple`` renders that covers width×height."""
    if multiple < 1:
        raise ValueError(f"spatial multiple must be positive, got {multiple}")
    return math.ceil(width / multiple) * multiple, math.ceil(height / multiple) * multiple


def valid_frame_count(frames: int, quantum: int) -> int:
    """The smallest ``quantum·k + 1`` that is at least ``frames`` (73 → 81 for LTX-2's 8k+1)."""
    if frames < 1 or quantum < 1:
        raise ValueError(f"frames and quantum must be positive, got {frames} and {quantum}")
    return quantum * math.ceil((frames - 1) / quantum) + 1


def max_frames_per_pass(limit: int, quantum: int) -> int:
    """The largest valid count not above ``limit`` (at least ``quantum + 1``)."""
    return max(quantum * ((limit - 1) // quantum) + 1, quantum + 1)


def plan_passes(num_frames: int, quantum: int, per_pass: int | None) -> list[int]:
    """Frame counts of the passes that render ``num_frames`` frames.

    Every count is valid for the model. Pass 1 renders up to ``per_pass`` frames; each later pass
    starts on the last frame of the previous one, so it adds ``count - 1`` new frames. The sum of
    new frames is at least ``num_frames``; the engine trims the surplus. ``per_pass=None`` means
    one pass, whatever its length (for models that cannot continue from a frame).
    """
    if num_frames < 1:
        raise ValueError(f"a shot needs at least one frame, got {num_frames}")
    if per_pass is None:
        return [valid_frame_count(num_frames, quantum)]
    cap = max_frames_per_pass(per_pass, quantum)
    first = min(cap, valid_frame_count(num_frames, quantum))
    passes = [first]
    remaining = num_frames - first
    while remaining > 0:
        count = min(cap, valid_frame_count(remaining + 1, quantum))
        passes.append(count)
        remaining -= count - 1
    return passes


def map_guidance(cfg_scale: float, guidance: tuple[float, float]) -> float:
    """The contract's ``cfg_scale`` (0..1) mapped linearly onto a profile's guidance range."""
    if not 0.0 <= cfg_scale <= 1.0:
        raise ValueError(f"cfg_scale must be within 0..1, got {cfg_scale}")
    low, high = guidance
    return low + cfg_scale * (high - low)
