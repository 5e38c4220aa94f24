"""The result-store seam. Methods are blocking; async callers run them in a thread."""

from __future__ import annotations

from pathlib import Path
from typing import Protocol


class ResultStore(Protocol):
    def put(self, local_path: Path, key: str) -> None:
        """Move or upload a finished file under ``key``; afterwards ``local_path`` may be gone."""

    def url(self, key: str, base_url: str) -> str:
        """An absolute URL a browser can GET without credentials, valid for the configured lifetime."""

    def delete(self, key: str) -> None: ...

    def exists(self, key: str) -> bool: ...
