"""Input image URLs this server will never fetch, refused at submit rather than failing the task later.

A URL whose host is *written* as a loopback, private or link-local address (or ``localhost``) can
only fail at fetch, so ``POST /api/generate`` answers 400 at once with what to do instead. Names
that merely *resolve* to such addresses are judged at fetch (``safe_fetch``), with the same hint.
Uploads of this server (``POST /api/upload``) are recognised by their exact path and stay accepted
whatever their host, since the worker reads them from storage.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Callable
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from happyhorse.contract import ELEMENT_KEYS
from happyhorse.errors import InvalidRequest
from happyhorse.media.safe_fetch import check_address

if TYPE_CHECKING:
    from happyhorse.config import Settings
    from happyhorse.contract import GenerateRequest
    from happyhorse.storage.uploads import UploadStore

PRIVATE_URL_HINT = (
    "upload the file with POST /api/upload and send the URL it returns, or, for local development, "
    "set HAPPYHORSE_ALLOW_PRIVATE_URLS=true"
)
# The reasons safe_fetch gives for the ranges HAPPYHORSE_ALLOW_PRIVATE_URLS lifts.
LIFTABLE_REASONS = frozenset(filter(None, (check_address(ip) for ip in ("127.0.0.1", "10.0.0.1", "169.254.0.1"))))


def literal_private_reason(host: str) -> str | None:
    """ "a loopback address" (…) when ``host`` is written as a private address or is ``localhost``."""
    name = host.lower().rstrip(".").strip("[]")
    if name == "localhost" or name.endswith(".localhost"):
        return "a loopback address"
    try:
        address: ipaddress.IPv4Address | ipaddress.IPv6Address = ipaddress.ip_address(name)
    except ValueError:
        try:  # legacy forms every resolver reads as an address: 2130706433, 0x7f000001, 127.1
            address = ipaddress.IPv4Address(socket.inet_aton(name))
        except (OSError, ValueError):
            return None
    reason = check_address(address)
    return reason if reason in LIFTABLE_REASONS else None


def check_image_hosts(
    fields: list[tuple[str, str]], *, allow_private: bool, is_own_upload: Callable[[str], bool]
) -> None:
    """Raise InvalidRequest for the first ``(field, url)`` whose host is literally private."""
    if allow_private:
        return
    for field, url in fields:
        try:
            host = urlsplit(url).hostname or ""
        except ValueError:
            continue  # the contract's shape check has already refused it
        reason = literal_private_reason(host)
        if reason and not is_own_upload(url):
            raise InvalidRequest(f"{field} points at {reason}, which this server does not fetch: {PRIVATE_URL_HINT}")


def with_private_hint(message: str) -> str:
    """A fetch failure's message, with the hint when a private address was the reason."""
    if any(reason in message for reason in LIFTABLE_REASONS) and PRIVATE_URL_HINT not in message:
        return f"{message} ({PRIVATE_URL_HINT})"
    return message


def check_request_hosts(request: GenerateRequest, settings: Settings, uploads: UploadStore) -> None:
    """``check_image_hosts`` for every image and element URL of a parsed generate request."""
    if settings.allow_private_urls:
        return
    from happyhorse.storage.uploads import own_upload_name

    fields = [(f"image_urls[{i}]", url) for i, url in enumerate(request.image_urls)]
    # Named as the client sent them (an alias, `images`), like the contract's own messages: the
    # Playground puts the message next to the field of that name.
    key = next((k for k in ELEMENT_KEYS if k in request.echo), ELEMENT_KEYS[0])
    sent = request.echo.get(key)
    for i, element in enumerate(request.elements):
        item = sent[i] if isinstance(sent, list) and i < len(sent) and isinstance(sent[i], dict) else {}
        urls_key = "images" if item.get("images") is not None else "element_input_urls"
        fields += [(f"{key}[{i}].{urls_key}[{j}]", url) for j, url in enumerate(element.urls)]

    def is_own_upload(url: str) -> bool:  # asked only of a literally private host: rare, and one lookup
        name = own_upload_name(url)
        return name is not None and uploads.exists(name)

    check_image_hosts(fields, allow_private=False, is_own_upload=is_own_upload)
