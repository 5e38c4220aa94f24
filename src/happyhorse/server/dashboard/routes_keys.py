"""API Keys: create (the key is shown once), list, revoke."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from fastapi.responses import RedirectResponse, Response

from happyhorse.server.dashboard.auth import require_user
from happyhorse.server.dashboard.pages import base_url, notice
from happyhorse.server.dashboard.templating import render
from happyhorse.server.services import services
from happyhorse.store import accounts
from happyhorse.store.models import User

router = APIRouter()
NAME_MAX = 100


async def _keys_page(
    request: Request,
    user: User,
    *,
    new_key: str | None = None,
    new_name: str = "",
    error: str | None = None,
    status_code: int = 200,
) -> Response:
    async with services(request).db.read() as session:
        keys = await accounts.list_keys(session, user.account_id)
    keys.sort(key=lambda k: (k.revoked_at is not None, -k.created_at.timestamp()))  # active first, newest first
    return render(
        request,
        "keys.html",
        {
            "keys": keys,
            "new_key": new_key,
            "new_name": new_name,
            "error": error,
            "notice": notice(request),
            "base_url": base_url(request),
        },
        status_code=status_code,
        active="keys",
    )


@router.get("/dashboard/keys")
async def keys_page(request: Request, user: User = Depends(require_user)) -> Response:
    return await _keys_page(request, user)


@router.post("/dashboard/keys")
async def create_key(request: Request, user: User = Depends(require_user)) -> Response:
    name = str((await request.form()).get("name") or "").strip()
    if not name:
        return await _keys_page(
            request, user, error="Give the key a name, e.g. “production” or “laptop”.", status_code=400
        )
    if len(name) > NAME_MAX:
        return await _keys_page(request, user, error=f"Use at most {NAME_MAX} characters.", status_code=400)
    async with services(request).db.write() as session:
        created = await accounts.create_key(session, user.account_id, name)
    # Rendered straight into this response, never stored or redirected with: the only time it is shown.
    return await _keys_page(request, user, new_key=created.plaintext, new_name=name)


@router.post("/dashboard/keys/{key_id}/revoke")
async def revoke_key(request: Request, key_id: str, user: User = Depends(require_user)) -> Response:
    async with services(request).db.write() as session:
        await accounts.revoke_key(session, key_id, account_id=user.account_id)  # only this account's keys
    services(request).key_touched.pop(key_id, None)
    return RedirectResponse("/dashboard/keys?notice=key-revoked", status_code=303)
