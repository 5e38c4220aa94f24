"""HAPPYHORSE_REQUEST_TIMEOUT: a connection that has not sent a complete request in time is closed
(slowloris), while ordinary clients, kept-alive connections and long answers are left alone."""

from __future__ import annotations

import select
import socket
import time

import httpx
import pytest

from harness import LiveServer, wait_for_task

pytestmark = pytest.mark.e2e

TIMEOUT = 2.0


def closed_after(sock: socket.socket, drip: bytes, every: float, give_up: float) -> float | None:
    """Send ``drip`` one byte every ``every`` seconds; seconds until the server closed, or None."""
    started = time.monotonic()
    position = 0
    while time.monotonic() - started < give_up:
        readable, _, _ = select.select([sock], [], [], every)
        if readable:
            try:
                if sock.recv(65536) == b"":
                    return time.monotonic() - started
            except ConnectionResetError:
                return time.monotonic() - started
            continue
        if position < len(drip):
            try:
                sock.send(drip[position : position + 1])
            except (BrokenPipeError, ConnectionResetError):
                return time.monotonic() - started
            position += 1
    return None


@pytest.fixture
def timed_server(server_factory) -> LiveServer:
    return server_factory(HAPPYHORSE_REQUEST_TIMEOUT=str(TIMEOUT))  # type: ignore[no-any-return]


def test_a_request_head_sent_byte_by_byte_is_cut_off(timed_server: LiveServer) -> None:
    head = b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Padding: " + b"a" * 200  # never finished
    with socket.create_connection(("127.0.0.1", timed_server.port)) as sock:
        gone = closed_after(sock, head, every=0.2, give_up=TIMEOUT + 6)
    assert gone is not None, "the server kept a dripping connection open"
    assert TIMEOUT - 0.5 < gone < TIMEOUT + 2.5


def test_a_silent_connection_and_a_dripping_body_are_cut_off(timed_server: LiveServer) -> None:
    with socket.create_connection(("127.0.0.1", timed_server.port)) as sock:
        gone = closed_after(sock, b"", every=0.2, give_up=TIMEOUT + 6)
    assert gone is not None and gone < TIMEOUT + 2.5

    head = b"POST /api/generate HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 400\r\n\r\n"
    with socket.create_connection(("127.0.0.1", timed_server.port)) as sock:
        sock.sendall(head)
        gone = closed_after(sock, b"{" + b" " * 398 + b"}", every=0.2, give_up=TIMEOUT + 6)
    assert gone is not None and gone < TIMEOUT + 2.5


def test_ordinary_clients_are_untouched(timed_server: LiveServer) -> None:
    # A head that takes most of the timeout still gets its answer.
    with socket.create_connection(("127.0.0.1", timed_server.port)) as sock:
        head = b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"
        for i in range(0, len(head), 8):
            sock.send(head[i : i + 8])
            time.sleep(TIMEOUT * 0.7 / (len(head) / 8))
        sock.settimeout(5)
        assert sock.recv(65536).startswith(b"HTTP/1.1 200")

    key = timed_server.create_key(credits=100_000)
    with timed_server.client(key) as api:
        # Kept alive across pauses shorter than the idle timeout, for longer than the request timeout.
        for _ in range(4):
            assert api.get("/healthz").status_code == 200
            time.sleep(1.0)
        # An answer that takes longer than the timeout (the status stream of a render) is not the client's delay.
        body = {"model": "happyhorse-1.0/video", "prompt": "a long ride", "duration": 15, "mode": "pro", "sound": True}
        task_id = api.post("/api/generate", json=body).json()["data"]["task_id"]
        started = time.monotonic()
        events = []
        with api.stream(
            "GET", "/api/status/stream", params={"task_id": task_id}, timeout=httpx.Timeout(60, read=60)
        ) as stream:
            for line in stream.iter_lines():
                if line.startswith("data:"):
                    events.append(line)
        assert time.monotonic() - started > TIMEOUT, "the render finished too fast to show anything"
        assert '"SUCCESS"' in events[-1]
        assert wait_for_task(api, task_id)["status"] == "SUCCESS"
