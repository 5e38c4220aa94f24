"""The data directory is created 0700 and the SQLite database (with its -wal and -shm) and the secret key
0600, from their first byte: under ``umask 0`` too, and with no chmod after the fact."""

from __future__ import annotations

import os
import stat
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from happyhorse.config import Settings
from happyhorse.store.migrate import upgrade
from harness import HAPPYHORSE, LiveServer, _wait_healthy, base_env, free_port, wait_for_task

pytestmark = pytest.mark.e2e


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def no_umask() -> None:
    os.umask(0)  # the loosest a process can start with: only the modes we ask for protect the files


@pytest.fixture
def fresh_server(tmp_path: Path) -> Iterator[LiveServer]:
    data_dir = tmp_path / "not" / "yet" / "data"  # serve creates it
    port = free_port()
    env = base_env(data_dir)
    log_path = tmp_path / "server.log"
    log = open(log_path, "ab")  # noqa: SIM115 - the child owns it
    process = subprocess.Popen(
        [*HAPPYHORSE, "serve", "--host", "127.0.0.1", "--port", str(port)],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
        preexec_fn=no_umask,
    )
    server = LiveServer(f"http://127.0.0.1:{port}", data_dir, env, process, log_path, port)
    try:
        _wait_healthy(server)
        yield server
    finally:
        server.stop()


def test_serve_makes_its_data_dir_database_and_key_owner_only(fresh_server: LiveServer) -> None:
    api = fresh_server.client(fresh_server.create_key())
    body = {"model": "happyhorse-1.0/video", "prompt": "a horse", "duration": 3, "sound": False}
    done = wait_for_task(api, api.post("/api/generate", json=body).json()["data"]["task_id"])
    assert done["status"] == "SUCCESS"  # the key signed its URL, the database took writes (WAL in use)
    data = fresh_server.data_dir
    assert mode(data) == 0o700
    assert mode(data / "secret.key") == 0o600
    database = [data / "happyhorse.db", data / "happyhorse.db-wal", data / "happyhorse.db-shm"]
    present = [p for p in database if p.exists()]
    assert data / "happyhorse.db" in present and len(present) >= 2, present
    assert {p.name: mode(p) for p in present} == {p.name: 0o600 for p in present}


def test_admin_commands_on_a_new_data_dir_make_it_private(tmp_path: Path) -> None:
    data_dir = tmp_path / "admin" / "data"
    made = subprocess.run(
        [*HAPPYHORSE, "keys", "create", "--name", "me", "--data-dir", str(data_dir)],
        env=base_env(data_dir),
        capture_output=True,
        text=True,
        timeout=120,
        preexec_fn=no_umask,
    )
    assert made.returncode == 0, made.stderr
    assert mode(data_dir) == 0o700
    assert mode(data_dir / "happyhorse.db") == 0o600


def test_the_key_and_the_database_are_never_chmodded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("chmod after the file was written")

    monkeypatch.setattr(os, "chmod", refuse)
    monkeypatch.setattr(Path, "chmod", refuse)
    old = os.umask(0)
    try:
        settings = Settings(data_dir=tmp_path / "d")
        settings.ensure_dirs()
        assert len(settings.signing_key) == 64
        upgrade(settings.resolved_database_url)
    finally:
        os.umask(old)
    assert mode(tmp_path / "d") == 0o700
    assert mode(tmp_path / "d" / "secret.key") == 0o600
    assert mode(tmp_path / "d" / "happyhorse.db") == 0o600
    assert [p.name for p in (tmp_path / "d").iterdir() if p.name.startswith(".secret")] == []  # no temp left
