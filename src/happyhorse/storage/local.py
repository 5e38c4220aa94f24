"""Results as files in the data dir, served by the API under HMAC-signed, expiring URLs."""

from __future__ import annotations

import hashlib
import hmac
import os
import re
import shutil
import time
from pathlib import Path

from happyhorse.storage.signed_urls import SignedUrls

SAFE_KEY = re.compile(r"^[A-Za-z0-9_.-]{1,200}$")


class LocalResultStore:
    def __init__(self, root: Path, signing_key: bytes, ttl_seconds: int) -> None:
        self.root = root
        self.signing_key = signing_key
        self.ttl = ttl_seconds
        self.urls = SignedUrls(ttl_seconds)
        root.mkdir(parents=True, exist_ok=True)

    def path_for(self, key: str) -> Path:
        if not SAFE_KEY.match(key) or key.startswith("."):
            raise ValueError(f"bad result key {key!r}")
        return self.root / key

    def put(self, local_path: Path, key: str) -> None:
        target = self.path_for(key)
        tmp = target.with_name(f".{key}.tmp")
        shutil.move(str(local_path), tmp)
        os.replace(tmp, target)  # readers never see half a file

    def delete(self, key: str) -> None:
        self.urls.forget(key)
        self.path_for(key).unlink(missing_ok=True)

    def exists(self, key: str) -> bool:
        return self.path_for(key).exists()

    def signature(self, key: str, expires: int) -> str:
        return hmac.new(self.signing_key, f"{key}:{expires}".encode(), hashlib.sha256).hexdigest()

    def url(self, key: str, base_url: str) -> str:
        def sign() -> str:
            expires = int(time.time()) + self.ttl
            # key, expires and a hex signature are all URL-safe: no encoding needed
            return f"{base_url.rstrip('/')}/files/{key}?expires={expires}&signature={self.signature(key, expires)}"

        return self.urls.get(key, base_url, sign)

    def verify(self, key: str, expires: str, signature: str) -> bool:
        """True when the signature matches and has not expired (constant-time compare)."""
        # ASCII digits only, and a sane length: "²".isdigit() is true and int() of 5,000 digits refuses
        if not (expires.isascii() and expires.isdigit() and len(expires) <= 12) or int(expires) < time.time():
            return False
        return hmac.compare_digest(self.signature(key, int(expires)), signature)
