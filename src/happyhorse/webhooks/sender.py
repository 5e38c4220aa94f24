"""One webhook POST: to an address checked by the same SSRF guard as input images, pinned so DNS
cannot change between the check and the connection, redirects not followed, 10 s at most."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass

import httpx

from happyhorse.media.safe_fetch import check_address, resolve_host

TIMEOUT_S = 10.0
USER_AGENT = "happyhorse-webhooks/1"


@dataclass(frozen=True)
class Outcome:
    status_code: int | None
    error: str | None
    latency_ms: int

    @property
    def delivered(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300


async def post(
    http: httpx.AsyncClient, url: str, body: str, headers: dict[str, str], *, allow_private: bool
) -> Outcome:
    started = time.monotonic()

    def done(status: int | None, error: str | None) -> Outcome:
        return Outcome(status, error, int((time.monotonic() - started) * 1000))

    try:
        async with asyncio.timeout(TIMEOUT_S):
            target = httpx.URL(url)
            port = target.port or (443 if target.scheme == "https" else 80)
            try:
                addresses = await resolve_host(target.host, port)
            except OSError:
                return done(None, "host not found")
            for ip in addresses:
                reason = check_address(ip, allow_private=allow_private)
                if reason:
                    return done(None, f"refused: the host resolves to {reason}")
            extensions = {"sni_hostname": target.host} if target.scheme == "https" else {}
            request = http.build_request(
                "POST",
                target.copy_with(host=addresses[0]),
                content=body.encode(),
                headers={
                    **headers,
                    "Host": target.netloc.decode("ascii"),
                    "Content-Type": "application/json",
                    "User-Agent": USER_AGENT,
                },
                extensions=extensions,
            )
            response = await http.send(request, follow_redirects=False)
            await response.aclose()
            return done(
                response.status_code, None if 200 <= response.status_code < 300 else f"HTTP {response.status_code}"
            )
    except TimeoutError:
        return done(None, f"no answer within {TIMEOUT_S:g} s")
    except httpx.HTTPError as exc:
        return done(None, f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__)
