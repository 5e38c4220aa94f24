"""Uploaded input images: their names, where they live, how a worker recognises and reads one.

``POST /api/upload`` (``server/uploads.py``) keeps a file with an ``UploadStore``; ``GET /uploads/<name>``
serves it. The name is the capability: 192 random bits, like a signed result URL. Where the bytes
live follows the result store: files in the data dir's ``uploads/`` beside local results
(``DiskUploads``), objects under ``uploads/`` in the bucket beside S3 results (``S3Uploads``), so a
worker on another machine reads an upload the API node took, with no shared disk.

The worker does not fetch such a URL over the network (the SSRF guard would rightly refuse a
loopback or LAN host): ``own_upload_name`` recognises an upload URL of this server by its exact
path, whatever host the client reached the server by (127.0.0.1, a LAN address with
``--host 0.0.0.0``, a hostname, a proxy), and the worker reads the bytes from the store by name.
"""

from __future__ import annotations

import os
import re
import secrets
from pathlib import Path
from typing import TYPE_CHECKING, Protocol
from urllib.parse import urlsplit

from happyhorse.config import Settings
from happyhorse.storage.base import ResultStore

if TYPE_CHECKING:
    from happyhorse.storage.s3 import S3ResultStore

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


def own_upload_name(url: str) -> str | None:
    """The upload's name when ``url`` is exactly an upload URL of this server's shape, else None.

    Tight on purpose: http(s), no credentials, query or fragment, a path of precisely
    ``/uploads/<name>`` with a name of our own shape. The host is not compared: the server cannot
    know every name it is reached by, and it need not — reading our own upload gives a caller
    nothing that ``GET /uploads/<name>`` (which takes no key) would not. Whether the store holds it
    is the store's answer (``UploadStore.read`` / ``exists``); anything else goes through the
    ordinary (SSRF-guarded) fetch.
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
    if prefix != "/uploads" or not UPLOAD_NAME.match(name):
        return None
    return name


class UploadStore(Protocol):
    """Where uploaded images live. Blocking methods: async callers run them in a thread."""

    def save(self, name: str, data: bytes) -> None:
        """Keep ``data`` as ``name`` (atomically: a reader never sees half a file)."""

    def read(self, name: str) -> bytes | None:
        """The bytes, or None when there is no such upload."""

    def exists(self, name: str) -> bool: ...

    def delete(self, name: str) -> None: ...

    def older_than(self, cutoff: float) -> list[str]:
        """Names of the uploads kept before ``cutoff`` (Unix time)."""

    def local_path(self, name: str) -> Path | None:
        """The file on this machine's disk, when the store is a directory (served with ranges)."""


class DiskUploads:
    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def _path(self, name: str) -> Path:
        if not UPLOAD_NAME.match(name):
            raise ValueError(f"not an upload name: {name!r}")
        return self.directory / name

    def save(self, name: str, data: bytes) -> None:
        write_upload(self.directory, name, data)

    def read(self, name: str) -> bytes | None:
        return read_upload(self._path(name))

    def exists(self, name: str) -> bool:
        return self._path(name).is_file()

    def delete(self, name: str) -> None:
        self._path(name).unlink(missing_ok=True)

    def older_than(self, cutoff: float) -> list[str]:
        if not self.directory.is_dir():
            return []
        return [
            p.name
            for p in self.directory.iterdir()
            if UPLOAD_NAME.match(p.name) and p.is_file() and p.stat().st_mtime < cutoff
        ]

    def local_path(self, name: str) -> Path | None:
        path = self._path(name)
        return path if path.is_file() else None


class S3Uploads:
    """Uploads as objects ``uploads/<name>`` in the result store's bucket (under its prefix)."""

    def __init__(self, results: S3ResultStore) -> None:
        self.results = results
        self.client, self.bucket = results.client, results.location.bucket

    def _key(self, name: str) -> str:
        if not UPLOAD_NAME.match(name):
            raise ValueError(f"not an upload name: {name!r}")
        return self.results.object_key(f"uploads/{name}")

    def save(self, name: str, data: bytes) -> None:
        media_type = MEDIA_TYPES[name.rsplit(".", 1)[1]]
        self.client.put_object(Bucket=self.bucket, Key=self._key(name), Body=data, ContentType=media_type)

    def read(self, name: str) -> bytes | None:
        from botocore.exceptions import ClientError  # boto3 loads only where S3 is configured

        try:
            answer = self.client.get_object(Bucket=self.bucket, Key=self._key(name))
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
                return None
            raise
        return bytes(answer["Body"].read())

    def exists(self, name: str) -> bool:
        return self.results.exists(f"uploads/{name}")

    def delete(self, name: str) -> None:
        self.client.delete_object(Bucket=self.bucket, Key=self._key(name))

    def older_than(self, cutoff: float) -> list[str]:
        prefix = self.results.object_key("uploads/")
        names = []
        for page in self.client.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=prefix):
            for item in page.get("Contents", []):
                name = str(item["Key"])[len(prefix) :]
                if UPLOAD_NAME.match(name) and item["LastModified"].timestamp() < cutoff:
                    names.append(name)
        return names

    def local_path(self, name: str) -> Path | None:
        return None


def create_upload_store(settings: Settings, results: ResultStore) -> UploadStore:
    """Uploads live where results do: beside S3 results in the bucket, else in the data dir."""
    from happyhorse.storage.s3 import S3ResultStore

    if isinstance(results, S3ResultStore):
        return S3Uploads(results)
    return DiskUploads(settings.uploads_dir)


def write_upload(directory: Path, name: str, data: bytes) -> None:
    """Store ``data`` as ``directory/name`` atomically (a reader never sees half a file)."""
    directory.mkdir(parents=True, exist_ok=True)
    tmp = directory / f".{name}.tmp"
    tmp.write_bytes(data)
    os.replace(tmp, directory / name)


def read_upload(path: Path) -> bytes | None:
    """The stored bytes, or None when the file is not here (e.g. a worker on another machine)."""
    try:
        return path.read_bytes()
    except (FileNotFoundError, IsADirectoryError):
        return None
