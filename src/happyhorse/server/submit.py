"""Admitting a generate request: the account's in-flight cap, ``Idempotency-Key`` replays, the debit.

All of it runs in one write transaction, so ten identical requests at once make one task and one
debit: SQLite serialises writers, and on PostgreSQL the account row is locked first (the in-flight
count and the key lookup then see every earlier submit), with the key's primary key as a backstop.
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy.exc import IntegrityError

from happyhorse.config import Settings
from happyhorse.contract import GenerateRequest
from happyhorse.errors import IdempotencyConflict, InvalidRequest, RateLimited
from happyhorse.store import admission, idempotency
from happyhorse.store import tasks as task_repo
from happyhorse.store.db import Database
from happyhorse.store.models import utcnow
from happyhorse.tasks import service
from happyhorse.webhooks.urls import check_webhook_url

log = logging.getLogger("happyhorse.api")

IDEMPOTENCY_HEADER = "idempotency-key"
IDEMPOTENCY_WINDOW = timedelta(hours=24)
MAX_KEY_LENGTH = 255
CAP_RETRY_AFTER_S = 5


@dataclass(frozen=True)
class Admitted:
    task_id: str
    status: str  # the stored status: QUEUED for a new task, whatever it is now for a replay
    replayed: bool


def idempotency_key(headers: Any) -> str | None:
    """The ``Idempotency-Key`` header: 1-255 printable ASCII characters, or absent."""
    raw = headers.get(IDEMPOTENCY_HEADER)
    if raw is None:
        return None
    if not 1 <= len(raw) <= MAX_KEY_LENGTH or not all(" " <= ch <= "~" for ch in raw):
        raise InvalidRequest(f"Idempotency-Key must be 1 to {MAX_KEY_LENGTH} printable ASCII characters")
    return str(raw)


def fingerprint(body: Any) -> str:
    """The body compared as parsed JSON: key order and whitespace do not matter."""
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode("utf-8", "surrogatepass")).hexdigest()


def callback_url(body: Any, settings: Settings) -> str | None:
    """The extension field ``callback_url``: where this task's webhook goes (checked, or None)."""
    if not isinstance(body, dict) or body.get("callback_url") is None:
        return None
    return check_webhook_url(body["callback_url"], field="callback_url", allow_private=settings.allow_private_urls)


async def admit(
    db: Database, settings: Settings, account_id: str, key_id: str, request: GenerateRequest, body: Any, key: str | None
) -> Admitted:
    """Debit and insert the task, or name the one this key already made."""
    for _ in range(3):  # a lost race on the key's primary key: read the winner's row and replay it
        try:
            return await _admit_once(db, settings, account_id, key_id, request, body, key)
        except IntegrityError:
            if key is None:
                raise
    raise InvalidRequest("the request could not be admitted; retry with the same Idempotency-Key")


async def _admit_once(
    db: Database, settings: Settings, account_id: str, key_id: str, request: GenerateRequest, body: Any, key: str | None
) -> Admitted:
    async with db.write() as session:
        if key is not None or settings.max_active_tasks > 0:
            await admission.lock_account(session, account_id)
        if key is not None:
            prior = await idempotency.find(session, account_id, key)
            if prior is not None and prior.created_at < utcnow() - IDEMPOTENCY_WINDOW:
                await idempotency.forget(session, account_id, key)
                prior = None
            if prior is not None:
                if prior.fingerprint != fingerprint(body):
                    raise IdempotencyConflict(
                        f"Idempotency-Key {key!r} was already used with a different request body "
                        f"(task {prior.task_id}); use a new key for a new request"
                    )
                task = await task_repo.get(session, prior.task_id)
                return Admitted(prior.task_id, task.status if task else "QUEUED", replayed=True)
        if settings.max_active_tasks > 0:
            active = await admission.in_flight_count(session, account_id)
            if active >= settings.max_active_tasks:
                raise RateLimited(
                    CAP_RETRY_AFTER_S,
                    f"this account has {active} tasks in progress, the most "
                    f"allowed at once is {settings.max_active_tasks}; wait for one to finish",
                )
        created = await service.submit(session, account_id, key_id, request, settings.max_attempts)
        created.callback_url = callback_url(body, settings)
        if key is not None:
            await idempotency.remember(session, account_id, key, fingerprint(body), created.id)
        admitted = Admitted(created.id, created.status, replayed=False)
    log.info(
        "task %s accepted: %s %s %ss, %s credits",
        created.id,
        request.mode,
        request.type,
        request.duration,
        created.cost,
        extra={"task_id": created.id},
    )
    return admitted
