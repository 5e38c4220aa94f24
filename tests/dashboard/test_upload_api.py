"""POST /api/upload over plain HTTP: key auth, sniffed images only, size and pixel limits, and a URL
that /api/generate accepts without the private-address check (the server reads its own storage)."""

from __future__ import annotations

import io
import os
import re

import pytest
from dashboard_helpers import png_bytes, wait_for_task
from PIL import Image

pytestmark = [pytest.mark.e2e]

UPLOAD_URL = re.compile(r"^http://127\.0\.0\.1:\d+/uploads/[A-Za-z0-9_-]{32}\.png$")


def upload(api, data: bytes, name: str = "image.png", content_type: str = "image/png"):
    return api.post("/api/upload", files={"file": (name, data, content_type)})


def test_upload_refuses_what_is_not_an_image_or_has_no_key(live_server) -> None:
    key = live_server.create_key()
    with live_server.client(key) as api:
        refused = upload(api, b"GIF89a but not really an image at all", name="cat.gif", content_type="image/gif")
        assert refused.status_code == 400
        assert refused.json() == {
            "code": 400,
            "message": "file: not an image",
            "error_code": "INVALID_REQUEST",
            "data": None,
        }
        svg = b'<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>'
        assert upload(api, svg, name="x.svg", content_type="image/svg+xml").json()["error_code"] == "INVALID_REQUEST"
        missing = api.post("/api/upload", files={"other": ("a.png", png_bytes(), "image/png")})
        assert missing.status_code == 400 and "file is required" in missing.json()["message"]
        not_multipart = api.post("/api/upload", content=png_bytes(), headers={"Content-Type": "image/png"})
        assert not_multipart.status_code == 400 and "multipart/form-data" in not_multipart.json()["message"]
    with live_server.client() as anonymous:
        no_key = upload(anonymous, png_bytes())
        assert no_key.status_code == 401 and no_key.json()["error_code"] == "INVALID_API_KEY"
    assert [p for p in (live_server.data_dir / "uploads").iterdir() if not p.name.startswith(".")] == []


def test_upload_size_and_pixel_limits(server_factory) -> None:
    server = server_factory(HAPPYHORSE_FETCH_MAX_BYTES="40000", HAPPYHORSE_FETCH_MAX_PIXELS="250000")
    with server.client(server.create_key()) as api:
        noise = io.BytesIO()
        # ~120 KB: random noise does not compress
        Image.frombytes("RGB", (200, 200), os.urandom(200 * 200 * 3)).save(noise, "PNG")
        too_big = upload(api, noise.getvalue())
        assert too_big.status_code == 413
        assert too_big.json()["error_code"] == "REQUEST_TOO_LARGE"
        assert "larger than the 39.1 KB upload limit" in too_big.json()["message"]
        kept = server.data_dir / "uploads"
        assert not kept.exists() or [p for p in kept.iterdir() if not p.name.startswith(".")] == []

        too_many_pixels = upload(api, png_bytes(600, 600))  # a few KB, but 360,000 pixels
        assert too_many_pixels.status_code == 400
        assert "more than the 0.25 megapixel limit" in too_many_pixels.json()["message"]

        assert upload(api, png_bytes(400, 300)).status_code == 200


def test_an_uploaded_png_is_served_and_renders_without_the_private_address_check(server_factory) -> None:
    # Private addresses are refused here (the default outside tests), yet the upload on 127.0.0.1 works.
    server = server_factory(HAPPYHORSE_ALLOW_PRIVATE_URLS="false")
    with server.client(server.create_key()) as api:
        # The name and type the client claims mean nothing: the bytes are sniffed.
        accepted = upload(api, png_bytes(90, 160, (250, 10, 10)), name="../../x.txt", content_type="text/plain")
        assert accepted.status_code == 200, accepted.text
        data = accepted.json()["data"]
        assert UPLOAD_URL.match(data["url"]), data["url"]
        assert (data["width"], data["height"], data["format"]) == (90, 160, "png")

        served = api.get(data["url"])
        assert served.status_code == 200
        assert served.headers["content-type"] == "image/png"
        assert served.headers["x-content-type-options"] == "nosniff"
        assert served.content == png_bytes(90, 160, (250, 10, 10))
        assert api.get("/uploads/../secret.key").status_code == 404
        assert api.get("/uploads/secret.key").status_code == 404

        body = {
            "model": "happyhorse-1.0/video",
            "prompt": "A red card",
            "mode": "std",
            "duration": 3,
            "sound": False,
            "image_urls": [data["url"]],
        }
        task = wait_for_task(api, api.post("/api/generate", json=body).json()["data"]["task_id"])
        assert task["status"] == "SUCCESS", task["error_message"]
        assert task["type"] == "image-to-video"
        assert task["response"]["height"] > task["response"]["width"]  # followed the portrait image

        # Only the exact /uploads/<name> shape counts as an upload; other loopback URLs are refused at submit.
        elsewhere = data["url"].replace("/uploads/", "/files/")
        body["image_urls"] = [elsewhere]
        refused = api.post("/api/generate", json=body)
        assert refused.status_code == 400, refused.text
        assert "loopback" in refused.json()["message"] and "POST /api/upload" in refused.json()["message"]
