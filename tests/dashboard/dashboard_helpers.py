"""Helpers for the dashboard tests (a module of its own: test modules import it by this unique name)."""

from __future__ import annotations

import io
import json
import re
import time
from pathlib import Path
from typing import Any

import httpx
from PIL import Image

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
SCREENSHOTS = ARTIFACTS / "screenshots"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--headless=new",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
DESKTOP = {"width": 1366, "height": 900}
PHONE = {"width": 390, "height": 844}
PASSWORD = "correct horse battery"


def png_bytes(width: int = 64, height: int = 48, color: tuple[int, int, int] = (40, 120, 220)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (width, height), color).save(buf, "PNG")
    return buf.getvalue()


def create_user(
    server: Any, email: str, *, admin: bool = False, credits: int = 0, account: str | None = None
) -> dict[str, Any]:
    args = ["users", "create", "--email", email, "--password", PASSWORD, "--json"]
    args += ["--admin"] if admin else []
    args += ["--credits", str(credits)] if credits else []
    args += ["--account", account] if account else []
    return json.loads(server.cli(*args).stdout)


def sign_in(page: Any, server: Any, email: str, password: str = PASSWORD) -> None:
    page.goto(f"{server.url}/dashboard/login")
    page.fill("input[name=email]", email)
    page.fill("input[name=password]", password)
    page.click("button[type=submit]")
    page.wait_for_url(re.compile(r".*/dashboard$"))


def session_client(server: Any, email: str, password: str = PASSWORD) -> tuple[httpx.Client, str]:
    """An httpx client signed in like a browser; returns it and a page's CSRF token."""
    client = httpx.Client(base_url=server.url, timeout=30, follow_redirects=False)
    token = csrf_token(client.get("/dashboard/login").text)
    response = client.post("/dashboard/login", data={"email": email, "password": password, "csrf_token": token})
    assert response.status_code == 303, response.text
    return client, csrf_token(client.get("/dashboard/keys").text)


def csrf_token(html: str) -> str:
    match = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert match, "no CSRF token in the page"
    return match.group(1)


def wait_for_task(api: httpx.Client, task_id: str, timeout: float = 120) -> dict[str, Any]:
    """Poll ``/api/status`` until the task ends; return its ``data``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        data: dict[str, Any] = api.get("/api/status", params={"task_id": task_id}).json()["data"]
        if data["status"] in ("SUCCESS", "FAILED"):
            return data
        time.sleep(0.25)
    raise AssertionError(f"task {task_id} did not finish in {timeout}s")
