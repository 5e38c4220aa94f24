"""Slow clients: a connection that has not sent a complete request within ``HAPPYHORSE_REQUEST_TIMEOUT``
seconds is closed (the slowloris attack holds thousands of connections open by sending a header
byte every few seconds; uvicorn alone waits for them forever).

uvicorn has no such setting, so ``serve`` runs it with a subclass of its own HTTP protocol
(``uvicorn.run(http=timed_protocol(...))``) that adds one timer per connection. The clock runs only
while the server is waiting for the client:

    connection opened, or a response finished  → the clock starts (again)
    the clock runs out and the client still owes a request (no complete request head yet, or its
    body still arriving, or what is left of a body that was refused with 413)
                                                → the connection is closed
    the clock runs out while the app is still working on a complete request
                                                → nothing: a long render poll or an event stream is
                                                  not the client's delay

A request head, its body and the idle time before it on a kept-alive connection all count, so an
upload must arrive within the timeout too.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from uvicorn.protocols.http.h11_impl import H11Protocol

log = logging.getLogger("happyhorse.server")


class _RequestClock:
    """The timer; mixed into one of uvicorn's protocols, whose ``transport``, ``loop`` and ``cycle`` it reads."""

    request_timeout: float = 30.0
    _request_clock: asyncio.TimerHandle | None = None
    transport: asyncio.Transport
    loop: asyncio.AbstractEventLoop
    cycle: Any  # the latest request uvicorn has parsed the head of (None before the first)
    client: tuple[str, int] | None

    _request_deadline: float = 0.0

    def _start_request_clock(self) -> None:
        # Called after every response: moving the deadline is a float store. A timer is scheduled only
        # when none is pending; when it fires early it re-arms for the rest (no cancel + call_later per request).
        if self.request_timeout <= 0 or self.transport.is_closing():
            return
        self._request_deadline = self.loop.time() + self.request_timeout
        if self._request_clock is None:
            self._request_clock = self.loop.call_at(self._request_deadline, self._request_clock_ran_out)

    def _stop_request_clock(self) -> None:
        if self._request_clock is not None:
            self._request_clock.cancel()
            self._request_clock = None

    def _client_owes_a_request(self) -> bool:
        cycle = self.cycle
        return cycle is None or cycle.response_complete or cycle.more_body

    def _request_clock_ran_out(self) -> None:
        self._request_clock = None
        if self.transport.is_closing():
            return
        if self.loop.time() < self._request_deadline:  # a response finished since: the clock restarted then
            self._request_clock = self.loop.call_at(self._request_deadline, self._request_clock_ran_out)
            return
        if self._client_owes_a_request():
            log.debug("closing a connection from %s: no complete request in %ss", self.client, self.request_timeout)
            self.transport.close()


class H11RequestTimeout(_RequestClock, H11Protocol):
    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._start_request_clock()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        self._start_request_clock()

    def connection_lost(self, exc: Exception | None) -> None:
        self._stop_request_clock()
        super().connection_lost(exc)


def _base_protocol() -> type[asyncio.Protocol]:
    """uvicorn's ``auto`` choice: httptools when it is installed (``uvicorn[standard]``), else h11."""
    try:
        from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
    except ImportError:  # pragma: no cover - uvicorn[standard] brings httptools
        return H11RequestTimeout

    class HttpToolsRequestTimeout(_RequestClock, HttpToolsProtocol):
        def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
            super().connection_made(transport)
            self._start_request_clock()

        def on_response_complete(self) -> None:
            super().on_response_complete()
            self._start_request_clock()

        def connection_lost(self, exc: Exception | None) -> None:
            self._stop_request_clock()
            super().connection_lost(exc)

    return HttpToolsRequestTimeout


def timed_protocol(timeout: float) -> type[asyncio.Protocol]:
    """The HTTP protocol class for ``uvicorn.run(http=...)``, closing connections after ``timeout`` seconds."""
    base = _base_protocol()
    return type(f"{base.__name__}{int(timeout * 1000)}ms", (base,), {"request_timeout": float(timeout)})
