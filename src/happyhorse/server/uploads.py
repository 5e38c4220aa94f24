"""Input images uploaded to this server: ``POST /api/upload`` stores one, ``GET /uploads/<name>`` serves it.

    POST /api/upload (multipart, field "file", Bearer key)
      └─▶ body read with a hard cap (fetch_max_bytes + a little multipart overhead; 413 over it)
      └─▶ sniffed with Pillow: an allowed format, at most fetch_max_pixels (never the file name)
      └─▶ counted against the account's HAPPYHORSE_UPLOAD_QUOTA_BYTES (413 REQUEST_TOO_LARGE when full)
      └─▶ kept as <32 random url-safe chars>.<format's extension> in the upload store (the data dir's
          uploads/, or the bucket's uploads/ beside S3 results: ``storage.uploads``)
      └─▶ {"url": "<base>/uploads/<name>"}

The name is the capability: 192 random bits, like a signed result URL, so the GET needs no auth
and a ``<img>`` or another service can read it. Names, paths, writing and reading the files are a
storage concern (``happyhorse.storage.uploads``, which the worker uses); this module is only the routes.
"""

from __future__ import annotations

import asyncio

from fastapi import APIRouter, Request
from fastapi.responses import FileResponse, Response
from starlette.datastructures import UploadFile

from happyhorse.config import Settings
from happyhorse.errors import InvalidRequest, NotFound, RequestTooLarge
from happyhorse.media.images import ImageError, probe_image
from happyhorse.server.auth import authenticate
from happyhorse.server.errors import envelope, error_response
from happyhorse.server.openapi import error_responses
from happyhorse.server.services import services
from happyhorse.storage.uploads import MEDIA_TYPES, UPLOAD_NAME, upload_name
from happyhorse.store import uploads as upload_rows

router = APIRouter(tags=["HappyHorse 1.0"])

MULTIPART_OVERHEAD = 64 * 1024  # boundaries and part headers around the one file


async def _capped_body(request: Request, limit: int) -> bytes:
    """The raw body, refusing as soon as it exceeds ``limit`` (Content-Length first, then as it streams)."""
    too_big = file_too_large(limit)
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit + MULTIPART_OVERHEAD:
        raise too_big
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit + MULTIPART_OVERHEAD:
            raise too_big
    return bytes(body)


def file_too_large(limit: int) -> RequestTooLarge:
    # 413 like any body over its limit; the message names this limit, not the JSON body's.
    return RequestTooLarge(f"file is larger than the {limit_text(limit)} upload limit (HAPPYHORSE_FETCH_MAX_BYTES)")


def limit_text(n: int) -> str:
    for unit, size in (("GB", 1024**3), ("MB", 1024**2)):
        if n >= size:
            return f"{n / size:.3g} {unit}"
    return f"{n / 1024:.3g} KB"


async def _the_file(request: Request, body: bytes) -> bytes:
    """The bytes of the multipart field ``file``, parsed from the already capped body."""
    if not request.headers.get("content-type", "").startswith("multipart/form-data"):
        raise InvalidRequest("send the image as multipart/form-data in a field named 'file'")

    async def receive() -> dict[str, object]:
        return {"type": "http.request", "body": body, "more_body": False}

    buffered = Request(request.scope, receive=receive)
    try:
        form = await buffered.form(max_files=1, max_fields=10)
    except Exception:  # python-multipart raises several types for a malformed body
        raise InvalidRequest("file: could not read the multipart body") from None
    item = form.get("file")
    if not isinstance(item, UploadFile):
        raise InvalidRequest("file is required: send the image in a multipart field named 'file'")
    return await item.read()


async def store_upload(request: Request, account_id: str, fmt: str, data: bytes) -> str:
    """Keep ``data`` as a new upload of the account, within its quota; returns the file's name.

    The quota is taken in the database before the file is written (so uploads at once cannot
    overshoot it together) and given back if the write fails.
    """
    state = services(request)
    settings: Settings = state.settings
    name = upload_name(fmt)
    async with state.db.write() as session:
        used = await upload_rows.reserve(session, account_id, name, len(data), settings.upload_quota_bytes)
    if used is not None:
        quota = settings.upload_quota_bytes
        raise RequestTooLarge(
            f"this account's upload storage quota of {limit_text(quota)} is used up: it stores "
            f"{limit_text(used)} of uploads and this file is {limit_text(len(data))}; "
            "uploads are deleted once the result retention passes"
        )
    try:
        await asyncio.to_thread(state.uploads.save, name, data)
    except BaseException:
        async with state.db.write() as session:
            await upload_rows.forget(session, [name])
        raise
    return name


UPLOAD_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": ["file"],
                    "properties": {
                        "file": {
                            "type": "string",
                            "format": "binary",
                            "description": "PNG, JPEG, WebP, AVIF, GIF, BMP or TIFF (sniffed, not trusted by name)",
                        }
                    },
                }
            }
        },
    }
}


@router.post(
    "/api/upload",
    summary="Upload an input image (extension)",
    openapi_extra=UPLOAD_BODY,
    responses=error_responses(400, 413),
)
async def upload(request: Request) -> dict[str, object]:
    """Store one image and return a URL on this server that ``image_urls`` and elements accept."""
    state = services(request)
    settings: Settings = state.settings
    caller = await authenticate(request)
    await state.limiter.check("generate", caller.key_id)
    data = await _the_file(request, await _capped_body(request, settings.fetch_max_bytes))
    if len(data) > settings.fetch_max_bytes:
        raise file_too_large(settings.fetch_max_bytes)
    if not data:
        raise InvalidRequest("file is empty")
    try:
        info = await asyncio.to_thread(probe_image, data, max_pixels=settings.fetch_max_pixels)
    except ImageError as exc:
        raise InvalidRequest(f"file: {exc.reason}") from None
    name = await store_upload(request, caller.account_id, info.format, data)
    base = (settings.public_url or str(request.base_url)).rstrip("/")
    return envelope(
        {
            "url": f"{base}/uploads/{name}",
            "width": info.width,
            "height": info.height,
            "format": info.format.lower(),
            "bytes": len(data),
        }
    )


@router.api_route("/uploads/{name}", methods=["GET", "HEAD"], include_in_schema=False)
async def uploaded_file(request: Request, name: str) -> Response:
    store = services(request).uploads
    missing = error_response(NotFound(f"no such upload: {name}"))
    if not UPLOAD_NAME.match(name):
        return missing
    media_type = MEDIA_TYPES[name.rsplit(".", 1)[1]]
    # nosniff + a sandboxing CSP: the bytes were sniffed as an image, and a browser must treat them as one.
    headers = {
        "Cache-Control": "public, max-age=86400, immutable",
        "X-Content-Type-Options": "nosniff",
        "Content-Security-Policy": "default-src 'none'; sandbox",
    }
    path = store.local_path(name)
    if path is not None:
        return FileResponse(path, media_type=media_type, headers=headers)  # ranges, HEAD without reading
    data = await asyncio.to_thread(store.read, name)  # an object in the bucket: at most an upload's size
    if data is None:
        return missing
    return Response(data, media_type=media_type, headers=headers)
