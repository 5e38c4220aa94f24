"""``/`` and the overview: balance, keys, recent tasks and a first request to copy."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from fastapi.responses import RedirectResponse, Response

from happyhorse.server.dashboard.auth import require_user
from happyhorse.server.dashboard.pages import base_url, task_rows
from happyhorse.server.dashboard.templating import render
from happyhorse.server.services import services
from happyhorse.store import accounts
from happyhorse.store import tasks as task_repo
from happyhorse.store.models import Account, User
from happyhorse.task_status import ACTIVE

router = APIRouter()
RECENT_WINDOW = 50  # the overview counts what is rendering among this many latest tasks


@router.get("/")
async def root() -> Response:
    return RedirectResponse("/dashboard", status_code=303)


@router.get("/dashboard")
async def overview(request: Request, user: User = Depends(require_user)) -> Response:
    async with services(request).db.read() as session:
        account = await session.get(Account, user.account_id)
        keys = [k for k in await accounts.list_keys(session, user.account_id) if k.revoked_at is None]
        recent = await task_repo.list_for_account(session, user.account_id, limit=RECENT_WINDOW)
    rendering = sum(1 for task in recent if task.status in ACTIVE)
    return render(
        request,
        "overview.html",
        {
            "account": account,
            "active_keys": len(keys),
            "recent": task_rows(request, recent[:5]),
            "rendering": rendering,
            "window": len(recent),
            "base_url": base_url(request),
        },
        active="overview",
    )
