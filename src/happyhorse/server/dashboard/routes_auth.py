"""Sign in and sign out."""

from __future__ import annotations

import asyncio

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response

from happyhorse.server.dashboard import sessions
from happyhorse.server.dashboard.auth import LoginThrottle, check_password, current_user, hash_password, needs_rehash
from happyhorse.server.dashboard.csrf import SEED_COOKIE
from happyhorse.server.dashboard.templating import render
from happyhorse.server.services import services
from happyhorse.store import users as user_repo

router = APIRouter()
HOME = "/dashboard"


def safe_next(target: str | None) -> str:
    """Only a path inside the dashboard: never another site (``//evil``, ``/\\evil``, ``https:``)."""
    if not target or not target.startswith(HOME) or "//" in target or "\\" in target:
        return HOME
    return target


@router.get("/dashboard/login")
async def login_page(request: Request, next: str = "", signed_out: str = "") -> Response:
    if await current_user(request) is not None:
        return RedirectResponse(safe_next(next), status_code=303)
    notice = "You have been signed out." if signed_out else None
    return render(request, "login.html", {"next": safe_next(next), "email": "", "error": None, "notice": notice})


@router.post("/dashboard/login")
async def login(request: Request) -> Response:
    state = services(request)
    form = await request.form()
    email = str(form.get("email") or "").strip()[:320]
    password = str(form.get("password") or "")
    next_url = safe_next(str(form.get("next") or ""))

    def again(error: str, status: int, headers: dict[str, str] | None = None) -> Response:
        response = render(request, "login.html", {"next": next_url, "email": email, "error": error}, status_code=status)
        response.headers.update(headers or {})
        return response

    throttle = LoginThrottle(request)
    wait = await throttle.admit(email)  # counted before the password is checked: parallel guesses cannot slip by
    if wait:
        return again(f"Too many failed sign-ins. Try again in {wait} seconds.", 429, {"Retry-After": str(wait)})
    async with state.db.read() as session:
        user = await user_repo.find_by_email(session, email) if email else None
    if not await check_password(user, password) or user is None:
        return again("That email and password don't match an account.", 401)
    await throttle.succeeded(email)
    if needs_rehash(user.password_hash):  # argon2 parameters were raised since this hash was made
        user.password_hash = await asyncio.to_thread(hash_password, password)
        async with state.db.write() as session:
            await user_repo.set_password_hash(session, user.id, user.password_hash)

    key = sessions.derive_key(state.settings.signing_key, "session")
    session_ = sessions.new_session(user.id, user.password_hash, key, state.settings.session_ttl)
    response = RedirectResponse(next_url, status_code=303)
    sessions.start(response, request, state.settings, session_)  # a fresh sid: no session fixation
    response.delete_cookie(SEED_COOKIE, path=sessions.COOKIE_PATH)
    return response


@router.post("/dashboard/logout")
async def logout(request: Request) -> Response:
    response = RedirectResponse("/dashboard/login?signed_out=1", status_code=303)
    sessions.end(response, request, services(request).settings)
    return response
