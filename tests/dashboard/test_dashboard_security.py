"""What users type stays text, forms need their CSRF token, cookies are locked down."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest
from dashboard_helpers import PASSWORD, create_user, csrf_token, session_client, sign_in
from playwright.sync_api import expect

from happyhorse.server.dashboard import sessions

pytestmark = [pytest.mark.e2e]

XSS = '<script>window.__pwned = 1</script><img src=x onerror="window.__pwned = 2"> & "quotes"'


@pytest.mark.slow
def test_a_prompt_with_script_shows_as_text(live_server, new_page, shoot) -> None:
    user = create_user(live_server, "eve@example.com", credits=5_000)
    with live_server.client(live_server.create_key(name=XSS, account=user["account"])) as api:
        body = {"model": "happyhorse-1.0/video", "prompt": XSS, "mode": "std", "duration": 3}
        assert api.post("/api/generate", json=body).status_code == 200
    page = new_page()
    sign_in(page, live_server, "eve@example.com")
    expect(page.locator(".mini-prompt")).to_have_text(XSS)
    for path in ("keys", "tasks"):
        page.goto(f"{live_server.url}/dashboard/{path}")
        expect(page.locator("main")).to_contain_text(XSS)
        assert page.evaluate("window.__pwned") is None
        assert page.locator("main script, main img[src=x]").count() == 0
    expect(page.locator("[data-test=task-prompt]")).to_have_text(XSS)
    shoot(page, "tasks-script-prompt-as-text")

    page.goto(f"{live_server.url}/dashboard/playground")
    page.fill("#pg-prompt", XSS)
    expect(page.locator("[data-test=preview]")).to_contain_text("<script>window.__pwned = 1</script>")
    assert page.evaluate("window.__pwned") is None


def test_form_posts_without_the_csrf_token_are_refused(live_server) -> None:
    create_user(live_server, "sam@example.com")
    client, token = session_client(live_server, "sam@example.com")
    try:
        assert client.post("/dashboard/keys", data={"name": "no token"}).status_code == 403
        assert client.post("/dashboard/keys", data={"name": "bad", "csrf_token": "0" * 64}).status_code == 403
        assert client.post("/dashboard/logout").status_code == 403
        assert "no token" not in client.get("/dashboard/keys").text
        made = client.post("/dashboard/keys", data={"name": "with token", "csrf_token": token})
        assert made.status_code == 200 and "hh_" in made.text
        assert (
            client.post("/dashboard/keys", data={"name": "by header"}, headers={"X-CSRF-Token": token}).status_code
            == 200
        )
    finally:
        client.close()

    # The sign-in form is protected too (no signing a victim in to an attacker's account).
    with httpx.Client(base_url=live_server.url) as anonymous:
        refused = anonymous.post("/dashboard/login", data={"email": "sam@example.com", "password": "x" * 10})
        assert refused.status_code == 403
        assert "security token" in refused.text


def test_session_cookie_is_httponly_samesite_signed_and_expires(live_server) -> None:
    create_user(live_server, "kim@example.com")
    with httpx.Client(base_url=live_server.url) as client:
        token = csrf_token(client.get("/dashboard/login").text)
        form = {"email": "KIM@example.com ", "password": PASSWORD, "csrf_token": token}  # any case, stray space
        response = client.post("/dashboard/login", data=form)
        assert response.status_code == 303
        cookie = response.headers["set-cookie"]
        assert cookie.startswith(f"{sessions.COOKIE}=")
        assert "HttpOnly" in cookie and "SameSite=lax" in cookie and "Max-Age=604800" in cookie
        assert "Secure" not in cookie  # plain http here; see the unit tests for https
        assert client.get("/dashboard/keys").status_code == 200

        value = client.cookies[sessions.COOKIE]
        payload, _, signature = value.partition(".")
        client.cookies.set(sessions.COOKIE, f"{payload}.{signature[:-2]}AA")  # tampered
        bounced = client.get("/dashboard/keys")
        assert bounced.status_code == 303 and bounced.headers["location"].startswith("/dashboard/login")
        assert client.get("/dashboard/tasks/status.json?ids=x").status_code == 401


class SlowNotAnImage(BaseHTTPRequestHandler):
    """Holds a task IN_PROGRESS for a few seconds, then makes it fail."""

    def do_GET(self) -> None:
        time.sleep(4)
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.end_headers()
        self.wfile.write(b"this is not an image")

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def slow_url() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), SlowNotAnImage)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/cat.png"
    server.shutdown()


@pytest.mark.slow
def test_tasks_page_updates_a_running_task_until_it_fails(live_server, new_page, shoot, slow_url) -> None:
    user = create_user(live_server, "ivy@example.com", credits=5_000)
    page = new_page()
    sign_in(page, live_server, "ivy@example.com")
    with live_server.client(live_server.create_key(name="ivy", account=user["account"])) as api:
        body = {"model": "happyhorse-1.0/video", "prompt": "A cat", "duration": 3, "image_urls": [slow_url]}
        task_id = api.post("/api/generate", json=body).json()["data"]["task_id"]
    page.goto(f"{live_server.url}/dashboard/tasks")
    row = page.locator(f"[data-task-id='{task_id}']")
    expect(row.locator("[data-role=status]")).to_have_text("Rendering")
    shoot(page, "tasks-running")
    expect(row.locator("[data-role=status]")).to_have_text("Failed", timeout=60_000)  # no reload
    expect(row.locator("[data-test=task-error]")).to_contain_text("image_urls[0]: could not fetch")
    expect(row.locator("[data-test=task-error]")).to_contain_text("not an image")
    expect(row.locator("[data-role=credits]")).to_have_text("0")
    shoot(page, "tasks-failed")
