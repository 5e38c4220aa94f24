"""URLs no database can be asked about: a NUL character (``%00``) in the path or the query string is a
``400 INVALID_REQUEST``, in the surface's own error shape, before any route runs.

PostgreSQL's text cannot hold NUL, so a task id or cursor carrying one made every lookup a 500 in
distributed mode (``GET /api/status?task_id=a%00b``, ``/v1/videos/a%00b``, ...); no id, name or
parameter of this API ever contains one. (A NUL in a JSON body is refused by
``contract.loads_request_body``; the request line itself cannot carry a raw NUL byte.)
"""

from __future__ import annotations

from starlette.types import ASGIApp, Receive, Scope, Send

from happyhorse.errors import InvalidRequest
from happyhorse.server.body_limit import surface_error_response

MESSAGE = "the URL holds a NUL character (%00), which no path or parameter of this API takes"


def has_nul(scope: Scope) -> bool:
    return "\x00" in scope["path"] or b"%00" in scope.get("query_string", b"")


class NulGuard:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and has_nul(scope):
            await surface_error_response(scope["path"], InvalidRequest(MESSAGE))(scope, receive, send)
            return
        await self.app(scope, receive, send)
