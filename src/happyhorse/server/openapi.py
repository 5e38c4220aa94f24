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
ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    status: {"model": ErrorResponse, "description": description}
    for status, description in {
        400: "Invalid request (INVALID_PROMPT, INVALID_DURATION, INVALID_MODEL, INVALID_REQUEST)",
        401: "INVALID_API_KEY",
        402: "INSUFFICIENT_CREDITS",
        404: "TASK_NOT_FOUND",
        429: "RATE_LIMITED (see Retry-After)",
        500: "INTERNAL_ERROR",
    }.items()
}
