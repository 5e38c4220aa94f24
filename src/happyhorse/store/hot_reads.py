"""The status poll's read path, kept cheap because clients poll it all day.

``GET /api/status`` needs the caller's key and the task. On SQLite both come from one indexed query
on a plain ``sqlite3`` connection run inline: a WAL read of a few pages costs tens of microseconds,
less than a hop to aiosqlite's thread and back, and readers never wait for writers in WAL mode.
On PostgreSQL the same query runs through the async engine.

Tasks that reached SUCCESS, FAILED or CANCELLED never change again, so they are cached by id: polling a
finished task then costs one key lookup (which must stay a query: a revoked key gets 401 at once).
"""

from __future__ import annotations

import json
import sqlite3
from collections import OrderedDict
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import text

from happyhorse.store.db import Database
from happyhorse.task_status import TERMINAL

_COLUMNS = (
    "id",
    "status",
    "type",
    "cost",
    "request",
    "seed",
    "progress",
    "error_message",
    "result_key",
    "width",
    "height",
    "result_duration",
    "has_audio",
    "created_at",
    "updated_at",
    "completed_at",
    "result_deleted_at",
    "mode",
    "duration",
    "started_at",
)
FINISHED_CACHE_SIZE = 10_000
# With the task's current result key: a memo whose video was deleted since (retention) is stale.
_KEY_QUERY = (
    "SELECT k.id AS key_id, k.account_id, t.result_key AS t_result_key FROM api_keys k"
    " LEFT JOIN tasks t ON t.id = :task_id WHERE k.key_hash = :key_hash AND k.revoked_at IS NULL"
)
_QUERY = (
    "SELECT k.id AS key_id, k.account_id, "
    + ", ".join(f"t.{c} AS t_{c}" for c in _COLUMNS)
    + " FROM api_keys k LEFT JOIN tasks t ON t.id = :task_id AND t.account_id = k.account_id"
    " WHERE k.key_hash = :key_hash AND k.revoked_at IS NULL"
)


@dataclass
class TaskView:
    """The task fields the status endpoint shows (a read-only snapshot)."""

    id: str
    status: str
    type: str
    cost: int
    request: dict[str, Any]
    seed: int
    progress: int
    error_message: str | None
    result_key: str | None
    width: int | None
    height: int | None
    result_duration: float | None
    has_audio: bool | None
    created_at: datetime | None
    updated_at: datetime | None
    completed_at: datetime | None
    result_deleted_at: datetime | None
    mode: str
    duration: int
    started_at: datetime | None
    wire: dict[str, Any] | None = field(default=None, compare=False)  # presenter's memo once finished
    body: tuple[str, Any] | None = field(default=None, compare=False)  # (result URL, status answer) once finished


@dataclass
class KeyAndTask:
    key_id: str
    account_id: str
    task: TaskView | None


def utc_moment(value: Any) -> datetime | None:
    """A datetime column as read by either driver (SQLite gives text), as an aware UTC datetime."""
    if value is None:
        return None
    moment = value if isinstance(value, datetime) else datetime.fromisoformat(value)
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _row_to_result(row: Any) -> KeyAndTask:
    data = dict(row)
    task = None
    if data["t_id"] is not None:
        fields = {c: data[f"t_{c}"] for c in _COLUMNS}
        if isinstance(fields["request"], str):
            fields["request"] = json.loads(fields["request"])
        for name in ("created_at", "updated_at", "completed_at", "result_deleted_at", "started_at"):
            fields[name] = utc_moment(fields[name])
        if fields["has_audio"] is not None:
            fields["has_audio"] = bool(fields["has_audio"])
        task = TaskView(**fields)
    return KeyAndTask(data["key_id"], data["account_id"], task)


class HotReads:
    def __init__(self, db: Database, sqlite_path: str | None) -> None:
        self.db = db
        self.finished: OrderedDict[str, tuple[str, TaskView]] = OrderedDict()  # id -> (account, view)
        self.conn: sqlite3.Connection | None = None
        if sqlite_path is not None:
            self.conn = sqlite3.connect(sqlite_path, check_same_thread=False, isolation_level=None)
            self.conn.row_factory = sqlite3.Row
            self.conn.execute("PRAGMA query_only=ON")
            self.conn.execute("PRAGMA busy_timeout=5000")

    async def key_and_task(self, key_hash: str, task_id: str) -> KeyAndTask | None:
        """The active key with this hash and, if the key's account owns it, the task; None: no such key."""
        cached = self.finished.get(task_id)
        if cached is not None:
            row = await self._fetch_one(_KEY_QUERY, {"key_hash": key_hash, "task_id": task_id})
            if row is None:
                return None
            account, view = cached
            if row["t_result_key"] == view.result_key:
                return KeyAndTask(row["key_id"], row["account_id"], view if account == row["account_id"] else None)
            self.finished.pop(task_id, None)  # its video was deleted since: read it afresh
        row = await self._fetch_one(_QUERY, {"key_hash": key_hash, "task_id": task_id})
        if row is None:
            return None
        found = _row_to_result(row)
        if found.task is not None and found.task.status in TERMINAL:
            self.finished[task_id] = (found.account_id, found.task)
            if len(self.finished) > FINISHED_CACHE_SIZE:
                self.finished.popitem(last=False)
        return found

    async def fetch_one(self, query: str, params: dict[str, Any]) -> Any:
        """One row of a read-only query, the cheapest way this database allows (see the module doc)."""
        return await self._fetch_one(query, params)

    async def _fetch_one(self, query: str, params: dict[str, Any]) -> Any:
        if self.conn is not None:
            return self.conn.execute(query, params).fetchone()
        async with self.db.read_engine.connect() as conn:
            return (await conn.execute(text(query), params)).mappings().first()

    def close(self) -> None:
        if self.conn is not None:
            self.conn.close()


def sqlite_file(url: str) -> str | None:
    """The file path of a ``sqlite+aiosqlite:///path`` URL, or None for other databases."""
    prefix = "sqlite+aiosqlite:///"
    return url[len(prefix) :] if url.startswith(prefix) else None
