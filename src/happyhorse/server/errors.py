"""Every error under /api/ leaves in the contract's envelope; nothing internal leaks."""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from happyhorse.errors import ApiError, InvalidRequest, MethodNotAllowed, NotFound, RateLimited

log = logging.getLogger("happyhorse.server")


def envelope(data: object) -> dict[str, object]:
    return {"code": 200, "message": "success", "data": data}


def error_response(error: ApiError) -> JSONResponse:
    headers = {"Retry-After": str(error.retry_after)} if isinstance(error, RateLimited) else None
    body = {"code": error.status, "message": error.message, "error_code": error.error_code, "data": None}
    return JSONResponse(body, status_code=error.status, headers=headers)


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ApiError)
    async def _api_error(request: Request, exc: ApiError) -> JSONResponse:
        return error_response(exc)

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        # Never FastAPI's 422: name the first offending field in our envelope instead.
        first = exc.errors()[0] if exc.errors() else {}
        where = ".".join(str(p) for p in first.get("loc", ()) if p not in ("body", "query"))
        return error_response(InvalidRequest(f"{where or 'request'}: {first.get('msg', 'invalid')}"))

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        if exc.status_code == 404:
            return error_response(NotFound(f"no such endpoint: {request.method} {request.url.path}"))
        if exc.status_code == 405:
            response = error_response(MethodNotAllowed(f"{request.method} is not allowed on {request.url.path}"))
            if exc.headers and "Allow" in exc.headers:  # the methods the path does take
                response.headers["Allow"] = exc.headers["Allow"]
            return response
        error = ApiError(str(exc.detail) if exc.status_code < 500 else None)
        error.status = exc.status_code
        return error_response(error)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return error_response(ApiError())
