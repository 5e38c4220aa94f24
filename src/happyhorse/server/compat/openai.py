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

This module holds the routes; OpenAI's error shape is in ``openai_errors`` and the translation between
OpenAI's fields and the task contract (the create body, the video object) in ``openai_translate``.
"""

from __future__ import annotations

import asyncio
import hashlib
import io
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import FileResponse, JSONResponse, Response, StreamingResponse

from happyhorse.config import Settings
from happyhorse.contract import GenerateRequest, coerce_int, parse_generate
from happyhorse.errors import InvalidRequest
from happyhorse.server.auth import authenticate
from happyhorse.server.compat.data_urls import BadDataUrl, decode_data_url, is_data_url
from happyhorse.server.compat.openai_errors import OpenAIError, error_response, invalid, openai_errors
from happyhorse.server.compat.openai_translate import (
    STATUS,
    public_body,
    read_create_body,
    reference_url,
    video_object,
)
from happyhorse.server.routes_api import base_url
from happyhorse.server.services import services
from happyhorse.server.submit import admit, idempotency_key
from happyhorse.storage.uploads import UploadStore
from happyhorse.store import task_pages
from happyhorse.store import tasks as task_repo
from happyhorse.store.models import Task

router = APIRouter(prefix="/v1", tags=["OpenAI Videos"])

DEFAULT_LIMIT, MAX_LIMIT = 20, 100


# --- create ----------------------------------------------------------------------------------


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
