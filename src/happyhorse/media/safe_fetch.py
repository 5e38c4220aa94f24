"""Fetch a user-supplied image URL without letting it reach inside our network (an SSRF guard).

One fetch, inside one overall time limit::

    parse URL ── http(s) only, a host, no user:password@, legacy IPv4 forms normalised
      └─▶ resolve host ── every address checked (check_address): loopback, private, link-local,
            │              metadata, CGNAT, unique-local, multicast, reserved, mapped/6to4/NAT64
            └─▶ GET the checked IP itself ── Host header and TLS SNI/certificate name = the
                  │                          original host, so DNS cannot change its answer
                  │                          between the check and the connection (rebinding)
                  ├─▶ 3xx: back to "parse URL" for the Location, at most max_redirects times
                  └─▶ 2xx: stream the body up to max_bytes
      └─▶ sniff the bytes with Pillow: an allowed format, width×height ≤ max_pixels (header only)

Every failure is a ``FetchError`` whose message is safe to store as a task's ``error_message``:

    image_urls[0]: could not fetch http://10.0.0.5/cat.png: host is a private address

``allow_private`` (``HAPPYHORSE_ALLOW_PRIVATE_URLS``, for local development) lifts only the
loopback / private / link-local part of the address check; every other rule still holds.

The default is a fresh ``httpx.AsyncClient`` per call. A shared ``client`` may be passed in (tests
do); since its pool keys connections by the pinned IP, an HTTPS connection opened for one host
may then be reused for another host on the same IP.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import socket
import urllib.parse
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import httpx

from happyhorse.media.images import ImageError, probe_image

if TYPE_CHECKING:
    from happyhorse.config import Settings

log = logging.getLogger("happyhorse.fetch")

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
Resolver = Callable[[str, int], Awaitable[Sequence[str]]]
"""``(host, port) -> IP address strings``; the default is ``resolve_host`` (getaddrinfo)."""

_SCHEMES = ("http", "https")
_REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
_URL_SHOWN_CHARS = 100
_USER_AGENT = "happyhorse-fetch/1.0"

# Ranges that allow_private lifts, with the reason shown when it does not.
_LIFTABLE_RANGES: tuple[tuple[str, tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]], ...] = (
    ("a loopback address", (ipaddress.ip_network("127.0.0.0/8"), ipaddress.ip_network("::1/128"))),
    (
        "a link-local address",
        (ipaddress.ip_network("169.254.0.0/16"), ipaddress.ip_network("fe80::/10")),
    ),
    (
        "a private address",
        (
            ipaddress.ip_network("10.0.0.0/8"),
            ipaddress.ip_network("172.16.0.0/12"),
            ipaddress.ip_network("192.168.0.0/16"),
            ipaddress.ip_network("100.64.0.0/10"),  # carrier-grade NAT: someone's internal network
            ipaddress.ip_network("fc00::/7"),  # unique-local
        ),
    ),
)
_NAT64 = ipaddress.ip_network("64:ff9b::/96")

_private_warning_logged = False


class FetchError(Exception):
    """An input URL could not be used; ``str(err)`` (= ``err.message``) is safe to show the user.

    ``url``, ``reason`` and ``field`` keep the parts for callers that want them.
    """

    def __init__(
        self, message: str, *, url: str | None = None, reason: str | None = None, field: str | None = None
    ) -> None:
        super().__init__(message)
        self.message = message
        self.url = url
        self.reason = reason if reason is not None else message
        self.field = field

    @classmethod
    def for_url(cls, url: str, reason: str, *, field: str | None = None) -> FetchError:
        """``"image_urls[0]: could not fetch http://…: reason"``, the URL shortened."""
        prefix = f"{field}: " if field else ""
        return cls(f"{prefix}could not fetch {_shorten(url)}: {reason}", url=url, reason=reason, field=field)


class _Refused(Exception):
    """Internal: a reason to give up, turned into a FetchError (with the URL) by fetch_image."""

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(reason)


@dataclass(frozen=True)
class FetchPolicy:
    """The limits one fetch runs under."""

    allow_private: bool = False
    timeout: float = 20.0  # seconds for the whole fetch: DNS, connects, redirects, body
    max_bytes: int = 20 * 1024 * 1024
    max_pixels: int = 40_000_000
    max_redirects: int = 5

    @classmethod
    def from_settings(cls, settings: Settings) -> FetchPolicy:
        return cls(
            allow_private=settings.allow_private_urls,
            timeout=settings.fetch_timeout,
            max_bytes=settings.fetch_max_bytes,
            max_pixels=settings.fetch_max_pixels,
            max_redirects=settings.fetch_max_redirects,
        )


# --- addresses ------------------------------------------------------------------------------------


def check_address(ip: str | IPAddress, *, allow_private: bool = False) -> str | None:
    """Why we must not connect to ``ip`` ("a loopback address", …), or None if it is public.

    IPv6 forms that embed an IPv4 address (mapped ``::ffff:a.b.c.d``, 6to4, NAT64) are judged by
    the address they lead to.
    """
    addr = ipaddress.ip_address(ip) if isinstance(ip, str) else ip
    embedded = _embedded_ipv4(addr)
    if embedded is not None:
        return check_address(embedded, allow_private=allow_private)
    for reason, networks in _LIFTABLE_RANGES:
        if any(addr in net for net in networks):
            return None if allow_private else reason
    if addr.is_unspecified:
        return "an unspecified address"
    if addr.is_multicast:
        return "a multicast address"
    if addr.is_reserved:
        return "a reserved address"
    if not addr.is_global:  # documentation, benchmarking, IETF protocol ranges, 0.0.0.0/8, …
        return "a non-public address"
    return None


def _embedded_ipv4(addr: IPAddress) -> ipaddress.IPv4Address | None:
    if not isinstance(addr, ipaddress.IPv6Address):
        return None
    if addr.ipv4_mapped is not None:
        return addr.ipv4_mapped
    if addr.sixtofour is not None:
        return addr.sixtofour
    if addr in _NAT64:
        return ipaddress.IPv4Address(int(addr) & 0xFFFFFFFF)
    return None


async def resolve_host(host: str, port: int) -> list[str]:
    """All addresses ``host`` resolves to, via getaddrinfo in the loop's thread pool."""
    loop = asyncio.get_running_loop()
    infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    addresses: list[str] = []
    for *_, sockaddr in infos:
        ip = str(sockaddr[0])
        if ip not in addresses:
            addresses.append(ip)
    return addresses


async def _checked_addresses(url: httpx.URL, policy: FetchPolicy, resolve: Resolver) -> list[str]:
    """The addresses to connect to for ``url``, refusing if ANY of them is not allowed.

    Checking all of them (not just the first) matters: a host with one public and one private
    record must not become a lottery for which one the connection picks.
    """
    literal = _ip_literal(url.host)
    if literal is not None:
        reason = check_address(literal, allow_private=policy.allow_private)
        if reason:
            raise _Refused(f"host is {reason}")
        return [str(literal)]
    try:
        addresses = list(await resolve(url.host, _port(url)))
    except (OSError, UnicodeError):
        raise _Refused("host not found")
    if not addresses:
        raise _Refused("host not found")
    for ip in addresses:
        try:
            reason = check_address(ip, allow_private=policy.allow_private)
        except ValueError:
            reason = "an invalid address"
        if reason:
            raise _Refused(f"host resolves to {reason}")
    return addresses


def _ip_literal(host: str) -> IPAddress | None:
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        return None


# --- URLs ---------------------------------------------------------------------------------------------


def _parse_url(raw: str) -> httpx.URL:
    """Parse and vet a URL: http(s), a host, a sane port, no credentials."""
    try:
        url = httpx.URL(_normalise_legacy_ipv4(raw))
    except (httpx.InvalidURL, ValueError, TypeError):
        raise _Refused("not a valid URL")
    if url.scheme not in _SCHEMES:
        raise _Refused("only http and https URLs are allowed")
    if not url.host:
        raise _Refused("URL has no host")
    if url.userinfo:
        # Credentials in a URL are how "http://trusted.com@evil/" tricks read; no image needs them.
        raise _Refused("URLs with a user name or password are not allowed")
    if not 0 < _port(url) < 65536:
        raise _Refused("invalid port")
    return url


def _normalise_legacy_ipv4(raw: str) -> str:
    """Rewrite a host in a legacy IPv4 form (``2130706433``, ``0x7f000001``, ``0177.0.0.1``) as a
    dotted quad, so it is checked and connected to as the address every resolver reads it as."""
    try:
        parts = urllib.parse.urlsplit(raw)
    except ValueError:
        return raw
    if "@" in parts.netloc or parts.netloc.startswith("["):
        return raw
    host, sep, port = parts.netloc.partition(":")
    if not host:
        return raw
    try:
        canonical = socket.inet_ntoa(socket.inet_aton(host))
    except (OSError, ValueError):
        return raw  # a name, or not a valid number
    if canonical == host:
        return raw
    return urllib.parse.urlunsplit(parts._replace(netloc=canonical + sep + port))


def _port(url: httpx.URL) -> int:
    if url.port is not None:
        return url.port
    return 443 if url.scheme == "https" else 80


def _shorten(url: str) -> str:
    return url if len(url) <= _URL_SHOWN_CHARS else url[: _URL_SHOWN_CHARS - 1] + "…"


def _size_text(n: int) -> str:
    mib = 1024 * 1024
    if n >= mib:
        return f"{n / mib:g} MB"
    if n >= 1024:
        return f"{n / 1024:g} KB"
    return f"{n} bytes"


# --- HTTP -----------------------------------------------------------------------------------------------


def _pinned_request(http: httpx.AsyncClient, url: httpx.URL, ip: str) -> httpx.Request:
    """A GET to ``ip`` that the server (and TLS) sees as a request for ``url``'s host."""
    extensions: dict[str, object] = {}
    if url.scheme == "https" and _ip_literal(url.host) is None:
        extensions["sni_hostname"] = url.host  # SNI and the certificate check use the real name
    return http.build_request(
        "GET",
        url.copy_with(host=ip),
        headers={
            "Host": url.netloc.decode("ascii"),
            "Accept": "image/*",
            "Accept-Encoding": "identity",
            "User-Agent": _USER_AGENT,
        },
        extensions=extensions,
    )


async def _get_once(
    http: httpx.AsyncClient, url: httpx.URL, addresses: Sequence[str], policy: FetchPolicy
) -> bytes | httpx.URL:
    """GET ``url`` from the first of ``addresses`` that accepts a connection.

    Returns the body, or the URL a redirect points to (not yet checked).
    """
    error: httpx.ConnectError | None = None
    for ip in addresses:
        request = _pinned_request(http, url, ip)
        try:
            response = await http.send(request, stream=True, follow_redirects=False)
        except httpx.ConnectError as exc:
            error = exc  # try the host's next address, as a browser would
            continue
        try:
            return await _handle_response(response, url, policy)
        finally:
            await response.aclose()
    raise _Refused(_connect_failure(error))


def _connect_failure(error: httpx.ConnectError | None) -> str:
    if error is not None and "CERTIFICATE_VERIFY_FAILED" in str(error):
        return "TLS certificate not valid for the host"
    return "could not connect"


async def _handle_response(response: httpx.Response, url: httpx.URL, policy: FetchPolicy) -> bytes | httpx.URL:
    if response.status_code in _REDIRECT_STATUSES:
        location = response.headers.get("location")
        if not location:
            raise _Refused(f"redirect (HTTP {response.status_code}) without a Location")
        try:
            return url.join(location)  # relative to the real URL, not the pinned IP
        except (httpx.InvalidURL, ValueError):
            raise _Refused("redirect to an invalid URL")
    if not response.is_success:
        raise _Refused(f"server answered HTTP {response.status_code}")
    return await _read_body(response, policy)


async def _read_body(response: httpx.Response, policy: FetchPolicy) -> bytes:
    """The body, refusing as soon as it is known to exceed max_bytes."""
    too_large = f"larger than {_size_text(policy.max_bytes)}"
    declared = response.headers.get("content-length", "").strip()
    if declared.isdigit() and int(declared) > policy.max_bytes:
        raise _Refused(too_large)
    encoding = response.headers.get("content-encoding", "identity").strip().lower()
    if encoding not in ("", "identity"):
        # We asked for identity. Decoding gzip/brotli would let a small body inflate past the limit
        # inside one chunk, before any check could run.
        raise _Refused(f"compressed response (content-encoding: {encoding}) is not supported")
    body = bytearray()
    async for chunk in response.aiter_raw():
        body += chunk
        if len(body) > policy.max_bytes:
            raise _Refused(too_large)
    return bytes(body)


async def _fetch_bytes(url: str, policy: FetchPolicy, http: httpx.AsyncClient, resolve: Resolver) -> bytes:
    """Follow the URL through at most ``max_redirects`` redirects, checking every hop."""
    current = _parse_url(url)
    addresses = await _checked_addresses(current, policy, resolve)
    redirects = 0
    while True:
        result = await _get_once(http, current, addresses, policy)
        if isinstance(result, bytes):
            return result
        if redirects == policy.max_redirects:
            raise _Refused(f"more than {policy.max_redirects} redirects")
        redirects += 1
        try:  # each hop gets the full check: scheme, credentials, every address
            current = _parse_url(str(result))
            addresses = await _checked_addresses(current, policy, resolve)
        except _Refused as exc:
            raise _Refused(f"redirected to {_shorten(str(result))}: {exc.reason}")


def _warn_if_private_allowed(policy: FetchPolicy) -> None:
    global _private_warning_logged
    if policy.allow_private and not _private_warning_logged:
        _private_warning_logged = True
        log.warning(
            "HAPPYHORSE_ALLOW_PRIVATE_URLS is on: image URLs may reach loopback, private and "
            "link-local addresses (cloud metadata included). Use it for local development only."
        )


def _http_failure(exc: httpx.HTTPError) -> str:
    if isinstance(exc, httpx.TimeoutException):
        return "timed out"
    if isinstance(exc, httpx.RemoteProtocolError | httpx.DecodingError):
        return "the server sent an invalid HTTP response"
    if isinstance(exc, httpx.TransportError):
        return "connection failed"
    return "request failed"


async def fetch_image(
    url: str,
    policy: FetchPolicy,
    *,
    client: httpx.AsyncClient | None = None,
    resolve: Resolver | None = None,
    field: str | None = None,
) -> bytes:
    """Download the image at ``url`` under ``policy``; the bytes are a verified image.

    ``field`` (e.g. ``"image_urls[0]"``) prefixes the error message. ``client`` and ``resolve`` are
    seams for tests; a passed-in client is neither closed nor reconfigured.
    Raises ``FetchError`` for every way the URL can be unusable.
    """
    _warn_if_private_allowed(policy)
    http = client or httpx.AsyncClient(timeout=policy.timeout, trust_env=False)  # no env proxies
    try:
        async with asyncio.timeout(policy.timeout):
            data = await _fetch_bytes(url, policy, http, resolve or resolve_host)
        await asyncio.to_thread(probe_image, data, max_pixels=policy.max_pixels)
    except _Refused as exc:
        raise FetchError.for_url(url, exc.reason, field=field) from None
    except ImageError as exc:
        raise FetchError.for_url(url, exc.reason, field=field) from None
    except TimeoutError:
        raise FetchError.for_url(url, "timed out", field=field) from None
    except httpx.HTTPError as exc:
        raise FetchError.for_url(url, _http_failure(exc), field=field) from None
    except httpx.InvalidURL:  # e.g. a pinned address httpx cannot put in a URL
        raise FetchError.for_url(url, "not a valid URL", field=field) from None
    finally:
        if client is None:
            await http.aclose()
    return data
