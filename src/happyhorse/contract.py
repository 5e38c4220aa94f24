"""The wire contract of ``POST /api/generate``: the parsed request and its validation.

``parse_generate`` takes the decoded JSON body exactly as the client sent it and either returns a
``GenerateRequest`` or raises the ``errors.InvalidRequest`` subclass the contract names, checking in
the contract's order: body shape, model, prompt, duration, then every other field.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

MODEL_NAME = "happyhorse-1.0/video"


@dataclass
class ShotPrompt:
    prompt: str
    duration: int


@dataclass
class ElementInput:
    name: str
    description: str
    urls: list[str]


@dataclass
class GenerateRequest:
    model: str
    prompt: str | None
    mode: str  # "std" | "pro"
    duration: int  # total seconds (sum of shots when multi-shot)
    aspect_ratio: str  # as requested (the worker adapts it to the first image)
    image_urls: list[str]
    sound: bool
    cfg_scale: float
    multi_shots: bool
    multi_prompt: list[ShotPrompt]
    elements: list[ElementInput]
    seed: int | None
    negative_prompt: str | None
    echo: dict[str, Any] = field(default_factory=dict)  # accepted request as sent, known fields only

    @property
    def type(self) -> str:
        return "image-to-video" if self.image_urls else "text-to-video"


def parse_generate(body: Any) -> GenerateRequest:
    raise NotImplementedError
