"""``queue_position`` and ``eta_seconds`` for a task in progress (extensions of the status object).

The position counts the queued tasks that would start first (the dispatchers claim oldest first).
The estimate comes from recent render times of tasks of the same mode, type and duration on this
deployment (median of the last ``HISTORY``), cached per process for ``CACHE_S``; with no history
it is null (and not cached). Finished tasks cost no query: both fields are null.
"""

from __future__ import annotations

import math
import statistics
import time
from datetime import datetime
from typing import Any

from happyhorse.store.hot_reads import HotReads, utc_moment
from happyhorse.store.models import utcnow
from happyhorse.task_status import TaskStatus

HISTORY = 20
CACHE_S = 30.0
NO_LIVE_FIELDS: dict[str, Any] = {"queue_position": None, "eta_seconds": None}

_AHEAD = (
    "SELECT count(*) AS n FROM tasks WHERE status = 'QUEUED' AND "
    "(created_at < :created_at OR (created_at = :created_at AND id < :task_id))"
)
_RUNNING = "SELECT count(*) AS n FROM tasks WHERE status = 'RUNNING'"
_RECENT = (
    "SELECT started_at, completed_at FROM tasks WHERE status = 'SUCCESS' AND mode = :mode AND type = :type "
    "AND duration = :duration AND started_at IS NOT NULL ORDER BY completed_at DESC LIMIT :n"
)


def _moment(value: Any) -> datetime:
    moment = utc_moment(value)
    assert moment is not None
    return moment


class QueueInfo:
    def __init__(self, reads: HotReads) -> None:
        self.reads = reads
        self._medians: dict[tuple[str, str, int], tuple[float, float | None]] = {}  # key -> (read at, median)

    async def live_fields(self, task: Any) -> dict[str, Any]:
        """``{"queue_position", "eta_seconds"}`` for a task (a Task or a TaskView)."""
        if task.status not in (TaskStatus.QUEUED, TaskStatus.RUNNING):
            return NO_LIVE_FIELDS
        median = await self.median_render_s(task.mode, task.type, task.duration)
        if task.status == TaskStatus.RUNNING:
            eta = None
            if median is not None and task.started_at is not None:
                eta = max(1, math.ceil(median - (utcnow() - task.started_at).total_seconds()))
            return {"queue_position": None, "eta_seconds": eta}
        position = await self._count(_AHEAD, {"created_at": self._param(task.created_at), "task_id": task.id}) + 1
        if median is None:
            return {"queue_position": position, "eta_seconds": None}
        running = await self._count(_RUNNING, {})
        # the engines busy now are the best guess of how many renders run side by side
        rounds_ahead = (position - 0.5) / running if running else position - 1
        return {"queue_position": position, "eta_seconds": max(1, math.ceil(median * (rounds_ahead + 1)))}

    async def median_render_s(self, mode: str, kind: str, duration: int) -> float | None:
        key = (mode, kind, duration)
        cached = self._medians.get(key)
        if cached is not None and time.monotonic() - cached[0] < CACHE_S:
            return cached[1]
        rows = await self._rows(_RECENT, {"mode": mode, "type": kind, "duration": duration, "n": HISTORY})
        seconds = [(_moment(done) - _moment(began)).total_seconds() for began, done in rows]
        median = statistics.median(seconds) if seconds else None
        if median is not None:  # no history is not cached: the first render of a kind counts at once
            self._medians[key] = (time.monotonic(), median)
        return median

    def _param(self, moment: datetime | None) -> Any:
        """A datetime as this database compares it (SQLite stores naive UTC text)."""
        assert moment is not None
        if self.reads.conn is not None:
            return moment.replace(tzinfo=None).isoformat(sep=" ")
        return moment

    async def _count(self, query: str, params: dict[str, Any]) -> int:
        row = await self.reads.fetch_one(query, params)
        return int(row["n"]) if row is not None else 0

    async def _rows(self, query: str, params: dict[str, Any]) -> list[tuple[Any, Any]]:
        if self.reads.conn is not None:
            return [tuple(r) for r in self.reads.conn.execute(query, params).fetchall()]
        from sqlalchemy import text

        async with self.reads.db.read_engine.connect() as conn:
            return [tuple(r) for r in (await conn.execute(text(query), params)).all()]
