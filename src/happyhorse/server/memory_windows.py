"""Sliding-window counters in this process's memory: the per-key limits of an embedded server.

The same algorithm as ``limits``' ``SlidingWindowCounterRateLimiter`` on its memory storage (windows
aligned to the clock; the previous window's count weighted by how much of it still overlaps the
last ``window`` seconds; a request is allowed while the floor of that weighted count plus the
current window's count stays under the limit), computed in one step per limit. ``limits`` needs a
hit and a window-stats read per limit, five storage calls each, for a status poll's two limits:
about a third of the poll's server time. With ``memory://`` nothing is shared between processes
either way, so this is only faster, not different; Redis storage keeps ``limits`` (shared state).
"""

from __future__ import annotations

import math
import time

from limits import RateLimitItem

PRUNE_AT = 10_000  # windows held before those of idle keys are dropped (one per key and limit)


class MemoryWindows:
    def __init__(self) -> None:
        # (rule, limit's index in it, key) → [window number, previous count, current count, window seconds]
        self._windows: dict[tuple[str, int, str], list[int]] = {}

    def hit(self, item: RateLimitItem, name: tuple[str, int, str], now: float | None = None) -> tuple[bool, int, float]:
        """Count one request under ``name`` (rule, limit index, key) if ``item`` allows it:
        (allowed, requests left, seconds until one frees)."""
        now = time.time() if now is None else now
        span = item.get_expiry()
        number = int(now // span)
        left_in_window = (number + 1) * span - now
        window = self._windows.get(name)
        if window is None:
            if len(self._windows) >= PRUNE_AT:
                self._prune(now)
            window = self._windows[name] = [number, 0, 0, span]
        elif window[0] != number:  # a new window: the current one becomes the previous (or both lapse)
            window[1] = window[2] if window[0] == number - 1 else 0
            window[2] = 0
            window[0] = number
        previous, current = window[1], window[2]
        weighted = math.floor(previous * left_in_window / span)
        allowed = weighted + current + 1 <= item.amount
        if allowed:
            current = window[2] = current + 1
        remaining = max(0, item.amount - weighted - current)
        # Like limits: the previous window's requests free one by one as it slides out; the current
        # window's at its end.
        frees_in = left_in_window
        if previous:
            frees_in = min(frees_in, left_in_window % (span / previous))
        return allowed, remaining, frees_in

    def _prune(self, now: float) -> None:
        """Drop the windows that count nothing any more (both older than the previous window)."""
        stale = [k for k, w in self._windows.items() if w[0] < int(now // w[3]) - 1]
        for k in stale:
            del self._windows[k]
