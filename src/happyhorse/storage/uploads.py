"""Uploaded input images on disk: their names, where they live, how a worker recognises and reads one.

``POST /api/upload`` (``server/uploads.py``) writes a file here with ``write_upload``; ``GET /uploads/<name>``
serves it. The name is the capability: 192 random bits, like a signed result URL. The worker does not
fetch such a URL over the network (the SSRF guard would rightly refuse a loopback or LAN host):
``own_upload_path`` recognises an upload of this server by its exact path and a file of that name
in the uploads directory, whatever host the client reached the server by (127.0.0.1, a LAN address
with ``--host 0.0.0.0``, a hostname, a proxy), and the worker reads the file with ``read_upload``.
"""

from __future__ import annotations

import os
import re
import secrets
from pathlib import Path
from urllib.parse import urlsplit

from happyhorse.config import Settings

EXTENSIONS = {"PNG": "png", "JPEG": "jpg", "WEBP": "webp", "AVIF": "avif", "GIF": "gif", "BMP": "bmp", "TIFF": "tiff"}
MEDIA_TYPES = {
    "png": "image/png",
    "jpg": "image/jpeg",
    "webp": "image/webp",
    "avif": "image/avif",
    "gif": "image/gif",
    "bmp": "image/bmp",
    "tiff": "image/tiff",
}
# Exactly what upload_name() makes: nothing else (no dots, no slashes) can name a file here.
UPLOAD_NAME = re.compile(r"^[A-Za-z0-9_-]{32}\.(?:png|jpg|webp|avif|gif|bmp|tiff)$")


def upload_name(fmt: str) -> str:
    return f"{secrets.token_urlsafe(24)}.{EXTENSIONS[fmt]}"


def upload_path(settings: Settings, name: str) -> Path | None:
    """The file for ``name``, or None when the name is not one we could have made."""
    if not UPLOAD_NAME.match(name):
        return None
    return settings.uploads_dir / name


def own_upload_path(url: str, settings: Settings) -> Path | None:
    """The stored file when ``url`` is exactly an upload URL of this server, else None.

    Tight on purpose: http(s), no credentials, query or fragment, a path of precisely
    ``/uploads/<name>`` with a name of our own shape, and that file present here. The host is not
    compared: the server cannot know every name it is reached by, and it need not — reading our own
    file gives a caller nothing that ``GET /uploads/<name>`` (which takes no key) would not. Anything
    else goes through the ordinary (SSRF-guarded) fetch.
    """
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError for a port that is not one
    except ValueError:
        return None
    if parts.scheme not in ("http", "https") or parts.username or parts.password or parts.query or parts.fragment:
        return None
    if not parts.hostname:
        return None
    prefix, _, name = parts.path.rpartition("/")
    if prefix != "/uploads":
        return None
    path = upload_path(settings, name)
    return path if path is not None and path.is_file() else None


def write_upload(directory: Path, name: str, data: bytes) -> None:
    """Store ``data`` as ``directory/name`` atomically (a reader never sees half a file)."""
    directory.mkdir(parents=True, exist_ok=True)
    tmp = directory / f".{name}.tmp"
    tmp.write_bytes(data)
    os.replace(tmp, directory / name)


_write_atomically = write_upload  # the older name, still used by callers written before the move


def read_upload(path: Path) -> bytes | None:
    """The stored bytes, or None when the file is not here (e.g. a worker on another machine)."""
    try:
        return path.read_bytes()
    except (FileNotFoundError, IsADirectoryError):
        return None
