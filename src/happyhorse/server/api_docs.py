"""``/docs`` (Swagger UI) and ``/redoc`` served from the installed package, so they work offline.

FastAPI's defaults load Swagger UI and ReDoc from a CDN; an air-gapped server then shows white pages.
The assets are vendored under ``server/static/`` (minified ``swagger-ui-dist`` and ``redoc`` files from
the npm registry, with their licences) rather than taken from a PyPI package: no maintained package
ships both, and the files are small, fixed and need no build step. To update them, ``npm pack
swagger-ui-dist redoc`` and copy the same file names over.

The module also finishes the OpenAPI schema for people reading it: a Bearer security scheme on the
``/api/`` operations (so "Authorize" then "Try it out" sends the key), one request example per kind of
``POST /api/generate``, and each error status's own example.
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


ERROR_EXAMPLES: dict[str, dict[str, Any]] = {
    "400": _error(400, "INVALID_DURATION", "duration must be an integer from 3 to 15"),
    "401": _error(401, "INVALID_API_KEY", "API key is missing or invalid"),
    "402": _error(402, "INSUFFICIENT_CREDITS", "not enough credits for this task"),
    "404": _error(404, "TASK_NOT_FOUND", "task not found"),
    "409": _error(409, "IDEMPOTENCY_CONFLICT", "this Idempotency-Key was already used with a different request body"),
    "413": _error(413, "INVALID_REQUEST", "the upload is too large"),
    "429": _error(429, "RATE_LIMITED", "too many requests, please slow down"),
    "500": _error(500, "INTERNAL_ERROR", "internal server error"),
}
# A 400 on generate can be any of four codes: show them all.
GENERATE_400_EXAMPLES: dict[str, dict[str, Any]] = {
    code: {"summary": code, "value": _error(400, code, message)}
    for code, message in {
        "INVALID_MODEL": "model must be 'happyhorse-1.0/video'",
        "INVALID_PROMPT": "prompt must not be blank",
        "INVALID_DURATION": "duration must be an integer from 3 to 15",
        "INVALID_REQUEST": "request body is not valid JSON: line 1, column 12",
    }.items()
}


def finish_schema(schema: dict[str, Any]) -> dict[str, Any]:
    """Add the security scheme and the examples to a generated OpenAPI schema (in place)."""
    components = schema.setdefault("components", {})
    components.setdefault("securitySchemes", {})[SCHEME] = {
        "type": "http",
        "scheme": "bearer",
        "description": "An API key: `Authorization: Bearer YOUR_API_KEY` (create one on the dashboard's Keys "
        "page or with `happyhorse keys create`).",
    }
    for path, operations in schema.get("paths", {}).items():
        for method, operation in operations.items():
            if not isinstance(operation, dict):
                continue
            if path.startswith("/api/"):
                operation.setdefault("security", [{SCHEME: []}])
            for status, response in operation.get("responses", {}).items():
                example = ERROR_EXAMPLES.get(str(status))
                content = response.get("content", {}).get("application/json")
                if example is None or content is None:
                    continue
                content.pop("examples", None)
                if path == "/api/generate" and str(status) == "400":
                    content["examples"] = GENERATE_400_EXAMPLES
                else:
                    content["example"] = example
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
