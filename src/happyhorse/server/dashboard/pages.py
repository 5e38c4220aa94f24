"""Helpers the page routes share: the public base URL, notices, task rows for templates."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from fastapi import Request

from happyhorse.server.presenters import task_data
from happyhorse.server.services import services
from happyhorse.store.models import Task

# Notices after a redirect are chosen by code, never echoed from the query string.
NOTICES = {
    "key-revoked": "Key revoked. Requests that use it are now refused with 401.",
    "granted": "Credits granted.",
    "user-added": "User added. They can sign in now.",
    "webhook-added": "Endpoint added. Every task that ends from now on is sent to it.",
    "webhook-removed": "Endpoint removed.",
    "webhook-test-sent": "Test event queued: it appears below in a moment.",
    "webhook-redelivered": "Redelivery queued (same webhook-id).",
    "webhook-secret-rotated": "Secret rotated. Receivers must verify with the new one.",
}


def base_url(request: Request) -> str:
    configured = services(request).settings.public_url
    return (configured or str(request.base_url)).rstrip("/")


def notice(request: Request) -> str | None:
    return NOTICES.get(request.query_params.get("notice", ""))


@dataclass
class TaskRow:
    task: Task
    data: dict[str, Any]  # the wire view: the same fields /api/status returns

    @property
    def result_url(self) -> str | None:
        response = self.data["response"]
        return response["resultUrls"][0] if response else None


def task_rows(request: Request, tasks: list[Task]) -> list[TaskRow]:
    store, base = services(request).store, base_url(request)
    return [TaskRow(task, task_data(task, store, base)) for task in tasks]


def status_json(row: TaskRow) -> dict[str, Any]:
    """What the Tasks page's poller needs to redraw a row."""
    data = row.data
    return {
        "task_id": data["task_id"],
        "status": data["status"],
        "progress": data["progress"],
        "consumed_credits": data["consumed_credits"],
        "error_message": data["error_message"],
        "result_url": row.result_url,
    }
