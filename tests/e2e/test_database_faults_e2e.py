"""A failing database never wedges rendering (issue 15, item 1), through the real server.

Each test breaks the database while tasks render, watches ``/healthz`` answer 503 saying why, mends
it, and then checks what a user and an accountant would: every task ended (SUCCESS, or FAILED and
refunded), a new task renders, the balance is the start minus what the successful tasks cost, it
equals the ledger's sum, and no task was debited or refunded twice.

- embedded: another process holds SQLite's write lock past the busy timeout;
- embedded: the data directory's disk (a small tmpfs) fills up;
- distributed: PostgreSQL (a private instance, so other tests keep theirs) stops and starts again.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import sqlite3
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

import services
from harness import (
    HAPPYHORSE,
    Cluster,
    LiveServer,
    _spawn,
    _wait_healthy,
    base_env,
    free_port,
    sqlite_write_lock,
    wait_for_task,
)

pytestmark = pytest.mark.e2e

MODEL = "happyhorse-1.0/video"
CREDITS = 100_000
# Long enough that a render is in flight when the fault starts, short enough to keep the test quick.
BODY = {"model": MODEL, "prompt": "a horse crossing a river at dawn", "mode": "std", "duration": 4, "sound": True}
FAULT_S = 10.0  # how long each fault lasts: several busy timeouts, backstop passes and stuck thresholds
FAST_RECOVERY = {
    "HAPPYHORSE_DB_BUSY_TIMEOUT": "1",
    "HAPPYHORSE_SWEEP_INTERVAL": "1",
    "HAPPYHORSE_DISPATCH_STUCK_AFTER": "3",
}


# --- what every test checks ----------------------------------------------------------------------


def submit_all(client: httpx.Client, count: int) -> list[str]:
    ids = []
    for _ in range(count):
        response = client.post("/api/generate", json=BODY)
        assert response.status_code == 200, response.text
        ids.append(response.json()["data"]["task_id"])
    return ids


def wait_until_rendering(client: httpx.Client, task_id: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        data = client.get("/api/status", params={"task_id": task_id}).json()["data"]
        if data.get("progress", 0) > 0 or data["status"] != "IN_PROGRESS":
            return
        time.sleep(0.1)
    raise AssertionError(f"task {task_id} never started rendering")


def watch_health(url: str, seconds: float) -> list[tuple[int, dict]]:
    """Poll /healthz for ``seconds``; every answer (status code, body)."""
    seen = []
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        response = httpx.get(url + "/healthz", timeout=10)
        seen.append((response.status_code, response.json()))
        time.sleep(0.3)
    return seen


def wait_healthy_again(url: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        response = httpx.get(url + "/healthz", timeout=10)
        if response.status_code == 200:
            assert response.json() == {"status": "ok"}
            return
        last = response.json()
        time.sleep(0.3)
    raise AssertionError(f"/healthz did not recover: {last}")


def check_outcome(
    server: LiveServer,
    client: httpx.Client,
    task_ids: list[str],
    start: int,
    ledger: Callable[[str, str], list[tuple]],
    timeout: float = 120,
) -> list[dict]:
    """Every task ended, a new one renders, and the money adds up (``ledger(sql, account)`` runs SQL)."""
    results = [wait_for_task(client, task_id, timeout=timeout) for task_id in task_ids]
    assert all(r["status"] in ("SUCCESS", "FAILED") for r in results), results
    after = wait_for_task(
        client, client.post("/api/generate", json={**BODY, "duration": 3}).json()["data"]["task_id"], timeout=timeout
    )
    assert after["status"] == "SUCCESS", (after, server.log()[-5000:])
    results.append(after)
    assert all(r["consumed_credits"] == 0 for r in results if r["status"] == "FAILED")
    balance = client.get("/api/credits").json()["data"]["balance"]
    assert balance == start - sum(r["consumed_credits"] for r in results if r["status"] == "SUCCESS")
    account = ledger("SELECT account_id FROM tasks WHERE id = {}", results[0]["task_id"])[0][0]
    assert ledger("SELECT balance FROM accounts WHERE id = {}", account)[0][0] == balance
    assert ledger("SELECT COALESCE(SUM(amount), 0) FROM ledger WHERE account_id = {}", account)[0][0] == balance
    entries = ledger(
        "SELECT task_id, kind, COUNT(*) FROM ledger WHERE account_id = {} AND task_id IS NOT NULL"
        " GROUP BY task_id, kind",
        account,
    )
    counts = {(task_id, kind): n for task_id, kind, n in entries}
    for r in results:
        assert counts.get((r["task_id"], "debit")) == 1, counts
        assert counts.get((r["task_id"], "refund"), 0) == (1 if r["status"] == "FAILED" else 0), (r, counts)
    return results


def sqlite_ledger(data_dir: Path) -> Callable[[str, str], list[tuple]]:
    def run(sql: str, arg: str) -> list[tuple]:
        conn = sqlite3.connect(f"file:{data_dir / 'happyhorse.db'}?mode=ro", uri=True, timeout=10)
        try:
            return conn.execute(sql.format("?"), (arg,)).fetchall()
        finally:
            conn.close()

    return run


# --- embedded: the write lock held by another process ---------------------------------------------


def test_write_lock_held_past_the_busy_timeout_wedges_nothing(server_factory: Callable[..., LiveServer]) -> None:
    server = server_factory(**FAST_RECOVERY)
    client = server.client(server.create_key(credits=CREDITS))
    start = client.get("/api/credits").json()["data"]["balance"]
    task_ids = submit_all(client, 4)
    wait_until_rendering(client, task_ids[0])

    with sqlite_write_lock(server.data_dir / "happyhorse.db"):
        seen = watch_health(server.url, FAULT_S)

    down = [body for code, body in seen if code == 503]
    assert down, f"/healthz never said the database was unwritable: {seen[-3:]}"
    assert all(body["status"] == "unavailable" for body in down)
    assert any("locked" in body["problems"].get("database", "") for body in down), down[-1]
    # the dispatcher could not claim for longer than its stuck threshold while tasks waited
    assert any("dispatcher" in body["problems"] for body in down), (down[-1], server.log()[-6000:])
    wait_healthy_again(server.url)
    check_outcome(server, client, task_ids, start, sqlite_ledger(server.data_dir))
    # the fault hit a render's terminal write (the path that used to wedge) and that write was retried
    log = server.log()
    assert "its outcome could not be written" in log, log[-5000:]
    assert "its outcome is written now" in log, log[-5000:]


# --- embedded: a task left RUNNING with no render behind it ---------------------------------------


def test_running_task_without_an_owner_is_finished_while_the_server_runs(
    server_factory: Callable[..., LiveServer],
) -> None:
    """The periodic backstop, not only start-up recovery: a RUNNING task no render holds (here two,
    made so by hand; clearing result_key also drops the status cache's memo) is rendered again while
    attempts remain, else FAILED and refunded once."""
    server = server_factory(HAPPYHORSE_SWEEP_INTERVAL="1")
    client = server.client(server.create_key(credits=CREDITS))
    start = client.get("/api/credits").json()["data"]["balance"]
    retried, exhausted = (wait_for_task(client, task_id) for task_id in submit_all(client, 2))
    assert retried["status"] == exhausted["status"] == "SUCCESS"
    conn = sqlite3.connect(server.data_dir / "happyhorse.db", timeout=10)
    with conn:
        conn.execute(
            "UPDATE tasks SET status = 'RUNNING', worker_id = 'gone:1:0', result_key = NULL,"
            " attempt = CASE WHEN id = ? THEN 1 ELSE max_attempts END WHERE id IN (?, ?)",
            (retried["task_id"], retried["task_id"], exhausted["task_id"]),
        )
    conn.close()
    again = wait_for_task(client, retried["task_id"])
    failed = wait_for_task(client, exhausted["task_id"])
    assert again["status"] == "SUCCESS" and f"{again['task_id']}-2.mp4" in again["response"]["resultUrls"][0], again
    assert failed["status"] == "FAILED" and "did not finish" in failed["error_message"], failed
    check_outcome(server, client, [again["task_id"], failed["task_id"]], start, sqlite_ledger(server.data_dir))
    assert "requeued after attempt 1" in server.log()


# --- embedded: the data directory's disk fills up -------------------------------------------------


@contextlib.contextmanager
def small_tmpfs(path: Path, size_mb: int = 64) -> Iterator[Path]:
    path.mkdir(parents=True, exist_ok=True)
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size_mb}m,mode=0700", "tmpfs", str(path)], capture_output=True, text=True
    )
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs for a small disk here ({mounted.stderr.strip() or mounted.returncode})")
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], capture_output=True)


def fill_disk(path: Path) -> Path:
    """Write a file until the disk says ENOSPC, down to single pages: the disk is full."""
    filler = path / "filler"
    with open(filler, "wb", buffering=0) as f:
        for chunk in (1 << 20, 1 << 12, 1):
            block = b"\0" * chunk
            with contextlib.suppress(OSError):
                while True:
                    f.write(block)
    assert shutil.disk_usage(path).free < 8192
    return filler


def test_full_data_disk_wedges_nothing(tmp_path: Path) -> None:
    with small_tmpfs(tmp_path / "disk") as data_dir:
        port = free_port()
        env = base_env(data_dir, **FAST_RECOVERY)
        log_path = tmp_path / "server.log"  # not on the small disk: the log must survive it
        server = LiveServer(f"http://127.0.0.1:{port}", data_dir, env, _spawn(env, port, log_path), log_path, port)
        try:
            _wait_healthy(server)
            client = server.client(server.create_key(credits=CREDITS))
            start = client.get("/api/credits").json()["data"]["balance"]
            task_ids = submit_all(client, 4)
            wait_until_rendering(client, task_ids[0])

            filler = fill_disk(data_dir)
            try:
                seen = watch_health(server.url, FAULT_S)
            finally:
                filler.unlink()

            down = [body for code, body in seen if code == 503]
            assert down, f"/healthz never said the disk was full: {seen[-3:]}"
            assert any("No space left" in body["problems"].get("data_dir", "") for body in down), down[-1]
            wait_healthy_again(server.url)
            check_outcome(server, client, task_ids, start, sqlite_ledger(data_dir))
        finally:
            server.stop()


# --- distributed: PostgreSQL restarts -------------------------------------------------------------


def postgres_bin() -> Path | None:
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"))
    return found[-1].parent if found else None


@contextlib.contextmanager
def private_postgres() -> Iterator[tuple[str, Callable[[str], None]]]:
    """A throwaway PostgreSQL on its own port (its admin URL, and ``ctl("stop"|"start")``): restarting
    the machine's shared one would break every other test running."""
    bindir = postgres_bin()
    if bindir is None:
        pytest.skip("no initdb under /usr/lib/postgresql/*/bin: cannot start a private PostgreSQL")
    # initdb refuses root: run it as postgres, in a directory postgres can reach (pytest's are 0700)
    as_postgres = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
    root = Path(tempfile.mkdtemp(prefix="hh-pg-"))
    root.chmod(0o755)
    data, sockets = root / "pgdata", root / "pgsock"
    sockets.mkdir()
    if as_postgres:
        for d in (root, sockets):
            shutil.chown(d, "postgres")
    init = subprocess.run(
        [*as_postgres, str(bindir / "initdb"), "-D", str(data), "-U", "postgres", "--auth=trust", "-E", "UTF8"],
        capture_output=True,
        text=True,
    )
    if init.returncode != 0:
        shutil.rmtree(root, ignore_errors=True)
        pytest.skip(f"initdb failed, cannot start a private PostgreSQL: {init.stderr.strip()[-300:]}")
    port = free_port()
    options = f"-p {port} -k {sockets} -c listen_addresses=127.0.0.1 -c fsync=off"

    def ctl(action: str) -> None:
        args = [*as_postgres, str(bindir / "pg_ctl"), "-D", str(data), "-l", str(root / "pg.log"), "-w"]
        if action == "start":
            args += ["-o", options]
        subprocess.run(
            [*args, action, *(["-m", "fast"] if action == "stop" else [])], check=True, capture_output=True, timeout=60
        )

    try:
        ctl("start")
        yield f"postgresql://postgres@127.0.0.1:{port}/postgres", ctl
    finally:
        with contextlib.suppress(subprocess.SubprocessError):
            ctl("stop")
        shutil.rmtree(root, ignore_errors=True)


def test_distributed_postgres_restart_wedges_nothing(tmp_path: Path, seaweedfs: services.SeaweedS3) -> None:
    with private_postgres() as (admin_url, ctl), services.redis_prefix() as redis_uri, contextlib.ExitStack() as stack:
        services.pg_query(admin_url, "CREATE DATABASE happyhorse")
        database_url = admin_url.rsplit("/", 1)[0].replace("postgresql://", "postgresql+psycopg://") + "/happyhorse"
        root = tmp_path / "cluster"
        root.mkdir()
        env = base_env(
            root,
            **{
                "HAPPYHORSE_DATABASE_URL": database_url,
                "HAPPYHORSE_STORAGE_URL": seaweedfs.storage_url(tmp_path.name),
                "HAPPYHORSE_RATE_LIMIT_STORAGE": redis_uri,
                "HAPPYHORSE_SECRET_KEY": "cluster-test-secret",
                "HAPPYHORSE_STALL_TIMEOUT": "6",
                **FAST_RECOVERY,
                **seaweedfs.credentials_env(),
            },
        )
        subprocess.run([*HAPPYHORSE, "db", "upgrade"], env=env, check=True, capture_output=True, timeout=120)
        cluster = Cluster(database_url, seaweedfs, tmp_path.name, env, root)
        stack.callback(cluster.stop)
        cluster.add_worker(wait=False)
        api = cluster.add_api()
        cluster.wait_for_workers()

        client = api.client(api.create_key(credits=CREDITS))
        start = client.get("/api/credits").json()["data"]["balance"]
        task_ids = submit_all(client, 4)
        wait_until_rendering(client, task_ids[0])

        ctl("stop")
        try:
            seen = watch_health(api.url, FAULT_S)
        finally:
            ctl("start")

        down = [body for code, body in seen if code == 503]
        assert down, f"/healthz never said PostgreSQL was down: {seen[-3:]}"
        assert all("database" in body["problems"] for body in down), down[-1]
        wait_healthy_again(api.url, timeout=60)

        def ledger(sql: str, arg: str) -> list[tuple]:
            return cluster.query(sql.format("%s"), arg)

        check_outcome(api, client, task_ids, start, ledger, timeout=180)
        # the render in flight ended during the outage: the worker kept its outcome and wrote it later
        # (before, the job failed and the task waited twice the stall timeout to be rendered again)
        log = cluster.workers[0].log()
        assert "its outcome could not be written" in log and "its outcome is written now" in log, log[-5000:]
