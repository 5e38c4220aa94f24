"""The Webhooks page in a real browser: the signing secret, add an endpoint, send a test event, see
the attempt logged, redeliver it (same webhook-id), remove the endpoint."""

from __future__ import annotations

import time

import pytest
from dashboard_helpers import create_user, sign_in
from playwright.sync_api import expect

from harness import WebhookReceiver

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


def test_webhooks_page(live_server, new_page, shoot) -> None:  # type: ignore[no-untyped-def]
    create_user(live_server, "wen@example.com", credits=1_000)
    receiver = WebhookReceiver()
    try:
        page = new_page()
        sign_in(page, live_server, "wen@example.com")
        page.click("nav >> text=Webhooks")
        secret = page.locator("[data-test=webhook-secret]").inner_text().strip()
        assert secret.startswith("whsec_")

        page.fill("input[name=url]", "ftp://nope.example")
        page.click("button:has-text('Add endpoint')")
        expect(page.locator("#webhook-url-error")).to_contain_text("http(s)")

        page.fill("input[name=url]", receiver.url)
        page.click("button:has-text('Add endpoint')")
        expect(page.locator("[data-endpoint-id]")).to_contain_text(receiver.url)

        page.click("button:has-text('Send test event')")
        receiver.wait_for(1, timeout=20)
        [event] = receiver.events(secret)  # signed with the secret the page shows
        assert event["type"] == "webhook.test"
        deadline = time.monotonic() + 20
        while "HTTP 200" not in page.locator("[data-test=attempts]").first.inner_text():
            assert time.monotonic() < deadline, "the attempt never showed"
            time.sleep(0.3)
            page.reload()
        expect(page.locator("[data-test=deliveries]")).to_contain_text("Delivered")
        shoot(page, "webhooks")

        page.click("button:has-text('Redeliver')")
        receiver.wait_for(2, timeout=20)
        first_id, second_id = (headers["webhook-id"] for headers, _, _ in receiver.received)
        assert first_id == second_id

        page.click("button:has-text('Remove')")
        expect(page.locator("[data-endpoint-id]")).to_have_count(0)
    finally:
        receiver.close()
