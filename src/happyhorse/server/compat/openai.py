"""OpenAI Videos under ``/v1/``: a thin adapter onto the same task service as ``/api/``.

    POST   /v1/videos                 create (JSON, or multipart with an ``input_reference`` image)
    GET    /v1/videos                 list (``after`` = a video id, ``limit``, ``order`` asc|desc)
    GET    /v1/videos/{id}            retrieve
    DELETE /v1/videos/{id}            delete the video file (the task stays, as on ``DELETE /api/tasks/{id}``)
    GET    /v1/videos/{id}/content    ``variant=video`` (MP4, Range honoured on local storage) or ``thumbnail`` (JPEG)
    POST   /v1/videos/{id}/cancel     cancel a queued or running task (refunded)

The same keys, credits, rate limits, Idempotency-Key and engines; a video here is a task on ``/api/status``.
Errors leave as ``{"error": {"message", "type", "param", "code"}}`` with the statuses the ``openai`` SDK maps
to its exception classes. See docs/compat.md for every field.
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import io
import logging
import re
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import FileResponse, JSONResponse, Response, StreamingResponse
from starlette.datastructures import UploadFile

from happyhorse.config import Settings
from happyhorse.contract import (
    MODEL_NAME,
    GenerateRequest,
    check_storable,
    coerce_int,
    loads_request_body,
    parse_generate,
)
from happyhorse.engines.base import FRAME_SIZES
from happyhorse.errors import (
    ApiError,
    Conflict,
    InsufficientCredits,
    InvalidApiKey,
    InvalidDuration,
    InvalidModel,
    InvalidPrompt,
    InvalidRequest,
    NotFound,
    RateLimited,
    RequestTooLarge,
    TaskNotFound,
)
from happyhorse.server.auth import authenticate
from happyhorse.server.compat.data_urls import BadDataUrl, decode_data_url, is_data_url
from happyhorse.server.routes_api import base_url
from happyhorse.server.services import services
from happyhorse.server.submit import admit, idempotency_key
from happyhorse.storage.uploads import UploadStore
from happyhorse.store import task_pages
from happyhorse.store import tasks as task_repo
from happyhorse.store.models import Task

router = APIRouter(prefix="/v1", tags=["OpenAI Videos"])
log = logging.getLogger(__name__)

DEFAULT_SIZE = "720x1280"  # OpenAI's default
DEFAULT_SECONDS = "4"  # OpenAI's default
DEFAULT_LIMIT, MAX_LIMIT = 20, 100
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


class OpenAIError(Exception):
    """An error in OpenAI's shape; ``param`` names the offending field."""

    def __init__(
        self,
        status: int,
        message: str,
        type_: str = "invalid_request_error",
        code: str | None = None,
        param: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status, self.message, self.type, self.code, self.param = status, message, type_, code, param
        self.headers = headers or {}


def invalid(message: str, param: str | None = None, code: str = "invalid_value") -> OpenAIError:
    return OpenAIError(400, message, code=code, param=param)


# Which body field each contract error is about.
PARAM_OF = {InvalidModel: "model", InvalidPrompt: "prompt", InvalidDuration: "seconds"}


def from_api_error(exc: ApiError) -> OpenAIError:
    """The project's error as OpenAI would say it. 402 becomes 429 ``insufficient_quota`` (what OpenAI
    answers an account out of credit), with ``x-should-retry: false`` so the SDK does not retry it."""
    no_retry = {"x-should-retry": "false"}
    if isinstance(exc, InsufficientCredits):
        return OpenAIError(429, exc.message, "insufficient_quota", "insufficient_quota", headers=no_retry)
    if isinstance(exc, RateLimited):
        return OpenAIError(
            429, exc.message, "requests", "rate_limit_exceeded", headers={"Retry-After": str(exc.retry_after)}
        )
    if isinstance(exc, InvalidApiKey):
        return OpenAIError(401, exc.message, code="invalid_api_key")
    if isinstance(exc, TaskNotFound | NotFound):
        return OpenAIError(404, exc.message, code="not_found", param="video_id")
    if isinstance(exc, RequestTooLarge):
        return OpenAIError(413, exc.message, code="request_too_large", headers=no_retry)
    if isinstance(exc, Conflict):
        return OpenAIError(409, exc.message, code=exc.error_code.lower(), headers=no_retry)
    if isinstance(exc, InvalidRequest):
        param = next((p for cls, p in PARAM_OF.items() if isinstance(exc, cls)), None)
        if param is None and exc.message.startswith("image_urls"):  # the first frame came as input_reference
            param = "input_reference"
        return OpenAIError(400, exc.message, code=exc.error_code.lower(), param=param)
    return OpenAIError(500, "internal server error", "server_error", "internal_error")


def error_response(err: OpenAIError) -> JSONResponse:
    body = {"error": {"message": err.message, "type": err.type, "param": err.param, "code": err.code}}
    return JSONResponse(body, status_code=err.status, headers=err.headers or None)


def openai_errors(route: Callable[..., Awaitable[Response]]) -> Callable[..., Awaitable[Response]]:
    """Every error of a route leaves in OpenAI's shape (the app's handlers would use the /api/ envelope)."""

    @functools.wraps(route)
    async def wrapper(*args: Any, **kwargs: Any) -> Response:
        try:
            return await route(*args, **kwargs)
        except OpenAIError as err:
            return error_response(err)
        except ApiError as exc:
            return error_response(from_api_error(exc))
        except Exception:  # a bug: logged, and still OpenAI's shape (the SDK maps 500 to InternalServerError)
            log.exception("unexpected error on %s", route.__name__)
            return error_response(OpenAIError(500, "internal server error", "server_error", "internal_error"))

    return wrapper


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


# --- create ----------------------------------------------------------------------------------


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


def check_hosts(generate: GenerateRequest, settings: Settings, uploads: UploadStore) -> None:
    """The SSRF guard on ``image_urls`` at submit, as ``/api/generate`` applies it (the worker's fetch checks again)."""
    from happyhorse.media.url_rules import check_request_hosts

    try:
        check_request_hosts(generate, settings, uploads)
    except InvalidRequest as exc:
        raise invalid(exc.message, "input_reference") from None


async def store_reference(request: Request, settings: Settings, data: bytes, account_id: str) -> str:
    """Keep the uploaded first frame as ``POST /api/upload`` does; its URL goes in ``image_urls[0]``."""
    from happyhorse.media.images import ImageError, probe_image
    from happyhorse.server import uploads

    if not data:
        raise invalid("input_reference is empty", "input_reference")
    if len(data) > settings.fetch_max_bytes:
        raise invalid("input_reference is larger than the upload limit", "input_reference")
    try:
        info = await asyncio.to_thread(probe_image, data, max_pixels=settings.fetch_max_pixels)
    except ImageError as exc:
        raise invalid(f"input_reference: {exc.reason}", "input_reference") from None
    name = await uploads.store_upload(request, account_id, info.format, data)  # within the account's quota
    return f"{base_url(request)}/uploads/{name}"


@router.post("/videos", summary="Create a video (OpenAI Videos)")
@openai_errors
async def create_video(request: Request) -> Response:
    state = services(request)
    settings: Settings = state.settings
    caller = await authenticate(request)
    await state.limiter.check("generate", caller.key_id)
    key = idempotency_key(request.headers)
    fields, data = await read_create_body(request, settings)
    url = reference_url(fields)
    if url is not None and is_data_url(url):
        if data is not None:
            raise invalid("send input_reference as a file or as image_url, not both", "input_reference")
        try:
            data, url = decode_data_url(url, settings.fetch_max_bytes), None
        except BadDataUrl as exc:
            raise invalid(f"input_reference.image_url: {exc}", "input_reference") from None
    if data is not None:
        if url is not None:
            raise invalid("send input_reference as a file or as image_url, not both", "input_reference")
        url = await store_reference(request, settings, data, caller.account_id)
    body = public_body(fields, settings, url)
    openai_meta = body.pop("openai")
    generate = parse_generate(body)
    generate.echo["openai"] = openai_meta
    state.check_request(generate)
    await asyncio.to_thread(check_hosts, generate, settings, state.uploads)  # an own upload in S3: a HEAD
    # The fingerprint is the meaning, not the bytes: the stored upload's name differs on every retry.
    fingerprint_body = {
        **body,
        "openai": openai_meta,
        "image_urls": [f"input_reference sha256:{hashlib.sha256(data).hexdigest()}"]
        if data
        else body.get("image_urls"),
    }
    admitted = await admit(state.db, settings, caller.account_id, caller.key_id, generate, fingerprint_body, key)
    if not admitted.replayed:
        await state.dispatcher.enqueue(admitted.task_id)
    task = await _task(request, caller.account_id, admitted.task_id)
    return JSONResponse(video_object(task, settings))


# --- read, list, delete, cancel ----------------------------------------------------------------


async def _task(request: Request, account_id: str, video_id: str) -> Task:
    async with services(request).db.read() as session:
        task = await task_repo.get_for_account(session, video_id, account_id)
    if task is None:
        raise OpenAIError(404, f"no video {video_id!r} for this API key's account", code="not_found", param="video_id")
    return task


@router.get("/videos/{video_id}", summary="Retrieve a video (OpenAI Videos)")
@openai_errors
async def retrieve_video(video_id: str, request: Request) -> Response:
    state = services(request)
    caller = await authenticate(request)
    await state.limiter.check("status", caller.key_id)
    return JSONResponse(video_object(await _task(request, caller.account_id, video_id), state.settings))


@router.get("/videos", summary="List videos (OpenAI Videos)")
@openai_errors
async def list_videos(request: Request) -> Response:
    state = services(request)
    caller = await authenticate(request)
    await state.limiter.check("status", caller.key_id)
    query = request.query_params
    limit = coerce_int(query.get("limit") or str(DEFAULT_LIMIT))  # ASCII digits, at most nine of them
    if limit is None or not 1 <= limit <= MAX_LIMIT:
        raise invalid(f"limit must be an integer from 1 to {MAX_LIMIT}", "limit")
    order = query.get("order") or "desc"
    if order not in ("asc", "desc"):
        raise invalid("order must be 'asc' or 'desc'", "order")
    after: task_pages.Position | None = None
    if query.get("after"):
        mark = await _task(request, caller.account_id, query["after"])
        after = task_pages.Position(mark.created_at, mark.id)
    async with state.db.read() as session:
        if order == "desc":
            tasks, more = await task_pages.page(session, caller.account_id, limit, after, None)
        else:
            tasks, more = await task_pages.page_ascending(session, caller.account_id, limit, after)
    data = [video_object(task, state.settings) for task in tasks]
    return JSONResponse(
        {
            "object": "list",
            "data": data,
            "first_id": data[0]["id"] if data else None,
            "last_id": data[-1]["id"] if data else None,
            "has_more": more,
        }
    )


@router.delete("/videos/{video_id}", summary="Delete a video (OpenAI Videos)")
@openai_errors
async def delete_video(video_id: str, request: Request) -> Response:
    from happyhorse.tasks import retention

    state = services(request)
    caller = await authenticate(request)
    await state.limiter.check("status", caller.key_id)
    await retention.delete_result(state.db, state.store, caller.account_id, video_id)
    return JSONResponse({"id": video_id, "object": "video.deleted", "deleted": True})


@router.post("/videos/{video_id}/cancel", summary="Cancel a video (OpenAI Videos)")
@openai_errors
async def cancel_video(video_id: str, request: Request) -> Response:
    state = services(request)
    caller = await authenticate(request)
    await state.limiter.check("generate", caller.key_id)
    await _task(request, caller.account_id, video_id)
    if not await state.dispatcher.cancel(video_id, caller.account_id):
        raise OpenAIError(
            409,
            f"video {video_id} has already finished and cannot be cancelled",
            code="video_not_cancellable",
            headers={"x-should-retry": "false"},
        )
    return JSONResponse(video_object(await _task(request, caller.account_id, video_id), state.settings))


# --- content ---------------------------------------------------------------------------------


@router.get("/videos/{video_id}/content", summary="Download a video or its thumbnail (OpenAI Videos)")
@openai_errors
async def video_content(video_id: str, request: Request) -> Response:
    state = services(request)
    caller = await authenticate(request)
    await state.limiter.check("status", caller.key_id)
    variant = request.query_params.get("variant") or "video"
    if variant not in ("video", "thumbnail"):
        raise invalid(
            "variant must be 'video' or 'thumbnail' (no spritesheet here)", "variant", "unsupported_parameter"
        )
    task = await _task(request, caller.account_id, video_id)
    if task.status != "SUCCESS":
        raise OpenAIError(
            404,
            f"video {video_id} is {STATUS[str(task.status)]}: there is no content",
            code="video_not_ready",
            param="video_id",
        )
    if not task.result_key:
        raise OpenAIError(404, f"the content of video {video_id} was deleted", code="video_deleted", param="video_id")
    store = state.store
    from happyhorse.storage.local import LocalResultStore

    if variant == "thumbnail":
        jpeg = await asyncio.to_thread(_thumbnail, store, task.result_key)
        return Response(jpeg, media_type="image/jpeg", headers={"Cache-Control": "private, max-age=3600"})
    if isinstance(store, LocalResultStore):
        path = store.path_for(task.result_key)
        if not path.is_file():
            raise OpenAIError(404, f"the content of video {video_id} was deleted", code="video_deleted")
        return FileResponse(path, media_type="video/mp4", filename=f"{video_id}.mp4")
    from happyhorse.storage.s3 import S3ResultStore

    assert isinstance(store, S3ResultStore), type(store)  # the two stores there are: local and S3
    obj = await asyncio.to_thread(
        store.client.get_object, Bucket=store.location.bucket, Key=store.object_key(task.result_key)
    )
    headers = {"Content-Length": str(obj["ContentLength"])} if obj.get("ContentLength") else None
    return StreamingResponse(obj["Body"].iter_chunks(64 * 1024), media_type="video/mp4", headers=headers)


def _thumbnail(store: Any, key: str) -> bytes:
    """The first frame as a JPEG (decoded with PyAV)."""
    import av

    from happyhorse.storage.local import LocalResultStore

    source: Any
    if isinstance(store, LocalResultStore):
        source = str(store.path_for(key))
    else:
        source = io.BytesIO(
            store.client.get_object(Bucket=store.location.bucket, Key=store.object_key(key))["Body"].read()
        )
    with av.open(source) as container:
        frame = next(container.decode(video=0))
        image = frame.to_image()
    out = io.BytesIO()
    image.convert("RGB").save(out, "JPEG", quality=90)
    return out.getvalue()


@router.api_route("/{rest:path}", methods=["GET", "POST", "PUT", "PATCH", "DELETE"], include_in_schema=False)
async def not_here(rest: str, request: Request) -> Response:
    """Remix, edits, extensions, characters and anything else under /v1/: OpenAI's 404, not the /api/ envelope.
    A path this surface serves, asked with another method (``PUT /v1/videos``), is a 405 naming the
    methods it takes in ``Allow``: this catch-all would otherwise hide the framework's 405."""
    allowed = _methods_of(request)
    if allowed:
        message = f"{request.method} is not allowed on /v1/{rest}; use {' or '.join(allowed)}"
        headers = {"Allow": ", ".join(allowed)}
        return error_response(OpenAIError(405, message, code="method_not_allowed", headers=headers))
    return error_response(
        OpenAIError(404, f"{request.method} /v1/{rest} is not available on this server", code="unknown_url")
    )


def _methods_of(request: Request) -> list[str]:
    """The methods this surface's other routes take on the request's path (none: the path is unknown)."""
    from starlette.routing import Match, Route

    methods: set[str] = set()
    for route in router.routes:
        if not isinstance(route, Route) or route.endpoint is not_here:
            continue
        if route.matches(request.scope)[0] != Match.NONE:
            methods |= route.methods or set()
    return sorted(methods)
