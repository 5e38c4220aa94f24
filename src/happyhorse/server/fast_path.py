"""The status poll, served ahead of the framework's middleware stack.

Clients poll ``GET /api/status`` every few seconds for every running task, so it is the request a
server answers most. This thin ASGI layer hands exactly that request straight to
``routes_api.status`` (same code, same errors, same envelope) and everything else to FastAPI,
saving the per-request cost of five middleware layers and route matching. The FastAPI route stays
registered: it documents the endpoint in /docs and serves it when the app runs without this layer.
"""

from __future__ import annotations

import logging

from fastapi import FastAPI
from starlette.requests import Request
from starlette.types import Receive, Scope, Send

from happyhorse.errors import ApiError
from happyhorse.server.errors import error_response
from happyhorse.server.ratelimit import quota_headers
from happyhorse.server.routes_api import status
from happyhorse.server.url_guard import has_nul

log = logging.getLogger("happyhorse.server")


class StatusFastPath:
    def __init__(self, app: FastAPI) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] != "/api/status" or scope["method"] != "GET" or has_nul(scope):
            await self.app(scope, receive, send)
            return
        scope["app"] = self.app  # what Starlette would set: request.app.state is the app's state
        send = quota_headers(send)  # before the route runs: it opens the slot the limiter fills
        request = Request(scope, receive)
        try:
            response = await status(request)
        except ApiError as error:
            response = error_response(error)
        except Exception:
            log.exception("unhandled error on GET /api/status")
            response = error_response(ApiError())
        await response(scope, receive, send)
