"""Admins in a real browser: every account's balance, credit grants, adding users; members can't."""

from __future__ import annotations

import re

import pytest
from dashboard_helpers import PASSWORD, create_user, sign_in
from playwright.sync_api import expect

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


def test_admin_grants_credits_and_adds_a_user(live_server, new_page, shoot) -> None:
    create_user(live_server, "root@example.com", admin=True, credits=1_000)
    member = create_user(live_server, "mo@example.com", credits=250)
    admin = new_page()
    sign_in(admin, live_server, "root@example.com")
    admin.click("nav >> text=Admin")
    balance = admin.locator(f"[data-account-id='{member['account']}'] [data-test=account-balance]")
    expect(balance).to_have_text("250")
    shoot(admin, "admin")

    grant = admin.locator("[data-test=grant-form]")
    grant.locator("select[name=account_id]").select_option(member["account"])
    grant.locator("input[name=amount]").fill("12,500")
    grant.locator("input[name=note]").fill("welcome pack")
    grant.locator("button[type=submit]").click()
    expect(admin.locator(".alert-success")).to_have_text("Credits granted.")
    expect(balance).to_have_text("12,750")
    with live_server.client(live_server.create_key(name="mo", account=member["account"])) as api:
        assert api.get("/api/credits").json()["data"]["balance"] == 12_750

    # A bad amount is refused with a message, and nothing moves.
    grant.locator("select[name=account_id]").select_option(member["account"])
    grant.locator("input[name=amount]").fill("lots")
    grant.locator("button[type=submit]").click()
    expect(admin.locator(".alert-error")).to_contain_text("whole number")
    expect(balance).to_have_text("12,750")

    # Add a user to the member's account in the UI; they can sign in and see the grant.
    form = admin.locator("[data-test=user-form]")
    form.locator("input[name=email]").fill("Newbie@Example.com")
    form.locator("input[name=password]").fill(PASSWORD)
    form.locator("select[name=account_id]").select_option(member["account"])
    form.locator("button[type=submit]").click()
    expect(admin.locator(".alert-success")).to_contain_text("User added")
    expect(admin.locator("[data-test=users-table]")).to_contain_text("newbie@example.com")

    newbie = new_page()
    sign_in(newbie, live_server, "newbie@example.com")
    newbie.click("nav >> text=Credits")
    expect(newbie.locator("[data-test=balance]")).to_have_text("12,750")
    expect(newbie.locator("[data-test=ledger]")).to_contain_text("welcome pack (by root@example.com)")
    shoot(newbie, "credits-after-grant")

    # Members have no Admin page.
    expect(newbie.locator("nav >> text=Admin")).to_have_count(0)
    response = newbie.goto(f"{live_server.url}/dashboard/admin")
    assert response is not None and response.status == 403
    expect(newbie.locator("h1")).to_have_text("No access")
    shoot(newbie, "admin-forbidden")


def test_wrong_passwords_are_throttled(live_server, new_page) -> None:
    create_user(live_server, "zed@example.com")
    page = new_page()
    for _ in range(5):
        page.goto(f"{live_server.url}/dashboard/login")
        page.fill("input[name=email]", "zed@example.com")
        page.fill("input[name=password]", "not it at all")
        page.click("button[type=submit]")
        expect(page.locator("[data-test=login-error]")).to_contain_text("don't match")
    page.fill("input[name=password]", PASSWORD)  # right password, but too many failures this minute
    page.click("button[type=submit]")
    expect(page.locator("[data-test=login-error]")).to_contain_text(re.compile(r"Too many failed sign-ins"))
