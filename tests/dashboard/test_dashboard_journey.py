"""A member's first day, in a real browser against the real server: sign in, create a key, generate
from the Playground and watch it play, find it in Tasks and Credits, revoke the key, sign out."""

from __future__ import annotations

import re

import pytest
from dashboard_helpers import PHONE, create_user, sign_in
from playwright.sync_api import expect

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

VIDEO_PLAYS = """(selector) => {
  const video = document.querySelector(selector);
  return !!video && video.readyState >= 2;
}"""


def test_sign_in_create_key_generate_watch_it_play_then_revoke(live_server, new_page, shoot) -> None:
    create_user(live_server, "ana@example.com", credits=10_000)
    page = new_page()

    # Signed out, every page leads to the sign-in form.
    page.goto(f"{live_server.url}/dashboard/keys")
    expect(page).to_have_url(re.compile(r"/dashboard/login\?next="))
    shoot(page, "login")
    page.fill("input[name=email]", "ana@example.com")
    page.fill("input[name=password]", "wrong password")
    page.click("button[type=submit]")
    expect(page.locator("[data-test=login-error]")).to_contain_text("don't match")
    sign_in(page, live_server, "ana@example.com")
    expect(page.locator("[data-test=balance]")).to_have_text("10,000")
    shoot(page, "overview")

    # API Keys: create one; it is shown once, and the API takes it.
    page.click("nav >> text=API Keys")
    page.fill("input[name=name]", "playground")
    page.click("button:has-text('Create key')")
    key = page.locator("#new-key-value").inner_text().strip()
    assert key.startswith("hh_")
    expect(page.locator("[data-test=keys-table]")).to_contain_text("playground")
    shoot(page, "keys-new-key")
    with live_server.client(key) as api:
        assert api.get("/api/credits").json()["data"]["balance"] == 10_000

    # Playground: std, 3 s → 180 credits; the preview shows the exact request.
    page.click("button:has-text('Use in Playground')")
    page.wait_for_url("**/dashboard/playground")
    assert page.input_value("#pg-key") == key
    page.fill("#pg-prompt", "A red kite circling over green hills")
    page.click("label:has(input[name=mode][value=std])")
    page.fill("#pg-duration", "3")
    expect(page.locator("[data-test=cost]")).to_have_text("180")
    preview = page.locator("[data-test=preview]")
    expect(preview).to_contain_text("Authorization: Bearer $HAPPYHORSE_API_KEY")
    expect(preview).to_contain_text('"duration": 3')
    page.click("button[data-tab=json]")
    expect(preview).to_contain_text('"model": "happyhorse-1.0/video"')
    shoot(page, "playground")

    page.click("#pg-submit")
    page.wait_for_function(VIDEO_PLAYS, arg="#pg-video-wrap video", timeout=120_000)
    expect(page.locator("[data-test=pg-status]")).to_have_text("Succeeded")
    expect(page.locator("[data-test=pg-balance]")).to_have_text("9,820")
    task_id = page.locator("#pg-task-id").inner_text().strip()
    assert task_id.startswith("n92")
    shoot(page, "playground-result")

    # Tasks: the task, its prompt, and a video that plays.
    page.click("nav >> text=Tasks")
    row = page.locator(f"[data-task-id='{task_id}']")
    expect(row).to_contain_text("A red kite circling over green hills")
    expect(row.locator("[data-role=status]")).to_have_text("Succeeded")
    expect(row).to_contain_text("180 credits")
    row.locator("video").evaluate("v => { v.preload = 'auto'; v.load(); }")
    page.wait_for_function(VIDEO_PLAYS, arg=f"[data-task-id='{task_id}'] video", timeout=60_000)
    shoot(page, "tasks")

    # Credits: the debit for this task.
    page.click("nav >> text=Credits")
    expect(page.locator("[data-test=balance]")).to_have_text("9,820")
    expect(page.locator("[data-test=ledger]")).to_contain_text(task_id)
    expect(page.locator("[data-test=ledger]")).to_contain_text("−180")
    shoot(page, "credits")

    # Phone width: the same pages still read well.
    phone = new_page(PHONE)
    sign_in(phone, live_server, "ana@example.com")
    shoot(phone, "phone-overview")
    for name in ("playground", "tasks", "keys", "credits"):
        phone.goto(f"{live_server.url}/dashboard/{name}")
        assert phone.evaluate("document.documentElement.scrollWidth") <= PHONE["width"], f"{name} scrolls sideways"
        shoot(phone, f"phone-{name}", full_page=name != "playground")

    # Revoke: the dashboard says so and the API refuses the key. The key itself is never shown again.
    page.click("nav >> text=API Keys")
    assert key not in page.content()
    page.locator("[data-key-id]", has_text="playground").locator("button:has-text('Revoke')").click()
    expect(page.locator(".alert-success")).to_contain_text("Key revoked")
    expect(page.locator("[data-key-id]", has_text="playground")).to_contain_text("Revoked")
    shoot(page, "keys-revoked")
    with live_server.client(key) as api:
        refused = api.get("/api/credits")
    assert refused.status_code == 401
    assert refused.json()["error_code"] == "INVALID_API_KEY"
    page.click("nav >> text=Playground")  # the tab still holds the revoked key
    page.fill("#pg-prompt", "One more")
    page.click("#pg-submit")
    expect(page.locator("[data-field=api_key] .field-error")).to_have_text("the API key is invalid or has been revoked")
    page.click("nav >> text=API Keys")

    # Reloading the page that showed a new key neither shows it again nor creates another.
    page.fill("input[name=name]", "second")
    page.click("button:has-text('Create key')")
    expect(page.locator("[data-test=new-key]")).to_have_count(1)
    page.reload()
    expect(page.locator("[data-test=new-key]")).to_have_count(0)
    expect(page.locator("[data-key-id]")).to_have_count(2)

    # Sign out: the session is gone.
    page.click("[data-test=sign-out]")
    expect(page).to_have_url(re.compile(r"/dashboard/login\?signed_out=1"))
    page.goto(f"{live_server.url}/dashboard/credits")
    expect(page).to_have_url(re.compile(r"/dashboard/login"))
