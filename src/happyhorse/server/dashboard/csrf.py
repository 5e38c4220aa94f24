"""CSRF tokens: HMAC(csrf key, seed), required on every state-changing dashboard request.

The seed is the signed-in session's random ``sid`` (so a token dies with its session), or, before
sign-in, a random ``hh_csrf`` cookie (so the sign-in form itself cannot be posted cross-site, which
would sign a victim in to an attacker's account). An attacker's page can make the browser send our
cookies, but cannot read them or our pages, so it cannot produce the token.

Forms carry it as the hidden field ``csrf_token``; JavaScript sends it as ``X-CSRF-Token``.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

from fastapi import Request, Response

from happyhorse.config import Settings
from happyhorse.server.dashboard import sessions
from happyhorse.server.services import services

FIELD = "csrf_token"
HEADER = "x-csrf-token"
SEED_COOKIE = "hh_csrf"
SEED_TTL = 24 * 3600
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


class CsrfRefused(Exception):
    """A state-changing request without a valid token: answered 403."""


def token_for(seed: str, settings: Settings) -> str:
    key = sessions.derive_key(settings.signing_key, "csrf")
    return hmac.new(key, seed.encode(), hashlib.sha256).hexdigest()


def seed_of(request: Request, settings: Settings) -> str | None:
    session = sessions.from_request(request, settings)
    if session is not None:
        return session.sid
    return request.cookies.get(SEED_COOKIE) or None


def token_for_page(request: Request, settings: Settings) -> str:
    """The token to put in this page's forms, making a pre-sign-in seed if there is none yet."""
    seed = seed_of(request, settings)
    if seed is None:
        seed = secrets.token_urlsafe(16)
        request.state.new_csrf_seed = seed  # set_seed_cookie() puts it on the response
    return token_for(seed, settings)


def set_seed_cookie(request: Request, response: Response, settings: Settings) -> None:
    seed = getattr(request.state, "new_csrf_seed", None)
    if seed:
        sessions.set_cookie(response, request, settings, SEED_COOKIE, seed, SEED_TTL)


async def csrf_guard(request: Request) -> None:
    """Router dependency: every POST (PUT, PATCH, DELETE) must carry the token for its seed."""
    if request.method in SAFE_METHODS:
        return
    settings: Settings = services(request).settings
    seed = seed_of(request, settings)
    sent = request.headers.get(HEADER)
    if not sent and request.headers.get("content-type", "").startswith(
        ("application/x-www-form-urlencoded", "multipart/form-data")
    ):
        value = (await request.form()).get(FIELD)  # Starlette caches the form for the route
        sent = value if isinstance(value, str) else None
    if not seed or not sent or not hmac.compare_digest(token_for(seed, settings), sent):
        raise CsrfRefused()
