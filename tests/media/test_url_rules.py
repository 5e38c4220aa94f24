"""The literal-host rule for input image URLs (``media.url_rules``) and the hint on fetch failures."""

from __future__ import annotations

import pytest

from happyhorse.errors import InvalidRequest
from happyhorse.media.url_rules import PRIVATE_URL_HINT, check_image_hosts, literal_private_reason, with_private_hint


@pytest.mark.parametrize(
    ("host", "reason"),
    [
        ("127.0.0.1", "a loopback address"),
        ("localhost", "a loopback address"),
        ("LocalHost.", "a loopback address"),
        ("api.localhost", "a loopback address"),
        ("[::1]", "a loopback address"),
        ("2130706433", "a loopback address"),
        ("0x7f.1", "a loopback address"),
        ("10.0.0.5", "a private address"),
        ("192.168.1.2", "a private address"),
        ("[fd00::1]", "a private address"),
        ("169.254.169.254", "a link-local address"),
        ("[::ffff:127.0.0.1]", "a loopback address"),
    ],
)
def test_literal_private_hosts(host: str, reason: str) -> None:
    assert literal_private_reason(host) == reason


@pytest.mark.parametrize("host", ["example.com", "8.8.8.8", "[2001:4860::8888]", "cafe", "my-laptop"])
def test_names_and_public_addresses_pass(host: str) -> None:
    assert literal_private_reason(host) is None


def test_check_image_hosts_refuses_with_the_hint_and_spares_own_uploads() -> None:
    own = "http://127.0.0.1:8000/uploads/abc.png"
    check_image_hosts([("image_urls[0]", own)], allow_private=False, is_own_upload=lambda url: url == own)
    check_image_hosts([("image_urls[0]", "http://10.0.0.1/x.png")], allow_private=True, is_own_upload=lambda _: False)
    with pytest.raises(InvalidRequest) as refused:
        check_image_hosts(
            [("image_urls[0]", "https://example.com/a.png"), ("image_urls[1]", "http://localhost/b.png")],
            allow_private=False,
            is_own_upload=lambda _: False,
        )
    assert refused.value.message.startswith("image_urls[1] points at a loopback address")
    assert "POST /api/upload" in refused.value.message and "HAPPYHORSE_ALLOW_PRIVATE_URLS=true" in refused.value.message


def test_fetch_failures_get_the_hint_only_for_private_reasons() -> None:
    private = "image_urls[0]: could not fetch http://intranet/x.png: host resolves to a private address"
    assert with_private_hint(private) == f"{private} ({PRIVATE_URL_HINT})"
    assert with_private_hint(with_private_hint(private)) == with_private_hint(private)
    other = "image_urls[0]: could not fetch http://example.com/x.png: server answered HTTP 404"
    assert with_private_hint(other) == other
