"""HAPPYHORSE_UPLOAD_QUOTA_BYTES: what one account may keep stored as uploads, held under concurrency,
whatever its credits, through /api/upload and /v1/videos alike; retention frees it again."""

from __future__ import annotations

import io
import os
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
from PIL import Image

from harness import LiveServer

pytestmark = pytest.mark.e2e


def noise_png(_: int = 0) -> bytes:
    """About 30 KB that does not compress, different on every call."""
    buf = io.BytesIO()
    Image.frombytes("RGB", (100, 100), os.urandom(100 * 100 * 3)).save(buf, "PNG")
    return buf.getvalue()


SIZE = len(noise_png(0))
QUOTA = int(SIZE * 3.5)  # room for three uploads, not four


def upload(api: httpx.Client, data: bytes) -> httpx.Response:
    return api.post("/api/upload", files={"file": ("x.png", data, "image/png")})


def stored(server: LiveServer) -> int:
    uploads = server.data_dir / "uploads"
    return sum(p.stat().st_size for p in uploads.iterdir() if not p.name.startswith("."))


@pytest.fixture(params=["embedded", "distributed"])
def quota_server(request: pytest.FixtureRequest) -> LiveServer:
    env = {"HAPPYHORSE_UPLOAD_QUOTA_BYTES": str(QUOTA), "HAPPYHORSE_RATE_LIMIT_GENERATE": "1000/second"}
    if request.param == "embedded":
        return request.getfixturevalue("server_factory")(**env)  # type: ignore[no-any-return]
    return request.getfixturevalue("cluster_factory")(**env).apis[0]  # type: ignore[no-any-return]


def test_the_quota_holds_for_parallel_uploads_of_a_keyless_of_credit_account(quota_server: LiveServer) -> None:
    broke = quota_server.client(quota_server.create_key(credits=0))  # no credits: uploads still count
    with ThreadPoolExecutor(max_workers=12) as pool:
        answers = list(pool.map(lambda i: upload(broke, noise_png(i)), range(12)))
    statuses = sorted(a.status_code for a in answers)
    assert statuses == [200] * 3 + [413] * 9, statuses
    refused = next(a.json() for a in answers if a.status_code == 413)
    assert refused["error_code"] == "REQUEST_TOO_LARGE" and refused["code"] == 413
    assert f"quota of {QUOTA / 1024:.3g} KB" in refused["message"]
    assert stored(quota_server) <= QUOTA

    # /v1/videos' input_reference is an upload too.
    video = broke.post(
        "/v1/videos",
        data={"model": "sora-2", "prompt": "a horse", "seconds": "4"},
        files={"input_reference": ("x.png", noise_png(99), "image/png")},
    )
    assert video.status_code == 413 and video.json()["error"]["code"] == "request_too_large"

    # Another account has a quota of its own.
    other = quota_server.client(quota_server.create_key(credits=0, name="other"))
    assert upload(other, noise_png(100)).status_code == 200
    assert stored(quota_server) <= 2 * QUOTA


def test_retention_gives_the_quota_back(server_factory) -> None:
    server = server_factory(
        HAPPYHORSE_UPLOAD_QUOTA_BYTES=str(QUOTA),
        HAPPYHORSE_RESULT_RETENTION="2",
        HAPPYHORSE_RETENTION_SWEEP_INTERVAL="0.5",
    )
    api = server.client(server.create_key(credits=0))
    for i in range(3):
        assert upload(api, noise_png(i)).status_code == 200
    assert upload(api, noise_png(3)).status_code == 413
    deadline = time.monotonic() + 30
    while stored(server) and time.monotonic() < deadline:
        time.sleep(0.3)
    assert stored(server) == 0, "the retention sweep did not delete the uploads"
    assert upload(api, noise_png(4)).status_code == 200
