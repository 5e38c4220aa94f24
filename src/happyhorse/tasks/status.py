"""The task states, re-exported where the lifecycle lives (defined at the bottom layer so ``store`` can use them)."""

from happyhorse.task_status import ACTIVE, TERMINAL, TaskStatus, wire_status

__all__ = ["ACTIVE", "TERMINAL", "TaskStatus", "wire_status"]
