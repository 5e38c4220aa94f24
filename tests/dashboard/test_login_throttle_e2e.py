"""The sign-in throttle holds under parallel guessing: each attempt is counted before its password is
checked, per account e-mail and per client address, and X-Forwarded-For is believed only from
HAPPYHORSE_TRUSTED_PROXIES. A 401 means the password was checked; a 429 means it was not."""

from __future__ import annotations

from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
from dashboard_helpers import PASSWORD, create_user, csrf_token

from harness import LiveServer

pytestmark = pytest.mark.e2e


class SignInForm:
    """One pre-sign-in CSRF seed and its token, shared by every guess (as a script would)."""

    def __init__(self, server: LiveServer) -> None:
        self.url = f"{server.url}/dashboard/login"
        with httpx.Client() as client:
            self.token = csrf_token(client.get(self.url).text)
            self.cookies = dict(client.cookies)

    def attempt(self, email: str, password: str, forwarded_for: str | None = None) -> int:
        headers = {"X-Forwarded-For": forwarded_for} if forwarded_for else {}
        response = httpx.post(
            self.url,
            data={"email": email, "password": password, "csrf_token": self.token},
            cookies=self.cookies,
            headers=headers,
            timeout=60,
        )
        return response.status_code

    def parallel(self, guesses: list[tuple[str, str | None]]) -> Counter[int]:
        with ThreadPoolExecutor(max_workers=len(guesses)) as pool:
            return Counter(pool.map(lambda g: self.attempt(g[0], "not the password", g[1]), guesses))


def test_forty_parallel_guesses_at_one_account_get_five_checked(live_server: LiveServer) -> None:
    create_user(live_server, "lee@example.com")
    form = SignInForm(live_server)
    statuses = form.parallel([("lee@example.com", None)] * 40)
    assert statuses[401] == 5 and statuses[429] == 35, statuses
    # This minute the account takes no more attempts, the right password included, from any address.
    assert form.attempt("lee@example.com", PASSWORD) == 429


def test_forty_parallel_guesses_from_one_address_get_thirty_checked(live_server: LiveServer) -> None:
    form = SignInForm(live_server)
    # Forty e-mails, each with a made-up X-Forwarded-For: no proxy is trusted, so they are one address.
    statuses = form.parallel([(f"user{i}@example.com", f"203.0.113.{i}") for i in range(40)])
    assert statuses[401] == 30 and statuses[429] == 10, statuses


def test_forwarded_addresses_count_only_from_trusted_proxies(server_factory) -> None:
    server = server_factory(HAPPYHORSE_TRUSTED_PROXIES="127.0.0.1, 10.0.0.0/8")
    create_user(server, "kim@example.com")
    create_user(server, "ann@example.com")
    form = SignInForm(server)
    # Behind the trusted proxy every client address has its own count: all forty are checked...
    spread = form.parallel([(f"user{i}@example.com", f"203.0.113.{i}") for i in range(40)])
    assert spread[401] == 40, spread
    # ...and one account still takes five a minute, whatever addresses the guesses come from.
    one_account = form.parallel([("kim@example.com", f"198.51.100.{i}") for i in range(40)])
    assert one_account[401] == 5 and one_account[429] == 35, one_account
    # A success clears its e-mail's count: the owner is never locked out by their own sign-ins.
    for _ in range(6):
        assert form.attempt("ann@example.com", PASSWORD, "192.0.2.10") == 303
