"""``/docs`` (Swagger UI) and ``/redoc`` served from the installed package, so they work offline.

FastAPI's defaults load Swagger UI and ReDoc from a CDN; an air-gapped server then shows white pages.
The assets are vendored under ``server/static/`` (minified ``swagger-ui-dist`` and ``redoc`` files from
the npm registry, with their licences) rather than taken from a PyPI package: no maintained package
ships both, and the files are small, fixed and need no build step. To update them, ``npm pack
swagger-ui-dist redoc`` and copy the same file names over.

The module also finishes the OpenAPI schema for people reading it: a Bearer security scheme on the
``/api/`` and ``/v1/videos`` operations (so "Authorize" then "Try it out" sends the key), one request
example per kind of ``POST /api/generate``, and for each operation only the error statuses it can answer,
each with its own example worded as the server words it (FastAPI's unused 422 is dropped).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

from happyhorse.contract import MODEL_NAME

STATIC_DIR = Path(__file__).parent / "static"
ASSETS = "/docs-assets"
SCHEME = "ApiKey"

GENERATE_EXAMPLES: dict[str, dict[str, Any]] = {
    "text-to-video": {
        "summary": "Text to video",
        "value": {
            "model": MODEL_NAME,
            "prompt": "A majestic eagle soaring through clouds at sunset",
            "mode": "pro",
            "duration": 5,
            "aspect_ratio": "16:9",
            "sound": True,
        },
    },
    "image-to-video": {
        "summary": "Image to video (the image is the first frame)",
        "value": {
            "model": MODEL_NAME,
            "prompt": "The dog runs towards the camera",
            "mode": "std",
            "duration": 5,
            "image_urls": ["https://example.com/dog.jpg"],
        },
    },
    "first-last-frame": {
        "summary": "First and last frame",
        "value": {
            "model": MODEL_NAME,
            "prompt": "The flower slowly opens",
            "duration": 6,
            "image_urls": ["https://example.com/bud.jpg", "https://example.com/bloom.jpg"],
        },
    },
    "multi-shot": {
        "summary": "Multi-shot (1-5 shots; durations add up to the total)",
        "value": {
            "model": MODEL_NAME,
            "mode": "pro",
            "multi_shots": True,
            "sound": True,
            "duration": 10,
            "aspect_ratio": "16:9",
            "multi_prompt": [
                {"prompt": "A woman walks into a coffee shop", "duration": 3},
                {"prompt": "She orders a latte and sits by the window", "duration": 4},
                {"prompt": "She looks outside and smiles", "duration": 3},
            ],
        },
    },
    "elements": {
        "summary": "Elements (reference subjects named as @name)",
        "value": {
            "model": MODEL_NAME,
            "prompt": "@element_dog plays with a ball in the park",
            "duration": 5,
            "happyhorse_elements": [
                {
                    "name": "element_dog",
                    "description": "a small brown terrier",
                    "element_input_urls": ["https://example.com/dog-1.jpg", "https://example.com/dog-2.jpg"],
                }
            ],
        },
    },
}


def _error(status: int, error_code: str, message: str) -> dict[str, Any]:
    return {"code": status, "message": message, "error_code": error_code, "data": None}


def _choices(status: int, messages: dict[str, str]) -> dict[str, dict[str, Any]]:
    """Several examples for one status, named by ``error_code`` (Swagger UI offers them in a picker)."""
    return {code: {"summary": code, "value": _error(status, code, message)} for code, message in messages.items()}


# Each status's own example, as the server words it: what an operation without one of its own shows.
ERROR_EXAMPLES: dict[int, dict[str, Any]] = {
    400: _error(400, "INVALID_REQUEST", "task_id is required"),
    401: _error(401, "INVALID_API_KEY", "the API key is invalid or has been revoked"),
    402: _error(402, "INSUFFICIENT_CREDITS", "this task costs 400 credits and the balance is 120"),
    404: _error(404, "TASK_NOT_FOUND", "no task 'n92abc123hh10xyz' for this API key's account"),
    409: _error(409, "TASK_NOT_FINISHED", "task n92abc123hh10xyz is still in progress"),
    413: _error(413, "REQUEST_TOO_LARGE", "the request body is larger than the 1 MiB limit"),
    429: _error(429, "RATE_LIMITED", "too many requests, please slow down"),
    500: _error(500, "INTERNAL_ERROR", "internal server error"),
}
# Where an operation's answer for a status differs from the above: one example, or several to pick from.
OPERATION_ERROR_EXAMPLES: dict[tuple[str, int], dict[str, Any]] = {
    ("/api/generate", 400): _choices(
        400,
        {
            "INVALID_MODEL": "model must be 'happyhorse-1.0/video'",
            "INVALID_PROMPT": "prompt must not be blank",
            "INVALID_DURATION": "duration must be an integer from 3 to 15",
            "INVALID_REQUEST": "request body is not valid JSON: line 1, column 12",
        },
    ),
    ("/api/generate", 409): _error(
        409,
        "IDEMPOTENCY_CONFLICT",
        "Idempotency-Key 'order-42' was already used with a different request body (task n92abc123hh10xyz); "
        "use a new key for a new request",
    ),
    ("/api/cancel", 400): _error(400, "INVALID_REQUEST", 'task_id is required: send {"task_id": "n92…"}'),
    ("/api/cancel", 409): _error(
        409,
        "TASK_NOT_CANCELLABLE",
        "task n92abc123hh10xyz has already ended (SUCCESS); only tasks in progress can be cancelled",
    ),
    ("/api/tasks", 400): _error(400, "INVALID_REQUEST", "limit must be an integer from 1 to 100"),
    ("/api/tasks/{task_id}", 409): _error(
        409,
        "TASK_NOT_FINISHED",
        "task n92abc123hh10xyz is still in progress; cancel it first or wait for it to end",
    ),
    ("/api/upload", 400): _error(
        400, "INVALID_REQUEST", "file is required: send the image in a multipart field named 'file'"
    ),
    ("/api/upload", 413): _error(
        413,
        "REQUEST_TOO_LARGE",
        "this account's upload storage quota of 1 GiB is used up: it stores 1023.9 MiB of uploads and this file "
        "is 2 MiB; uploads are deleted once the result retention passes",
    ),
}


def _secured(path: str) -> bool:
    """The operations that take an API key: this API and the OpenAI Videos surface (both Bearer)."""
    return path.startswith("/api/") or path == "/v1/videos" or path.startswith("/v1/videos/")


def finish_schema(schema: dict[str, Any]) -> dict[str, Any]:
    """Add the security scheme and the examples to a generated OpenAPI schema (in place)."""
    components = schema.setdefault("components", {})
    components.setdefault("securitySchemes", {})[SCHEME] = {
        "type": "http",
        "scheme": "bearer",
        "description": "An API key: `Authorization: Bearer YOUR_API_KEY` (create one on the dashboard's Keys "
        "page or with `.venv/bin/happyhorse keys create --name me --credits 10000`).",
    }
    for path, operations in schema.get("paths", {}).items():
        for method, operation in operations.items():
            if not isinstance(operation, dict):
                continue
            if _secured(path):
                operation.setdefault("security", [{SCHEME: []}])
            responses = operation.get("responses", {})
            responses.pop("422", None)  # FastAPI's validation answer: this server never gives it
            for status, response in responses.items():
                if not str(status).isdigit() or int(status) < 400:
                    continue
                content = response.get("content", {}).get("application/json")
                example = OPERATION_ERROR_EXAMPLES.get((path, int(status)), ERROR_EXAMPLES.get(int(status)))
                if example is None or content is None:
                    continue
                content.pop("examples", None)
                content.pop("example", None)
                content["examples" if "code" not in example else "example"] = example
            if path == "/api/generate" and method == "post":
                body = operation.get("requestBody", {}).get("content", {}).get("application/json")
                if body is not None:
                    body["examples"] = GENERATE_EXAMPLES
    return schema


def install_api_docs(app: FastAPI) -> None:
    """Mount the vendored assets and the two pages; wrap ``app.openapi`` with :func:`finish_schema`.
    Create the app with ``docs_url=None, redoc_url=None`` and call this after setting ``app.openapi``."""
    app.mount(ASSETS, StaticFiles(directory=STATIC_DIR), name="docs-assets")
    build: Callable[[], dict[str, Any]] = app.openapi

    finished = False

    def openapi() -> dict[str, Any]:
        nonlocal finished
        if not finished:
            finish_schema(build())
            finished = True
        return build()

    app.openapi = openapi  # type: ignore[method-assign]
    favicon = f"{ASSETS}/swagger-ui/favicon-32x32.png"

    @app.get("/docs", include_in_schema=False)
    async def swagger_ui() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url=app.openapi_url or "/openapi.json",
            title=f"{app.title} - API reference",
            swagger_js_url=f"{ASSETS}/swagger-ui/swagger-ui-bundle.js",
            swagger_css_url=f"{ASSETS}/swagger-ui/swagger-ui.css",
            swagger_favicon_url=favicon,
            swagger_ui_parameters={"persistAuthorization": True},
        )

    @app.get("/redoc", include_in_schema=False)
    async def redoc() -> HTMLResponse:
        return get_redoc_html(
            openapi_url=app.openapi_url or "/openapi.json",
            title=f"{app.title} - ReDoc",
            redoc_js_url=f"{ASSETS}/redoc/redoc.standalone.js",
            redoc_favicon_url=favicon,
            with_google_fonts=False,
        )
