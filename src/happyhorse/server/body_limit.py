"""The request body cap: a body over ``HAPPYHORSE_MAX_BODY_BYTES`` is answered ``413 REQUEST_TOO_LARGE``
before any of it is parsed, whoever sent it (the check comes before authentication).

    declared Content-Length over the cap  → 413 at once; not one body byte is read
    a chunked body (no Content-Length)    → read here, up to the cap, before the route runs: past it,
                                            413 at once (so a route that authenticates first cannot
                                            answer 401 to a 200 MB body); within it, replayed to the route
    bytes arriving past the cap otherwise → the next ``receive()`` raises; whatever the route then
                                            answers is dropped and the 413 goes out instead

The 413 speaks the surface's own error shape: the envelope under ``/api/``, DashScope's under
``/api/v1/``, OpenAI's under ``/v1/``. The image uploads (``POST /api/upload``, a multipart or
urlencoded form to ``POST /v1/videos``) keep their own, larger cap, enforced by their routes as the
bytes arrive; a JSON ``POST /v1/videos`` is held to this cap like any other JSON body.

What is left of a refused body is read and thrown away by the HTTP server (so the client, still
sending, gets to read the answer), never kept; ``HAPPYHORSE_REQUEST_TIMEOUT`` bounds how long that
may take (``server.request_timeout``).
"""

from __future__ import annotations

import uuid

from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from happyhorse.errors import ApiError, RequestTooLarge
from happyhorse.server.errors import error_response
from happyhorse.server.uploads import limit_text

# Routes whose bodies are image uploads: their routes cap them at the upload limit themselves.
UPLOAD_ROUTES = frozenset({("POST", "/api/upload"), ("POST", "/v1/videos")})


class BodyTooLarge(Exception):
    """Raised out of ``receive()`` once the body passes the cap; the middleware answers for the route."""


def too_large_text(limit: int) -> str:
    return f"the request body is larger than the {limit_text(limit)} limit"


def too_large_response(path: str, message: str) -> Response:
    """The 413 in the error shape of the surface that ``path`` belongs to."""
    return surface_error_response(path, RequestTooLarge(message))


def surface_error_response(path: str, error: ApiError) -> Response:
    """``error`` in the error shape of the surface that ``path`` belongs to (for answers given before
    any route runs): the envelope under ``/api/``, DashScope's under ``/api/v1/``, OpenAI's under ``/v1/``."""
    if path.startswith("/api/v1/"):
        from happyhorse.server.compat import dashscope

        return dashscope.error_response(error, str(uuid.uuid4()))
    if path == "/v1" or path.startswith("/v1/"):
        from happyhorse.server.compat import openai_errors

        return openai_errors.error_response(openai_errors.from_api_error(error))
    return error_response(error)


def _declared_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers") or ():
        if name == b"content-length":
            return int(value) if value.isdigit() else None
    return None


def _is_chunked(scope: Scope) -> bool:
    for name, value in scope.get("headers") or ():
        if name == b"transfer-encoding":
            return b"chunked" in value.lower()
    return False


async def _read_within(receive: Receive, limit: int) -> tuple[list[Message], bool]:
    """The body's messages up to its end, or until it passes ``limit`` bytes: (messages, passed)."""
    messages: list[Message] = []
    size = 0
    while True:
        message = await receive()
        messages.append(message)
        if message["type"] != "http.request":
            return messages, False  # the client went away: the route hears it
        size += len(message.get("body", b""))
        if size > limit:
            return messages, True
        if not message.get("more_body", False):
            return messages, False


def _replay(messages: list[Message], receive: Receive) -> Receive:
    pending = list(messages)

    async def replayed() -> Message:
        return pending.pop(0) if pending else await receive()

    return replayed


def _is_upload(scope: Scope) -> bool:
    """A form to an upload route: multipart, or (``/v1/videos``) urlencoded with the image as a data URL."""
    if (scope["method"], scope["path"]) not in UPLOAD_ROUTES:
        return False
    content_type = dict(scope.get("headers") or ()).get(b"content-type", b"")
    return bool(content_type.startswith((b"multipart/form-data", b"application/x-www-form-urlencoded")))


class BodyLimit:
    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or self.max_bytes <= 0 or _is_upload(scope):
            await self.app(scope, receive, send)
            return
        limit = self.max_bytes
        declared = _declared_length(scope)
        if declared is not None and declared > limit:
            await too_large_response(scope["path"], too_large_text(limit))(scope, receive, send)
            return
        if declared is None and _is_chunked(scope):
            # At most ``limit`` bytes are held; decided before any route looks at the request.
            buffered, over = await _read_within(receive, limit)
            if over:
                await too_large_response(scope["path"], too_large_text(limit))(scope, receive, send)
                return
            receive = _replay(buffered, receive)

        received = 0
        tripped = False
        started = False

        async def counted_receive() -> Message:
            nonlocal received, tripped
            if tripped:
                raise BodyTooLarge()
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    tripped = True
                    raise BodyTooLarge()
            return message

        async def guarded_send(message: Message) -> None:
            nonlocal started
            if tripped and not started:
                return  # the route's answer to a body it never got whole: ours goes instead
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, counted_receive, guarded_send)
        except Exception:
            if not tripped:
                raise
        if tripped and not started:
            await too_large_response(scope["path"], too_large_text(limit))(scope, receive, send)
