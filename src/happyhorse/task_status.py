"""A task's stored states and how each reads on the wire (bottom layer: ``store`` and ``tasks`` both use it).

Stored: QUEUED → RUNNING → SUCCESS | FAILED | CANCELLED (RUNNING may go back to QUEUED for a retry).
The wire (``GET /api/status``) knows three: QUEUED and RUNNING read IN_PROGRESS, CANCELLED reads FAILED.
"""

from __future__ import annotations

from enum import StrEnum


class TaskStatus(StrEnum):
    QUEUED = "QUEUED"
    RUNNING = "RUNNING"
    SUCCESS = "SUCCESS"
    FAILED = "FAILED"
    CANCELLED = "CANCELLED"


ACTIVE = (TaskStatus.QUEUED, TaskStatus.RUNNING)
TERMINAL = (TaskStatus.SUCCESS, TaskStatus.FAILED, TaskStatus.CANCELLED)

_WIRE = {
    TaskStatus.QUEUED: "IN_PROGRESS",
    TaskStatus.RUNNING: "IN_PROGRESS",
    TaskStatus.SUCCESS: "SUCCESS",
    TaskStatus.FAILED: "FAILED",
    TaskStatus.CANCELLED: "FAILED",
}


def wire_status(stored: str) -> str:
    """The one mapping from a stored state to the API's status (IN_PROGRESS, SUCCESS or FAILED)."""
    return _WIRE[TaskStatus(stored)]
