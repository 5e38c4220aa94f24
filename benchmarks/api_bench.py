"""API throughput, embedded against distributed (run on demand; not a test).

Accepted submits per second (``POST /api/generate`` answered 200: authenticated, rate-limited, credits
debited, task inserted, dispatched) and status reads per second (``GET /api/status``), measured with
wrk for 10 s each, for:

- embedded: one ``happyhorse serve`` on SQLite (memory rate limits);
- distributed: two ``happyhorse serve`` on one PostgreSQL database (Redis rate limits, procrastinate
  jobs deferred for every task), load split evenly between them.

Only the API is measured: the embedded engine process is paused (SIGSTOP) and the distributed run has
no workers, so tasks stay queued and no render competes for the CPU. 16 accounts share the load (a
single account would serialise every debit on its balance row). Rate limits are raised so they do
not cap the run, but still execute (against Redis in the distributed run).

Needs wrk, PostgreSQL and Redis (``scripts/ensure-services.sh``). Usage:
``.venv/bin/python benchmarks/api_bench.py [--seconds 10] [--connections 32]``
"""

from __future__ import annotations

import argparse
import json
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import psycopg

PY = sys.executable
PG_ADMIN_URL = os.environ.get("HAPPYHORSE_TEST_PG", "postgresql://postgres@127.0.0.1:5432/postgres")
REDIS_URL = os.environ.get("HAPPYHORSE_TEST_REDIS", "redis://127.0.0.1:6379/0")
ACCOUNTS = 16
BODY = {"model": "happyhorse-1.0/video", "prompt": "a red fox in fresh snow", "mode": "std", "duration": 5}

SUBMIT_LUA = """
local keys = {%s}
local body = '%s'
local i = 0
request = function()
  i = i + 1
  return wrk.format("POST", "/api/generate",
    {["Authorization"] = "Bearer " .. keys[(i %% #keys) + 1], ["Content-Type"] = "application/json"}, body)
end
"""

STATUS_LUA = """
local pairs_ = {%s}
local i = 0
request = function()
  i = i + 1
  local p = pairs_[(i %% #pairs_) + 1]
  return wrk.format("GET", "/api/status?task_id=" .. p[2], {["Authorization"] = "Bearer " .. p[1]})
end
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Deployment:
    name: str
    urls: list[str]
    env: dict[str, str]
    processes: list[subprocess.Popen[bytes]]


def start_api(env: dict[str, str]) -> tuple[str, subprocess.Popen[bytes]]:
    port = free_port()
    proc = subprocess.Popen(
        [PY, "-m", "happyhorse", "serve", "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(url + "/healthz", timeout=1).status_code == 200:
                return url, proc
        except httpx.HTTPError:
            time.sleep(0.1)
    raise RuntimeError(f"{url} did not come up")


def pause_engines(api: subprocess.Popen[bytes]) -> None:
    """SIGSTOP the embedded server's engine processes: no render competes with the API for the CPU."""
    children = Path(f"/proc/{api.pid}/task/{api.pid}/children")
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and not children.read_text().split():
        time.sleep(0.2)
    for pid in children.read_text().split():
        os.kill(int(pid), signal.SIGSTOP)


@contextmanager
def embedded(base_env: dict[str, str], root: Path):  # type: ignore[no-untyped-def]
    env = {**base_env, "HAPPYHORSE_DATA_DIR": str(root / "embedded")}
    url, proc = start_api(env)
    try:
        time.sleep(3)  # let the engine process start, then pause it
        pause_engines(proc)
        yield Deployment("embedded: SQLite, 1 API", [url], env, [proc])
    finally:
        stop(proc)


@contextmanager
def distributed(base_env: dict[str, str], root: Path):  # type: ignore[no-untyped-def]
    name = f"hh_bench_{secrets.token_hex(4)}"
    prefix = f"hh_bench_{secrets.token_hex(4)}"
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    database_url = PG_ADMIN_URL.rsplit("/", 1)[0].replace("postgresql://", "postgresql+psycopg://", 1) + f"/{name}"
    env = {
        **base_env,
        "HAPPYHORSE_DATA_DIR": str(root / "distributed"),
        "HAPPYHORSE_DATABASE_URL": database_url,
        "HAPPYHORSE_RATE_LIMIT_STORAGE": f"{REDIS_URL}?key_prefix={prefix}",
    }
    procs: list[subprocess.Popen[bytes]] = []
    try:
        subprocess.run([PY, "-m", "happyhorse", "db", "upgrade"], env=env, check=True, capture_output=True)
        urls = []
        for _ in range(2):
            url, proc = start_api(env)
            urls.append(url)
            procs.append(proc)
        yield Deployment("distributed: PostgreSQL, 2 APIs", urls, env, procs)
    finally:
        for proc in procs:
            stop(proc)
        with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        import redis

        client = redis.Redis.from_url(REDIS_URL)
        keys = list(client.scan_iter(match=f"{prefix}*"))
        if keys:
            client.delete(*keys)


def stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGCONT)  # a paused engine must be able to exit
        proc.terminate()
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(5)


def create_keys(env: dict[str, str]) -> list[str]:
    keys = []
    for i in range(ACCOUNTS):
        out = subprocess.run(
            [PY, "-m", "happyhorse", "keys", "create", "--name", f"bench-{i}", "--credits", "1000000000", "--json"],
            env=env,
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        keys.append(json.loads(out)["api_key"])
    return keys


def run_wrk(urls: list[str], script: str, seconds: int, connections: int, workdir: Path) -> dict[str, float]:
    """wrk against every URL at once (connections split evenly); totals across them."""
    path = workdir / f"wrk-{secrets.token_hex(3)}.lua"
    path.write_text(script)
    per = max(1, connections // len(urls))
    procs = [
        subprocess.Popen(
            ["wrk", "-t1", f"-c{per}", f"-d{seconds}s", "--latency", "-s", str(path), url],
            stdout=subprocess.PIPE,
            text=True,
        )
        for url in urls
    ]
    outs = [proc.communicate()[0] for proc in procs]
    total = sum(int(_grab(r"(\d+) requests in", out)) for out in outs)
    bad = sum(int(_grab(r"Non-2xx or 3xx responses: (\d+)", out, "0")) for out in outs)
    return {
        "ok_per_s": (total - bad) / seconds,
        "non_2xx": float(bad),
        "p50_ms": max(_millis("50", out) for out in outs),
        "p99_ms": max(_millis("99", out) for out in outs),
    }


def _grab(pattern: str, text: str, default: str | None = None) -> str:
    match = re.search(pattern, text)
    if match is None:
        if default is None:
            raise RuntimeError(f"unexpected wrk output:\n{text}")
        return default
    return match.group(1)


def _millis(label: str, out: str) -> float:
    match = re.search(rf"^\s*{label}%\s+([\d.]+)(us|ms|s)\s*$", out, re.M)
    if match is None:
        raise RuntimeError(f"unexpected wrk output:\n{out}")
    value, unit = float(match.group(1)), match.group(2)
    return value / 1000 if unit == "us" else value * 1000 if unit == "s" else value


def measure(deployment: Deployment, seconds: int, connections: int, workdir: Path) -> dict[str, Any]:
    keys = create_keys(deployment.env)
    body = json.dumps(BODY)
    submit = SUBMIT_LUA % (", ".join(f'"{k}"' for k in keys), body)
    with httpx.Client(timeout=30) as client:  # warm-up, and the tasks the status run reads
        pairs = []
        for i, key in enumerate(keys * 4):
            url = deployment.urls[i % len(deployment.urls)]
            response = client.post(url + "/api/generate", json=BODY, headers={"Authorization": f"Bearer {key}"})
            response.raise_for_status()
            pairs.append((key, response.json()["data"]["task_id"]))
    submits = run_wrk(deployment.urls, submit, seconds, connections, workdir)
    status = STATUS_LUA % ", ".join(f'{{"{k}", "{t}"}}' for k, t in pairs)
    reads = run_wrk(deployment.urls, status, seconds, connections, workdir)
    return {"submits": submits, "reads": reads}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--connections", type=int, default=32)
    args = parser.parse_args()
    if not shutil.which("wrk"):
        sys.exit("wrk is not installed: apt-get install wrk")
    root = Path(tempfile.mkdtemp(prefix="hh-api-bench-"))
    base_env = {k: v for k, v in os.environ.items() if not k.startswith("HAPPYHORSE_")}
    base_env.update(
        {
            "HAPPYHORSE_RATE_LIMIT_GENERATE": "1000000/second",
            "HAPPYHORSE_RATE_LIMIT_STATUS": "1000000/second",
            "HAPPYHORSE_SECRET_KEY": "bench",
            "PYTHONUNBUFFERED": "1",
        }
    )
    results: dict[str, dict[str, Any]] = {}
    try:
        for start in (embedded, distributed):
            with ExitStack() as stack:
                deployment = stack.enter_context(start(base_env, root))
                results[deployment.name] = measure(deployment, args.seconds, args.connections, root)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    print_table(results, args.seconds, args.connections)


def print_table(results: dict[str, dict[str, Any]], seconds: int, connections: int) -> None:
    names = list(results)
    print(
        f"API throughput: wrk, {connections} connections in total, {seconds} s per figure, "
        f"{ACCOUNTS} accounts; {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}"
    )
    print(f"{'':32}" + "".join(f"{name:>34}" for name in names))
    rows = [
        ("accepted submits/s", "submits", "ok_per_s", "{:.0f}"),
        ("  submit p50 / p99 ms", "submits", None, ""),
        ("  submit non-2xx", "submits", "non_2xx", "{:.0f}"),
        ("status reads/s", "reads", "ok_per_s", "{:.0f}"),
        ("  status p50 / p99 ms", "reads", None, ""),
        ("  status non-2xx", "reads", "non_2xx", "{:.0f}"),
    ]
    for label, group, field, fmt in rows:
        cells = []
        for name in names:
            row = results[name][group]
            cells.append(f"{row['p50_ms']:.1f} / {row['p99_ms']:.1f}" if field is None else fmt.format(row[field]))
        print(f"{label:32}" + "".join(f"{cell:>34}" for cell in cells))


if __name__ == "__main__":
    main()
