"""Bearer API-key authentication for /api/ routes."""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass

from fastapi import Request

from happyhorse.errors import InvalidApiKey
from happyhorse.server.services import Services, services
from happyhorse.store import accounts
from happyhorse.store.db import Database
from happyhorse.store.models import utcnow

log = logging.getLogger("happyhorse.server")
TOUCH_EVERY_S = 60.0  # last_used_at is a listing hint: one write a minute per key is plenty
REVOKED_OR_UNKNOWN = "the API key is invalid or has been revoked"


@dataclass(frozen=True)
class Caller:
    account_id: str
    key_id: str


def bearer_token(request: Request) -> str:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise InvalidApiKey("missing or malformed Authorization header: expected 'Bearer YOUR_API_KEY'")
    return token.strip()


async def authenticate(request: Request) -> Caller:
    state = services(request)
    token = bearer_token(request)
    async with state.db.read() as session:
        key = await accounts.find_active_key(session, token)
    if key is None:
        raise InvalidApiKey(REVOKED_OR_UNKNOWN)
    touch_if_due(state, key.id)
    return Caller(key.account_id, key.id)


def touch_if_due(state: Services, key_id: str) -> None:
    """Record the key's last use, at most once a minute per key and process, in the background.

    A listing hint only: the request answers from reads alone and never waits for this write, so a
    status poll is neither slowed (by a busy timeout) nor failed while the database refuses writes.
    """
    touched: dict[str, float] = state.key_touched
    now = time.monotonic()
    if now - touched.get(key_id, -TOUCH_EVERY_S) >= TOUCH_EVERY_S:
        touched[key_id] = now
        write = asyncio.create_task(_touch(state.db, key_id), name=f"touch-key-{key_id}")
        state.key_touches.add(write)  # held until done: the loop keeps only weak references to tasks
        write.add_done_callback(state.key_touches.discard)


async def _touch(db: Database, key_id: str) -> None:
    try:
        async with db.write() as session:
            await accounts.touch_key(session, key_id, utcnow())
    except Exception:
        log.warning("could not record the last use of API key %s (database not writable?)", key_id, exc_info=True)
