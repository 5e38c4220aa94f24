"""``python -m happyhorse generate/status/credits`` against the real server."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.e2e

FAST_POLLING = {
    "HAPPYHORSE_POLL_FIRST_DELAY": "0.2",
    "HAPPYHORSE_POLL_INTERVAL": "0.3",
    "HAPPYHORSE_POLL_MAX_INTERVAL": "0.5",
    "HAPPYHORSE_POLL_TIMEOUT": "180",
}


def happyhorse(server: Any, api_key: str, *args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    """Run the client CLI as a user would: key and server from the environment."""
    env = {**server.env, **FAST_POLLING, "HAPPYHORSE_API_KEY": api_key, "HAPPYHORSE_BASE_URL": server.url}
    return subprocess.run(
        [sys.executable, "-m", "happyhorse", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
        cwd=cwd,
    )


def test_generate_wait_out_status_and_credits(live_server: Any, tmp_path: Path) -> None:
    import av

    key = live_server.create_key(credits=1000)
    out = tmp_path / "cli.mp4"
    proc = happyhorse(
        live_server,
        key,
        "generate",
        "A horse: on the beach",
        "--duration",
        "3",
        "--mode",
        "std",
        "--aspect",
        "1:1",
        "--seed",
        "7",
        "--wait",
        "--out",
        str(out),
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == str(out)
    assert "Traceback" not in proc.stderr
    with av.open(str(out)) as container:
        video = container.streams.video[0]
        frames = sum(1 for _ in container.decode(video))
        assert abs(frames / float(video.average_rate or 24) - 3) <= 1 / 24 + 1e-6
        assert video.codec_context.width == video.codec_context.height
        assert container.streams.audio

    # Without --wait: just the task id. Multi-shot prompts may hold colons (split on the last).
    proc = happyhorse(live_server, key, "generate", "--shot", "Title: a horse:2", "--shot", "the end:1", "--no-sound")
    assert proc.returncode == 0, proc.stderr
    task_id = proc.stdout.strip()
    assert re.fullmatch(r"n92[a-z0-9]{12,}", task_id)

    proc = happyhorse(live_server, key, "status", task_id, "--json")
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    assert data["task_id"] == task_id
    assert data["request"]["multi_prompt"] == [
        {"prompt": "Title: a horse", "duration": 2},
        {"prompt": "the end", "duration": 1},
    ]
    assert data["request"]["sound"] is False

    proc = happyhorse(live_server, key, "status", task_id)
    assert proc.returncode == 0 and task_id in proc.stdout

    proc = happyhorse(live_server, key, "credits")
    assert proc.returncode == 0, proc.stderr
    assert int(proc.stdout.strip()) == 1000 - 180 - 120  # 3 s with sound + 3 s without


def test_errors_are_one_line_with_exit_codes(live_server: Any, image_server: Any) -> None:
    proc = happyhorse(live_server, "hh_not_a_real_key", "generate", "a horse")
    assert proc.returncode == 3
    assert "INVALID_API_KEY" in proc.stderr and "Traceback" not in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1

    key = live_server.create_key(credits=200)
    proc = happyhorse(live_server, key, "generate", "a horse", "--duration", "99")
    assert proc.returncode == 2
    assert "INVALID_DURATION" in proc.stderr and "Traceback" not in proc.stderr

    proc = happyhorse(live_server, key, "generate", "a horse", "--duration", "5")  # 300 > 200 credits
    assert proc.returncode == 3 and "INSUFFICIENT_CREDITS" in proc.stderr

    proc = happyhorse(live_server, key, "status", "n92doesnotexist0000")
    assert proc.returncode == 2 and "TASK_NOT_FOUND" in proc.stderr

    proc = happyhorse(live_server, key, "generate", "a horse", "--aspect", "4:3")
    assert proc.returncode == 2

    bad_image = image_server.put("bad.png", b"not a picture", "image/png")
    proc = happyhorse(
        live_server, key, "generate", "a horse", "--duration", "3", "--no-sound", "--image", bad_image, "--wait"
    )
    assert proc.returncode == 1 and "failed" in proc.stderr and "Traceback" not in proc.stderr


def test_wait_shows_percent_queue_position_and_elapsed(live_server: Any) -> None:
    """``generate --wait`` on a terminal: a live bar with the percent rendered, the place in the queue
    while the task waits behind another, and the elapsed time (rich, on stderr)."""
    import httpx

    key = live_server.create_key(credits=10_000)
    blocker = {"model": "happyhorse-1.0/video", "prompt": "first", "mode": "pro", "duration": 10, "sound": False}
    with httpx.Client(base_url=live_server.url, headers={"Authorization": f"Bearer {key}"}) as client:
        assert client.post("/api/generate", json=blocker).status_code == 200
    env = {
        **live_server.env,
        **FAST_POLLING,
        "HAPPYHORSE_API_KEY": key,
        "HAPPYHORSE_BASE_URL": live_server.url,
        "TTY_COMPATIBLE": "1",  # rich draws its live display as on a terminal
        "TTY_INTERACTIVE": "1",
        "COLUMNS": "160",
    }
    proc = subprocess.run(
        # pro 10 s: long enough to render through several progress updates (a 3 s one can finish within one)
        [sys.executable, "-m", "happyhorse", "generate", "second", *("--mode", "pro", "--duration", "10"), "--wait"],
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
        cwd=live_server.data_dir,
    )
    assert proc.returncode == 0, proc.stderr
    screen = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", proc.stderr)  # the drawn frames, without the escapes
    assert "#1 in queue" in screen, screen
    assert re.search(r"rendering n92\w+ .* [1-9]\d?% ", screen), screen  # a percent while it renders
    assert re.search(r"\b0:00:\d\d\b", screen), screen  # elapsed time
