"""The engine seam: one shot in, frames (+ audio) out.

Everything around an engine — multi-shot assembly, first/last frames, elements, audio mux,
encoding, storage — is shared (``worker.render``), so every engine gets every contract feature.
Engines run only inside an engine process (``worker.engine_process``), never in the API process.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

FPS = 24
AUDIO_SAMPLE_RATE = 48_000

# (mode, aspect_ratio) -> (width, height). std is 720p-class, pro 1080p-class; 1:1 keeps the pixel count.
FRAME_SIZES: dict[tuple[str, str], tuple[int, int]] = {
    ("std", "16:9"): (1280, 720),
    ("std", "9:16"): (720, 1280),
    ("std", "1:1"): (960, 960),
    ("pro", "16:9"): (1920, 1080),
    ("pro", "9:16"): (1080, 1920),
    ("pro", "1:1"): (1440, 1440),
}

Progress = Callable[[float], None]
"""Called with the fraction (0..1) of the current shot that is done."""


@dataclass
class Element:
    """A reference subject the prompt names as ``@name``; images are decoded RGB uint8 arrays."""

    name: str
    description: str
    images: list[np.ndarray]

    def reference(self) -> re.Pattern[str]:
        """``@name`` as a whole word: ``@cat`` is not a reference to ``ca``, and ``@cat.`` is to ``cat``.
        The one rule every engine uses to find an element in a prompt."""
        return re.compile(rf"@{re.escape(self.name)}(?![A-Za-z0-9_])")

    def mentioned_in(self, prompt: str) -> bool:
        return self.reference().search(prompt) is not None


@dataclass
class Shot:
    """One continuous camera take, as an engine sees it."""

    index: int
    prompt: str  # the full prompt for this shot (shared context + shot prompt)
    num_frames: int
    width: int
    height: int
    seed: int
    cfg_scale: float = 0.5  # 0..1, the contract's prompt adherence
    negative_prompt: str | None = None
    sound: bool = True
    mode: str = "std"
    first_frame: np.ndarray | None = None  # (H, W, 3) uint8, already fitted to the frame
    last_frame: np.ndarray | None = None
    elements: list[Element] = field(default_factory=list)
    fps: int = FPS
    task_seed: int | None = None  # the seed the task reports (``seed`` differs on shots after the first)

    @property
    def duration(self) -> float:
        return self.num_frames / self.fps


@dataclass
class Clip:
    """What an engine returns for a shot.

    ``frames`` yields exactly ``shot.num_frames`` arrays of shape (H, W, 3), uint8; it may be a
    generator so that long, large shots never sit in memory whole. ``audio`` is float32 of shape
    (channels, samples) in [-1, 1] at ``sample_rate``, or None when the engine makes no sound.
    """

    frames: Iterable[np.ndarray]
    audio: np.ndarray | None = None
    sample_rate: int = AUDIO_SAMPLE_RATE


class Engine(Protocol):
    name: str

    def load(self) -> None:
        """Load weights once; the engine process keeps the engine warm between tasks."""

    def frame_size(self, mode: str, aspect_ratio: str) -> tuple[int, int]:
        """The (width, height) this engine renders for a mode and aspect ratio."""

    def render(self, shot: Shot, progress: Progress) -> Clip:
        """Render one shot. Raise ``EngineError`` with a human message on a known failure."""


class EngineError(Exception):
    """A failure the user may see as the task's ``error_message`` (no stack trace, no internals)."""


class RenderCancelled(Exception):
    """The task was cancelled mid-render: raised from the progress callback, between frame batches
    (synthetic) or denoising steps (diffusers). Engines free their memory and let it through."""
