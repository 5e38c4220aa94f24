"""The picklable description of one render, sent from the dispatcher to an engine process.

A ``RenderJob`` carries the parsed request itself (``contract.GenerateRequest``), not a copy of
its fields: a new request field reaches the renderer (``worker/render.py``) and the engines with
no change here. Beside it the job holds only what the worker decided for this attempt: where the
file goes, the resolved seed, the aspect ratio after adapting to the first image, the framed
shots, and the fetched input bytes.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from happyhorse.contract import DEFAULT_CFG_SCALE, MODEL_NAME, GenerateRequest


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
    request: GenerateRequest  # the request as accepted: every field a client can send
    aspect_ratio: str  # after auto-adapting to the first image
    seed: int  # the task's seed (resolved when the client sent none)
    shots: list[ShotSpec]
    first_image: bytes | None = None  # first frame of the first shot
    last_image: bytes | None = None  # last frame of the (single) shot
    elements: list[ElementSpec] = field(default_factory=list)

    # The request's fields the renderer reads most, by their plain names.
    @property
    def mode(self) -> str:
        return self.request.mode

    @property
    def sound(self) -> bool:
        return self.request.sound

    @property
    def cfg_scale(self) -> float:
        return self.request.cfg_scale

    @property
    def negative_prompt(self) -> str | None:
        return self.request.negative_prompt

    @property
    def watermark(self) -> bool:
        return self.request.watermark


def plain_request(
    mode: str = "std",
    sound: bool = True,
    cfg_scale: float = DEFAULT_CFG_SCALE,
    negative_prompt: str | None = None,
    watermark: bool = False,
) -> GenerateRequest:
    """A request for a job built outside the runner (benchmarks, tests), which give the shots
    themselves: the prompt and duration live in ``RenderJob.shots`` there."""
    return GenerateRequest(
        model=MODEL_NAME,
        prompt=None,
        mode=mode,
        duration=0,
        aspect_ratio="16:9",
        image_urls=[],
        sound=sound,
        cfg_scale=cfg_scale,
        multi_shots=False,
        multi_prompt=[],
        elements=[],
        seed=None,
        negative_prompt=negative_prompt,
        watermark=watermark,
    )


@dataclass
class RenderResult:
    width: int
    height: int
    duration: float  # seconds of video actually written
    num_frames: int
    has_audio: bool
