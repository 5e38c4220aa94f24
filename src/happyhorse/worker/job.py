"""The picklable description of one render, sent from the dispatcher to an engine process."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class ShotSpec:
    prompt: str  # full prompt for the shot (shared context already joined in)
    duration: int  # seconds


@dataclass
class ElementSpec:
    name: str
    description: str
    images: list[bytes]  # raw bytes as fetched; decoded in the engine process


@dataclass
class RenderJob:
    task_id: str
    attempt: int
    output_path: str  # where the engine process writes the finished MP4
    mode: str  # std | pro
    aspect_ratio: str  # after auto-adapting to the first image
    sound: bool
    seed: int
    cfg_scale: float
    negative_prompt: str | None
    shots: list[ShotSpec]
    first_image: bytes | None = None  # first frame of the first shot
    last_image: bytes | None = None  # last frame of the (single) shot
    elements: list[ElementSpec] = field(default_factory=list)
    watermark: bool = False  # stamp the visible mark (media/watermark.py) on every frame


@dataclass
class RenderResult:
    width: int
    height: int
    duration: float  # seconds of video actually written
    num_frames: int
    has_audio: bool
