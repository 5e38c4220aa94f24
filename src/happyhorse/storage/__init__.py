"""Result stores: where finished videos live and how clients get a URL for them."""

from __future__ import annotations

from happyhorse.config import Settings
from happyhorse.storage.base import ResultStore


def create_store(settings: Settings) -> ResultStore:
    url = settings.storage_url or ""
    if url.startswith("s3://"):
        from happyhorse.storage.s3 import S3ResultStore

        return S3ResultStore.from_settings(settings)
    if url and not url.startswith("file://"):
        raise ValueError(f"HAPPYHORSE_STORAGE_URL must be s3://… or file://…, not {url!r}")
    from pathlib import Path

    from happyhorse.storage.local import LocalResultStore

    root = Path(url.removeprefix("file://")) if url else settings.results_dir
    return LocalResultStore(root, settings.signing_key, settings.result_url_ttl)
