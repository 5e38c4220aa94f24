"""The commands ``happyhorse serve`` prints are commands that work when pasted into a fresh shell.

``make run`` starts ``.venv/bin/happyhorse serve`` from the repository root with nothing of the
virtual environment on PATH, so a bare ``happyhorse keys create …`` hint would fail there.
"""

from __future__ import annotations

import html
import os
import re
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest

from harness import base_env, free_port

pytestmark = pytest.mark.e2e

REPO = Path(__file__).resolve().parents[2]
SCRIPT = Path(sys.executable).parent / "happyhorse"


def _without(path: str, directory: Path) -> str:
    return os.pathsep.join(p for p in path.split(os.pathsep) if p and Path(p).resolve() != directory.resolve())


def test_the_key_hint_printed_by_serve_works_when_pasted(tmp_path: Path) -> None:
    if not SCRIPT.is_file():
        pytest.skip(f"no console script at {SCRIPT}")
    env = base_env(tmp_path / "data")
    env["PATH"] = _without(env.get("PATH", ""), SCRIPT.parent)  # a fresh shell: the venv is not activated
    env.pop("VIRTUAL_ENV", None)
    invoked = os.path.relpath(SCRIPT, REPO) if SCRIPT.is_relative_to(REPO) else str(SCRIPT)  # as `make run` does
    port = free_port()
    server = subprocess.Popen(
        [invoked, "serve", "--host", "127.0.0.1", "--port", str(port)],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    lines: list[str] = []
    found = threading.Event()

    def drain() -> None:
        assert server.stdout is not None
        for line in server.stdout:
            lines.append(line)
            if "Get an API key:" in line:
                found.set()

    threading.Thread(target=drain, daemon=True).start()
    try:
        assert found.wait(60), "serve printed no key hint:\n" + "".join(lines)
        hint = next(line for line in lines if "Get an API key:" in line).split("Get an API key:", 1)[1].strip()
        assert "keys create" in hint
        assert not hint.startswith("happyhorse "), f"{hint!r} names a command that is not on PATH"

        pasted = subprocess.run(hint, shell=True, cwd=REPO, env=env, capture_output=True, text=True, timeout=60)
        assert pasted.returncode == 0, f"{hint!r} failed:\n{pasted.stdout}\n{pasted.stderr}"
        match = re.search(r"(hh_\S+)", pasted.stdout)
        assert match, pasted.stdout
        api_key = match.group(1)

        deadline = time.monotonic() + 60
        while True:
            try:
                answer = httpx.get(
                    f"http://127.0.0.1:{port}/api/credits", headers={"Authorization": f"Bearer {api_key}"}, timeout=5
                )
                break
            except httpx.HTTPError:
                assert time.monotonic() < deadline and server.poll() is None, "".join(lines)
                time.sleep(0.2)
        assert answer.status_code == 200, answer.text
        assert answer.json()["data"]["balance"] == 10000

        # The dashboard's sign-in page tells a newcomer how to make a user: that command works pasted too.
        login = httpx.get(f"http://127.0.0.1:{port}/dashboard/login", timeout=10).text
        found_hint = re.search(r"<code>([^<]*users create[^<]*)</code>", login)
        assert found_hint, login
        command = html.unescape(found_hint.group(1))
        assert not command.startswith("happyhorse "), f"{command!r} names a command that is not on PATH"
        made = subprocess.run(
            f"{command} --password 'a long passphrase'", shell=True, cwd=REPO, env=env, capture_output=True, text=True
        )
        assert made.returncode == 0, f"{command!r} failed:\n{made.stdout}\n{made.stderr}"
        assert "you@example.com" in made.stdout
    finally:
        server.terminate()
        try:
            server.wait(30)
        except subprocess.TimeoutExpired:
            server.kill()
