"""Uploaded input images on disk: their names, where they live, how a worker recognises and reads one.

``POST /api/upload`` (``server/uploads.py``) writes a file here with ``write_upload``; ``GET /uploads/<name>``
serves it. The name is the capability: 192 random bits, like a signed result URL. The worker does not
fetch such a URL over the network (the SSRF guard would rightly refuse a loopback host):
``own_upload_path`` recognises an upload of this server by host and exact path shape, and the worker
reads the file with ``read_upload``.
"""

from __future__ import annotations

import os
import re
import secrets
from pathlib import Path
from urllib.parse import urlsplit

from happyhorse.config import Settings

EXTENSIONS = {"PNG": "png", "JPEG": "jpg", "WEBP": "webp", "AVIF": "avif", "GIF": "gif", "BMP": "bmp",
              "TIFF": "tiff"}
MEDIA_TYPES = {"png": "image/png", "jpg": "image/jpeg", "webp": "image/webp", "avif": "image/avif",
               "gif": "image/gif", "bmp": "image/bmp", "tiff": "image/tiff"}
# Exactly what upload_name() makes: nothing else (no dots, no slashes) can name a file here.
UPLOAD_NAME = re.compile(r"^[A-Za-z0-9_-]{32}\.(?:png|jpg|webp|avif|gif|bmp|tiff)$")


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
