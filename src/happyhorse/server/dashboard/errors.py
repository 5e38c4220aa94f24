"""How the dashboard answers its own refusals: sign-in redirects, 403 and 400 pages, and JSON for pollers."""

from __future__ import annotations

from urllib.parse import quote

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, RedirectResponse, Response

from happyhorse.server.dashboard.auth import Forbidden, LoginRequired, current_user
from happyhorse.server.dashboard.csrf import CsrfRefused
from happyhorse.server.dashboard.forms import UnstorableForm
from happyhorse.server.dashboard.templating import render


def install(app: FastAPI) -> None:
    app.add_exception_handler(LoginRequired, _login_required)
    app.add_exception_handler(Forbidden, _forbidden)
    app.add_exception_handler(CsrfRefused, _csrf_refused)
    app.add_exception_handler(UnstorableForm, _unstorable_form)


def _wants_json(request: Request) -> bool:
    return request.url.path.endswith(".json") or "application/json" in request.headers.get("accept", "")


async def _login_required(request: Request, exc: Exception) -> Response:
    if _wants_json(request):
        return JSONResponse({"message": "sign in first"}, status_code=401)
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    next_url = target if request.method == "GET" else "/dashboard"
    return RedirectResponse(f"/dashboard/login?next={quote(next_url, safe='')}", status_code=303)


async def _forbidden(request: Request, exc: Exception) -> Response:
    message = exc.message if isinstance(exc, Forbidden) else "Forbidden."
    return render(request, "error.html", {"title": "No access", "message": message}, status_code=403)


async def _csrf_refused(request: Request, exc: Exception) -> Response:
    if _wants_json(request):
        return JSONResponse({"message": "missing or invalid CSRF token"}, status_code=403)
    await current_user(request)  # the page keeps its navigation when the visitor is signed in
    return render(
        request,
        "error.html",
        {
            "title": "This form has expired",
            "message": "The request was refused because its security token was missing or out of date. "
            "Go back, reload the page and try again.",
        },
        status_code=403,
    )


async def _unstorable_form(request: Request, exc: Exception) -> Response:
    message = exc.message if isinstance(exc, UnstorableForm) else "The form could not be read."
    if _wants_json(request):
        return JSONResponse({"message": message}, status_code=400)
    await current_user(request)
    return render(
        request,
        "error.html",
        {"title": "This form can't be saved", "message": f"{message[0].upper()}{message[1:]}. Go back and remove it."},
        status_code=400,
    )
