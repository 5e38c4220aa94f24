"""Pydantic models that document the wire contract in OpenAPI (``/docs``).

They describe; they never validate. ``POST /api/generate`` reads the raw JSON body and hands it to
``contract.parse_generate``, so a bad body always answers with the contract's 400 envelope and
never with FastAPI's default 422. Every limit and default here is read from ``contract.py``, so the
schema cannot drift from what the API enforces.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from happyhorse.contract import (
    ASPECT_RATIOS,
    CFG_SCALE_RANGE,
    DEFAULT_ASPECT_RATIO,
    DEFAULT_CFG_SCALE,
    DEFAULT_DURATION,
    DEFAULT_MODE,
    DURATION_RANGE,
    ELEMENT_NAME_MAX,
    ELEMENT_NAME_PATTERN,
    ELEMENT_URLS_RANGE,
    MAX_ELEMENTS,
    MAX_IMAGES,
    MAX_IMAGES_MULTI_SHOT,
    MAX_SHOTS,
    MODEL_NAME,
    MODES,
    PROMPT_MAX,
    SEED_MAX,
    SHOT_DURATION_RANGE,
    SHOT_PROMPT_MAX,
)

_SHOT_LOW, _SHOT_HIGH = SHOT_DURATION_RANGE
_LOW, _HIGH = DURATION_RANGE
_URLS_LOW, _URLS_HIGH = ELEMENT_URLS_RANGE
_CFG_LOW, _CFG_HIGH = CFG_SCALE_RANGE

TaskStatus = Literal["IN_PROGRESS", "SUCCESS", "FAILED"]


class ShotBody(BaseModel):
    """One shot of a multi-shot request."""

    prompt: str = Field(
        description=f"What happens in this shot; not blank, at most {SHOT_PROMPT_MAX} characters.",
        max_length=SHOT_PROMPT_MAX,
        examples=["A woman walks into a coffee shop"],
    )
    duration: int = Field(
        description=f"Seconds, {_SHOT_LOW}–{_SHOT_HIGH}. Integer-valued numbers (3.0) and digit strings "
        '("3") are accepted.',
        ge=_SHOT_LOW,
        le=_SHOT_HIGH,
        examples=[3],
    )


class ElementBody(BaseModel):
    """A reference subject (a person, a product…) that prompts name as ``@name``."""

    name: str = Field(
        description=f"1–{ELEMENT_NAME_MAX} letters, digits or underscores; unique in the task. Write `@name` "
        "in a prompt to refer to it (an `@word` that names no element is just text).",
        pattern=f"^{ELEMENT_NAME_PATTERN}$",
        examples=["element_dog"],
    )
    description: str | None = Field(
        default=None, description="Optional words about the subject.", examples=["a small brown terrier"]
    )
    element_input_urls: list[str] = Field(
        description=f"{_URLS_LOW}–{_URLS_HIGH} http(s) image URLs of the subject. Alias: `images` (send one "
        "of the two).",
        min_length=_URLS_LOW,
        max_length=_URLS_HIGH,
        examples=[["https://example.com/dog-1.jpg", "https://example.com/dog-2.jpg"]],
    )


class GenerateBody(BaseModel):
    """The body of ``POST /api/generate``: a flat JSON object.

    Unknown fields are ignored and a field sent as `null` counts as absent. When a request has several
    faults the first in this order answers: model, prompt, duration, then the other fields.
    """

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "model": MODEL_NAME,
                    "prompt": "A majestic eagle soaring through clouds at sunset",
                    "mode": "pro",
                    "duration": 5,
                    "aspect_ratio": "16:9",
                    "sound": True,
                },
                {
                    "model": MODEL_NAME,
                    "mode": "pro",
                    "multi_shots": True,
                    "sound": True,
                    "duration": 10,
                    "multi_prompt": [
                        {"prompt": "A woman walks into a coffee shop", "duration": 3},
                        {"prompt": "She orders a latte and sits by the window", "duration": 4},
                        {"prompt": "She looks outside and smiles", "duration": 3},
                    ],
                    "aspect_ratio": "16:9",
                },
            ]
        }
    )

    model: Literal["happyhorse-1.0/video"] = Field(
        description=f"Required; exactly `{MODEL_NAME}` (else 400 INVALID_MODEL).", examples=[MODEL_NAME]
    )
    prompt: str | None = Field(
        default=None,
        description=f"What the video shows; not blank, at most {PROMPT_MAX} characters (else 400 "
        "INVALID_PROMPT). Required unless `multi_shots` is true; then it is optional shared context "
        "for every shot and may be blank.",
        max_length=PROMPT_MAX,
        examples=["A cinematic shot of mountains at sunrise"],
    )
    mode: str = Field(
        default=DEFAULT_MODE,
        description="Quality: `std` (720p-class) or `pro` (1080p-class).",
        examples=["pro"],
        json_schema_extra={"enum": list(MODES)},
    )
    duration: int | None = Field(
        default=None,
        description=f"Seconds, {_LOW}–{_HIGH} (else 400 INVALID_DURATION); default {DEFAULT_DURATION}. "
        'Integer-valued numbers (5.0) and digit strings ("5") are accepted; 5.5, true and "five" are not. '
        "Multi-shot: defaults to the sum of the shot durations, and if sent must equal it.",
        ge=_LOW,
        le=_HIGH,
        examples=[5],
    )
    aspect_ratio: str = Field(
        default=DEFAULT_ASPECT_RATIO,
        description="Output shape. With `image_urls` the output follows the first image instead: the "
        "nearest of the three on a log scale (ties: 16:9 for landscape, 9:16 for portrait).",
        examples=["16:9"],
        json_schema_extra={"enum": list(ASPECT_RATIOS)},
    )
    image_urls: list[str] | None = Field(
        default=None,
        description=f"http(s) image URLs for image-to-video. Single-shot: at most {MAX_IMAGES} (first frame, "
        f"last frame). Multi-shot: at most {MAX_IMAGES_MULTI_SHOT} (first frame of the first shot).",
        max_length=MAX_IMAGES,
        examples=[["https://example.com/my-image.jpg"]],
    )
    sound: bool = Field(
        default=True,
        description="Generate an audio track. Multi-shot requests must send it explicitly.",
        examples=[True],
    )
    cfg_scale: float = Field(
        default=DEFAULT_CFG_SCALE,
        ge=_CFG_LOW,
        le=_CFG_HIGH,
        description=f"Prompt adherence, {_CFG_LOW:g}–{_CFG_HIGH:g}; higher follows the prompt more closely.",
        examples=[0.5],
    )
    multi_shots: bool = Field(default=False, description="Multi-shot mode: render `multi_prompt` in order.")
    multi_prompt: list[ShotBody] | None = Field(
        default=None,
        description=f"Required when `multi_shots` is true: 1–{MAX_SHOTS} shots. The shot durations must add "
        f"up to {_LOW}–{_HIGH} seconds. With `multi_shots` false it is not rendered, but still held to "
        "these limits.",
        min_length=1,
        max_length=MAX_SHOTS,
    )
    happyhorse_elements: list[ElementBody] | None = Field(
        default=None,
        description=f"At most {MAX_ELEMENTS} reference subjects. Aliases: `kling_elements`, `elements` (send "
        "only one of the three names).",
        max_length=MAX_ELEMENTS,
    )
    seed: int | None = Field(
        default=None,
        ge=0,
        le=SEED_MAX,
        description="Extension. Absent: the server picks one and reports it in the status. The same "
        "seed with the same request renders the same video.",
        examples=[42],
    )
    negative_prompt: str | None = Field(
        default=None,
        max_length=PROMPT_MAX,
        description=f"Extension. What the video should avoid; at most {PROMPT_MAX} characters.",
        examples=["blurry, low quality"],
    )


# --- responses -------------------------------------------------------------------------------


class Envelope(BaseModel):
    code: int = Field(default=200, description="The HTTP status, repeated.", examples=[200])
    message: str = Field(default="success", examples=["success"])


class GenerateData(BaseModel):
    task_id: str = Field(
        description="`n92` followed by at least 12 lowercase letters/digits.", examples=["n92abc123hh10xyz"]
    )
    status: Literal["IN_PROGRESS"] = "IN_PROGRESS"


class GenerateResponse(Envelope):
    data: GenerateData


class TaskResult(BaseModel):
    resultUrls: list[str] = Field(
        description="Absolute URLs of the MP4 (H.264, 24 fps, AAC when `sound`); `resultUrls[0]` plays in "
        "a `<video>` tag without an Authorization header and honours Range requests.",
        examples=[["https://cdn.example.com/videos/abc123.mp4"]],
    )
    width: int | None = Field(default=None, description="Extension: pixels.", examples=[1920])
    height: int | None = Field(default=None, description="Extension: pixels.", examples=[1080])
    duration: float | None = Field(default=None, description="Extension: seconds.", examples=[5.0])
    has_audio: bool | None = Field(default=None, description="Extension: whether it has a sound track.")


class StatusData(BaseModel):
    task_id: str = Field(examples=["n92abc123hh10xyz"])
    status: TaskStatus
    consumed_credits: int = Field(
        description="The cost while IN_PROGRESS and after SUCCESS; 0 after FAILED (refunded).", examples=[400]
    )
    created_at: str = Field(description="ISO 8601 UTC.", examples=["2026-04-08T10:30:00Z"])
    type: Literal["text-to-video", "image-to-video"]
    request: dict[str, Any] = Field(
        description="The accepted request as the client sent it (known fields only).",
        examples=[{"model": MODEL_NAME, "prompt": "A majestic eagle", "mode": "pro", "duration": 5}],
    )
    response: TaskResult | None = Field(default=None, description="null until SUCCESS.")
    error_message: str | None = Field(default=None, description="null unless FAILED; then a human reason.")
    seed: int = Field(
        description="Extension: the seed the task renders with (send it back to reproduce the video).",
        examples=[42],
    )
    progress: int | None = Field(default=None, ge=0, le=100, description="Extension: percent done.")
    updated_at: str | None = Field(default=None, description="Extension: ISO 8601 UTC.")
    completed_at: str | None = Field(default=None, description="Extension: ISO 8601 UTC, once final.")


class StatusResponse(Envelope):
    data: StatusData


class CreditsData(BaseModel):
    balance: int = Field(description="Credits left on the key's account.", examples=[10_000])


class CreditsResponse(Envelope):
    data: CreditsData


class ErrorResponse(BaseModel):
    code: int = Field(description="The HTTP status, repeated.", examples=[400])
    message: str = Field(
        description="A human message naming the offending field.",
        examples=["duration must be an integer from 3 to 15"],
    )
    error_code: str = Field(
        description="INVALID_PROMPT, INVALID_DURATION, INVALID_MODEL, INVALID_REQUEST, INVALID_API_KEY, "
        "INSUFFICIENT_CREDITS, TASK_NOT_FOUND, RATE_LIMITED or INTERNAL_ERROR; the extensions add NOT_FOUND, "
        "METHOD_NOT_ALLOWED, IDEMPOTENCY_CONFLICT, TASK_NOT_CANCELLABLE, TASK_NOT_FINISHED and REQUEST_TOO_LARGE.",
        examples=["INVALID_DURATION"],
    )
    data: None = None
