"""What tests share besides fixtures: the real server as a subprocess, clusters, test pictures.

Import from here (``from harness import LiveServer``), never from ``conftest``: several directories
have a conftest.py, and whichever pytest imported last owns that module name.
"""

from __future__ import annotations

import contextlib
import http.server
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

import services

HAPPYHORSE = [sys.executable, "-m", "happyhorse"]


ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class LiveServer:
    """A running ``happyhorse serve`` subprocess and the environment its CLI commands share."""

    url: str
    data_dir: Path
    env: dict[str, str]
    process: subprocess.Popen[bytes]
    log_path: Path
    port: int
    extra: dict[str, str] = field(default_factory=dict)
    mode: str = "embedded"  # or "distributed": PostgreSQL, procrastinate worker, S3 results, Redis limits

    def cli(self, *args: str, check: bool = True, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        """Run ``happyhorse ARGS`` against this server's data dir."""
        proc = subprocess.run([*HAPPYHORSE, *args], env=self.env, capture_output=True, text=True, timeout=timeout)
        if check and proc.returncode != 0:
            raise AssertionError(
                f"happyhorse {' '.join(args)} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}"
            )
        return proc

    def create_key(self, credits: int = 100_000, name: str = "test", account: str | None = None) -> str:
        return self.create_key_info(credits, name, account)["api_key"]

    def create_key_info(self, credits: int = 100_000, name: str = "test", account: str | None = None) -> dict:
        args = ["keys", "create", "--name", name, "--json"]
        args += ["--account", account] if account else ["--credits", str(credits)]
        # Setup, not the subject: tests make hundreds of keys, and a CLI subprocess costs an interpreter
        # start-up each. The CLI's own tests call ``cli()``, which always runs the real command line.
        here = run_cli_here(self.env, args)
        return json.loads(here if here is not None else self.cli(*args).stdout)

    def client(self, api_key: str | None = None, timeout: float = 30) -> httpx.Client:
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        return httpx.Client(base_url=self.url, headers=headers, timeout=timeout)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 30) -> None:
        if self.process.poll() is None:
            self.process.send_signal(sig)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)

    def restart(self) -> None:
        """Start a fresh server process on the same port and data dir."""
        self.stop()
        self.process = _spawn(self.env, self.port, self.log_path)
        _wait_healthy(self)


def run_cli_here(env: dict[str, str], args: list[str]) -> str | None:
    """``happyhorse ARGS`` in this process with the server's ``HAPPYHORSE_*`` settings; its stdout, or None
    where it cannot run here (inside a running event loop) or did not succeed (the caller then runs the
    real subprocess, which reports the failure as it would)."""
    import asyncio

    try:
        asyncio.get_running_loop()
        return None
    except RuntimeError:
        pass
    from typer.testing import CliRunner

    from happyhorse.cli import app

    settings: dict[str, str | None] = {k: None for k in os.environ if k.startswith("HAPPYHORSE_")}
    settings.update({k: v for k, v in env.items() if k.startswith("HAPPYHORSE_")})
    try:
        result = CliRunner().invoke(app, args, env=settings)
    except Exception:
        return None
    return result.stdout if result.exit_code == 0 else None


def _spawn(env: dict[str, str], port: int, log_path: Path) -> subprocess.Popen[bytes]:
    log = open(log_path, "ab")  # noqa: SIM115 - the child owns it for its whole life
    return subprocess.Popen(
        [*HAPPYHORSE, "serve", "--host", "127.0.0.1", "--port", str(port)],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )


def _wait_healthy(server: LiveServer, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise RuntimeError(f"server exited with {server.process.returncode}:\n{server.log()}")
        try:
            if httpx.get(f"{server.url}/healthz", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"server did not become healthy:\n{server.log()}")


def base_env(data_dir: Path, **overrides: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("HAPPYHORSE_")}
    env.update(
        {
            "HAPPYHORSE_DATA_DIR": str(data_dir),
            "HAPPYHORSE_ALLOW_PRIVATE_URLS": "true",  # tests serve input images from loopback
            "HF_HUB_OFFLINE": "1",
            "PYTHONUNBUFFERED": "1",
        }
    )
    env.update(overrides)
    return env


def wait_for_task(client: httpx.Client, task_id: str, timeout: float = 120) -> dict:
    """Poll ``/api/status`` until the task is SUCCESS or FAILED; return ``data``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        response = client.get("/api/status", params={"task_id": task_id})
        if response.status_code == 429:  # the test's own polling spent the key's status budget: wait, as clients do
            time.sleep(float(response.headers.get("retry-after", "1")))
            continue
        assert response.status_code == 200, response.text
        body = response.json()
        if body["data"]["status"] in ("SUCCESS", "FAILED"):
            return body["data"]
        time.sleep(0.2)
    raise AssertionError(f"task {task_id} did not finish in {timeout}s")


class ImageServer:
    """A loopback HTTP server for input images: ``put(name, bytes)`` then ``url(name)``."""

    def __init__(self) -> None:
        import http.server
        import threading

        files: dict[str, tuple[bytes, str]] = {}
        self.files = files

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                entry = files.get(self.path.lstrip("/"))
                if entry is None:
                    self.send_error(404)
                    return
                body, content_type = entry
                self.send_response(200)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.httpd.server_address[1]
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def put(self, name: str, body: bytes, content_type: str = "image/png") -> str:
        self.files[name] = (body, content_type)
        return self.url(name)

    def url(self, name: str) -> str:
        return f"http://127.0.0.1:{self.port}/{name}"

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def first_frame_mean(video: bytes, tmp: Path) -> Any:
    """The mean RGB of a video's first decoded frame (an array of three): which picture opens it."""
    import av
    import numpy as np

    path = tmp / "first-frame.mp4"
    path.write_bytes(video)
    with av.open(str(path)) as container:
        frame = next(container.decode(video=0)).to_ndarray(format="rgb24")
    return np.asarray(frame).reshape(-1, 3).mean(axis=0)


def png_bytes(width: int, height: int, color: tuple[int, int, int], pattern: bool = True) -> bytes:
    """A test picture: a solid colour with (optionally) a contrasting bar, so crops are visible."""
    import io

    from PIL import Image, ImageDraw

    img = Image.new("RGB", (width, height), color)
    if pattern:
        draw = ImageDraw.Draw(img)
        draw.rectangle(
            [width // 4, height // 3, width // 2, height // 2], fill=(255 - color[0], 255 - color[1], 255 - color[2])
        )
    buf = io.BytesIO()
    img.save(buf, "PNG")
    return buf.getvalue()


@dataclass
class WorkerProcess:
    """A running ``happyhorse worker`` subprocess."""

    env: dict[str, str]
    log_path: Path
    args: list[str]
    process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        log = open(self.log_path, "ab")  # noqa: SIM115 - the child owns it
        self.process = subprocess.Popen(
            [*HAPPYHORSE, "worker", *self.args],
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 30) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(sig)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)

    def kill(self) -> None:
        """SIGKILL the worker and its engine processes (its own process group)."""
        assert self.process is not None
        os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(10)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""


@dataclass
class DistributedServer(LiveServer):
    """One API process of a cluster; stop/restart/log cover the cluster's workers too."""

    cluster: Cluster | None = None

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 30) -> None:
        super().stop(sig, timeout)
        if self.cluster is not None:
            for worker in self.cluster.workers:
                worker.stop(sig, timeout)

    def restart(self) -> None:
        super().restart()  # stops everything, starts this API again
        if self.cluster is not None:
            for worker in self.cluster.workers:
                worker.start()
            self.cluster.wait_for_workers()

    def log(self) -> str:
        logs = [super().log()]
        if self.cluster is not None:
            logs += [f"--- worker {i} ---\n{w.log()}" for i, w in enumerate(self.cluster.workers)]
        return "\n".join(logs)


@dataclass
class Cluster:
    """API processes and workers on one fresh PostgreSQL database, with their own S3 and Redis prefixes."""

    database_url: str
    s3: services.SeaweedS3
    s3_prefix: str
    env: dict[str, str]
    root: Path
    apis: list[DistributedServer] = field(default_factory=list)
    workers: list[WorkerProcess] = field(default_factory=list)

    def add_api(self) -> DistributedServer:
        port = free_port()
        data_dir = self.root / f"api-{len(self.apis)}"
        data_dir.mkdir()
        env = {**self.env, "HAPPYHORSE_DATA_DIR": str(data_dir)}
        log_path = data_dir / "server.log"
        server = DistributedServer(
            f"http://127.0.0.1:{port}",
            data_dir,
            env,
            _spawn(env, port, log_path),
            log_path,
            port,
            mode="distributed",
            cluster=self,
        )
        self.apis.append(server)
        _wait_healthy(server)
        return server

    def add_worker(self, *args: str, wait: bool = True) -> WorkerProcess:
        data_dir = self.root / f"worker-{len(self.workers)}"
        data_dir.mkdir()
        env = {**self.env, "HAPPYHORSE_DATA_DIR": str(data_dir)}
        worker = WorkerProcess(env, data_dir / "worker.log", list(args))
        worker.start()
        self.workers.append(worker)
        if wait:
            self.wait_for_workers()
        return worker

    def query(self, sql: str, *params: object) -> list[tuple]:
        return services.pg_query(self.database_url, sql, *params)

    def wait_for_workers(self, timeout: float = 90) -> None:
        """Until every running worker process has registered with procrastinate (engines loaded)."""
        deadline = time.monotonic() + timeout
        running = [w for w in self.workers if w.process is not None and w.process.poll() is None]
        while time.monotonic() < deadline:
            for worker in self.workers:
                if worker.process is not None and worker.process.poll() not in (None, 0, -9):
                    raise RuntimeError(f"worker exited with {worker.process.returncode}:\n{worker.log()}")
            if self.query("SELECT count(*) FROM procrastinate_workers")[0][0] >= len(running):
                return
            time.sleep(0.2)
        raise RuntimeError("workers did not start:\n" + "\n".join(w.log() for w in self.workers))

    def result_keys(self) -> list[str]:
        return self.s3.keys(self.s3_prefix + "/")

    def stop(self) -> None:
        """Teardown: APIs stop gracefully; workers are killed (waiting out a render buys nothing here)."""
        for api in self.apis:
            LiveServer.stop(api)
        for worker in self.workers:
            if worker.process is not None and worker.process.poll() is None:
                worker.kill()


@dataclass
class WebhookReceiver:
    """A loopback webhook receiver: answers each POST with the next status of ``answers`` (the last
    repeats), or hangs for ``hang_s``; records every request."""

    answers: list[int] = field(default_factory=lambda: [200])
    hang_s: float = 0.0
    received: list[tuple[dict[str, str], str, float]] = field(default_factory=list)

    def __post_init__(self) -> None:
        receiver = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0))).decode()
                receiver.received.append(({k.lower(): v for k, v in self.headers.items()}, body, time.monotonic()))
                if receiver.hang_s:
                    time.sleep(receiver.hang_s)
                index = min(len(receiver.received) - 1, len(receiver.answers) - 1)
                self.send_response(receiver.answers[index])
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/hook"

    def events(self, secret: str) -> list[dict]:
        """Every body received, each verified against its signature headers (the real ``standardwebhooks``)."""
        from standardwebhooks import Webhook

        return [Webhook(secret).verify(body, headers) for headers, body, _ in self.received]

    def wait_for(self, count: int, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while len(self.received) < count:
            assert time.monotonic() < deadline, f"got {len(self.received)} of {count} webhooks"
            time.sleep(0.1)

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


_LOCK_HOLDER = """
import sqlite3, sys
conn = sqlite3.connect(sys.argv[1], isolation_level=None)
conn.execute("BEGIN IMMEDIATE")  # SQLite's write lock, as a second writer process would hold it
print("locked", flush=True)
sys.stdin.read()  # until the test closes our stdin
conn.execute("ROLLBACK")
"""


@contextlib.contextmanager
def sqlite_write_lock(database: Path) -> Iterator[None]:
    """Hold the SQLite write lock of ``database`` from another process while the block runs."""
    holder = subprocess.Popen(
        [sys.executable, "-c", _LOCK_HOLDER, str(database)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
        yield
    finally:
        assert holder.stdin is not None
        holder.stdin.close()  # the holder rolls back: the lock is free again
        holder.wait(10)
