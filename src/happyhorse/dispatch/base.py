"""The dispatcher seam the API talks to; embedded and distributed modes each provide one."""

from __future__ import annotations

from typing import Protocol

from happyhorse.tasks.events import EventHub


class Dispatcher(Protocol):
    events: EventHub  # the process's task-event hub: subscribers register here at start-up

    async def start(self) -> None: ...

    async def stop(self) -> None: ...

    async def enqueue(self, task_id: str) -> None:
        """Called right after the transaction that inserted the task commits."""

    async def cancel(self, task_id: str, account_id: str | None = None) -> bool:
        """End a QUEUED or RUNNING task CANCELLED and refunded (False: it had ended). Not in the API yet."""

    async def problem(self) -> str | None:
        """Why this node's dispatching is stuck, in a sentence for ``/healthz``; None when it is not."""
