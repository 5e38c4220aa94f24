"""``/api/``: generate, status, credits — thin routes over the task service.

Checks run in the contract's order: auth (401), rate limit (429), body (400), credits (402).
"""

from __future__ import annotations

import json
from typing import Any

from fastapi import APIRouter, Request

from happyhorse.contract import parse_generate
from happyhorse.errors import InvalidRequest, TaskNotFound
from happyhorse.server.auth import authenticate
from happyhorse.server.errors import envelope
from happyhorse.server.openapi import ERROR_RESPONSES, GENERATE_BODY
from happyhorse.store import accounts
from happyhorse.store import tasks as task_repo
from happyhorse.tasks import service

router = APIRouter(prefix="/api", tags=["HappyHorse 1.0"])


def base_url(request: Request) -> str:
    configured = request.app.state.settings.public_url
    return (configured or str(request.base_url)).rstrip("/")


async def read_json_object(request: Request) -> Any:
    raw = await request.body()
    try:
        return json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        raise InvalidRequest("request body must be a JSON object") from None


@router.post("/generate", summary="Create a video generation task", openapi_extra=GENERATE_BODY,
             responses=ERROR_RESPONSES)
async def generate(request: Request) -> dict[str, Any]:
    state = request.app.state
    caller = await authenticate(request)
    await state.limiter.check("generate", caller.key_id)
    generate_request = parse_generate(await read_json_object(request))
    state.check_request(generate_request)
    async with state.db.write() as session:
        task = await service.submit(session, caller.account_id, caller.key_id, generate_request,
                                    state.settings.max_attempts)
    await state.dispatcher.enqueue(task.id)
    return envelope({"task_id": task.id, "status": "IN_PROGRESS"})


@router.get("/status", summary="Check a task's status", responses=ERROR_RESPONSES)
async def status(request: Request, task_id: str | None = None) -> dict[str, Any]:
    state = request.app.state
    caller = await authenticate(request)
    await state.limiter.check("status", caller.key_id)
    if not task_id or not task_id.strip():
        raise InvalidRequest("task_id is required")
    async with state.db.read() as session:
        task = await task_repo.get_for_account(session, task_id.strip(), caller.account_id)
    if task is None:
        raise TaskNotFound(f"no task {task_id.strip()!r} for this API key's account")
    from happyhorse.server.presenters import task_data

    return envelope(task_data(task, state.store, base_url(request)))


@router.get("/credits", summary="The API key's account balance (extension)", responses=ERROR_RESPONSES)
async def credits(request: Request) -> dict[str, Any]:
    state = request.app.state
    caller = await authenticate(request)
    await state.limiter.check("status", caller.key_id)
    async with state.db.read() as session:
        balance = await accounts.balance(session, caller.account_id)
    return envelope({"balance": balance or 0})
