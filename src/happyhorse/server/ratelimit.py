"""Per-key rate limits with the ``limits`` library (memory storage, or Redis shared by API nodes)."""

from __future__ import annotations

import math
import time
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from limits import RateLimitItem, parse_many
from limits.aio.storage import Storage
from limits.aio.strategies import SlidingWindowCounterRateLimiter
from limits.storage import storage_from_string

from happyhorse.errors import RateLimited


def async_storage_uri(uri: str) -> str:
    """``memory://`` and ``redis://…`` as written in settings, as the async storage the API needs."""
    return uri if uri.startswith("async+") else f"async+{uri}"


def storage_options(uri: str) -> tuple[str, dict[str, str]]:
    """Split our own ``key_prefix=`` query parameter off a Redis URI (limits takes it as an argument),
    and pick redis-py's asyncio client: limits' default (coredis) needs coredis<6."""
    if "redis" not in uri.split("://", 1)[0]:
        return uri, {}
    parts = urlsplit(uri)
    query = parse_qsl(parts.query, keep_blank_values=True)
    options = {"implementation": "redispy"}
    options.update({k: v for k, v in query if k == "key_prefix"})
    rest = urlencode([(k, v) for k, v in query if k != "key_prefix"])
    return urlunsplit(parts._replace(query=rest)), options


class KeyRateLimiter:
    """Sliding-window counters: O(1) per hit (a moving window keeps one timestamp per request, up to
    3000 per key at the default status limit) and within one window's weight of exact."""

    def __init__(self, storage_uri: str, rules: dict[str, str]) -> None:
        self.rules: dict[str, list[RateLimitItem]] = {name: parse_many(spec) for name, spec in rules.items()}
        uri, options = storage_options(async_storage_uri(storage_uri))
        storage = storage_from_string(uri, **options)
        assert isinstance(storage, Storage)
        self.storage = storage  # also serves other limits (the dashboard's sign-in throttle)
        self.limiter = SlidingWindowCounterRateLimiter(storage)

    async def check(self, rule: str, key_id: str) -> None:
        """Count one hit for ``key_id`` under ``rule``; raise RateLimited with Retry-After when over."""
        for item in self.rules[rule]:
            if not await self.limiter.hit(item, rule, key_id):
                reset_at, _ = await self.limiter.get_window_stats(item, rule, key_id)
                raise RateLimited(retry_after=math.ceil(max(1.0, reset_at - time.time())))
