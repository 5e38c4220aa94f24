"""Alibaba Model Studio (DashScope) asynchronous video synthesis under ``/api/v1/``.

A thin adapter: the DashScope body becomes a HappyHorse ``/api/generate`` body, which runs through
``parse_generate`` and the same admission (keys, rate limits, credits, Idempotency-Key, in-flight cap)
as the native surface. Answers and errors are in DashScope's shape; see docs/compat.md.
"""

from __future__ import annotations

import asyncio
import dataclasses
import re
import uuid
from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from happyhorse.contract import MODEL_NAME, coerce_int, loads_request_body, parse_generate
from happyhorse.errors import ApiError, InsufficientCredits, InvalidApiKey, RateLimited, RequestTooLarge
from happyhorse.media.url_rules import check_request_hosts
from happyhorse.server.auth import authenticate
from happyhorse.server.presenters import task_data
from happyhorse.server.routes_api import base_url
from happyhorse.server.services import services
from happyhorse.server.submit import admit, idempotency_key
from happyhorse.store import task_pages
from happyhorse.store import tasks as task_repo
from happyhorse.store.models import Task
from happyhorse.tasks.status import TaskStatus

router = APIRouter(prefix="/api/v1", include_in_schema=False)

MODELS = {f"happyhorse-{v}-{kind}" for v in ("1.0", "1.1") for kind in ("t2v", "i2v", "r2v")}
RESOLUTIONS = {"720P": "std", "1080P": "pro"}
RATIOS = ("16:9", "9:16", "1:1")
MAX_REFERENCES = 3
_IMAGE_REF = re.compile(r"\[Image\s*(\d+)\]", re.IGNORECASE)
_STATUS = {
    TaskStatus.QUEUED: "PENDING",
    TaskStatus.RUNNING: "RUNNING",
    TaskStatus.SUCCESS: "SUCCEEDED",
    TaskStatus.FAILED: "FAILED",
    TaskStatus.CANCELLED: "CANCELED",
}


class DashScopeError(Exception):
    def __init__(self, status: int, code: str, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.headers = status, code, message, headers or {}


def _bad(message: str) -> DashScopeError:
    return DashScopeError(400, "InvalidParameter", message)


def _error(exc: Exception, request_id: str) -> JSONResponse:
    if isinstance(exc, DashScopeError):
        err = exc
    elif isinstance(exc, InvalidApiKey):
        err = DashScopeError(401, "InvalidApiKey", "Invalid API-key provided.")
    elif isinstance(exc, InsufficientCredits):
        err = DashScopeError(400, "Arrearage", exc.message)
    elif isinstance(exc, RateLimited):
        err = DashScopeError(429, "Throttling", exc.message, {"Retry-After": str(exc.retry_after)})
    elif isinstance(exc, RequestTooLarge):
        err = DashScopeError(413, "RequestTooLarge", exc.message)
    elif isinstance(exc, ApiError) and 400 <= exc.status < 500:
        err = DashScopeError(400 if exc.status != 409 else 409, "InvalidParameter", exc.message)
    else:
        err = DashScopeError(500, "InternalError", "An internal error has occured, please try again later.")
    body = {"request_id": request_id, "code": err.code, "message": err.message}
    return JSONResponse(body, status_code=err.status, headers=err.headers)


error_response = _error  # public: the body-size cap answers /api/v1/ in this shape too


def _iso(value: Any) -> str | None:
    return value.strftime("%Y-%m-%d %H:%M:%S.%f")[:-3] if value is not None else None


def _str_url(value: Any, field: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise _bad(f"{field} must be a non-empty URL string")
    return value.strip()


def to_generate_body(body: Any) -> dict[str, Any]:
    """The DashScope request as a HappyHorse ``/api/generate`` body (validated again by parse_generate)."""
    if not isinstance(body, dict):
        raise _bad("request body must be a JSON object")
    model = body.get("model")
    if not isinstance(model, str) or model not in MODELS:
        raise DashScopeError(400, "InvalidParameter", f"Model not exist: {model!r}; use one of {sorted(MODELS)}")
    kind = str(model).rsplit("-", 1)[1]
    inp = body.get("input")
    if not isinstance(inp, dict):
        raise _bad("input must be an object with a prompt")
    params = body.get("parameters")
    params = {} if params is None else params
    if not isinstance(params, dict):
        raise _bad("parameters must be an object")
    prompt = inp.get("prompt")
    first = inp.get("img_url") or inp.get("first_frame_url")
    last = inp.get("last_frame_url")
    references: list[str] = []
    media = inp.get("media") or []
    if not isinstance(media, list):
        raise _bad("input.media must be a list of {type, url} objects")
    for i, item in enumerate(media):
        if not isinstance(item, dict):
            raise _bad(f"input.media[{i}] must be an object with type and url")
        url = _str_url(item.get("url"), f"input.media[{i}].url")
        kind_of = item.get("type")
        if kind_of == "first_frame" and first is None:
            first = url
        elif kind_of == "last_frame" and last is None:
            last = url
        elif kind_of == "reference_image":
            references.append(url)
        else:
            raise _bad(
                f"input.media[{i}].type {kind_of!r} is not supported here (first_frame, last_frame, "
                "reference_image; one first and one last frame)"
            )
    out: dict[str, Any] = {"model": MODEL_NAME}
    if isinstance(prompt, str) and references:
        if len(references) > MAX_REFERENCES:
            raise _bad(f"at most {MAX_REFERENCES} reference_image media items (got {len(references)})")

        def ref(match: re.Match[str]) -> str:
            n = int(match.group(1))
            if not 1 <= n <= len(references):
                raise _bad(f"the prompt refers to [Image {n}] but only {len(references)} reference images were sent")
            return f"@image{n}"

        prompt = _IMAGE_REF.sub(ref, prompt)
        # an element needs 2 to 4 views; one reference image is one view, so it is sent as both
        out["elements"] = [
            {"name": f"image{n}", "element_input_urls": [url, url]} for n, url in enumerate(references, 1)
        ]
    elif references:
        raise _bad("input.prompt is required")
    if references and kind != "r2v":
        raise _bad(f"reference_image media items need an r2v model, not {model}")
    if kind == "r2v" and not references:
        raise _bad("r2v models need at least one media item of type reference_image")
    if kind == "i2v" and first is None:
        raise _bad("i2v models need a first frame: input.img_url, input.first_frame_url or a first_frame media item")
    if kind == "t2v" and (first is not None or last is not None):
        raise _bad("t2v models take no images; use an i2v model for a first or last frame")
    if last is not None and first is None:
        raise _bad("a last frame needs a first frame")
    images = [_str_url(u, "input image URL") for u in (first, last) if u is not None]
    if images:
        out["image_urls"] = images
    out["prompt"] = prompt
    if inp.get("negative_prompt") is not None:
        out["negative_prompt"] = inp["negative_prompt"]
    resolution = params.get("resolution", "1080P")
    if not isinstance(resolution, str) or resolution.upper() not in RESOLUTIONS:
        raise _bad(f"parameters.resolution must be 720P or 1080P (got {resolution!r})")
    out["mode"] = RESOLUTIONS[resolution.upper()]
    ratio = params.get("ratio", "16:9")
    if ratio not in RATIOS:
        raise _bad(f"parameters.ratio must be one of {', '.join(RATIOS)} (got {ratio!r})")
    out["aspect_ratio"] = ratio
    duration = params.get("duration", 5)
    if isinstance(duration, bool) or not isinstance(duration, int) or not 3 <= duration <= 15:
        raise _bad(f"parameters.duration must be an integer from 3 to 15 (got {duration!r})")
    out["duration"] = duration
    if params.get("seed") is not None:
        out["seed"] = params["seed"]
    audio = params.get("audio", True)
    if not isinstance(audio, bool):
        raise _bad("parameters.audio must be true or false")
    out["sound"] = audio
    watermark = params.get("watermark", False)
    if not isinstance(watermark, bool):
        raise _bad("parameters.watermark must be true or false")
    # Not a /api/generate field (parse_generate passes it by); kept in the body so an Idempotency-Key
    # reused with the other watermark choice is a conflict, not a replay.
    out["watermark"] = watermark
    return out


def task_output(task: Task, request: Request) -> dict[str, Any]:
    state = services(request)
    status = _STATUS.get(TaskStatus(task.status), "UNKNOWN")
    output: dict[str, Any] = {
        "task_id": task.id,
        "task_status": status,
        "submit_time": _iso(task.created_at),
        "scheduled_time": _iso(task.started_at),
        "end_time": _iso(task.completed_at),
    }
    if status == "SUCCEEDED":
        data = task_data(task, state.store, base_url(request), state.settings.result_retention)
        urls = (data.get("response") or {}).get("resultUrls") or []
        if urls:
            output["video_url"] = urls[0]
    elif status == "FAILED":
        # an input that could not be fetched or read is the caller's to fix, as DashScope says of a bad URL
        inputs = (task.error_message or "").startswith(("image_urls[", "elements["))
        output["code"] = "InvalidParameter" if inputs else "InternalError"
        output["message"] = task.error_message or "the task failed"
    elif status == "CANCELED":
        output["code"] = "TaskCanceled"
        output["message"] = task.error_message or "the task was canceled"
    return output


def _usage(task: Task) -> dict[str, Any]:
    """``duration`` and ``video_count``, and the same as the SDK's ``VideoSynthesisUsage`` names them
    (``video_duration``, ``video_ratio`` as DashScope writes a size: ``1280*720``)."""
    done = task.status == TaskStatus.SUCCESS
    seconds = task.duration if done else 0
    frame = f"{task.width}*{task.height}" if done and task.width and task.height else ""
    return {"duration": seconds, "video_count": 1 if done else 0, "video_duration": seconds, "video_ratio": frame}


async def _body(request: Request) -> Any:
    """Strict JSON, as on ``/api/generate``: NaN, Infinity, a lone surrogate or nesting deeper than 64
    levels anywhere is a 400 InvalidParameter (the contract's ``InvalidRequest``, rendered by ``_error``)."""
    raw = await request.body()
    return loads_request_body(raw or b"null")


@router.post("/services/aigc/video-generation/video-synthesis")
async def submit(request: Request) -> JSONResponse:
    request_id = str(uuid.uuid4())
    try:
        state = services(request)
        caller = await authenticate(request)
        if request.headers.get("x-dashscope-async", "").lower() != "enable":
            raise DashScopeError(403, "AccessDenied", "current user api does not support synchronous calls")
        await state.limiter.check("generate", caller.key_id)
        body = await _body(request)
        native = to_generate_body(body)
        generate_request = dataclasses.replace(parse_generate(native), watermark=native["watermark"])
        generate_request.echo["dashscope"] = {"model": body["model"]}  # the name GET /api/v1/tasks lists
        await asyncio.to_thread(check_request_hosts, generate_request, state.settings, state.uploads)
        state.check_request(generate_request)
        admitted = await admit(
            state.db,
            state.settings,
            caller.account_id,
            caller.key_id,
            generate_request,
            native,
            idempotency_key(request.headers),
        )
        if not admitted.replayed:
            await state.dispatcher.enqueue(admitted.task_id)
        async with state.db.read() as session:
            task = await task_repo.get(session, admitted.task_id)
        assert task is not None
        return JSONResponse(
            {"request_id": request_id, "output": {"task_id": task.id, "task_status": _STATUS[TaskStatus(task.status)]}}
        )
    except Exception as exc:  # every failure in DashScope's shape, never the native envelope
        return _error(exc, request_id)


async def _visible(request: Request, task_id: str) -> tuple[Any, Task | None]:
    state = services(request)
    caller = await authenticate(request)
    await state.limiter.check("status", caller.key_id)
    async with state.db.read() as session:
        task = await task_repo.get_for_account(session, task_id, caller.account_id)
    return caller, task


@router.get("/tasks/{task_id}")
async def fetch(task_id: str, request: Request) -> JSONResponse:
    request_id = str(uuid.uuid4())
    try:
        _, task = await _visible(request, task_id)
        if task is None:  # DashScope answers 200 with UNKNOWN for a task this key cannot see
            return JSONResponse({"request_id": request_id, "output": {"task_id": task_id, "task_status": "UNKNOWN"}})
        return JSONResponse({"request_id": request_id, "output": task_output(task, request), "usage": _usage(task)})
    except Exception as exc:
        return _error(exc, request_id)


_NATIVE_STATUSES = {ds: str(native) for native, ds in _STATUS.items()}
MAX_PAGE_SIZE = 100


def _model_name(task: Task) -> str:
    """The DashScope model a task was sent as; for a task from another surface, the one it would be."""
    echo = task.request if isinstance(task.request, dict) else {}
    sent = echo.get("dashscope")
    if isinstance(sent, dict) and isinstance(sent.get("model"), str):
        return str(sent["model"])
    kind = "r2v" if echo.get("elements") else "i2v" if task.type == "image-to-video" else "t2v"
    return f"happyhorse-1.0-{kind}"


def _int_query(request: Request, name: str, default: int, highest: int) -> int:
    raw = request.query_params.get(name) or str(default)
    number = coerce_int(raw)  # ASCII digits, at most nine: "²" or 5,000 digits are a 400, never a 500
    if number is None or not 1 <= number <= highest:
        raise _bad(f"{name} must be an integer from 1 to {highest} (got {raw[:20]!r})")
    return number


def _time_query(request: Request, name: str) -> datetime | None:
    """DashScope's ``YYYYMMDDhhmmss`` (UTC here)."""
    raw = request.query_params.get(name)
    if not raw:
        return None
    try:
        return datetime.strptime(raw, "%Y%m%d%H%M%S").replace(tzinfo=UTC)
    except ValueError:
        raise _bad(f"{name} must be YYYYMMDDhhmmss (got {raw!r})") from None


@router.get("/tasks")
@router.get("/tasks/")
async def list_tasks(request: Request) -> JSONResponse:
    """The 1.x ``VideoSynthesis.list`` and 2.x ``client.videos.jobs.list``: the key's account's tasks from every
    surface, newest first, by ``page_no``/``page_size``; ``status``, ``start_time``, ``end_time`` filter
    (``region`` is ignored: there is one)."""
    request_id = str(uuid.uuid4())
    try:
        state = services(request)
        caller = await authenticate(request)
        await state.limiter.check("status", caller.key_id)
        for name in ("model_name", "api_key_id"):  # refused rather than ignored: an ignored filter lists too much
            if request.query_params.get(name):
                raise _bad(f"the {name} filter is not supported here; filter by status, start_time or end_time")
        page_no = _int_query(request, "page_no", 1, 1_000_000)
        page_size = _int_query(request, "page_size", 10, MAX_PAGE_SIZE)
        status = request.query_params.get("status")
        if status and status not in _NATIVE_STATUSES:
            raise _bad(f"status must be one of {', '.join(_NATIVE_STATUSES)} (got {status!r})")
        since, until = _time_query(request, "start_time"), _time_query(request, "end_time")
        async with state.db.read() as session:
            tasks, total = await task_pages.numbered_page(
                session,
                caller.account_id,
                page_no,
                page_size,
                [_NATIVE_STATUSES[status]] if status else None,
                since,
                until,
            )
        items = [
            {
                "task_id": task.id,
                "status": _STATUS[TaskStatus(task.status)],
                "model_name": _model_name(task),
                "submit_time": _iso(task.created_at),
                "scheduled_time": _iso(task.started_at),
                "end_time": _iso(task.completed_at),
            }
            for task in tasks
        ]
        # DashScope documents the page as ``data``; the 2.x SDK reads ``tasks``: both, the same items.
        return JSONResponse(
            {
                "request_id": request_id,
                "data": items,
                "tasks": items,
                "page_no": page_no,
                "page_size": page_size,
                "total": total,
                "total_page": -(-total // page_size),
            }
        )
    except Exception as exc:
        return _error(exc, request_id)


@router.post("/tasks/{task_id}/cancel")
async def cancel(task_id: str, request: Request) -> JSONResponse:
    """DashScope cancels only PENDING tasks; a running or finished one is refused."""
    request_id = str(uuid.uuid4())
    try:
        caller, task = await _visible(request, task_id)
        if task is None:
            raise DashScopeError(404, "NotFound", f"task {task_id} not found")
        if task.status != TaskStatus.QUEUED or not await services(request).dispatcher.cancel(
            task_id, caller.account_id
        ):
            raise DashScopeError(400, "UnsupportedOperation", f"task {task_id} is not PENDING and cannot be canceled")
        return JSONResponse({"request_id": request_id})
    except Exception as exc:
        return _error(exc, request_id)
