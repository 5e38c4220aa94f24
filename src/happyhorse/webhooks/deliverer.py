"""The delivery loop: claims due outbox rows and sends them, each in its own task.

Every API node runs one (distributed mode included): a delivery's attempt is claimed with a
conditional update first, so two nodes never send the same attempt. Sends run concurrently (at
most ``MAX_IN_FLIGHT``), each bounded by the sender's 10 s timeout, so a receiver that hangs holds
one slot for 10 s and never slows rendering, status reads or other receivers.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import random
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import httpx

from happyhorse.store import tasks as task_repo
from happyhorse.store import webhooks as repo
from happyhorse.store.db import Database
from happyhorse.store.models import WebhookDelivery, utcnow
from happyhorse.store.webhooks import TEST_EVENT
from happyhorse.webhooks import signing
from happyhorse.webhooks.sender import TIMEOUT_S, Outcome, post

log = logging.getLogger("happyhorse.webhooks")

MAX_IN_FLIGHT = 32
POLL_INTERVAL_S = 0.5
LEASE_S = TIMEOUT_S + 50  # a node that dies mid-send leaves the attempt to another after this


def retry_delays(spec: str, retries: int) -> list[float]:
    """The wait before each retry: the schedule as written, its last step repeated if retries outrun it."""
    steps = [float(part) for part in spec.split(",") if part.strip()]
    if not steps:
        steps = [5.0]
    return [steps[min(i, len(steps) - 1)] for i in range(max(0, retries))]


def jittered(seconds: float) -> float:
    return seconds * random.uniform(0.8, 1.2)


class Deliverer:
    def __init__(
        self,
        db: Database,
        *,
        retries: int,
        delays: str,
        allow_private: bool,
        task_view: Callable[[Any], dict[str, Any]],
        on_outcome: Callable[[str], None] | None = None,
    ) -> None:
        self.db = db
        self.delays = retry_delays(delays, retries)
        self.allow_private = allow_private
        self.task_view = task_view  # the task as /api/status shows it (result URLs signed afresh)
        self.on_outcome = on_outcome  # "delivered" | "retrying" | "failed" (metrics)
        self.wake = asyncio.Event()
        self._loop: asyncio.Task[None] | None = None
        self._sends: set[asyncio.Task[None]] = set()
        self._slots = asyncio.Semaphore(MAX_IN_FLIGHT)
        self._http = httpx.AsyncClient(timeout=httpx.Timeout(TIMEOUT_S), follow_redirects=False, trust_env=False)

    def start(self) -> None:
        self._loop = asyncio.create_task(self._run(), name="webhook-deliverer")

    def poke(self) -> None:
        """Look for due deliveries now (a task just ended), not at the next poll."""
        self.wake.set()

    async def stop(self) -> None:
        if self._loop is not None:
            self._loop.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._loop
        for send in list(self._sends):
            send.cancel()
        await asyncio.gather(*self._sends, return_exceptions=True)
        await self._http.aclose()

    async def _run(self) -> None:
        while True:
            try:
                await self._dispatch_due()
            except Exception:
                log.exception("webhook delivery round failed; retrying")
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(POLL_INTERVAL_S):
                    await self.wake.wait()
            self.wake.clear()

    async def _dispatch_due(self) -> None:
        free = MAX_IN_FLIGHT - len(self._sends)
        if free <= 0:
            return
        now = utcnow()
        async with self.db.read() as session:
            candidates = await repo.due(session, now, free)
        for delivery in candidates:
            async with self.db.write() as session:
                won = await repo.claim(session, delivery, now + timedelta(seconds=LEASE_S))
            if not won:
                continue
            send = asyncio.create_task(self._send(delivery), name=f"webhook-{delivery.id}")
            self._sends.add(send)
            send.add_done_callback(self._sends.discard)

    async def _send(self, delivery: WebhookDelivery) -> None:
        async with self._slots:
            try:
                body, secret = await self._body_and_secret(delivery)
                timestamp = int(utcnow().timestamp())
                headers = signing.signed_headers(secret, delivery.id, timestamp, body)
                outcome = await post(self._http, delivery.url, body, headers, allow_private=self.allow_private)
            except Exception as exc:  # never lose the delivery to a bug: count it as a failed attempt
                log.exception("webhook %s could not be sent", delivery.id)
                outcome = Outcome(None, f"internal error: {type(exc).__name__}", 0)
            await self._record(delivery, outcome)

    async def _body_and_secret(self, delivery: WebhookDelivery) -> tuple[str, str]:
        async with self.db.write() as session:
            secret = await repo.secret_for(session, delivery.account_id, signing.new_secret)
            task = await task_repo.get(session, delivery.task_id) if delivery.task_id else None
        if delivery.event_type == TEST_EVENT or task is None:
            data: dict[str, Any] = {"message": "a test event from happyhorse", "endpoint_id": delivery.endpoint_id}
        else:
            data = self.task_view(task)
        event = {
            "type": delivery.event_type,
            "timestamp": delivery.event_at.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "data": data,
        }
        return json.dumps(event, separators=(",", ":"), ensure_ascii=False), secret

    async def _record(self, delivery: WebhookDelivery, outcome: Outcome) -> None:
        attempt = delivery.attempts  # 0 for the first try
        now = utcnow()
        if outcome.delivered:
            state, next_at, verdict = "delivered", now, "delivered"
        elif attempt < len(self.delays):
            state, verdict = "pending", "retrying"
            next_at = now + timedelta(seconds=jittered(self.delays[attempt]))
        else:
            state, next_at, verdict = "failed", now, "failed"
        async with self.db.write() as session:
            await repo.record_attempt(
                session,
                delivery.id,
                attempted_at=now,
                status_code=outcome.status_code,
                error=outcome.error,
                latency_ms=outcome.latency_ms,
                state=state,
                next_attempt_at=next_at,
            )
        level = logging.INFO if outcome.delivered else logging.WARNING
        log.log(
            level,
            "webhook %s (%s) to %s: %s in %d ms; %s",
            delivery.id,
            delivery.event_type,
            delivery.url,
            outcome.status_code or outcome.error,
            outcome.latency_ms,
            verdict,
        )
        if self.on_outcome is not None:
            self.on_outcome(verdict)
        if state == "pending":
            self.wake.set()
