"""fetch_image against real servers on 127.0.0.1: the SSRF guard, limits, redirects and TLS pinning."""

from __future__ import annotations

import logging
import pickle
import socket
import ssl
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING

import httpx
import pytest

from happyhorse.config import Settings
from happyhorse.media import safe_fetch
from happyhorse.media.safe_fetch import FetchError, FetchPolicy, check_address, fetch_image

if TYPE_CHECKING:
    from conftest import LocalServer  # tests/media/conftest.py, for annotations only

LOCAL_DEV = FetchPolicy(allow_private=True, timeout=5.0, max_redirects=3)


def resolver(mapping: dict[str, Sequence[str]], calls: list[str] | None = None) -> safe_fetch.Resolver:
    """A DNS stand-in: names in ``mapping`` resolve to its addresses, anything else is unknown."""

    async def resolve(host: str, port: int) -> Sequence[str]:
        if calls is not None:
            calls.append(host)
        if host not in mapping:
            raise socket.gaierror(socket.EAI_NONAME, "unknown host")
        return mapping[host]

    return resolve


@pytest.fixture
def loopback_is_public(monkeypatch: pytest.MonkeyPatch) -> None:
    """Judge 127.0.0.1 as a public address, so the test server can stand in for a public host
    while allow_private stays off and every other address is judged for real."""
    real = safe_fetch.check_address

    def check(ip: object, *, allow_private: bool = False) -> str | None:
        if str(ip) == "127.0.0.1":
            return None
        return real(ip, allow_private=allow_private)  # type: ignore[arg-type]

    monkeypatch.setattr(safe_fetch, "check_address", check)


async def refused(url: str, policy: FetchPolicy = LOCAL_DEV, **kwargs: object) -> str:
    with pytest.raises(FetchError) as info:
        await fetch_image(url, policy, **kwargs)  # type: ignore[arg-type]
    return str(info.value)


# --- the happy path ---------------------------------------------------------------------------------


async def test_fetches_png_and_jpeg_from_loopback_when_private_allowed(http_server: LocalServer) -> None:
    assert await fetch_image(http_server.url("/img.png"), LOCAL_DEV) == http_server.png
    assert await fetch_image(http_server.url("/img.jpg"), LOCAL_DEV) == http_server.jpeg


async def test_content_is_sniffed_not_trusted_from_content_type(http_server: LocalServer) -> None:
    assert await fetch_image(http_server.url("/mislabelled.txt"), LOCAL_DEV) == http_server.png


async def test_uses_a_passed_in_client_and_leaves_it_open(http_server: LocalServer) -> None:
    async with httpx.AsyncClient() as client:
        assert await fetch_image(http_server.url("/img.png"), LOCAL_DEV, client=client) == http_server.png
        assert not client.is_closed


async def test_connects_to_the_checked_address_with_the_original_host_header(
    http_server: LocalServer,
) -> None:
    calls: list[str] = []
    resolve = resolver({"images.test": ["127.0.0.1"]}, calls)
    data = await fetch_image(http_server.url("/img.png", host="images.test"), LOCAL_DEV, resolve=resolve)
    assert data == http_server.png
    assert http_server.hosts[-1] == f"images.test:{http_server.port}"
    assert calls == ["images.test"]  # resolved once: no second lookup a rebinding DNS could answer


async def test_tries_the_next_address_when_one_refuses_connections(http_server: LocalServer) -> None:
    # Nothing listens on ::1 at this port (or IPv6 is off): the fetch moves on to 127.0.0.1.
    resolve = resolver({"images.test": ["::1", "127.0.0.1"]})
    data = await fetch_image(http_server.url("/img.png", host="images.test"), LOCAL_DEV, resolve=resolve)
    assert data == http_server.png


# --- addresses ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("ip", "reason"),
    [
        ("127.0.0.1", "a loopback address"),
        ("127.255.0.9", "a loopback address"),
        ("::1", "a loopback address"),
        ("10.1.2.3", "a private address"),
        ("172.16.0.1", "a private address"),
        ("172.31.255.254", "a private address"),
        ("192.168.1.1", "a private address"),
        ("100.64.0.1", "a private address"),
        ("fd00::1", "a private address"),
        ("169.254.169.254", "a link-local address"),
        ("fe80::1", "a link-local address"),
        ("::ffff:127.0.0.1", "a loopback address"),
        ("::ffff:169.254.169.254", "a link-local address"),
        ("2002:7f00:1::", "a loopback address"),  # 6to4 wrapping 127.0.0.1
        ("64:ff9b::a00:1", "a private address"),  # NAT64 wrapping 10.0.0.1
        ("0.0.0.0", "an unspecified address"),
        ("::", "an unspecified address"),
        ("224.0.0.1", "a multicast address"),
        ("ff02::1", "a multicast address"),
        ("240.0.0.1", "a reserved address"),
        ("192.0.2.10", "a non-public address"),
        ("0.1.2.3", "a non-public address"),
    ],
)
def test_check_address_refuses_non_public_addresses(ip: str, reason: str) -> None:
    assert check_address(ip) == reason


@pytest.mark.parametrize("ip", ["8.8.8.8", "1.1.1.1", "2606:4700:4700::1111", "::ffff:8.8.8.8", "172.32.0.1"])
def test_check_address_accepts_public_addresses(ip: str) -> None:
    assert check_address(ip) is None


@pytest.mark.parametrize("ip", ["127.0.0.1", "10.0.0.1", "169.254.169.254", "fe80::1", "::ffff:127.0.0.1"])
def test_allow_private_lifts_loopback_private_and_link_local(ip: str) -> None:
    assert check_address(ip, allow_private=True) is None


@pytest.mark.parametrize("ip", ["0.0.0.0", "224.0.0.1", "240.0.0.1", "192.0.2.10"])
def test_allow_private_lifts_nothing_else(ip: str) -> None:
    assert check_address(ip, allow_private=True) is not None


async def test_loopback_is_refused_by_default(http_server: LocalServer) -> None:
    message = await refused(http_server.url("/img.png"), FetchPolicy())
    assert message == f"could not fetch {http_server.url('/img.png')}: host is a loopback address"


async def test_a_name_resolving_to_a_private_address_is_refused() -> None:
    resolve = resolver({"internal.test": ["10.0.0.7"]})
    message = await refused("http://internal.test/cat.png", FetchPolicy(), resolve=resolve, field="image_urls[0]")
    assert message == "image_urls[0]: could not fetch http://internal.test/cat.png: host resolves to a private address"


async def test_every_resolved_address_is_checked(http_server: LocalServer, loopback_is_public: None) -> None:
    resolve = resolver({"mixed.test": ["127.0.0.1", "10.0.0.1"]})
    message = await refused(http_server.url("/img.png", host="mixed.test"), FetchPolicy(), resolve=resolve)
    assert message.endswith("host resolves to a private address")


async def test_localhost_by_name_is_refused() -> None:
    assert "loopback" in await refused("http://localhost/x.png", FetchPolicy())


@pytest.mark.parametrize(
    "host",
    [
        "2130706433",
        "0x7f000001",
        "0177.0.0.1",
        "0x7f.0.0.1",
        "127.1",
        "[::ffff:127.0.0.1]",
        "[::ffff:7f00:1]",
    ],
)
async def test_numeric_forms_of_loopback_are_refused(host: str) -> None:
    message = await refused(f"http://{host}/img.png", FetchPolicy(), resolve=resolver({}))
    assert message.endswith("host is a loopback address")


async def test_numeric_forms_reach_the_address_they_denote(http_server: LocalServer) -> None:
    # With allow_private the decimal form is fetched from 127.0.0.1: it is checked as what it is.
    assert await fetch_image(http_server.url("/img.png", host="2130706433"), LOCAL_DEV) == http_server.png


async def test_metadata_address_is_refused() -> None:
    message = await refused("http://169.254.169.254/latest/meta-data/", FetchPolicy())
    assert message.endswith("host is a link-local address")


# --- URL shape ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("ftp://example.com/a.png", "only http and https URLs are allowed"),
        ("file:///etc/passwd", "only http and https URLs are allowed"),
        ("gopher://example.com/", "only http and https URLs are allowed"),
        ("http:///a.png", "URL has no host"),
        ("http://user:pw@example.com/a.png", "URLs with a user name or password are not allowed"),
        ("http://example.com@127.0.0.1/a.png", "URLs with a user name or password are not allowed"),
        ("http://[::1/a.png", "not a valid URL"),
        ("http://example.com:0/a.png", "invalid port"),
    ],
)
async def test_bad_urls_are_refused_before_any_connection(url: str, reason: str) -> None:
    assert (await refused(url, LOCAL_DEV, resolve=resolver({}))).endswith(reason)


async def test_long_urls_are_shortened_in_the_message() -> None:
    url = "ftp://example.com/" + "a" * 500
    message = await refused(url)
    assert len(message) < 200
    assert "…" in message


async def test_unknown_host() -> None:
    assert (await refused("http://nowhere.test/a.png", resolve=resolver({}))).endswith("host not found")


# --- redirects ---------------------------------------------------------------------------------------


async def test_redirect_is_followed(http_server: LocalServer) -> None:
    assert await fetch_image(http_server.url("/redirect"), LOCAL_DEV) == http_server.png


async def test_redirect_to_a_name_is_resolved_and_pinned(http_server: LocalServer) -> None:
    resolve = resolver({"images.test": ["127.0.0.1"]})
    assert await fetch_image(http_server.url("/redirect-named"), LOCAL_DEV, resolve=resolve) == http_server.png
    assert http_server.hosts[-1] == f"images.test:{http_server.port}"


async def test_redirects_are_counted(http_server: LocalServer) -> None:
    policy = FetchPolicy(allow_private=True, timeout=5.0, max_redirects=3)
    assert await fetch_image(http_server.url("/chain/3"), policy) == http_server.png
    assert (await refused(http_server.url("/chain/4"), policy)).endswith("more than 3 redirects")
    assert (await refused(http_server.url("/loop"), policy)).endswith("more than 3 redirects")


async def test_redirect_from_a_public_host_to_metadata_is_refused(
    http_server: LocalServer, loopback_is_public: None
) -> None:
    # 127.0.0.1 plays a public host here; the metadata address behind the redirect is judged for real.
    resolve = resolver({"public.test": ["127.0.0.1"]})
    assert (
        await fetch_image(http_server.url("/img.png", host="public.test"), FetchPolicy(), resolve=resolve)
        == http_server.png
    )
    message = await refused(http_server.url("/redirect-metadata", host="public.test"), FetchPolicy(), resolve=resolve)
    assert message.endswith("redirected to http://169.254.169.254/latest/meta-data/: host is a link-local address")


async def test_redirect_to_a_name_resolving_privately_is_refused(
    http_server: LocalServer, loopback_is_public: None
) -> None:
    resolve = resolver({"public.test": ["127.0.0.1"], "internal.test": ["10.0.0.1"]})
    message = await refused(http_server.url("/redirect-internal", host="public.test"), FetchPolicy(), resolve=resolve)
    assert message.endswith("host resolves to a private address")


@pytest.mark.parametrize(
    ("path", "reason"),
    [
        ("/redirect-unspecified", "host is an unspecified address"),
        ("/redirect-ftp", "only http and https URLs are allowed"),
        ("/redirect-credentials", "URLs with a user name or password are not allowed"),
    ],
)
async def test_each_hop_is_rechecked_even_with_private_allowed(
    http_server: LocalServer, path: str, reason: str
) -> None:
    message = await refused(http_server.url(path), LOCAL_DEV)
    assert "redirected to " in message
    assert message.endswith(reason)


# --- limits and content ----------------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/huge-declared", "/huge-undeclared"])
async def test_body_over_max_bytes_is_refused(http_server: LocalServer, path: str) -> None:
    policy = FetchPolicy(allow_private=True, timeout=5.0, max_bytes=1024 * 1024)
    assert (await refused(http_server.url(path), policy)).endswith("larger than 1 MB")


async def test_default_limit_is_reported_in_megabytes(http_server: LocalServer) -> None:
    policy = FetchPolicy(allow_private=True, timeout=5.0, max_bytes=20 * 1024 * 1024)
    assert (await refused(http_server.url("/huge-declared"), policy)).endswith("larger than 20 MB")


async def test_slow_body_times_out_within_the_overall_limit(http_server: LocalServer) -> None:
    policy = FetchPolicy(allow_private=True, timeout=0.5)
    started = time.monotonic()
    assert (await refused(http_server.url("/slow"), policy)).endswith("timed out")
    assert time.monotonic() - started < 2.0


@pytest.mark.parametrize(
    ("path", "reason"),
    [
        ("/page.html", "not an image"),
        ("/truncated.png", "not a valid image (corrupt or truncated)"),
        ("/missing", "server answered HTTP 404"),
        ("/gzip", "compressed response (content-encoding: gzip) is not supported"),
    ],
)
async def test_unusable_responses(http_server: LocalServer, path: str, reason: str) -> None:
    assert (await refused(http_server.url(path), LOCAL_DEV)).endswith(reason)


async def test_decompression_bomb_is_refused_from_its_header(http_server: LocalServer) -> None:
    assert "megapixel limit" in await refused(http_server.url("/bomb.png"), LOCAL_DEV)
    message = await refused(http_server.url("/big-canvas.png"), LOCAL_DEV)
    assert message.endswith("image is 8000×8000 pixels, more than the 40 megapixel limit")


async def test_pixel_limit_comes_from_the_policy(http_server: LocalServer) -> None:
    policy = FetchPolicy(allow_private=True, timeout=5.0, max_pixels=1000)
    assert (await refused(http_server.url("/img.png"), policy)).endswith(
        "image is 64×48 pixels, more than the 0.001 megapixel limit"
    )


# --- TLS ---------------------------------------------------------------------------------------------------


async def test_https_is_pinned_with_the_original_name_for_sni_and_certificate(
    https_server: LocalServer, trusting_test_cert: ssl.SSLContext
) -> None:
    resolve = resolver({"images.test": ["127.0.0.1"]})
    async with httpx.AsyncClient(verify=trusting_test_cert) as client:
        url = https_server.url("/img.png", host="images.test")
        assert await fetch_image(url, LOCAL_DEV, client=client, resolve=resolve) == https_server.png
    assert https_server.sni[-1] == "images.test"
    assert https_server.hosts[-1] == f"images.test:{https_server.port}"


async def test_https_certificate_must_match_the_original_name(
    https_server: LocalServer, trusting_test_cert: ssl.SSLContext
) -> None:
    resolve = resolver({"other.test": ["127.0.0.1"]})
    async with httpx.AsyncClient(verify=trusting_test_cert) as client:
        url = https_server.url("/img.png", host="other.test")
        message = await refused(url, LOCAL_DEV, client=client, resolve=resolve)
    assert message.endswith("TLS certificate not valid for the host")


# --- policy -----------------------------------------------------------------------------------------------


def test_policy_from_settings() -> None:
    settings = Settings(
        allow_private_urls=True,
        fetch_timeout=3.5,
        fetch_max_bytes=1234,
        fetch_max_pixels=5678,
        fetch_max_redirects=2,
    )
    assert FetchPolicy.from_settings(settings) == FetchPolicy(
        allow_private=True, timeout=3.5, max_bytes=1234, max_pixels=5678, max_redirects=2
    )


async def test_allow_private_logs_one_warning(
    http_server: LocalServer, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(safe_fetch, "_private_warning_logged", False)
    with caplog.at_level(logging.WARNING, logger="happyhorse.fetch"):
        await fetch_image(http_server.url("/img.png"), LOCAL_DEV)
        await fetch_image(http_server.url("/img.png"), LOCAL_DEV)
    warnings = [r for r in caplog.records if r.name == "happyhorse.fetch" and r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert "ALLOW_PRIVATE_URLS" in warnings[0].getMessage()


def test_fetch_error_keeps_its_parts_across_pickling() -> None:
    # The worker may carry the error across a process boundary before it becomes error_message.
    err = FetchError.for_url("http://x.test/a.png", "not an image", field="image_urls[1]")
    back = pickle.loads(pickle.dumps(err))
    assert str(back) == back.message == "image_urls[1]: could not fetch http://x.test/a.png: not an image"
    assert (back.url, back.reason, back.field) == ("http://x.test/a.png", "not an image", "image_urls[1]")
    assert str(FetchError("plain message")) == "plain message"
