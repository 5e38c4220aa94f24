"""Uploads work however the server is reached: started with ``--host 0.0.0.0`` and no HAPPYHORSE_PUBLIC_URL,
an upload made through the machine's LAN address or through a hostname is read back by the server's
own worker (recognised by its path and the file, not by its host), with the SSRF guard fully on."""

from __future__ import annotations

import ipaddress
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from harness import (
    HAPPYHORSE,
    LiveServer,
    _wait_healthy,
    base_env,
    first_frame_mean,
    free_port,
    png_bytes,
    wait_for_task,
)

pytestmark = pytest.mark.e2e

RED = (230, 30, 30)


def lan_address() -> str | None:
    """This machine's first non-loopback IPv4 address (``hostname -I``), if it has one."""
    try:
        words = subprocess.run(["hostname", "-I"], capture_output=True, text=True, timeout=10).stdout.split()
    except (OSError, subprocess.SubprocessError):
        return None
    for word in words:
        try:
            address = ipaddress.ip_address(word)
        except ValueError:
            continue
        if address.version == 4 and not address.is_loopback:
            return word
    return None


@pytest.fixture
def open_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """``happyhorse serve --host 0.0.0.0`` with the SSRF guard on (no private URLs) and no public URL."""
    data_dir = tmp_path_factory.mktemp("hh-open")
    port = free_port()
    env = base_env(data_dir, HAPPYHORSE_ALLOW_PRIVATE_URLS="false")
    log_path = data_dir / "server.log"
    log = open(log_path, "ab")  # noqa: SIM115 - the child owns it
    process = subprocess.Popen(
        [*HAPPYHORSE, "serve", "--host", "0.0.0.0", "--port", str(port)],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    server = LiveServer(f"http://127.0.0.1:{port}", data_dir, env, process, log_path, port)
    try:
        _wait_healthy(server)
        yield server
    finally:
        server.stop()


def render_from_upload(api: httpx.Client, host_header: str | None, tmp: Path) -> str:
    """Upload a red picture (through ``host_header`` if given), render image-to-video from its URL."""
    headers = {"Host": host_header} if host_header else {}
    uploaded = api.post(
        "/api/upload", files={"file": ("red.png", png_bytes(160, 90, RED, pattern=False))}, headers=headers
    )
    assert uploaded.status_code == 200, uploaded.text
    url = uploaded.json()["data"]["url"]
    body = {
        "model": "happyhorse-1.0/video",
        "prompt": "the red card",
        "duration": 3,
        "sound": False,
        "image_urls": [url],
    }
    created = api.post("/api/generate", json=body, headers=headers)
    assert created.status_code == 200, created.text
    done = wait_for_task(api, created.json()["data"]["task_id"])
    assert done["status"] == "SUCCESS", done["error_message"]
    mean = first_frame_mean(api.get(done["response"]["resultUrls"][0]).content, tmp)
    assert mean[0] > 150 and mean[1] < 110 and mean[2] < 110, mean  # the first frame is the red picture
    return str(url)


def test_an_upload_through_the_lan_address_renders(open_server: LiveServer, tmp_path: Path) -> None:
    lan = lan_address()
    if lan is None:
        pytest.skip("this machine has no non-loopback IPv4 address")
    with httpx.Client(
        base_url=f"http://{lan}:{open_server.port}",
        timeout=30,
        headers={"Authorization": f"Bearer {open_server.create_key()}"},
    ) as api:
        url = render_from_upload(api, None, tmp_path)
    assert url.startswith(f"http://{lan}:{open_server.port}/uploads/"), url


def test_an_upload_through_a_hostname_renders(open_server: LiveServer, tmp_path: Path) -> None:
    # A name only the client knows (an /etc/hosts alias, a LAN DNS name): the server cannot resolve it.
    alias = f"studio-box.lan:{open_server.port}"
    with open_server.client(open_server.create_key()) as api:
        url = render_from_upload(api, alias, tmp_path)
        assert url.startswith(f"http://{alias}/uploads/"), url

        # Not a bypass of the guard: an upload-shaped URL this server holds no file for is still refused.
        missing = url.rsplit("/", 1)[0] + "/" + "Z" * 32 + ".png"
        body = {
            "model": "happyhorse-1.0/video",
            "prompt": "x",
            "duration": 3,
            "image_urls": [missing.replace("studio-box.lan", "10.1.2.3")],
        }
        refused = api.post("/api/generate", json=body)
        assert refused.status_code == 400 and "POST /api/upload" in refused.json()["message"]
