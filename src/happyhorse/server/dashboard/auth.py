"""Who is signed in: argon2 passwords, the sign-in throttle, and the route dependencies.

    require_user(request)   the signed-in User, or LoginRequired (→ redirect to the sign-in page)
    require_admin(request)  the same, and an admin, or Forbidden (→ 403 page)

A session is honoured only while its user exists and its password fingerprint still matches.
"""

from __future__ import annotations

import asyncio
import time
from functools import lru_cache

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from fastapi import Request
from limits import RateLimitItem, parse
from limits.aio.strategies import MovingWindowRateLimiter

from happyhorse.config import Settings
from happyhorse.server.dashboard import sessions
from happyhorse.server.services import services
from happyhorse.store import users as user_repo
from happyhorse.store.models import User

MIN_PASSWORD = 8
# Sign-in attempts allowed per account e-mail (from any address), and per client address (over all e-mails).
ATTEMPTS_PER_EMAIL = parse("5/minute")
ATTEMPTS_PER_ADDRESS = parse("30/minute")

_hasher = PasswordHasher()


class LoginRequired(Exception):
    """No valid session: answered with a redirect to the sign-in page."""


class Forbidden(Exception):
    def __init__(self, message: str = "You don't have access to this page.") -> None:
        self.message = message
        super().__init__(message)


def hash_password(password: str) -> str:
    return _hasher.hash(password)


@lru_cache(maxsize=1)
def _dummy_hash() -> str:
    return _hasher.hash("not a password anyone has")


def _verify(password_hash: str, password: str) -> bool:
    try:
        return _hasher.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


async def check_password(user: User | None, password: str) -> bool:
    """Argon2 verification off the event loop; an unknown email costs the same time as a wrong password."""
    if user is None:
        await asyncio.to_thread(_verify, _dummy_hash(), password)
        return False
    return await asyncio.to_thread(_verify, user.password_hash, password)


def password_problem(password: str) -> str | None:
    if len(password) < MIN_PASSWORD:
        return f"Use at least {MIN_PASSWORD} characters."
    if len(password) > 1024:
        return "That password is too long."
    return None


def needs_rehash(password_hash: str) -> bool:
    try:
        return _hasher.check_needs_rehash(password_hash)
    except InvalidHashError:
        return False


# --- throttle -------------------------------------------------------------------------------------


class LoginThrottle:
    """Sign-in attempts, counted in the server's rate-limit storage (memory, or Redis shared by nodes).

    An attempt is counted *before* its password is checked, each counter in one atomic step (a lock
    in memory, a script on Redis): forty guesses sent at once against 5 a minute get 5 checked, not
    forty that all passed a look-then-count gap. A success clears its e-mail's count, so the owner
    signing in never locks themselves out; the address count stays.

    The client address is the connection's peer; uvicorn puts the X-Forwarded-For client there only
    when the peer is one of ``HAPPYHORSE_TRUSTED_PROXIES`` (``happyhorse serve``), so a client
    cannot pick a fresh address per guess.
    """

    def __init__(self, request: Request) -> None:
        state = services(request)
        self.limiter = MovingWindowRateLimiter(state.limiter.storage)
        self.address = request.client.host if request.client else "unknown"

    def _counters(self, email: str) -> list[tuple[RateLimitItem, tuple[str, ...]]]:
        return [
            (ATTEMPTS_PER_EMAIL, ("login-email", user_repo.normalise_email(email))),
            (ATTEMPTS_PER_ADDRESS, ("login-address", self.address)),
        ]

    async def admit(self, email: str) -> int:
        """Count this attempt. 0: check its password; else the seconds until another attempt is allowed."""
        for item, ids in self._counters(email):
            if not await self.limiter.hit(item, *ids):
                reset_at, _ = await self.limiter.get_window_stats(item, *ids)
                return max(1, int(reset_at - time.time()) + 1)
        return 0

    async def succeeded(self, email: str) -> None:
        item, ids = self._counters(email)[0]
        await self.limiter.clear(item, *ids)


# --- dependencies ---------------------------------------------------------------------------------


async def current_user(request: Request) -> User | None:
    """The signed-in user, looked up once per request."""
    if hasattr(request.state, "user"):
        cached: User | None = request.state.user
        return cached
    settings: Settings = services(request).settings
    session = sessions.from_request(request, settings)
    user = None
    if session is not None:
        async with services(request).db.read() as db_session:
            user = await user_repo.get(db_session, session.user_id)
        key = sessions.derive_key(settings.signing_key, "session")
        if user is not None and sessions.password_fingerprint(user.password_hash, key) != session.pw:
            user = None  # the password changed since this session began
    request.state.user = user
    return user


async def require_user(request: Request) -> User:
    user = await current_user(request)
    if user is None:
        raise LoginRequired()
    return user


async def require_admin(request: Request) -> User:
    user = await require_user(request)
    if user.role != "admin":
        raise Forbidden("Only admins can open this page.")
    return user
