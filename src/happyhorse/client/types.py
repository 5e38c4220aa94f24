"""The SDK's value types: :class:`Task` (what the API reports) and the request parts
:class:`Shot` and :class:`Element`."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

__all__ = ["AspectRatio", "Element", "Mode", "Shot", "Task", "TaskStatus"]

Mode = Literal["pro", "std"]
AspectRatio = Literal["16:9", "9:16", "1:1"]
TaskStatus = Literal["IN_PROGRESS", "SUCCESS", "FAILED"]

TERMINAL_STATUSES = frozenset({"SUCCESS", "FAILED"})


@dataclass(frozen=True)
class Shot:
    """One shot of a multi-shot video: its prompt (≤ 500 chars) and its length (1–12 s)."""

    prompt: str
    duration: int

    def to_wire(self) -> dict[str, Any]:
        """The shot as ``multi_prompt`` carries it."""
        return {"prompt": self.prompt, "duration": self.duration}


@dataclass(frozen=True)
class Element:
    """A reference subject: prompts name it as ``@name``; 2–4 image URLs show it."""

    name: str
    element_input_urls: Sequence[str]
    description: str | None = None

    def to_wire(self) -> dict[str, Any]:
        """The element as ``happyhorse_elements`` carries it (``description`` only when set)."""
        wire: dict[str, Any] = {"name": self.name, "element_input_urls": list(self.element_input_urls)}
        if self.description is not None:
            wire["description"] = self.description
        return wire


@dataclass(frozen=True)
class Task:
    """A video task as ``/api/status`` (or ``/api/generate``) reported it.

    Attributes:
        task_id: the task's id (``n92…``); keep it to check again later.
        status: ``IN_PROGRESS``, ``SUCCESS`` or ``FAILED``.
        consumed_credits: credits the task costs (0 once FAILED: refunded); ``None`` if not reported.
        created_at: when the task was accepted (UTC), if reported.
        type: ``text-to-video`` or ``image-to-video``, if reported.
        request: the request as the server accepted it (for a fresh task: as we sent it).
        video_url: ``response.resultUrls[0]`` once SUCCESS, else ``None``.
        error_message: why the task FAILED, else ``None``.
        progress: 0–100 when the server reports progress, else ``None``.
        seed: the seed the task renders with, when the server reports it (an extension).
        expires_at: when this server deletes the video (its retention), if it says.
        expired: the video was deleted (retention or ``delete_result``); the task stays SUCCESS.
        cancelled: the task was cancelled by the client (it reads FAILED, refunded).
        queue_position: 1 = next to start, while the task waits; ``None`` once it runs or ends.
        eta_seconds: the server's estimate of the seconds until the task finishes, if it has one.
        raw: the response's whole ``data`` object, for fields this class does not name.
    """

    task_id: str
    status: str
    consumed_credits: int | None = None
    created_at: datetime | None = None
    type: str | None = None
    request: dict[str, Any] = field(default_factory=dict)
    video_url: str | None = None
    error_message: str | None = None
    progress: float | None = None
    seed: int | None = None
    expires_at: datetime | None = None
    expired: bool = False
    cancelled: bool = False
    queue_position: int | None = None
    eta_seconds: int | None = None
    raw: dict[str, Any] = field(default_factory=dict, repr=False)

    @property
    def done(self) -> bool:
        """Whether the task reached a final state (SUCCESS or FAILED)."""
        return self.status in TERMINAL_STATUSES

    @property
    def succeeded(self) -> bool:
        """Whether the task ended SUCCESS."""
        return self.status == "SUCCESS"

    @property
    def failed(self) -> bool:
        """Whether the task ended FAILED."""
        return self.status == "FAILED"

    @classmethod
    def from_data(cls, data: Mapping[str, Any], *, sent: Mapping[str, Any] | None = None) -> Task:
        """Build a task from an envelope's ``data``; be lenient, since any HappyHorse server may answer.

        ``sent`` is the request we sent, used as ``request`` when the server does not echo one
        (``/api/generate`` answers only ``task_id`` and ``status``).
        """
        response = data.get("response")
        urls = response.get("resultUrls") if isinstance(response, Mapping) else None
        video_url = urls[0] if isinstance(urls, list) and urls and isinstance(urls[0], str) else None
        request = data.get("request")
        if not isinstance(request, Mapping):
            request = sent or {}
        return cls(
            task_id=str(data.get("task_id", "")),
            status=str(data.get("status", "")),
            consumed_credits=_int_or_none(data.get("consumed_credits")),
            created_at=_parse_time(data.get("created_at")),
            type=data.get("type") if isinstance(data.get("type"), str) else None,
            request=dict(request),
            video_url=video_url,
            error_message=data.get("error_message") if isinstance(data.get("error_message"), str) else None,
            progress=_float_or_none(data.get("progress")),
            seed=_int_or_none(data.get("seed")),
            expires_at=_parse_time(data.get("expires_at")),
            expired=data.get("expired") is True,
            cancelled=data.get("cancelled") is True,
            queue_position=_int_or_none(data.get("queue_position")),
            eta_seconds=_int_or_none(data.get("eta_seconds")),
            raw=dict(data),
        )


def _int_or_none(value: Any) -> int | None:
    # bool is an int subclass; a server sending `true` here means nothing numeric.
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return int(value)


def _float_or_none(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def _parse_time(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        return datetime.fromisoformat(value)  # Python 3.11 reads the trailing "Z"
    except ValueError:
        return None
