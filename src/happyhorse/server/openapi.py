"""What /docs shows: the real request schema (validation itself is ``contract.parse_generate``)."""

from __future__ import annotations

from typing import Any

from happyhorse.contract_schema import ErrorResponse, GenerateBody

_schema = GenerateBody.model_json_schema(ref_template="#/components/schemas/{model}")
GENERATE_BODY_DEFS: dict[str, Any] = _schema.pop("$defs", {})
GENERATE_BODY: dict[str, Any] = {
    "requestBody": {"required": True, "content": {"application/json": {"schema": _schema}}},
}
STATUS_PARAMETERS: dict[str, Any] = {
    "parameters": [
        {
            "name": "task_id",
            "in": "query",
            "required": True,
            "schema": {"type": "string"},
            "description": "The task id returned by /api/generate (prefixed with n92)",
        }
    ],
}
ERROR_DESCRIPTIONS: dict[int, str] = {
    400: "Invalid request (INVALID_PROMPT, INVALID_DURATION, INVALID_MODEL, INVALID_REQUEST)",
    401: "INVALID_API_KEY",
    402: "INSUFFICIENT_CREDITS",
    404: "TASK_NOT_FOUND",
    409: "Conflict (IDEMPOTENCY_CONFLICT, TASK_NOT_CANCELLABLE, TASK_NOT_FINISHED)",
    413: "REQUEST_TOO_LARGE",
    429: "RATE_LIMITED (see Retry-After)",
    500: "INTERNAL_ERROR",
}


def error_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """The error answers an operation can give (401, 429 and 500 always): each status documented once,
    so /docs lists only what can happen there (``api_docs`` adds each one's own example)."""
    wanted = sorted({401, 429, 500, *statuses})
    return {status: {"model": ErrorResponse, "description": ERROR_DESCRIPTIONS[status]} for status in wanted}
