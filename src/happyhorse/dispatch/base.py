"""The dispatcher seam the API talks to; embedded and distributed modes each provide one."""

from __future__ import annotations

from typing import Protocol


class Dispatcher(Protocol):
    async def start(self) -> None: ...

    async def stop(self) -> None: ...

    async def enqueue(self, task_id: str) -> None:
        """Called right after the transaction that inserted the task commits."""

    async def cancel(self, task_id: str) -> None:
        """Seam for cancelling a task (stop its render if running). Not exposed in the API yet."""
