"""The embedded limiter's own counters decide exactly as ``limits``' sliding-window counter does."""

from __future__ import annotations

import asyncio
import random
import time

import pytest
from limits import parse_many
from limits.aio.storage import MemoryStorage
from limits.aio.strategies import SlidingWindowCounterRateLimiter

from happyhorse.errors import RateLimited
from happyhorse.server.memory_windows import PRUNE_AT, MemoryWindows
from happyhorse.server.ratelimit import KeyRateLimiter


def test_same_decisions_as_limits(monkeypatch: pytest.MonkeyPatch) -> None:
    """A random burst pattern over several windows: the same allowed/refused, the same requests left
    and the same time until one frees as limits on its memory storage, hit for hit."""
    clock = [1_000_000.0]
    monkeypatch.setattr(time, "time", lambda: clock[0])
    items = parse_many("5/second;12/3 seconds")
    ours = MemoryWindows()
    theirs = SlidingWindowCounterRateLimiter(MemoryStorage())
    rng = random.Random(7)

    async def run() -> int:
        refused = 0
        for _ in range(400):
            clock[0] += rng.choice([0.0, 0.01, 0.05, 0.2, 0.7, 1.3])
            for index, item in enumerate(items):
                allowed, left, frees_in = ours.hit(item, ("status", index, "k"))
                expected = await theirs.hit(item, "status", "k")
                reset_at, remaining = await theirs.get_window_stats(item, "status", "k")
                assert (allowed, left) == (expected, remaining), (clock[0], item)
                assert frees_in == pytest.approx(reset_at - clock[0], abs=1e-6)
                refused += not allowed
        return refused

    assert asyncio.run(run()) > 20  # the pattern did reach the limits


def test_keys_and_rules_count_apart() -> None:
    (item,) = parse_many("3/minute")
    windows = MemoryWindows()
    now = 5_000.0
    assert [windows.hit(item, ("status", 0, "a"), now)[0] for _ in range(4)] == [True, True, True, False]
    assert windows.hit(item, ("status", 0, "b"), now)[0]
    assert windows.hit(item, ("generate", 0, "a"), now)[0]


def test_idle_windows_are_dropped() -> None:
    (item,) = parse_many("3/second")
    windows = MemoryWindows()
    for n in range(PRUNE_AT):
        windows.hit(item, ("status", 0, f"key{n}"), 100.0)
    windows.hit(item, ("status", 0, "late"), 110.0)  # ten seconds on: every earlier window counts nothing
    assert len(windows._windows) == 1


def test_key_rate_limiter_uses_them_on_memory_storage() -> None:
    limiter = KeyRateLimiter("memory://", {"status": "2/minute;100/hour"})
    assert limiter.local is not None

    async def run() -> None:
        first = await limiter.check("status", "k")
        assert (first.limit, first.remaining) == (2, 1)
        await limiter.check("status", "k")
        with pytest.raises(RateLimited) as refused:
            await limiter.check("status", "k")
        assert 1 <= refused.value.retry_after <= 60

    asyncio.run(run())
