"""What the SDK raises. Every exception is a :class:`HappyHorseError`.

    HappyHorseError
    ├── APIError                  the API answered with an error (status, error_code, message)
    │   ├── InvalidRequest        400  INVALID_PROMPT · INVALID_DURATION · INVALID_MODEL · INVALID_REQUEST
    │   ├── InvalidApiKey         401  INVALID_API_KEY
    │   ├── InsufficientCredits   402  INSUFFICIENT_CREDITS
    │   ├── TaskNotFound          404  TASK_NOT_FOUND
    │   ├── RateLimited           429  RATE_LIMITED      (carries ``retry_after`` seconds)
    │   └── ServerError           5xx  INTERNAL_ERROR
    ├── APIConnectionError        the API could not be reached (after the allowed retries)
    ├── TaskFailed                the task ended FAILED (carries the ``task``)
    └── WaitTimeout               the wait gave up; the task may still finish (carries ``task_id``)

The status → exception map lives in exactly one place: :func:`api_error`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from happyhorse.client.types import Task

__all__ = [
    "APIConnectionError",
    "APIError",
    "HappyHorseError",
    "InsufficientCredits",
    "InvalidApiKey",
    "InvalidRequest",
    "RateLimited",
    "ServerError",
    "TaskFailed",
    "TaskNotFound",
    "WaitTimeout",
    "api_error",
]


class HappyHorseError(Exception):
    """Base class of every error the SDK raises."""


class APIError(HappyHorseError):
    """The API answered with an error status.

    Attributes:
        status: the HTTP status (or the envelope's ``code`` when a server reports errors in a 200).
        error_code: the contract's machine-readable code, e.g. ``"INVALID_DURATION"``; ``None``
            when the response was not the API's JSON envelope (a proxy's error page, say).
        message: the server's human message, which names the offending field.
    """

    def __init__(self, status: int, error_code: str | None, message: str) -> None:
        self.status = status
        self.error_code = error_code
        self.message = message
        super().__init__(self.__str__())

    def __str__(self) -> str:
        code = f"{self.error_code}, " if self.error_code else ""
        return f"{self.message} ({code}HTTP {self.status})"


class InvalidRequest(APIError):
    """400: the request was rejected; ``error_code`` says which rule (INVALID_DURATION, …)."""


class InvalidApiKey(APIError):
    """401: the API key is missing, malformed, unknown or revoked."""


class InsufficientCredits(APIError):
    """402: the account's balance is below the task's cost."""


class TaskNotFound(APIError):
    """404: no such task for this API key (another account's tasks look the same)."""


class Conflict(APIError):
    """409 (this server's extensions): ``IDEMPOTENCY_CONFLICT``, ``TASK_NOT_CANCELLABLE``, ``TASK_NOT_FINISHED``."""


class RateLimited(APIError):
    """429: over the per-key request limit.

    Attributes:
        retry_after: seconds the server asked us to wait (its ``Retry-After``), or ``None``.
    """

    def __init__(self, status: int, error_code: str | None, message: str, *, retry_after: float | None = None) -> None:
        self.retry_after = retry_after
        super().__init__(status, error_code, message)


class ServerError(APIError):
    """5xx: the server failed; usually worth retrying later."""


class APIConnectionError(HappyHorseError):
    """The API could not be reached, or the connection broke, after the allowed retries."""


class StreamUnavailable(HappyHorseError):
    """The server offers no status stream (the hosted API has none): ``wait`` polls instead."""


class TaskFailed(HappyHorseError):
    """The task ended ``FAILED``; its credits were refunded.

    Attributes:
        task: the final :class:`~happyhorse.Task`; ``task.error_message`` says why.
    """

    def __init__(self, task: Task) -> None:
        self.task = task
        reason = task.error_message or "no reason given"
        super().__init__(f"task {task.task_id} failed: {reason}")


class WaitTimeout(HappyHorseError):
    """The wait ran out of time while the task was still in progress.

    The task keeps rendering on the server: keep ``task_id`` and check again later.

    Attributes:
        task_id: the task that was being waited for.
        task: the last status seen, or ``None`` if none was seen.
        timeout: the wait's timeout in seconds.
    """

    def __init__(self, task_id: str, timeout: float, task: Task | None = None) -> None:
        self.task_id = task_id
        self.timeout = timeout
        self.task = task
        super().__init__(f"task {task_id} is still in progress after {timeout:g}s; check it again later")


# The one status → exception map. Anything else in 4xx is a plain APIError.
_BY_STATUS: dict[int, type[APIError]] = {
    400: InvalidRequest,
    401: InvalidApiKey,
    402: InsufficientCredits,
    404: TaskNotFound,
    409: Conflict,
    429: RateLimited,
}


def api_error(status: int, error_code: str | None, message: str, *, retry_after: float | None = None) -> APIError:
    """Build the exception for an error response: the one place statuses become classes."""
    if status == 429:
        return RateLimited(status, error_code, message, retry_after=retry_after)
    if status >= 500:
        return ServerError(status, error_code, message)
    return _BY_STATUS.get(status, APIError)(status, error_code, message)
