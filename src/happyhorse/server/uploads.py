"""Input images uploaded to this server: ``POST /api/upload`` stores one, ``GET /uploads/<name>`` serves it.

    POST /api/upload (multipart, field "file", Bearer key)
      └─▶ body read with a hard cap (fetch_max_bytes + a little multipart overhead)
      └─▶ sniffed with Pillow: an allowed format, at most fetch_max_pixels (never the file name)
      └─▶ saved as uploads_dir/<32 random url-safe chars>.<format's extension>
      └─▶ {"url": "<base>/uploads/<name>"}

The name is the capability: 192 random bits, like a signed result URL, so the GET needs no auth
and a ``<img>`` or another service can read it. The worker does not fetch such a URL over the
network (the SSRF guard would rightly refuse a loopback host): ``own_upload_path`` recognises an
upload of this server by host and exact path shape and the worker reads the file from storage.
"""

from __future__ import annotations

import asyncio
import os
import re
import secrets
from pathlib import Path
from urllib.parse import urlsplit

from fastapi import APIRouter, Request
from fastapi.responses import FileResponse, JSONResponse, Response
from starlette.datastructures import UploadFile

from happyhorse.config import Settings
from happyhorse.errors import InvalidRequest
from happyhorse.media.images import ImageError, probe_image
from happyhorse.server.auth import authenticate
from happyhorse.server.errors import envelope

router = APIRouter(tags=["HappyHorse 1.0"])

EXTENSIONS = {"PNG": "png", "JPEG": "jpg", "WEBP": "webp", "AVIF": "avif", "GIF": "gif", "BMP": "bmp",
              "TIFF": "tiff"}
MEDIA_TYPES = {"png": "image/png", "jpg": "image/jpeg", "webp": "image/webp", "avif": "image/avif",
               "gif": "image/gif", "bmp": "image/bmp", "tiff": "image/tiff"}
# Exactly what upload_name() makes: nothing else (no dots, no slashes) can name a file here.
UPLOAD_NAME = re.compile(r"^[A-Za-z0-9_-]{32}\.(?:png|jpg|webp|avif|gif|bmp|tiff)$")
MULTIPART_OVERHEAD = 64 * 1024  # boundaries and part headers around the one file


def upload_name(fmt: str) -> str:
    return f"{secrets.token_urlsafe(24)}.{EXTENSIONS[fmt]}"


def upload_path(settings: Settings, name: str) -> Path | None:
    """The file for ``name``, or None when the name is not one we could have made."""
    if not UPLOAD_NAME.match(name):
        return None
    return settings.uploads_dir / name


def _default_port(scheme: str) -> int:
    return 443 if scheme == "https" else 80


def _own_hosts(settings: Settings) -> set[tuple[str, int]]:
    """(host, port) pairs under which this server hands out upload URLs."""
    hosts: set[tuple[str, int]] = set()
    if settings.public_url:
        public = urlsplit(settings.public_url)
        if public.hostname:
            hosts.add((public.hostname.lower(), public.port or _default_port(public.scheme)))
    bound = settings.host.strip("[]").lower()
    hosts.add((bound, settings.port))
    if bound in ("0.0.0.0", "::", "127.0.0.1", "localhost", "::1"):  # reachable as loopback too
        hosts.update({("127.0.0.1", settings.port), ("localhost", settings.port), ("::1", settings.port)})
    return hosts


def own_upload_path(url: str, settings: Settings) -> Path | None:
    """The stored file when ``url`` is exactly an upload URL of this server, else None.

    Tight on purpose: http(s), no credentials, query or fragment, a host this server answers
    to, and a path of precisely ``/uploads/<name>`` with a name of our own shape. Anything
    else goes through the ordinary (SSRF-guarded) fetch.
    """
    try:
        parts = urlsplit(url)
        port = parts.port or _default_port(parts.scheme)
    except ValueError:
        return None
    if parts.scheme not in ("http", "https") or parts.username or parts.password or parts.query or parts.fragment:
        return None
    if not parts.hostname or (parts.hostname.lower(), port) not in _own_hosts(settings):
        return None
    prefix, _, name = parts.path.rpartition("/")
    if prefix != "/uploads":
        return None
    return upload_path(settings, name)


async def _capped_body(request: Request, limit: int) -> bytes:
    """The raw body, refusing as soon as it exceeds ``limit`` (Content-Length first, then as it streams)."""
    too_big = InvalidRequest(f"file is larger than the {limit_text(limit)} limit")
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit + MULTIPART_OVERHEAD:
        raise too_big
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit + MULTIPART_OVERHEAD:
            raise too_big
    return bytes(body)


def limit_text(n: int) -> str:
    return f"{n / (1024 * 1024):.3g} MB" if n >= 1024 * 1024 else f"{n / 1024:.3g} KB"


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


UPLOAD_BODY = {"requestBody": {"required": True, "content": {"multipart/form-data": {"schema": {
    "type": "object", "required": ["file"],
    "properties": {"file": {"type": "string", "format": "binary",
                            "description": "PNG, JPEG, WebP, AVIF, GIF, BMP or TIFF (sniffed, not trusted by name)"}},
}}}}}


@router.post("/api/upload", summary="Upload an input image (extension)", openapi_extra=UPLOAD_BODY)
async def upload(request: Request) -> dict[str, object]:
    """Store one image and return a URL on this server that ``image_urls`` and elements accept."""
    state = request.app.state
    settings: Settings = state.settings
    caller = await authenticate(request)
    await state.limiter.check("generate", caller.key_id)
    data = await _the_file(request, await _capped_body(request, settings.fetch_max_bytes))
    if len(data) > settings.fetch_max_bytes:
        raise InvalidRequest(f"file is larger than the {limit_text(settings.fetch_max_bytes)} limit")
    if not data:
        raise InvalidRequest("file is empty")
    try:
        info = await asyncio.to_thread(probe_image, data, max_pixels=settings.fetch_max_pixels)
    except ImageError as exc:
        raise InvalidRequest(f"file: {exc.reason}") from None
    name = upload_name(info.format)
    await asyncio.to_thread(_write_atomically, settings.uploads_dir, name, data)
    base = (settings.public_url or str(request.base_url)).rstrip("/")
    return envelope({"url": f"{base}/uploads/{name}", "width": info.width, "height": info.height,
                     "format": info.format.lower(), "bytes": len(data)})


def _write_atomically(directory: Path, name: str, data: bytes) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    tmp = directory / f".{name}.tmp"
    tmp.write_bytes(data)
    os.replace(tmp, directory / name)


@router.api_route("/uploads/{name}", methods=["GET", "HEAD"], include_in_schema=False)
async def uploaded_file(request: Request, name: str) -> Response:
    path = upload_path(request.app.state.settings, name)
    if path is None or not path.is_file():
        return JSONResponse({"message": "not found"}, status_code=404)
    media_type = MEDIA_TYPES[name.rsplit(".", 1)[1]]
    # nosniff + a sandboxing CSP: the bytes were sniffed as an image, and a browser must treat them as one.
    headers = {"Cache-Control": "public, max-age=86400, immutable", "X-Content-Type-Options": "nosniff",
               "Content-Security-Policy": "default-src 'none'; sandbox"}
    return FileResponse(path, media_type=media_type, headers=headers)


def read_upload(path: Path) -> bytes | None:
    """The stored bytes, or None when the file is not here (e.g. a worker on another machine)."""
    try:
        return path.read_bytes()
    except (FileNotFoundError, IsADirectoryError):
        return None
