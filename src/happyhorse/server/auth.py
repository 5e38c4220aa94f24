"""Bearer API-key authentication for /api/ routes."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

from fastapi import Request

from happyhorse.errors import InvalidApiKey
from happyhorse.server.services import services
from happyhorse.store import accounts
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
    await touch_if_due(request, key.id)
    return Caller(key.account_id, key.id)


async def touch_if_due(request: Request, key_id: str) -> None:
    """Record the key's last use, at most once a minute per key and process."""
    state = services(request)
    touched: dict[str, float] = state.key_touched
    now = time.monotonic()
    if now - touched.get(key_id, -TOUCH_EVERY_S) >= TOUCH_EVERY_S:
        touched[key_id] = now
        try:  # a hint only: a poll must not fail while the database refuses writes
            async with state.db.write() as session:
                await accounts.touch_key(session, key_id, utcnow())
        except Exception:
            log.warning("could not record the last use of API key %s (database not writable?)", key_id, exc_info=True)
