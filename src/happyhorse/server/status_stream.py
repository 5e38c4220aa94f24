"""``GET /api/status/stream?task_id=…`` (extension): the task's status as Server-Sent Events.

One ``event: status`` at once, one after each change (progress at most every 0.5 s; a queued
task's new ``queue_position`` when the line moves), the terminal one last, then the stream closes;
a comment line every 15 s keeps idle connections open.

Changes are pushed from the event seam: one hub subscriber routes each task event to the streams
open on that task, so an open stream costs nothing while its task is quiet, and a progress step
patches the last snapshot instead of reading the database. In distributed mode the hub hears every
worker through PostgreSQL ``LISTEN``, so any API node streams any task.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections import defaultdict
from collections.abc import AsyncIterator
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import StreamingResponse

from happyhorse.errors import InvalidApiKey, InvalidRequest, TaskNotFound
from happyhorse.server.auth import REVOKED_OR_UNKNOWN, bearer_token
from happyhorse.server.openapi import error_responses
from happyhorse.server.presenters import iso_utc, task_data
from happyhorse.server.routes_api import base_url
from happyhorse.server.services import services
from happyhorse.store import tasks as task_repo
from happyhorse.store.ids import hash_api_key
from happyhorse.tasks.events import TaskEvent

router = APIRouter(prefix="/api", tags=["Extensions"])

KEEPALIVE_S = 15.0
PROGRESS_EVERY_S = 0.5
TERMINAL_WIRE = ("SUCCESS", "FAILED")
WATCHED = ("status", "progress", "queue_position", "eta_seconds")  # a change in any of these is sent


# Another task leaving the line (or going back into it) moves the queued tasks' queue_position.
LINE_MOVES = ("started", "cancelled", "failed", "requeued")


class StatusStreams:
    """Which streams are open on which task; the hub subscriber that feeds them."""

    def __init__(self) -> None:
        self.open: dict[str, set[asyncio.Queue[TaskEvent]]] = defaultdict(set)
        self.in_line: set[asyncio.Queue[TaskEvent]] = set()  # streams of queued tasks: they hear the line move

    async def on_event(self, event: TaskEvent) -> None:
        own = self.open.get(event.task_id, set())
        for queue in own:
            queue.put_nowait(event)
        if event.kind in LINE_MOVES:
            for queue in self.in_line - own:
                queue.put_nowait(event)  # another task's event: the stream re-reads its position

    @contextlib.contextmanager
    def watch(self, task_id: str):  # type: ignore[no-untyped-def]
        queue: asyncio.Queue[TaskEvent] = asyncio.Queue()
        self.open[task_id].add(queue)
        try:
            yield queue
        finally:
            self.in_line.discard(queue)
            self.open[task_id].discard(queue)
            if not self.open[task_id]:
                del self.open[task_id]

    def follow_line(self, queue: asyncio.Queue[TaskEvent], queued: bool) -> None:
        """While its task waits in the queue, a stream hears the line move (its position changes)."""
        if queued:
            self.in_line.add(queue)
        else:
            self.in_line.discard(queue)


def sse(data: dict[str, Any]) -> bytes:
    return f"event: status\ndata: {json.dumps(data, separators=(',', ':'))}\n\n".encode()


@router.get(
    "/status/stream",
    summary="Follow a task's status as Server-Sent Events (extension)",
    responses=error_responses(400, 404),
)
async def status_stream(request: Request) -> StreamingResponse:
    state = services(request)
    task_id = request.query_params.get("task_id", "").strip()
    found = await state.hot_reads.key_and_task(hash_api_key(bearer_token(request)), task_id)
    if found is None:
        raise InvalidApiKey(REVOKED_OR_UNKNOWN)
    await state.limiter.check("status", found.key_id)
    if not task_id:
        raise InvalidRequest("task_id is required")
    if found.task is None:
        raise TaskNotFound(f"no task {task_id!r} for this API key's account")
    streams: StatusStreams = state.status_streams
    root = base_url(request)
    retention = state.settings.result_retention

    async def snapshot() -> dict[str, Any]:
        async with state.db.read() as session:
            task = await task_repo.get(session, task_id)
        assert task is not None
        return task_data(task, state.store, root, retention, await state.queue_info.live_fields(task))

    async def events() -> AsyncIterator[bytes]:
        with streams.watch(task_id) as changes:  # watching before the first read: no change slips by
            current = await snapshot()
            streams.follow_line(changes, current["queue_position"] is not None)
            yield sse(current)
            last_progress_sent = last_write = time.monotonic()
            pending_progress: TaskEvent | None = None
            while current["status"] not in TERMINAL_WIRE:
                # quiet for 15 s, whatever events came and went unsent (the line moving behind this task)
                wait = max(0.0, KEEPALIVE_S - (time.monotonic() - last_write))
                if pending_progress is not None:
                    wait = max(0.0, PROGRESS_EVERY_S - (time.monotonic() - last_progress_sent))
                try:
                    event = await asyncio.wait_for(changes.get(), wait)
                except TimeoutError:
                    if pending_progress is None:
                        yield b": keep-alive\n\n"
                        last_write = time.monotonic()
                        # and one read per 15 s of silence (not one a second) catches an event this node
                        # missed, e.g. while its LISTEN connection was reconnecting
                        fresh = await snapshot()
                        if any(fresh[k] != current[k] for k in ("status", "progress", "queue_position")):
                            current = fresh
                            yield sse(current)
                        continue
                    event, pending_progress = pending_progress, None
                    current = {**current, "progress": event.progress, "updated_at": iso_utc(event.at)}
                    yield sse(current)
                    last_progress_sent = last_write = time.monotonic()
                    continue
                if event.task_id != task_id:  # the line moved: a new position (and estimate), if any
                    fresh = await snapshot()
                    streams.follow_line(changes, fresh["queue_position"] is not None)
                    if all(fresh[k] == current[k] for k in WATCHED):
                        continue
                    pending_progress, current = None, fresh
                elif event.kind == "progress":
                    if time.monotonic() - last_progress_sent < PROGRESS_EVERY_S:
                        pending_progress = event  # coalesce: only the newest is sent
                        continue
                    current = {**current, "progress": event.progress, "updated_at": iso_utc(event.at)}
                else:
                    pending_progress = None
                    current = await snapshot()
                    streams.follow_line(changes, current["queue_position"] is not None)
                yield sse(current)
                last_progress_sent = last_write = time.monotonic()

    return StreamingResponse(
        events(), media_type="text/event-stream", headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
    )
