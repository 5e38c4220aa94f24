"""Reuse a freshly signed result URL for a little while instead of signing on every status poll.

A client polls a finished task every few seconds, and each answer carries the result URL. Signing
it afresh each time costs an HMAC (local store) or a presign (S3) per poll, and hands the browser a
new URL each time, so it cannot cache the video. A URL signed at most ``reuse_s`` ago is handed out
again instead: it is still valid for at least ``ttl - reuse_s`` seconds.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable

REUSE_FRACTION = 0.05  # of the URL's lifetime: 72 min of a day; 0.1 s of a 2 s test TTL
REUSE_MAX_S = 300.0
MAX_ENTRIES = 10_000


class SignedUrls:
    def __init__(self, ttl_s: float) -> None:
        self.reuse_s = min(REUSE_MAX_S, ttl_s * REUSE_FRACTION)
        self._urls: OrderedDict[tuple[str, str], tuple[float, str]] = OrderedDict()

    def get(self, key: str, base_url: str, sign: Callable[[], str]) -> str:
        """The URL for ``key`` under ``base_url``: one signed within ``reuse_s``, or ``sign()``'s."""
        now = time.monotonic()
        memo = (key, base_url)
        found = self._urls.get(memo)
        if found is not None and now - found[0] < self.reuse_s:
            return found[1]
        url = sign()
        self._urls[memo] = (now, url)
        self._urls.move_to_end(memo)
        if len(self._urls) > MAX_ENTRIES:
            self._urls.popitem(last=False)
        return url

    def forget(self, key: str) -> None:
        """A deleted result's URLs are never handed out again."""
        for memo in [m for m in self._urls if m[0] == key]:
            del self._urls[memo]
