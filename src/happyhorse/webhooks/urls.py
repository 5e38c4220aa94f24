"""What a webhook URL may be. Checked at submit (and when an endpoint is added); the SSRF guard runs
again at every delivery, on the addresses the host resolves to then (``sender``)."""

from __future__ import annotations

import ipaddress
from urllib.parse import urlsplit

from happyhorse.errors import InvalidRequest
from happyhorse.media.safe_fetch import check_address

MAX_URL_LENGTH = 2048


def check_webhook_url(value: object, *, field: str, allow_private: bool) -> str:
    """The URL, or InvalidRequest saying what is wrong with it."""
    if not isinstance(value, str) or not value.strip():
        raise InvalidRequest(f"{field} must be an http(s) URL")
    url = value.strip()
    if len(url) > MAX_URL_LENGTH:
        raise InvalidRequest(f"{field} must be at most {MAX_URL_LENGTH} characters")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise InvalidRequest(f"{field} is not a valid URL") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise InvalidRequest(f"{field} must be an http(s) URL with a host")
    if parts.username or parts.password:
        raise InvalidRequest(f"{field} must not carry a user name or password")
    if port == 0:
        raise InvalidRequest(f"{field} has an invalid port")
    if not allow_private:
        reason = literal_host_reason(parts.hostname)
        if reason:
            raise InvalidRequest(
                f"{field} points at {reason}; webhooks go to public addresses "
                "(for local development set HAPPYHORSE_ALLOW_PRIVATE_URLS=true)"
            )
    return url


def literal_host_reason(host: str) -> str | None:
    """Why a host written as an address (or ``localhost``) is not public; None for names and public IPs."""
    name = host.lower().rstrip(".")
    if name == "localhost" or name.endswith(".localhost"):
        return "a loopback address"
    try:
        address = ipaddress.ip_address(name.strip("[]"))
    except ValueError:
        return None
    return check_address(address)
