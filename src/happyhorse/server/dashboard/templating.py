"""Jinja2 for the dashboard: autoescaped templates, shared page context and security headers."""

from __future__ import annotations

import hashlib
from datetime import datetime
from functools import lru_cache
from pathlib import Path
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse
from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

from happyhorse.server.dashboard import csrf
from happyhorse.server.presenters import iso_utc
from happyhorse.server.services import services

HERE = Path(__file__).parent
STATIC_DIR = HERE / "static"
STATIC_PREFIX = "/dashboard/static"

# Scripts and styles only from our own static files; media and images may come from result
# stores (S3) and from any URL a user pastes into the Playground.
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: blob: http: https:; "
    "media-src 'self' blob: http: https:; connect-src 'self'; object-src 'none'; base-uri 'none'; "
    "form-action 'self'; frame-ancestors 'none'"
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",  # pages show balances, keys and signed URLs: never from a shared cache
}


@lru_cache(maxsize=64)
def _static_version(name: str) -> str:
    try:
        return hashlib.sha256((STATIC_DIR / name).read_bytes()).hexdigest()[:10]
    except OSError:
        return "0"


def static_url(name: str) -> str:
    """A cache-busting URL: the file's hash changes whenever the file does."""
    return f"{STATIC_PREFIX}/{name}?v={_static_version(name)}"


def when(moment: datetime | None) -> str:
    return moment.strftime("%b %d, %Y %H:%M UTC") if moment else "—"


def credits(amount: int | None) -> str:
    return f"{amount or 0:,}"


def signed(amount: int) -> str:
    return f"+{amount:,}" if amount > 0 else f"−{-amount:,}" if amount < 0 else "0"


@lru_cache(maxsize=1)
def admin_command() -> str:
    """The admin CLI as this server was started (``.venv/bin/happyhorse`` after ``make run``), for hints
    meant to be pasted: a bare ``happyhorse`` is not on PATH there."""
    from happyhorse.client.cli import cli_command  # the one rule for it, shared with serve's own hints

    return cli_command()


def _environment() -> Environment:
    env = Environment(
        loader=FileSystemLoader(HERE / "templates"),
        autoescape=select_autoescape(["html"]),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.globals.update(static_url=static_url, iso=iso_utc, admin_command=admin_command)
    env.filters.update(when=when, credits=credits, signed=signed)
    return env


ENV = _environment()


def render(
    request: Request, template: str, context: dict[str, Any] | None = None, status_code: int = 200, *, active: str = ""
) -> HTMLResponse:
    settings = services(request).settings
    page = {
        "request": request,
        "user": getattr(request.state, "user", None),
        "csrf_token": csrf.token_for_page(request, settings),
        "active": active,
        "notice": None,
        # A page rendered in answer to a POST asks app.js to swap its history entry for this GET
        # URL, so reloading it can't post the form again (and, on API Keys, can't mint a second key).
        "clean_url": request.url.path if request.method == "POST" else None,
    }
    page.update(context or {})
    html = ENV.get_template(template).render(page)
    response = HTMLResponse(html, status_code=status_code, headers=SECURITY_HEADERS)
    csrf.set_seed_cookie(request, response, settings)
    return response
