"""Task control (extensions): ``POST /api/cancel``, ``GET /api/tasks`` (the account's tasks, newest first,
page by page) and ``DELETE /api/tasks/{id}`` (a result, now)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from happyhorse.contract import coerce_int
from happyhorse.errors import InvalidRequest, TaskNotCancellable, TaskNotFound
from happyhorse.server.auth import authenticate
from happyhorse.server.openapi import error_responses
from happyhorse.server.presenters import task_data
from happyhorse.server.routes_api import base_url, ok, read_json_object
from happyhorse.server.services import services
from happyhorse.store import task_pages
from happyhorse.store import tasks as task_repo
from happyhorse.tasks import retention
from happyhorse.tasks.status import TaskStatus, wire_status

router = APIRouter(prefix="/api", tags=["Extensions"])

DEFAULT_LIMIT = 20
MAX_LIMIT = 100
# The wire status a client filters by, and the stored states that read as it.
STORED_STATES = {
    wire: tuple(s.value for s in TaskStatus if wire_status(s) == wire) for wire in ("IN_PROGRESS", "SUCCESS", "FAILED")
}


def parse_limit(raw: str | None) -> int:
    if raw is None or raw == "":
        return DEFAULT_LIMIT
    limit = coerce_int(raw.strip())  # ASCII digits only: "²" or 5,000 digits are a 400, never a 500
    if limit is None or not 1 <= limit <= MAX_LIMIT:
        raise InvalidRequest(f"limit must be an integer from 1 to {MAX_LIMIT}")
    return limit


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


@router.get("/tasks", summary="List the account's tasks, newest first (extension)", responses=error_responses(400))
async def list_tasks(request: Request) -> JSONResponse:
    state = services(request)
    caller = await authenticate(request)
    await state.limiter.check("status", caller.key_id)
    query = request.query_params
    limit = parse_limit(query.get("limit"))
    statuses = parse_status(query.get("status"))
    after = parse_cursor(query.get("cursor"))
    async with state.db.read() as session:
        tasks, more = await task_pages.page(session, caller.account_id, limit, after, statuses)
    root = base_url(request)
    return ok(
        {
            "tasks": [
                task_data(
                    task, state.store, root, state.settings.result_retention, await state.queue_info.live_fields(task)
                )
                for task in tasks
            ],
            "next_cursor": task_pages.encode_cursor(tasks[-1]) if more and tasks else None,
        }
    )


@router.delete(
    "/tasks/{task_id}",
    summary="Delete a finished task's video now (extension)",
    responses=error_responses(404, 409),
)
async def delete_task_result(task_id: str, request: Request) -> JSONResponse:
    state = services(request)
    caller = await authenticate(request)
    await state.limiter.check("status", caller.key_id)
    task = await retention.delete_result(state.db, state.store, caller.account_id, task_id)
    return ok(task_data(task, state.store, base_url(request), state.settings.result_retention))


@router.post(
    "/cancel",
    summary="Cancel a task: it ends FAILED with cancelled: true, refunded (extension)",
    responses=error_responses(400, 404, 409),
)
async def cancel(request: Request) -> JSONResponse:
    state = services(request)
    caller = await authenticate(request)
    await state.limiter.check("status", caller.key_id)
    body = await read_json_object(request)
    task_id = body.get("task_id") if isinstance(body, dict) else None
    if not isinstance(task_id, str) or not task_id.strip():
        raise InvalidRequest('task_id is required: send {"task_id": "n92…"}')
    task_id = task_id.strip()
    async with state.db.read() as session:
        task = await task_repo.get_for_account(session, task_id, caller.account_id)
    if task is None:
        raise TaskNotFound(f"no task {task_id!r} for this API key's account")
    if not await state.dispatcher.cancel(task_id, caller.account_id):
        async with state.db.read() as session:
            task = await task_repo.get(session, task_id)
        status = wire_status(task.status) if task else "FAILED"
        raise TaskNotCancellable(
            f"task {task_id} has already ended ({status}); only tasks in progress can be cancelled"
        )
    async with state.db.read() as session:
        task = await task_repo.get(session, task_id)
    assert task is not None
    return ok(task_data(task, state.store, base_url(request), state.settings.result_retention))
