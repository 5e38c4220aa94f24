"""OpenAI's error shape for the ``/v1/`` surface: ``{"error": {"message", "type", "param", "code"}}``.

Owns ``OpenAIError``, the mapping from the project's ``ApiError`` classes to the statuses and codes the
``openai`` SDK turns into its exception classes, and the ``openai_errors`` decorator that makes every route
answer in that shape. Its own module so that ``body_limit`` can answer a 413 in OpenAI's shape without
importing the routes.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from fastapi.responses import JSONResponse, Response

from happyhorse.errors import (
    ApiError,
    Conflict,
    InsufficientCredits,
    InvalidApiKey,
    InvalidDuration,
    InvalidModel,
    InvalidPrompt,
    InvalidRequest,
    NotFound,
    RateLimited,
    RequestTooLarge,
    TaskNotFound,
)

log = logging.getLogger(__name__)


class OpenAIError(Exception):
    """An error in OpenAI's shape; ``param`` names the offending field."""

    def __init__(
        self,
        status: int,
        message: str,
        type_: str = "invalid_request_error",
        code: str | None = None,
        param: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status, self.message, self.type, self.code, self.param = status, message, type_, code, param
        self.headers = headers or {}


def invalid(message: str, param: str | None = None, code: str = "invalid_value") -> OpenAIError:
    return OpenAIError(400, message, code=code, param=param)


# Which body field each contract error is about.
PARAM_OF = {InvalidModel: "model", InvalidPrompt: "prompt", InvalidDuration: "seconds"}


def from_api_error(exc: ApiError) -> OpenAIError:
    """The project's error as OpenAI would say it. 402 becomes 429 ``insufficient_quota`` (what OpenAI
    answers an account out of credit), with ``x-should-retry: false`` so the SDK does not retry it."""
    no_retry = {"x-should-retry": "false"}
    if isinstance(exc, InsufficientCredits):
        return OpenAIError(429, exc.message, "insufficient_quota", "insufficient_quota", headers=no_retry)
    if isinstance(exc, RateLimited):
        return OpenAIError(
            429, exc.message, "requests", "rate_limit_exceeded", headers={"Retry-After": str(exc.retry_after)}
        )
    if isinstance(exc, InvalidApiKey):
        return OpenAIError(401, exc.message, code="invalid_api_key")
    if isinstance(exc, TaskNotFound | NotFound):
        return OpenAIError(404, exc.message, code="not_found", param="video_id")
    if isinstance(exc, RequestTooLarge):
        return OpenAIError(413, exc.message, code="request_too_large", headers=no_retry)
    if isinstance(exc, Conflict):
        return OpenAIError(409, exc.message, code=exc.error_code.lower(), headers=no_retry)
    if isinstance(exc, InvalidRequest):
        param = next((p for cls, p in PARAM_OF.items() if isinstance(exc, cls)), None)
        if param is None and exc.message.startswith("image_urls"):  # the first frame came as input_reference
            param = "input_reference"
        return OpenAIError(400, exc.message, code=exc.error_code.lower(), param=param)
    return OpenAIError(500, "internal server error", "server_error", "internal_error")


def error_response(err: OpenAIError) -> JSONResponse:
    body = {"error": {"message": err.message, "type": err.type, "param": err.param, "code": err.code}}
    return JSONResponse(body, status_code=err.status, headers=err.headers or None)


def openai_errors(route: Callable[..., Awaitable[Response]]) -> Callable[..., Awaitable[Response]]:
    """Every error of a route leaves in OpenAI's shape (the app's handlers would use the /api/ envelope)."""

    @functools.wraps(route)
    async def wrapper(*args: Any, **kwargs: Any) -> Response:
        try:
            return await route(*args, **kwargs)
        except OpenAIError as err:
            return error_response(err)
        except ApiError as exc:
            return error_response(from_api_error(exc))
        except Exception:  # a bug: logged, and still OpenAI's shape (the SDK maps 500 to InternalServerError)
            log.exception("unexpected error on %s", route.__name__)
            return error_response(OpenAIError(500, "internal server error", "server_error", "internal_error"))

    return wrapper
