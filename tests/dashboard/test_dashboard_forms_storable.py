"""A NUL in any dashboard form is a 400 page in both deployments, and nothing of that form is stored.

PostgreSQL's text cannot hold a NUL: a key name, webhook URL, grant note or new user's e-mail with
one was a 500 there (the insert failed). ``form_guard`` refuses the form before any route reads it.
"""

from __future__ import annotations

import json

import httpx
import pytest
from dashboard_helpers import create_user, csrf_token, session_client

from harness import LiveServer

pytestmark = [pytest.mark.e2e]


def test_a_nul_in_any_form_is_a_400_and_stores_nothing(api_server: LiveServer) -> None:
    admin = create_user(api_server, "ada@example.com", admin=True, credits=500)
    client, token = session_client(api_server, "ada@example.com")
    try:
        posts = [
            ("/dashboard/keys", {"name": "nulkey\x00name"}),
            ("/dashboard/webhooks", {"url": "https://hooks.example.com/\x00"}),
            ("/dashboard/admin/grant", {"account_id": admin["account"], "amount": "7", "note": "nulnote\x00"}),
            ("/dashboard/admin/users", {"email": "bo\x00@example.com", "password": "correct horse battery"}),
        ]
        for path, form in posts:
            answer = client.post(path, data={**form, "csrf_token": token})
            assert answer.status_code == 400, (path, answer.status_code, answer.text[-500:])
            assert "NUL character" in answer.text and "Go back" in answer.text
        # A script posting the same (with the header token, asking for JSON) gets the reason as JSON.
        answer = client.post(
            "/dashboard/keys",
            data={"name": "nulkey\x00"},
            headers={"X-CSRF-Token": token, "Accept": "application/json"},
        )
        assert answer.status_code == 400 and "NUL" in answer.json()["message"]

        # Nothing was stored, and the same forms without the NUL work.
        assert "nulkey" not in client.get("/dashboard/keys").text
        assert "hooks.example.com" not in client.get("/dashboard/webhooks").text
        admin_page = client.get("/dashboard/admin").text
        assert "nulnote" not in admin_page and "bo@example.com" not in admin_page
        assert json.loads(api_server.cli("credits", "show", admin["account"], "--json").stdout)["balance"] == 500
        made = client.post("/dashboard/keys", data={"name": "plain key", "csrf_token": token})
        assert made.status_code == 200 and "hh_" in made.text
    finally:
        client.close()

    # The sign-in form too: refused before any account is looked up.
    with httpx.Client(base_url=api_server.url) as browser:
        form = {
            "email": "ada\x00@example.com",
            "password": "guess",
            "csrf_token": csrf_token(browser.get("/dashboard/login").text),
        }
        answer = browser.post("/dashboard/login", data=form)
        assert answer.status_code == 400 and "NUL character" in answer.text
