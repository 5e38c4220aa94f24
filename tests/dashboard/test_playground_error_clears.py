"""A Playground field's error goes away as soon as that field is edited, and only that field's."""

from __future__ import annotations

import pytest
from dashboard_helpers import create_user, sign_in
from playwright.sync_api import expect

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


def test_editing_a_field_clears_its_error(live_server, new_page) -> None:
    user = create_user(live_server, "erin@example.com", credits=50_000)
    key = live_server.create_key(name="pg", account=user["account"])
    page = new_page()
    sign_in(page, live_server, "erin@example.com")
    page.goto(f"{live_server.url}/dashboard/playground")
    page.fill("#pg-key", key)
    page.fill("#pg-prompt", "   ")
    page.click("#pg-submit")
    error = page.locator("[data-field='prompt'] .field-error")
    expect(error).to_have_text("prompt must not be blank")
    expect(page.locator("#pg-prompt")).to_have_attribute("aria-invalid", "true")

    page.fill("#pg-seed", "7")  # another field: the prompt's error stays
    expect(error).to_have_count(1)

    page.locator("#pg-prompt").press_sequentially("A")
    expect(error).to_have_count(0)
    expect(page.locator("#pg-prompt")).not_to_have_attribute("aria-invalid", "true")
