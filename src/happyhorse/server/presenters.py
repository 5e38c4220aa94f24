"""How a task looks on the wire (``GET /api/status``'s ``data``)."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from happyhorse.storage.base import ResultStore
from happyhorse.store.hot_reads import TaskView
from happyhorse.store.models import Task
from happyhorse.tasks.status import TaskStatus, wire_status


def public_status(stored: str) -> str:
    """The wire status of a stored state (CANCELLED reads FAILED); the one mapping is ``wire_status``."""
    return wire_status(stored)


def iso_utc(moment: datetime | None) -> str | None:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ") if moment else None


def task_data(
    task: Task | TaskView, store: ResultStore, base_url: str, retention_s: int = 0, live: dict[str, Any] | None = None
) -> dict[str, Any]:
    """The contract's status fields plus our extensions; result URLs come from the store (signed, and
    reused for a short while: ``storage.signed_urls``).

    ``retention_s`` (``HAPPYHORSE_RESULT_RETENTION``) dates ``expires_at``, the moment the video goes;
    ``live`` carries ``queue_position`` and ``eta_seconds`` of a task in progress (``QueueInfo``).
    """
    static = task.wire if isinstance(task, TaskView) else None
    if static is None:
        static = _unsigned_fields(task, retention_s)
        if isinstance(task, TaskView) and static["status"] != "IN_PROGRESS":
            task.wire = static  # a finished task never changes: format it once
    if live is not None and static["status"] == "IN_PROGRESS":
        static = {**static, **live}
    if static["response"] is None:
        return static
    assert task.result_key is not None
    response = {"resultUrls": [store.url(task.result_key, base_url)], **static["response"]}
    return {**static, "response": response}


def _unsigned_fields(task: Task | TaskView, retention_s: int) -> dict[str, Any]:
    status = wire_status(task.status)
    response = None
    if status == "SUCCESS" and task.result_key:
        response = {
            "width": task.width,
            "height": task.height,
            "duration": task.result_duration,
            "has_audio": task.has_audio,
        }
    return {
        "task_id": task.id,
        "status": status,
        "consumed_credits": 0 if status == "FAILED" else task.cost,
        "created_at": iso_utc(task.created_at),
        "type": task.type,
        "request": task.request,
        "response": response,
        "error_message": task.error_message if status == "FAILED" else None,
        "seed": task.seed,
        "progress": 100 if status == "SUCCESS" else task.progress,
        "updated_at": iso_utc(task.updated_at),
        "completed_at": iso_utc(task.completed_at),
        "expires_at": iso_utc(task.completed_at + timedelta(seconds=retention_s))
        if response is not None and retention_s > 0 and task.completed_at
        else None,
        "expired": task.result_deleted_at is not None,
        "cancelled": task.status == TaskStatus.CANCELLED,
        "queue_position": None,
        "eta_seconds": None,
    }
