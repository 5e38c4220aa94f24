"""Per-key rate limits with the ``limits`` library (memory storage, or Redis shared by API nodes)."""

from __future__ import annotations

import math
import time
from contextvars import ContextVar
from dataclasses import dataclass
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from limits import RateLimitItem, parse_many
from limits.aio.storage import MemoryStorage, Storage
from limits.aio.strategies import SlidingWindowCounterRateLimiter
from limits.storage import storage_from_string
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from happyhorse.errors import RateLimited
from happyhorse.server.memory_windows import MemoryWindows


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


@dataclass(frozen=True)
class Quota:
    """The tightest rule of an endpoint after a hit: what the ``X-RateLimit-*`` headers say."""

    limit: int
    remaining: int
    reset_s: int  # seconds until that rule frees a request

    def headers(self) -> list[tuple[bytes, bytes]]:
        return [
            (b"x-ratelimit-limit", str(self.limit).encode()),
            (b"x-ratelimit-remaining", str(self.remaining).encode()),
            (b"x-ratelimit-reset", str(self.reset_s).encode()),
        ]


class QuotaSlot:
    """Where ``check`` leaves the request's quota for the response headers (see ``quota_headers``)."""

    quota: Quota | None = None


# Set per request by the ASGI layer; check() fills the slot in place, so child tasks reach it too.
CURRENT_QUOTA: ContextVar[QuotaSlot | None] = ContextVar("happyhorse_quota", default=None)


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
        # Per-process storage: the same counters computed in one step per limit (memory_windows.py).
        self.local = MemoryWindows() if isinstance(storage, MemoryStorage) else None

    async def check(self, rule: str, key_id: str) -> Quota:
        """Count one hit for ``key_id`` under ``rule``; raise RateLimited with Retry-After when over.

        Returns the tightest of the rule's limits (the fewest requests left), and leaves it in the
        request's quota slot so the response carries it as ``X-RateLimit-*`` headers.
        """
        tightest: Quota | None = None
        for index, item in enumerate(self.rules[rule]):
            if self.local is not None:
                allowed, remaining, frees_in = self.local.hit(item, (rule, index, key_id))
                quota = Quota(item.amount, remaining, whole_seconds(frees_in, item))
            else:
                allowed = await self.limiter.hit(item, rule, key_id)
                reset_at, remaining = await self.limiter.get_window_stats(item, rule, key_id)
                quota = Quota(item.amount, max(0, remaining), reset_seconds(reset_at, item))
            if not allowed:
                _leave(quota)
                raise RateLimited(retry_after=quota.reset_s)
            if tightest is None or quota.remaining < tightest.remaining:
                tightest = quota
        assert tightest is not None, f"rate-limit rule {rule!r} has no limits"
        _leave(tightest)
        return tightest


def reset_seconds(reset_at: float, item: RateLimitItem) -> int:
    """Whole seconds until ``reset_at``, from 1 to the rule's window: the storages date a sliding
    window differently (memory: the aligned window's end; Redis: the key's expiry, read a moment after
    the hit), and no rule frees a request later than one window from now."""
    return whole_seconds(reset_at - time.time(), item)


def whole_seconds(frees_in: float, item: RateLimitItem) -> int:
    return min(item.get_expiry(), max(1, math.ceil(frees_in)))


def _leave(quota: Quota) -> None:
    slot = CURRENT_QUOTA.get()
    if slot is not None:
        slot.quota = quota


def quota_headers(send: Send) -> Send:
    """Wrap ``send`` so the response carries the quota ``check`` left for this request, if any.

    Call it in the request's own context: it opens the slot that ``check`` fills.
    """
    slot = QuotaSlot()
    CURRENT_QUOTA.set(slot)

    async def send_with_quota(message: Message) -> None:
        if message["type"] == "http.response.start" and slot.quota is not None:
            message = {**message, "headers": [*message.get("headers", []), *slot.quota.headers()]}
        await send(message)

    return send_with_quota


class QuotaHeaders:
    """ASGI layer: ``X-RateLimit-Limit``, ``-Remaining`` and ``-Reset`` on every rate-limited response."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        await self.app(scope, receive, quota_headers(send))
