"""OpenAI Videos' shapes, translated to and from the task contract that ``/api/`` speaks.

Inbound: ``read_create_body`` reads a create body (JSON, or multipart with an ``input_reference`` file)
and ``public_body`` turns its fields into the ``/api/generate`` body they mean (``model``, ``size`` and
``seconds`` become mode, aspect ratio and duration). Outbound: ``video_object`` renders a task as an
OpenAI ``video``. Pure translation: no storage, no admission; the routes in ``openai.py`` do those.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any

from fastapi import Request
from starlette.datastructures import UploadFile

from happyhorse.config import Settings
from happyhorse.contract import MODEL_NAME, check_storable, coerce_int, loads_request_body
from happyhorse.engines.base import FRAME_SIZES
from happyhorse.server.compat.openai_errors import invalid
from happyhorse.store.models import Task

DEFAULT_SIZE = "720x1280"  # OpenAI's default
DEFAULT_SECONDS = "4"  # OpenAI's default
MAX_FORM_BYTES_OVERHEAD = 64 * 1024
# size → (aspect ratio, the mode it implies when the model name does not pick one): the engines' frame sizes
SIZES = {f"{w}x{h}": (ratio, mode) for (mode, ratio), (w, h) in FRAME_SIZES.items()}
RENDERED = {(ratio, mode): size for size, (ratio, mode) in SIZES.items()}
STATUS = {
    "QUEUED": "queued",
    "RUNNING": "in_progress",
    "SUCCESS": "completed",
    "FAILED": "failed",
    "CANCELLED": "failed",
}


# --- the model names -------------------------------------------------------------------------


def model_modes(settings: Settings) -> dict[str, str | None]:
    """``happyhorse-1.0/video`` (mode from size) and HAPPYHORSE_OPENAI_MODELS' names (mode fixed)."""
    names: dict[str, str | None] = {MODEL_NAME: None}
    for item in settings.openai_models.split(","):
        name, _, mode = item.strip().partition("=")
        if name.strip() and mode.strip() in ("std", "pro"):
            names[name.strip()] = mode.strip()
    return names


# --- the video object ------------------------------------------------------------------------


def unix(moment: datetime | None) -> int | None:
    return int(moment.astimezone(UTC).timestamp()) if moment else None


def video_object(task: Task, settings: Settings) -> dict[str, Any]:
    echo = task.request if isinstance(task.request, dict) else {}
    meta: dict[str, Any] = echo.get("openai") or {} if isinstance(echo.get("openai"), dict) else {}
    ratio = str(echo.get("aspect_ratio") or "16:9")
    size = f"{task.width}x{task.height}" if task.width and task.height else RENDERED.get((ratio, task.mode), "")
    status = STATUS[str(task.status)]
    error = None
    if task.status == "FAILED":
        error = {"code": "generation_failed", "message": task.error_message or "the render failed"}
    elif task.status == "CANCELLED":
        error = {"code": "cancelled", "message": task.error_message or "cancelled"}
    expires = None
    if task.status == "SUCCESS" and task.completed_at and settings.result_retention > 0:
        expires = unix(task.completed_at + timedelta(seconds=settings.result_retention))
    return {
        "id": task.id,
        "object": "video",
        "status": status,
        "progress": 100 if task.status == "SUCCESS" else int(task.progress or 0),
        "created_at": unix(task.created_at),
        "completed_at": unix(task.completed_at),
        "expires_at": expires,
        "model": str(meta.get("model") or MODEL_NAME),
        "seconds": str(task.duration),
        "size": size,
        "prompt": task.prompt,
        "error": error,
        "remixed_from_video_id": None,
    }


# --- the create body -------------------------------------------------------------------------


async def read_create_body(request: Request, settings: Settings) -> tuple[dict[str, Any], bytes | None]:
    """The fields and, for multipart, the ``input_reference`` file's bytes."""
    content_type = request.headers.get("content-type", "")
    # room for the image as a file, or as a base64 data URL (4/3 its size) in input_reference[image_url]
    limit = settings.fetch_max_bytes * 4 // 3 + MAX_FORM_BYTES_OVERHEAD
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise invalid("the request body is too large", "input_reference")
    raw = bytearray()
    async for chunk in request.stream():
        raw += chunk
        if len(raw) > limit:
            raise invalid("the request body is too large", "input_reference")
    if content_type.startswith(("multipart/form-data", "application/x-www-form-urlencoded")):
        fields, data = await _read_form(request, bytes(raw), limit)
        check_storable(fields)  # a form field may carry a NUL, as a JSON string may not
        return fields, data
    if not raw.strip():
        raise invalid("the body must be a JSON object or multipart/form-data")
    # strict, as on /api/generate: no NaN/Infinity, lone surrogates or nesting deeper than 64 levels
    body = loads_request_body(bytes(raw))
    if not isinstance(body, dict):
        raise invalid("the body must be a JSON object or multipart/form-data")
    return body, None


async def _read_form(request: Request, raw: bytes, limit: int) -> tuple[dict[str, Any], bytes | None]:
    async def receive() -> dict[str, object]:
        return {"type": "http.request", "body": raw, "more_body": False}

    try:
        form = await Request(request.scope, receive=receive).form(max_files=1, max_fields=20, max_part_size=limit)
    except Exception:  # python-multipart raises several types for a malformed body
        raise invalid("could not read the multipart body") from None
    fields: dict[str, Any] = {}
    data: bytes | None = None
    for name, value in form.multi_items():
        if isinstance(value, UploadFile):
            if name != "input_reference":
                raise invalid(f"unexpected file field {name!r}", name)
            data = await value.read()
        elif name.startswith("input_reference[") and name.endswith("]"):
            fields.setdefault("input_reference", {})[name[len("input_reference[") : -1]] = value
        else:
            fields[name] = value
    return fields, data


def _text(body: dict[str, Any], name: str, default: str | None = None) -> str | None:
    value = body.get(name)
    if value is None:
        return default
    if isinstance(value, int) and not isinstance(value, bool) and name == "seconds":
        return str(value)
    if not isinstance(value, str):
        raise invalid(f"{name} must be a string", name, "invalid_type")
    return value


_SIZE = re.compile(r"([1-9][0-9]{1,3})x([1-9][0-9]{1,3})")
_RATIOS = {"16:9": 16 / 9, "9:16": 9 / 16, "1:1": 1.0}


def size_choice(size: str) -> tuple[str, str] | None:
    """(aspect ratio, mode) for an OpenAI ``size``: one of the engines' frame sizes as it is, or any ``WxH``
    within 3% of a ratio they render (OpenAI's 1792x1024 is 1.75 to 16:9's 1.78), pro when its longer side
    is over 1280 (std's longest); None when no ratio is near."""
    if size in SIZES:
        return SIZES[size]
    match = _SIZE.fullmatch(size)
    if match is None:
        return None
    width, height = int(match.group(1)), int(match.group(2))
    for ratio, value in _RATIOS.items():
        if abs(width / height - value) <= 0.03 * value:
            return ratio, "pro" if max(width, height) > 1280 else "std"
    return None


def public_body(fields: dict[str, Any], settings: Settings, image_url: str | None) -> dict[str, Any]:
    """The ``/api/generate`` body these OpenAI fields mean (``parse_generate`` then checks it)."""
    modes = model_modes(settings)
    model = _text(fields, "model", MODEL_NAME) or MODEL_NAME
    if model not in modes:
        raise invalid(f"model must be one of {', '.join(repr(m) for m in modes)}", "model", "model_not_found")
    size = _text(fields, "size", DEFAULT_SIZE) or DEFAULT_SIZE
    choice = size_choice(size)
    if choice is None:
        raise invalid(
            f"size must be WxH in 16:9, 9:16 or 1:1, e.g. {', '.join(SIZES)} (a longer side over 1280 renders "
            "pro, as OpenAI's 1792x1024 and 1024x1792 do; the video comes at the engine's frame size)",
            "size",
            "invalid_size",
        )
    ratio, size_mode = choice
    seconds = _text(fields, "seconds", DEFAULT_SECONDS) or DEFAULT_SECONDS
    duration = coerce_int(seconds)  # ASCII digits, at most nine of them: 5,000 digits are a 400, not a 500
    if duration is None or not 3 <= duration <= 15:
        raise invalid('seconds must be a whole number of seconds from "3" to "15"', "seconds")
    prompt = _text(fields, "prompt")
    body: dict[str, Any] = {
        "model": MODEL_NAME,
        "prompt": prompt,
        "mode": modes[model] or size_mode,
        "duration": duration,
        "aspect_ratio": ratio,
        "sound": True,
    }
    if image_url is not None:
        body["image_urls"] = [image_url]
    body["openai"] = {"model": model, "size": size}
    return body


def reference_url(fields: dict[str, Any]) -> str | None:
    """A JSON ``input_reference``: ``{"image_url": ...}`` (``file_id`` needs a Files API this server lacks).
    The URL may be a ``data:`` URL, as OpenAI allows; ``create_video`` keeps its bytes as an upload."""
    ref = fields.get("input_reference")
    if ref is None:
        return None
    if isinstance(ref, dict):
        if ref.get("file_id"):
            raise invalid(
                "input_reference.file_id is not supported here: upload the image as a file, or give "
                "input_reference.image_url",
                "input_reference",
                "unsupported_parameter",
            )
        url = ref.get("image_url")
        if isinstance(url, str) and url:
            return url
    raise invalid('input_reference must be an image file (multipart) or {"image_url": ...}', "input_reference")
