"""Request bodies over HAPPYHORSE_MAX_BODY_BYTES are a 413 REQUEST_TOO_LARGE, decided before parsing,
with or without a key, in each surface's own error shape; uploads keep their own (larger) limit."""

from __future__ import annotations

import base64
import io
import json
import socket
from collections.abc import Iterator

import httpx
import pytest
from PIL import Image

from harness import LiveServer

pytestmark = pytest.mark.e2e

MB = 1024 * 1024
GENERATE = {"model": "happyhorse-1.0/video", "prompt": "a horse", "duration": 3, "sound": False}


def raw_exchange(port: int, head: bytes, timeout: float = 10) -> tuple[int, bytes]:
    """Send ``head`` (a request head, no body) and read one response: (status, body)."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(head)
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = sock.recv(65536)
            assert chunk, f"connection closed before a response: {data!r}"
            data += chunk
        head_part, _, body = data.partition(b"\r\n\r\n")
        lines = head_part.decode("latin-1").split("\r\n")
        headers = {k.lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
        length = int(headers.get("content-length", "0"))
        while len(body) < length:
            chunk = sock.recv(65536)
            assert chunk, "connection closed mid-body"
            body += chunk
        return int(lines[0].split()[1]), body[:length]


def chunks(total: int, size: int = 64 * 1024) -> Iterator[bytes]:
    """A body sent chunked (no Content-Length): the server learns its size only as it arrives."""
    sent = 0
    yield b'{"model": "happyhorse-1.0/video", "prompt": "'
    while sent < total:
        yield b"a" * size
        sent += size
    yield b'"}'


def jpeg(width: int, height: int) -> bytes:
    buf = io.BytesIO()
    Image.effect_noise((width, height), 64).convert("RGB").save(buf, "JPEG", quality=95)
    return buf.getvalue()


def test_a_declared_length_over_the_cap_is_refused_before_any_body_byte(live_server: LiveServer) -> None:
    # Only the head is sent: the answer comes from Content-Length alone (today the server waits for
    # 200 MB it would then read and parse whole).
    head = (
        b"POST /api/generate HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 200000000\r\n\r\n"
    )
    status, body = raw_exchange(live_server.port, head)
    assert status == 413
    error = json.loads(body)
    assert error["error_code"] == "REQUEST_TOO_LARGE" and error["code"] == 413 and error["data"] is None
    assert "1 MB" in error["message"]

    key = live_server.create_key(credits=10_000)
    authed = head.replace(b"Host: x\r\n", f"Host: x\r\nAuthorization: Bearer {key}\r\n".encode())
    assert raw_exchange(live_server.port, authed)[0] == 413  # a valid key changes nothing


def test_bodies_past_the_cap_are_refused_as_they_arrive_in_every_surface(live_server: LiveServer) -> None:
    key = live_server.create_key(credits=10_000)
    with live_server.client(key) as api:
        # Chunked: no Content-Length to go by, so the count of arriving bytes decides.
        streamed = api.post("/api/generate", content=chunks(5 * MB), headers={"Content-Type": "application/json"})
        assert streamed.status_code == 413 and streamed.json()["error_code"] == "REQUEST_TOO_LARGE"

        declared = api.post("/api/generate", json={**GENERATE, "prompt": "a" * (2 * MB)})
        assert declared.status_code == 413 and declared.json()["error_code"] == "REQUEST_TOO_LARGE"
        # The connection stays usable: the rest of the refused body was read and dropped.
        assert api.post("/api/generate", json=GENERATE).status_code == 200

        dashscope = api.post(
            "/api/v1/services/aigc/video-generation/video-synthesis",
            content=chunks(2 * MB),
            headers={"Content-Type": "application/json", "X-DashScope-Async": "enable"},
        )
        assert dashscope.status_code == 413
        assert dashscope.json()["code"] == "RequestTooLarge" and "request_id" in dashscope.json()

        openai = api.post("/v1/videos", json={"model": "sora-2", "prompt": "a" * (2 * MB)})
        assert openai.status_code == 413
        assert openai.json()["error"]["code"] == "request_too_large"
        openai_chunked = api.post("/v1/videos", content=chunks(2 * MB), headers={"Content-Type": "application/json"})
        assert openai_chunked.status_code == 413 and openai_chunked.json()["error"]["code"] == "request_too_large"

    anonymous = httpx.post(f"{live_server.url}/api/tasks", content=b"x" * (2 * MB), timeout=30)
    assert anonymous.status_code == 413 and anonymous.json()["error_code"] == "REQUEST_TOO_LARGE"
    # No key and no Content-Length: still a 413, decided as the bytes arrive, not the route's 401
    for path in ("/api/generate", "/v1/videos", "/api/v1/services/aigc/video-generation/video-synthesis"):
        streamed = httpx.post(
            f"{live_server.url}{path}",
            content=chunks(200 * MB),
            headers={"Content-Type": "application/json"},
            timeout=60,
        )
        assert streamed.status_code == 413, (path, streamed.status_code, streamed.text[:200])
    form = httpx.post(
        f"{live_server.url}/dashboard/login", data={"email": "a@b.c", "password": "x" * (2 * MB)}, timeout=30
    )
    assert form.status_code == 413


def test_uploads_keep_their_own_limit(live_server: LiveServer) -> None:
    picture = jpeg(1400, 1400)
    assert 1 * MB < len(picture) < 20 * MB  # over the body cap, under the upload limit
    with live_server.client(live_server.create_key(credits=100_000)) as api:
        uploaded = api.post("/api/upload", files={"file": ("big.jpg", picture, "image/jpeg")})
        assert uploaded.status_code == 200, uploaded.text
        assert uploaded.json()["data"]["bytes"] == len(picture)
        video = api.post(
            "/v1/videos",
            data={"model": "sora-2", "prompt": "a horse", "seconds": "4"},
            files={"input_reference": ("big.jpg", picture, "image/jpeg")},
        )
        assert video.status_code == 200, video.text
        # the same picture as a data URL in a urlencoded form: a form, so the upload limit holds
        data_url = "data:image/jpeg;base64," + base64.b64encode(picture).decode()
        form = {"model": "sora-2", "prompt": "a horse", "seconds": "4", "input_reference[image_url]": data_url}
        as_form = api.post("/v1/videos", data=form)
        assert as_form.status_code == 200, as_form.text[:300]
        # in a JSON body it is held to the body cap like any JSON
        as_json = api.post("/v1/videos", json={**form, "input_reference": {"image_url": data_url}})
        assert as_json.status_code == 413 and as_json.json()["error"]["code"] == "request_too_large"


def test_the_cap_is_a_setting(server_factory) -> None:
    server = server_factory(HAPPYHORSE_MAX_BODY_BYTES="2000")
    with server.client(server.create_key(credits=10_000)) as api:
        assert api.post("/api/generate", json=GENERATE).status_code == 200
        refused = api.post("/api/generate", json={**GENERATE, "prompt": "a" * 2500})
        assert refused.status_code == 413 and "1.95 KB" in refused.json()["message"]
