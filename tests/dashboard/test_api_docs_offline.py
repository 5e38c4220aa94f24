"""/docs and /redoc on an air-gapped machine: every request to a host other than the server is refused, and
the pages still render from the package's own assets; "Authorize" then "Try it out" answers 200."""

from __future__ import annotations

from urllib.parse import urlsplit

import pytest
from playwright.sync_api import expect

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


def offline_page(new_page, live_server):
    """A page whose every request to another host is aborted; returns it and the list of those hosts."""
    page = new_page()
    own = urlsplit(live_server.url).netloc
    blocked: list[str] = []

    def route(route) -> None:
        if urlsplit(route.request.url).netloc == own:
            route.continue_()
        else:
            blocked.append(route.request.url)
            route.abort()

    page.route("**/*", route)
    return page, blocked


def test_swagger_ui_renders_offline_and_try_it_out_answers_with_a_key(live_server, new_page, shoot) -> None:
    key = live_server.create_key(credits=1234, name="docs")
    page, blocked = offline_page(new_page, live_server)
    page.goto(f"{live_server.url}/docs")
    generate = page.locator(".opblock-post:has([data-path='/api/generate'])")
    expect(generate).to_be_visible()
    credits = page.locator(".opblock-get:has([data-path='/api/credits'])")
    expect(credits).to_be_visible()

    page.click("button.authorize")
    page.locator(".modal-ux input[type=text], .modal-ux input[type=password]").first.fill(key)
    page.locator(".modal-ux button.authorize[type=submit], .modal-ux .auth-btn-wrapper button.authorize").first.click()
    page.locator(".modal-ux button.btn-done").click()

    credits.locator(".opblock-summary").click()
    credits.locator("button.try-out__btn").click()
    credits.locator("button.execute").click()
    status = credits.locator(".live-responses-table tbody .response-col_status").first
    expect(status).to_have_text("200")
    expect(credits.locator(".live-responses-table")).to_contain_text("1234")
    # The request example picker on generate lists every kind, and the first one, tried out, makes a task.
    generate.locator(".opblock-summary").click()
    picker = generate.locator("select.examples-select__select, .examples-select select").first
    for kind in ("Text to video", "Image to video", "First and last frame", "Multi-shot", "Elements"):
        expect(picker).to_contain_text(kind)
    generate.locator("button.try-out__btn").click()
    generate.locator("button.execute").click()
    expect(generate.locator(".live-responses-table tbody .response-col_status").first).to_have_text("200")
    expect(generate.locator(".live-responses-table")).to_contain_text('"task_id": "n92')
    with live_server.client(key) as api:
        assert api.get("/api/credits").json()["data"]["balance"] == 1234 - 400  # pro, 5 s, with sound
    shoot(page, "api-docs-offline")
    assert not [url for url in blocked if "docs-assets" in url]
    assert all(urlsplit(url).netloc != urlsplit(live_server.url).netloc for url in blocked)


def test_redoc_renders_offline(live_server, new_page) -> None:
    page, _ = offline_page(new_page, live_server)
    page.goto(f"{live_server.url}/redoc")
    expect(page.get_by_role("heading", name="Create a video generation task").first).to_be_visible()
    expect(page.locator("body")).to_contain_text("INVALID_API_KEY")
