"""``/api/tasks`` (extensions): the key's account's tasks, newest first, page by page; deleting a result."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from happyhorse.errors import InvalidRequest
from happyhorse.server.auth import authenticate
from happyhorse.server.openapi import ERROR_RESPONSES
from happyhorse.server.presenters import task_data
from happyhorse.server.routes_api import base_url, ok
from happyhorse.store import task_pages
from happyhorse.tasks import retention

router = APIRouter(prefix="/api", tags=["Extensions"])

DEFAULT_LIMIT = 20
MAX_LIMIT = 100
# The wire status a client filters by, and the stored states that read as it.
STORED_STATES = {
    "IN_PROGRESS": ("QUEUED", "RUNNING"),
    "SUCCESS": ("SUCCESS",),
    "FAILED": ("FAILED", "CANCELLED"),
}


def parse_limit(raw: str | None) -> int:
    if raw is None or raw == "":
        return DEFAULT_LIMIT
    if not raw.strip().isdigit() or not 1 <= int(raw) <= MAX_LIMIT:
        raise InvalidRequest(f"limit must be an integer from 1 to {MAX_LIMIT}")
    return int(raw)


def parse_status(raw: str | None) -> tuple[str, ...] | None:
    if raw is None or raw == "":
        return None
    if raw not in STORED_STATES:
        raise InvalidRequest(f"status must be one of {', '.join(STORED_STATES)}")
    return STORED_STATES[raw]


def parse_cursor(raw: str | None) -> task_pages.Position | None:
    if raw is None or raw == "":
        return None
    try:
        return task_pages.decode_cursor(raw)
    except task_pages.BadCursor as exc:
        raise InvalidRequest(str(exc)) from None


@router.get("/tasks", summary="List the account's tasks, newest first (extension)", responses=ERROR_RESPONSES)
async def list_tasks(request: Request) -> JSONResponse:
    state = request.app.state
    caller = await authenticate(request)
    await state.limiter.check("status", caller.key_id)
    query = request.query_params
    limit = parse_limit(query.get("limit"))
    statuses = parse_status(query.get("status"))
    after = parse_cursor(query.get("cursor"))
    async with state.db.read() as session:
        tasks, more = await task_pages.page(session, caller.account_id, limit, after, statuses)
    root = base_url(request)
    return ok({
        "tasks": [task_data(task, state.store, root, state.settings.result_retention) for task in tasks],
        "next_cursor": task_pages.encode_cursor(tasks[-1]) if more and tasks else None,
    })


@router.delete("/tasks/{task_id}", summary="Delete a finished task's video now (extension)",
               responses=ERROR_RESPONSES)
async def delete_task_result(task_id: str, request: Request) -> JSONResponse:
    state = request.app.state
    caller = await authenticate(request)
    await state.limiter.check("status", caller.key_id)
    task = await retention.delete_result(state.db, state.store, caller.account_id, task_id)
    return ok(task_data(task, state.store, base_url(request), state.settings.result_retention))
