"""Signed session cookies: who is signed in, until when, and a seed for their CSRF tokens.

    hh_session = base64url(json {uid, sid, exp, pw}) "." base64url(HMAC-SHA256(session key, payload))

Stateless on purpose: any API node with the same secret accepts the cookie, with no session
table to share. What stateless would lose, we get back another way:

- ``exp``: a session ends ``session_ttl`` seconds after sign-in, whatever the browser does.
- ``pw``: a fingerprint of the user's password hash, so changing the password (which rehashes)
  ends every session of that user at once.
- ``sid``: 128 random bits per sign-in; CSRF tokens are bound to it (see csrf.py).

Sign-out deletes the cookie. A copy stolen before that stays valid until ``exp``; HttpOnly,
SameSite=Lax and Secure (over https) are what keep it from being stolen.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import time
from dataclasses import dataclass

from fastapi import Request, Response

from happyhorse.config import Settings

COOKIE = "hh_session"
COOKIE_PATH = "/"


def derive_key(signing_key: bytes, purpose: str) -> bytes:
    """One key per use of the server secret, so a signature for one purpose is useless for another."""
    return hmac.new(signing_key, f"happyhorse/dashboard/{purpose}".encode(), hashlib.sha256).digest()


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@dataclass(frozen=True)
class Session:
    user_id: str
    sid: str  # random per sign-in: the CSRF seed
    expires: int  # unix seconds
    pw: str  # password fingerprint at sign-in


def password_fingerprint(password_hash: str, key: bytes) -> str:
    return hmac.new(key, password_hash.encode(), hashlib.sha256).hexdigest()[:24]


def new_session(user_id: str, password_hash: str, key: bytes, ttl: int) -> Session:
    return Session(user_id, secrets.token_urlsafe(16), int(time.time()) + ttl, password_fingerprint(password_hash, key))


def encode(session: Session, key: bytes) -> str:
    payload = _b64(
        json.dumps(
            {"uid": session.user_id, "sid": session.sid, "exp": session.expires, "pw": session.pw},
            separators=(",", ":"),
        ).encode()
    )
    signature = _b64(hmac.new(key, payload.encode(), hashlib.sha256).digest())
    return f"{payload}.{signature}"


def decode(value: str, key: bytes, now: float | None = None) -> Session | None:
    """The session in a cookie value, or None if it is malformed, forged or expired."""
    payload, _, signature = value.partition(".")
    if not payload or not signature or len(value) > 1024:
        return None
    expected = _b64(hmac.new(key, payload.encode(), hashlib.sha256).digest())
    if not hmac.compare_digest(expected, signature):
        return None
    try:
        data = json.loads(_unb64(payload))
        session = Session(str(data["uid"]), str(data["sid"]), int(data["exp"]), str(data["pw"]))
    except (ValueError, KeyError, TypeError):
        return None
    if session.expires <= (time.time() if now is None else now):
        return None
    return session


def is_https(request: Request, settings: Settings) -> bool:
    """Secure cookies when this request came over https, or the server's public URL is https."""
    return request.url.scheme == "https" or (settings.public_url or "").startswith("https://")


def set_cookie(response: Response, request: Request, settings: Settings, name: str, value: str, max_age: int) -> None:
    response.set_cookie(
        name,
        value,
        max_age=max_age,
        path=COOKIE_PATH,
        httponly=True,
        samesite="lax",
        secure=is_https(request, settings),
    )


def start(response: Response, request: Request, settings: Settings, session: Session) -> None:
    key = derive_key(settings.signing_key, "session")
    set_cookie(response, request, settings, COOKIE, encode(session, key), max(1, session.expires - int(time.time())))


def end(response: Response, request: Request, settings: Settings) -> None:
    response.delete_cookie(COOKIE, path=COOKIE_PATH, httponly=True, samesite="lax", secure=is_https(request, settings))


def from_request(request: Request, settings: Settings) -> Session | None:
    value = request.cookies.get(COOKIE)
    if not value:
        return None
    return decode(value, derive_key(settings.signing_key, "session"))
