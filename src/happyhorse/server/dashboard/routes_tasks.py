"""Tasks: the account's tasks newest first, and a small JSON endpoint the page polls for running ones."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response

from happyhorse.server.dashboard.auth import require_user
from happyhorse.server.dashboard.pages import status_json, task_rows
from happyhorse.server.dashboard.templating import render
from happyhorse.server.services import services
from happyhorse.store import tasks as task_repo
from happyhorse.store.models import User

router = APIRouter()
PAGE_SIZE = 25
POLL_MAX_IDS = 50


@router.get("/dashboard/tasks")
async def tasks_page(request: Request, page: int = 1, user: User = Depends(require_user)) -> Response:
    page = max(1, min(page, 10_000))
    async with services(request).db.read() as session:
        # One extra row tells whether there is a next page without counting the whole table.
        found = await task_repo.list_for_account(
            session, user.account_id, limit=PAGE_SIZE + 1, offset=(page - 1) * PAGE_SIZE
        )
    return render(
        request,
        "tasks.html",
        {
            "rows": task_rows(request, found[:PAGE_SIZE]),
            "page": page,
            "has_next": len(found) > PAGE_SIZE,
        },
        active="tasks",
    )


@router.get("/dashboard/tasks/status.json")
async def tasks_status(request: Request, ids: str = "", user: User = Depends(require_user)) -> dict[str, Any]:
    """The current state of the listed tasks; another account's ids are silently left out."""
    wanted = [i for i in ids.split(",") if i][:POLL_MAX_IDS]
    async with services(request).db.read() as session:
        found = [t for t in [await task_repo.get_for_account(session, i, user.account_id) for i in wanted] if t]
    return {"tasks": [status_json(row) for row in task_rows(request, found)]}
