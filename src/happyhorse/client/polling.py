"""When to ask again: the polling schedule and the per-request retry policy.

Both are sans-IO (they only compute delays), so the sync and async clients share them and
tests drive them with a fake clock.

Polling follows the public docs' "Polling Best Practices": a first check after
``first_delay``, then every ``interval`` seconds growing by 2 s up to ``max_interval``; after a
429 the schedule jumps to ``max_interval`` for the rest of the wait.

Retrying one request:

- 429: wait ``Retry-After`` seconds exactly (no jitter: the server said when), else back off.
- 5xx and network errors: exponential backoff with jitter, at most ``max_retries`` times.
- 400/401/402/404 and other 4xx: never retried; they will not fix themselves.
- Non-idempotent requests are retried only when the server surely did not act on them: on 429
  (rejected before any debit, per the contract's error order) and on failures to connect
  (``ConnectError``, ``ConnectTimeout``, ``PoolTimeout``: nothing was sent). ``POST
  /api/generate`` is not one of them: it carries an ``Idempotency-Key`` kept across its retries,
  so a retry of a request the server already accepted answers the same task.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime
from time import time as wall_time

import httpx

from happyhorse.client.errors import APIConnectionError, RateLimited, ServerError, TaskFailed, WaitTimeout
from happyhorse.client.types import Task

__all__ = [
    "DEFAULT_MAX_RETRIES",
    "TRANSIENT_ERRORS",
    "PollSchedule",
    "RetryState",
    "WaitLoop",
    "finish_wait",
    "parse_retry_after",
]

DEFAULT_MAX_RETRIES = 2
# Backoff for 5xx / network errors: 0.5 s, 1 s, 2 s, … capped, times a jitter in [0.5, 1].
BACKOFF_BASE = 0.5
BACKOFF_MAX = 8.0
# A Retry-After beyond this is not waited out inside one call: the caller gets RateLimited
# (with .retry_after) and decides. Inside wait() the deadline bounds it instead.
MAX_RETRY_AFTER = 60.0
POLL_STEP = 2.0

# Failures that happen before the request leaves this machine: safe to retry even a POST.
NOT_SENT_ERRORS: tuple[type[Exception], ...] = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)
# Errors that may pass by themselves; if one is still raised at a wait's deadline, the wait
# reports WaitTimeout (the task may be fine) rather than the error.
TRANSIENT_ERRORS: tuple[type[Exception], ...] = (RateLimited, ServerError, APIConnectionError)


class PollSchedule:
    """The delays between status checks: ``first_delay``, ``interval``, ``interval + 2``, …,
    ``max_interval``, ``max_interval``, …

    >>> s = PollSchedule(8, 10, 20)
    >>> [s.next_delay() for _ in range(8)]
    [8.0, 10.0, 12.0, 14.0, 16.0, 18.0, 20.0, 20.0]
    """

    def __init__(self, first_delay: float, interval: float, max_interval: float) -> None:
        named = {"first_delay": first_delay, "interval": interval, "max_interval": max_interval}
        for name, value in named.items():
            if value < 0:
                raise ValueError(f"{name} must be >= 0, got {value!r}")
        self.first_delay = float(first_delay)
        self.max_interval = float(max_interval)
        self._next_interval = min(float(interval), self.max_interval)
        self._started = False

    def next_delay(self) -> float:
        """Seconds to sleep before the next status check."""
        if not self._started:
            self._started = True
            return self.first_delay
        delay = self._next_interval
        self._next_interval = min(delay + POLL_STEP, self.max_interval)
        return delay

    def slow_down(self) -> None:
        """The server rate-limited us: poll at the slowest rate from now on."""
        self._next_interval = self.max_interval


def parse_retry_after(value: str | None) -> float | None:
    """Seconds from a ``Retry-After`` header (delta-seconds or an HTTP date); ``None`` if absent/bad."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - wall_time())


@dataclass
class RetryState:
    """The retry decisions for one logical request (one call to the API, any number of attempts).

    ``after_response`` / ``after_network_error`` return the seconds to sleep before trying again,
    or ``None`` when the outcome is final (the caller then parses or raises it).
    """

    max_retries: int = DEFAULT_MAX_RETRIES
    idempotent: bool = True
    deadline: float | None = None  # a wait's deadline (on ``clock``): delays never run past it
    clock: Callable[[], float] | None = None
    jitter: Callable[[], float] = field(default=lambda: random.uniform(0.5, 1.0))
    retries: int = 0
    rate_limited: bool = False  # set once a 429 was retried, so the poller slows down

    def after_response(self, response: httpx.Response) -> float | None:
        """Whether to retry after this response (``None``: it is final)."""
        status = response.status_code
        if status == 429:
            retry_after = parse_retry_after(response.headers.get("Retry-After"))
            if retry_after is not None and retry_after > MAX_RETRY_AFTER and self.deadline is None:
                return None
            delay = self._next(retry_after)
            if delay is not None:
                self.rate_limited = True
            return delay
        if status >= 500 and self.idempotent:
            return self._next(None)
        return None

    def after_network_error(self, error: Exception) -> float | None:
        """Whether to retry after a transport error (``None``: give up and raise)."""
        if not self.idempotent and not isinstance(error, NOT_SENT_ERRORS):
            return None
        return self._next(None)

    def _next(self, retry_after: float | None) -> float | None:
        if self.retries >= self.max_retries:
            return None
        delay = retry_after if retry_after is not None else self._backoff()
        if self.deadline is not None and self.clock is not None:
            remaining = self.deadline - self.clock()
            if remaining <= 0:
                return None  # the wait is over; hammering the server now helps no one
            delay = min(delay, remaining)
        self.retries += 1
        return delay

    def _backoff(self) -> float:
        return float(min(BACKOFF_BASE * 2**self.retries, BACKOFF_MAX) * self.jitter())


class WaitLoop:
    """The bookkeeping of one ``wait``: what to sleep next, when time is up, when to slow down.

    The clients run it as: ``sleep(loop.next_sleep())``, fetch the status with
    ``loop.retry_state()``, then ``loop.observe(task, retry)``, until the task is done.
    """

    def __init__(
        self,
        task_id: str,
        *,
        first_delay: float,
        interval: float,
        max_interval: float,
        timeout: float | None,
        clock: Callable[[], float],
        max_retries: int,
    ) -> None:
        if timeout is not None and timeout < 0:
            raise ValueError(f"timeout must be >= 0 or None, got {timeout!r}")
        self.task_id = task_id
        self.timeout = timeout
        self.schedule = PollSchedule(first_delay, interval, max_interval)
        self.clock = clock
        self.max_retries = max_retries
        self.deadline = None if timeout is None else clock() + timeout
        self.last: Task | None = None

    def next_sleep(self) -> float:
        """Seconds until the next check, cut short at the deadline; raises once no time is left.

        Cutting the last sleep at the deadline means the final check happens right at it.
        """
        delay = self.schedule.next_delay()
        if self.deadline is None:
            return delay
        remaining = self.deadline - self.clock()
        if remaining <= 0:
            raise self.timeout_error()
        return min(delay, remaining)

    def retry_state(self) -> RetryState:
        """The retry policy for one status check: a GET, and retries bounded by the deadline."""
        return RetryState(max_retries=self.max_retries, deadline=self.deadline, clock=self.clock)

    def observe(self, task: Task, retry: RetryState) -> None:
        """Record a status check; a check that met 429 slows the rest of the wait down."""
        self.last = task
        if retry.rate_limited:
            self.schedule.slow_down()

    def timed_out(self) -> bool:
        """Whether the deadline has passed (a retryable error then becomes a WaitTimeout)."""
        return self.deadline is not None and self.clock() >= self.deadline

    def timeout_error(self) -> WaitTimeout:
        """The exception for running out of time, carrying the last status seen."""
        return WaitTimeout(self.task_id, self.timeout if self.timeout is not None else 0.0, self.last)


def finish_wait(task: Task) -> Task:
    """What ``wait`` makes of a final task: SUCCESS is returned, FAILED raises :class:`TaskFailed`."""
    if task.failed:
        raise TaskFailed(task)
    return task
