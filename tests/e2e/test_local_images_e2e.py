"""Local image files as a user meets them: the SDK and CLI upload them; private hosts are refused at submit.

The server runs with ``HAPPYHORSE_ALLOW_PRIVATE_URLS=false`` (the default outside tests), so these
show that uploads on 127.0.0.1 work while loopback, private and link-local URLs get a 400 saying how.
"""

from __future__ import annotations

import asyncio
import socket
import subprocess
import sys
from pathlib import Path

import av
import httpx
import pytest

import happyhorse
from harness import LiveServer, png_bytes, wait_for_task

pytestmark = pytest.mark.e2e

FAST_POLL = {"first_delay": 0.2, "interval": 0.3, "max_interval": 0.5, "timeout": 120}
HINT_PARTS = ("POST /api/upload", "HAPPYHORSE_ALLOW_PRIVATE_URLS=true")


@pytest.fixture
def server(server_factory) -> LiveServer:  # type: ignore[no-untyped-def]
    return server_factory(
        HAPPYHORSE_ALLOW_PRIVATE_URLS="false",  # type: ignore[no-any-return]
        HAPPYHORSE_RATE_LIMIT_GENERATE="1000/second",
    )


def video_size(path: Path) -> tuple[int, int]:
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        assert container.format.name.startswith("mov"), container.format.name  # an MP4 (ISO BMFF)
        return stream.width, stream.height


def test_sdk_uploads_local_paths_for_frames_and_elements(
    server: LiveServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "first.png").write_bytes(png_bytes(90, 160, (240, 20, 20)))  # portrait: the video follows it
    (tmp_path / "last.png").write_bytes(png_bytes(90, 160, (20, 20, 240)))
    (tmp_path / "cat1.png").write_bytes(png_bytes(64, 64, (20, 200, 20)))
    (tmp_path / "cat2.png").write_bytes(png_bytes(64, 64, (200, 200, 20)))
    monkeypatch.chdir(tmp_path)
    with happyhorse.Client(server.create_key(), server.url) as client:
        url = client.upload("./first.png")
        assert url.startswith(server.url), url
        assert httpx.get(url).content == png_bytes(90, 160, (240, 20, 20))

        task = client.generate_and_wait(
            "A card turns from red to blue",
            duration=3,
            sound=False,
            image_urls=["./first.png", tmp_path / "last.png"],
            **FAST_POLL,
        )  # type: ignore[list-item]
        assert task.succeeded, task.error_message
        sent = task.request["image_urls"]
        assert len(sent) == 2 and all(u.startswith(server.url) and "first.png" not in u for u in sent), sent
        width, height = video_size(client.download(task, tmp_path / "frames.mp4"))
        assert height > width

        cat = happyhorse.Element(name="cat", element_input_urls=["cat1.png", "./cat2.png"], description="a cat")
        task = client.generate_and_wait("@cat sits on a chair", duration=3, sound=False, elements=[cat], **FAST_POLL)
        assert task.succeeded, task.error_message
        element_urls = task.request["happyhorse_elements"][0]["element_input_urls"]
        assert all(u.startswith(server.url) for u in element_urls), element_urls

        # A dict element with the `images` alias is uploaded too; a missing file is not a path, so the server says no.
        with pytest.raises(happyhorse.InvalidRequest):
            client.generate("@cat", duration=3, elements=[{"name": "cat", "images": ["cat1.png", "no-such.png"]}])


def test_async_client_uploads_local_paths(server: LiveServer, tmp_path: Path) -> None:
    first = tmp_path / "first.png"
    first.write_bytes(png_bytes(160, 90, (30, 30, 200)))

    async def scenario() -> happyhorse.Task:
        async with happyhorse.AsyncClient(server.create_key(), server.url) as client:
            url = await client.upload(first)
            assert url.startswith(server.url)
            return await client.generate_and_wait(
                "A blue card", duration=3, sound=False, image_urls=[str(first)], **FAST_POLL
            )

    task = asyncio.run(scenario())
    assert task.succeeded, task.error_message
    assert task.request["image_urls"][0].startswith(server.url)


def test_cli_image_flag_takes_a_local_file(server: LiveServer, tmp_path: Path) -> None:
    (tmp_path / "first.png").write_bytes(png_bytes(90, 160, (240, 120, 20)))
    env = {
        **server.env,
        "HAPPYHORSE_API_KEY": server.create_key(),
        "HAPPYHORSE_BASE_URL": server.url,
        "HAPPYHORSE_POLL_FIRST_DELAY": "0.2",
        "HAPPYHORSE_POLL_INTERVAL": "0.3",
        "HAPPYHORSE_POLL_MAX_INTERVAL": "0.5",
    }
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "happyhorse",
            "generate",
            "An orange card",
            "--image",
            "./first.png",
            "--duration",
            "3",
            "--no-sound",
            "--out",
            "card.mp4",
        ],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert done.returncode == 0, done.stderr
    assert (tmp_path / done.stdout.strip()).resolve() == (tmp_path / "card.mp4").resolve()
    width, height = video_size(tmp_path / "card.mp4")
    assert height > width  # it rendered from the uploaded portrait image


PRIVATE_URLS = (
    "http://127.0.0.1:9/cat.png",
    "http://localhost/cat.png",
    "http://[::1]:8000/cat.png",
    "http://10.1.2.3/cat.png",
    "http://192.168.0.7/cat.png",
    "http://169.254.169.254/latest/meta-data/",
    "http://2130706433/cat.png",
)


def test_a_literally_private_image_host_is_refused_at_submit(server: LiveServer) -> None:
    with server.client(server.create_key(credits=1000)) as client:
        base = {"model": "happyhorse-1.0/video", "prompt": "A cat", "duration": 3, "sound": False}
        for url in PRIVATE_URLS:
            element = {"name": "cat", "element_input_urls": ["https://example.com/a.png", url]}
            aliased = {"name": "cat", "images": [url, "https://example.com/a.png"]}
            for body, field in (
                ({**base, "image_urls": [url]}, "image_urls[0]"),
                (
                    {**base, "prompt": "@cat", "happyhorse_elements": [element]},
                    "happyhorse_elements[0].element_input_urls[1]",
                ),
                ({**base, "prompt": "@cat", "kling_elements": [aliased]}, "kling_elements[0].images[0]"),
            ):
                refused = client.post("/api/generate", json=body)
                assert refused.status_code == 400, (url, refused.text)
                payload = refused.json()
                assert payload["error_code"] == "INVALID_REQUEST"
                assert payload["message"].startswith(field), payload["message"]
                assert all(part in payload["message"] for part in HINT_PARTS), payload["message"]
        assert client.get("/api/credits").json()["data"]["balance"] == 1000  # nothing was charged


def test_private_hosts_pass_with_allow_private_and_resolved_names_fail_at_fetch_with_the_hint(
    server_factory, image_server
) -> None:  # type: ignore[no-untyped-def]
    url = image_server.put("a.png", png_bytes(64, 64, (200, 30, 30)))
    assert url.startswith("http://127.0.0.1")
    allowed = server_factory(HAPPYHORSE_ALLOW_PRIVATE_URLS="true")
    with allowed.client(allowed.create_key()) as client:
        body = {"model": "happyhorse-1.0/video", "prompt": "A cat", "duration": 3, "sound": False, "image_urls": [url]}
        task = wait_for_task(client, client.post("/api/generate", json=body).json()["data"]["task_id"])
        assert task["status"] == "SUCCESS", task["error_message"]

    host = socket.gethostname()
    try:
        resolved = socket.gethostbyname(host)
    except OSError:
        resolved = ""
    if not resolved.startswith("127."):
        pytest.skip(f"{host} does not resolve to loopback here")
    strict = server_factory(HAPPYHORSE_ALLOW_PRIVATE_URLS="false")
    with strict.client(strict.create_key()) as client:
        body["image_urls"] = [url.replace("127.0.0.1", host)]
        accepted = client.post("/api/generate", json=body)
        assert accepted.status_code == 200, accepted.text  # a name: judged at fetch, on what it resolves to
        task = wait_for_task(client, accepted.json()["data"]["task_id"])
    assert task["status"] == "FAILED"
    assert "loopback" in task["error_message"]
    assert all(part in task["error_message"] for part in HINT_PARTS), task["error_message"]
