"""Result files behind HMAC-signed, expiring URLs: no Authorization header, Range requests honoured."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import FileResponse, JSONResponse, Response

router = APIRouter(tags=["results"])


@router.api_route("/files/{key}", methods=["GET", "HEAD"], include_in_schema=False)
async def result_file(request: Request, key: str, expires: str = "", signature: str = "") -> Response:
    from happyhorse.storage.local import LocalResultStore

    store = request.app.state.store
    if not isinstance(store, LocalResultStore):
        return JSONResponse({"message": "not found"}, status_code=404)
    try:
        path = store.path_for(key)
    except ValueError:
        return JSONResponse({"message": "not found"}, status_code=404)
    if not store.verify(key, expires, signature):
        return JSONResponse({"message": "this link is invalid or has expired"}, status_code=403)
    if not path.is_file():
        return JSONResponse({"message": "not found"}, status_code=404)
    return FileResponse(path, media_type="video/mp4", headers={"Cache-Control": "private, max-age=3600"})
