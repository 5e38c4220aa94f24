"""Result files behind HMAC-signed, expiring URLs: no Authorization header, Range requests honoured."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import FileResponse, Response

from happyhorse.errors import ApiError, NotFound
from happyhorse.server.errors import error_response
from happyhorse.server.services import services

router = APIRouter(tags=["results"])


class LinkInvalid(ApiError):
    """A result link whose signature does not match or whose time is up (the API's error envelope)."""

    status = 403
    error_code = "LINK_INVALID"
    default_message = "this link is invalid or has expired"


def not_found(key: str) -> Response:
    return error_response(NotFound(f"no such file: {key}"))


@router.api_route("/files/{key}", methods=["GET", "HEAD"], include_in_schema=False)
async def result_file(request: Request, key: str, expires: str = "", signature: str = "") -> Response:
    from happyhorse.storage.local import LocalResultStore

    store = services(request).store
    if not isinstance(store, LocalResultStore):
        return not_found(key)
    try:
        path = store.path_for(key)
    except ValueError:
        return not_found(key)
    if not store.verify(key, expires, signature):
        return error_response(LinkInvalid())
    if not path.is_file():
        return not_found(key)
    return FileResponse(path, media_type="video/mp4", headers={"Cache-Control": "private, max-age=3600"})
