"""The API's error tree: each error knows its HTTP status and ``error_code``.

    ApiError                       500 INTERNAL_ERROR
    ├── InvalidRequest             400 INVALID_REQUEST
    │   ├── InvalidPrompt          400 INVALID_PROMPT
    │   ├── InvalidDuration        400 INVALID_DURATION
    │   └── InvalidModel           400 INVALID_MODEL
    ├── InvalidApiKey              401 INVALID_API_KEY
    ├── InsufficientCredits        402 INSUFFICIENT_CREDITS
    ├── TaskNotFound               404 TASK_NOT_FOUND
    ├── NotFound                   404 NOT_FOUND
    ├── MethodNotAllowed           405 METHOD_NOT_ALLOWED
    ├── Conflict                   409 (extensions: IDEMPOTENCY_CONFLICT, TASK_NOT_CANCELLABLE, TASK_NOT_FINISHED)
    ├── RequestTooLarge            413 REQUEST_TOO_LARGE  (a body over the limit, an upload over the quota)
    └── RateLimited                429 RATE_LIMITED  (carries retry_after seconds)

They are rendered into the contract's envelope in exactly one place (``server.errors``).
"""

from __future__ import annotations


class ApiError(Exception):
    status = 500
    error_code = "INTERNAL_ERROR"
    default_message = "internal server error"

    def __init__(self, message: str | None = None) -> None:
        self.message = message or self.default_message
        super().__init__(self.message)


class InvalidRequest(ApiError):
    status = 400
    error_code = "INVALID_REQUEST"
    default_message = "invalid request"


class InvalidPrompt(InvalidRequest):
    error_code = "INVALID_PROMPT"
    default_message = "prompt is invalid"


class InvalidDuration(InvalidRequest):
    error_code = "INVALID_DURATION"
    default_message = "duration must be an integer from 3 to 15"


class InvalidModel(InvalidRequest):
    error_code = "INVALID_MODEL"
    default_message = "model must be 'happyhorse-1.0/video'"


class InvalidApiKey(ApiError):
    status = 401
    error_code = "INVALID_API_KEY"
    default_message = "API key is missing or invalid"


class InsufficientCredits(ApiError):
    status = 402
    error_code = "INSUFFICIENT_CREDITS"
    default_message = "not enough credits for this task"


class TaskNotFound(ApiError):
    status = 404
    error_code = "TASK_NOT_FOUND"
    default_message = "task not found"


class NotFound(ApiError):
    status = 404
    error_code = "NOT_FOUND"
    default_message = "not found"


class MethodNotAllowed(ApiError):
    status = 405
    error_code = "METHOD_NOT_ALLOWED"
    default_message = "method not allowed"


class Conflict(ApiError):
    status = 409
    error_code = "CONFLICT"
    default_message = "the request conflicts with the resource's current state"


class IdempotencyConflict(Conflict):
    error_code = "IDEMPOTENCY_CONFLICT"
    default_message = "this Idempotency-Key was already used with a different request body"


class TaskNotCancellable(Conflict):
    error_code = "TASK_NOT_CANCELLABLE"
    default_message = "the task has already ended"


class TaskNotFinished(Conflict):
    error_code = "TASK_NOT_FINISHED"
    default_message = "the task is still in progress"


class RequestTooLarge(ApiError):
    status = 413
    error_code = "REQUEST_TOO_LARGE"
    default_message = "the request body is too large"


class RateLimited(ApiError):
    status = 429
    error_code = "RATE_LIMITED"
    default_message = "too many requests, please slow down"

    def __init__(self, retry_after: int, message: str | None = None) -> None:
        super().__init__(message)
        self.retry_after = max(1, int(retry_after))
