"""The SDK and the CLI name downloaded files from a sanitised task id: a server answering with a task id
like ``../../escape`` (hostile, or just broken) never makes them write outside the chosen directory.

A small hostile HappyHorse server plays the other side; the real server shows the ordinary names."""

from __future__ import annotations

import http.server
import json
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest

import happyhorse
from happyhorse.client._base import safe_file_name
from harness import LiveServer

pytestmark = pytest.mark.e2e

EVIL_ID = "../../escape"
VIDEO = b"\x00\x00\x00\x18ftypmp42 not really a video"
FAST = {"first_delay": 0.05, "interval": 0.05, "max_interval": 0.1, "timeout": 30}
FAST_ENV = {
    "HAPPYHORSE_POLL_FIRST_DELAY": "0.05",
    "HAPPYHORSE_POLL_INTERVAL": "0.05",
    "HAPPYHORSE_POLL_MAX_INTERVAL": "0.1",
    "HAPPYHORSE_POLL_TIMEOUT": "30",
}


@pytest.fixture
def hostile_server() -> Iterator[str]:
    """Answers every generate with task id ``../../escape`` and a result URL whose last segment is ``..``."""

    class Handler(http.server.BaseHTTPRequestHandler):
        def _json(self, data: object) -> None:
            body = json.dumps({"code": 200, "message": "success", "data": data}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_POST(self) -> None:
            self.rfile.read(int(self.headers.get("Content-Length", 0)))
            self._json({"task_id": EVIL_ID, "status": "IN_PROGRESS"})

        def do_GET(self) -> None:
            path = urlsplit(self.path).path
            if path == "/api/status":
                base = f"http://127.0.0.1:{self.server.server_address[1]}"
                self._json(
                    {
                        "task_id": EVIL_ID,
                        "status": "SUCCESS",
                        "progress": 100,
                        "response": {"resultUrls": [f"{base}/files/%2e%2e"]},
                    }
                )
                return
            self.send_response(200)
            self.send_header("Content-Type", "video/mp4")
            self.send_header("Content-Length", str(len(VIDEO)))
            self.end_headers()
            self.wfile.write(VIDEO)

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def files_under(root: Path) -> set[Path]:
    return {p.relative_to(root) for p in root.rglob("*") if p.is_file()}


def test_sdk_and_cli_keep_a_hostile_task_id_inside_the_directory(hostile_server: str, tmp_path: Path) -> None:
    work = tmp_path / "a" / "b" / "work"
    work.mkdir(parents=True)
    with happyhorse.Client("hh_test", hostile_server) as client:
        task = client.generate_and_wait("x", **FAST)  # type: ignore[arg-type]
        assert task.task_id == EVIL_ID
        saved = client.download(task, work)
        assert saved.parent == work and saved.read_bytes() == VIDEO
        from_url = client.download(task.video_url or "", work)  # no task id: the URL's last segment is ".."
        assert from_url == work / "video.mp4"

    env = {**FAST_ENV, "HAPPYHORSE_API_KEY": "hh_test", "HAPPYHORSE_BASE_URL": hostile_server, "PATH": "/usr/bin:/bin"}
    proc = subprocess.run(
        [sys.executable, "-m", "happyhorse", "generate", "x", "--wait"],
        cwd=work,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    printed = Path(proc.stdout.strip())
    assert printed.parent == work and printed.read_bytes() == VIDEO
    assert files_under(tmp_path) == {Path("a/b/work") / p for p in files_under(work)}  # nothing escaped
    assert not (tmp_path / "a" / "escape.mp4").exists()


@pytest.mark.parametrize(
    ("given", "name"),
    [
        ("n92abc123def456", "n92abc123def456.mp4"),
        ("../../escape", "_.._escape.mp4"),
        ("/etc/passwd", "_etc_passwd.mp4"),
        ("..", "video.mp4"),
        (".hidden", "hidden.mp4"),
        ("", "video.mp4"),
        (None, "video.mp4"),
        ("a\\b:c*d\x00e", "a_b_c_d_e.mp4"),
        ("clip.mp4", "clip.mp4"),
    ],
)
def test_safe_file_name(given: str | None, name: str) -> None:
    assert safe_file_name(given) == name


def test_the_real_server_names_cli_downloads_after_the_task(live_server: LiveServer, tmp_path: Path) -> None:
    env = {
        **live_server.env,
        **FAST_ENV,
        "HAPPYHORSE_POLL_TIMEOUT": "180",
        "HAPPYHORSE_API_KEY": live_server.create_key(credits=1000),
        "HAPPYHORSE_BASE_URL": live_server.url,
    }
    proc = subprocess.run(
        [sys.executable, "-m", "happyhorse", "generate", "a horse", "--duration", "3", "--no-sound", "--wait"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert proc.returncode == 0, proc.stderr
    saved = Path(proc.stdout.strip())
    assert saved.parent == tmp_path and saved.name.startswith("n92") and saved.suffix == ".mp4"
