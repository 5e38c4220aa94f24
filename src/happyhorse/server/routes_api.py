"""``/api/``: generate, status, credits — thin routes over the task service.

Checks run in the contract's order: auth (401), rate limit (429), body (400), credits (402).
"""

from __future__ import annotations

import asyncio
from typing import Any
from urllib.parse import unquote_plus

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from starlette.types import Scope

from happyhorse.contract import loads_request_body, parse_generate
from happyhorse.contract_schema import CreditsResponse, GenerateResponse, StatusResponse
from happyhorse.errors import InvalidApiKey, InvalidRequest, TaskNotFound
from happyhorse.media.url_rules import check_request_hosts
from happyhorse.server.auth import REVOKED_OR_UNKNOWN, authenticate, bearer_token, touch_if_due
from happyhorse.server.errors import envelope
from happyhorse.server.openapi import GENERATE_BODY, STATUS_PARAMETERS, error_responses
from happyhorse.server.presenters import public_status, task_data
from happyhorse.server.services import Services, services
from happyhorse.server.submit import admit, callback_url, idempotency_key
from happyhorse.store import accounts
from happyhorse.store.hot_reads import TaskView
from happyhorse.store.ids import hash_api_key

router = APIRouter(prefix="/api", tags=["HappyHorse 1.0"])


def base_url(request: Request, state: Services | None = None) -> str:
    """HAPPYHORSE_PUBLIC_URL, else the request's own scheme and host (read straight off the scope:
    building ``request.base_url`` costs more than the rest of a status poll's bookkeeping)."""
    configured = (state or services(request)).settings.public_url
    if configured:
        return str(configured).rstrip("/")
    host = request.headers.get("host") or "{}:{}".format(*(request.scope.get("server") or ("localhost", 80)))
    root = request.scope.get("root_path", "")
    return f"{request.scope.get('scheme', 'http')}://{host}{root}".rstrip("/")


def query_value(scope: Scope, name: str) -> str:
    """One query parameter as Starlette's ``request.query_params.get(name, "")`` reads it (decoded,
    the last one wins), without parsing the whole query into a multi-dict: the status poll's query
    is just its task id."""
    query = scope.get("query_string", b"").decode("latin-1")
    value = ""
    for pair in query.split("&"):
        key, _, raw = pair.partition("=")
        if key == name or unquote_plus(key) == name:
            value = unquote_plus(raw)
    return value


async def read_json_object(request: Request) -> Any:
    raw = await request.body()
    if not raw.strip():
        raise InvalidRequest("request body is empty: send a JSON object")
    return loads_request_body(raw)  # strict: no NaN/Infinity, lone surrogates or nesting deeper than 64


def ok(data: Any) -> JSONResponse:
    # A plain JSONResponse: the envelope is already JSON-safe, so skip FastAPI's response validation.
    return JSONResponse(envelope(data))


# Tells this server's SDK where to follow a task live (GET /api/status/stream); other clients ignore it.
STREAM_ADVERT = {"X-HappyHorse-Stream": "/api/status/stream"}


def ok_with_stream(data: Any) -> JSONResponse:
    return JSONResponse(envelope(data), headers=STREAM_ADVERT)


def finished_answer(view: TaskView, data: dict[str, Any]) -> Response:
    """A finished task's status answer: the same bytes for as long as its result URL is reused
    (``storage.signed_urls``), so most polls of a finished task skip the JSON encoding."""
    url = str(((data.get("response") or {}).get("resultUrls") or [""])[0])
    if view.body is None or view.body[0] != url:
        # The Response itself is kept: it is only read when sent (every layer that adds headers
        # copies the message), so the answer's headers are built once too.
        body = bytes(JSONResponse(envelope(data)).body)
        view.body = (url, Response(body, media_type="application/json", headers=STREAM_ADVERT))
    response: Response = view.body[1]
    return response


@router.post(
    "/generate",
    summary="Create a video generation task",
    openapi_extra=GENERATE_BODY,
    response_model=GenerateResponse,
    responses=error_responses(400, 402, 409, 413),
)
async def generate(request: Request) -> JSONResponse:
    state = services(request)
    caller = await authenticate(request)
    await state.limiter.check("generate", caller.key_id)
    key = idempotency_key(request.headers)
    body = await read_json_object(request)
    generate_request = parse_generate(body)
    # A literally private image host: 400, with the way out (in a thread: an own upload in S3 is a HEAD request).
    await asyncio.to_thread(check_request_hosts, generate_request, state.settings, state.uploads)
    callback_url(body, state.settings)  # refused before anything is charged
    state.check_request(generate_request)
    admitted = await admit(state.db, state.settings, caller.account_id, caller.key_id, generate_request, body, key)
    if admitted.replayed:
        response = ok({"task_id": admitted.task_id, "status": public_status(admitted.status)})
        response.headers["Idempotent-Replayed"] = "true"
        return response
    await state.dispatcher.enqueue(admitted.task_id)
    return ok_with_stream({"task_id": admitted.task_id, "status": "IN_PROGRESS"})


@router.get(
    "/status",
    summary="Check a task's status",
    response_model=StatusResponse,
    responses=error_responses(400, 404),
    openapi_extra=STATUS_PARAMETERS,
)
async def status(request: Request) -> Response:
    """The hot path: one query finds the key and the task together (see ``store.hot_reads``).

    Clients poll this all day, so ``happyhorse serve`` answers it through ``fast_path`` ahead of the
    middleware stack; it takes only the request, and reads and checks ``task_id`` itself.
    """
    state = services(request)
    task_id = query_value(request.scope, "task_id").strip()
    found = await state.hot_reads.key_and_task(hash_api_key(bearer_token(request)), task_id)
    if found is None:
        raise InvalidApiKey(REVOKED_OR_UNKNOWN)
    touch_if_due(state, found.key_id)
    await state.limiter.check("status", found.key_id)
    if not task_id:
        raise InvalidRequest("task_id is required")
    if found.task is None:
        raise TaskNotFound(f"no task {task_id!r} for this API key's account")
    live = await state.queue_info.live_fields(found.task)
    data = task_data(found.task, state.store, base_url(request, state), state.settings.result_retention, live)
    if found.task.wire is not None:  # finished: it never changes again
        return finished_answer(found.task, data)
    return ok_with_stream(data)


@router.get(
    "/credits",
    summary="The API key's account balance (extension)",
    response_model=CreditsResponse,
    responses=error_responses(),
)
async def credits(request: Request) -> JSONResponse:
    state = services(request)
    caller = await authenticate(request)
    await state.limiter.check("status", caller.key_id)
    async with state.db.read() as session:
        balance = await accounts.balance(session, caller.account_id)
    return ok({"balance": balance or 0})
