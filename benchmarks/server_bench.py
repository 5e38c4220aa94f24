"""Server benchmark (run on demand: ``make bench``; not a test).

1. Submit → SUCCESS latency of a 5 s std task with sound on the synthetic engine (target ≤ 2 s).
2. ``GET /api/status`` throughput and p50/p99 latency with 50 concurrent connections (wrk), beside a
   bare Starlette JSON endpoint on the same uvicorn stack, measured in the same run. The ratio is the
   figure (target ≥ 50%). Rate limits are raised so they do not cap the run, but still execute.

Needs ``wrk`` (Debian package; ``make bench`` installs it).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
PY = sys.executable


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_ready(url: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            httpx.get(url, timeout=1)
            return
        except httpx.HTTPError:
            time.sleep(0.1)
    raise RuntimeError(f"{url} did not come up")


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process: robust to a busy machine, unlike requests per second."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def wrk(url: str, headers: dict[str, str], pid: int, seconds: int = 10, connections: int = 50) -> dict[str, float]:
    cpu_before = cpu_seconds(pid)
    args = ["wrk", "-t2", f"-c{connections}", f"-d{seconds}s", "--latency"]
    for name, value in headers.items():
        args += ["-H", f"{name}: {value}"]
    out = subprocess.run([*args, url], capture_output=True, text=True, check=True).stdout

    def millis(label: str) -> float:
        match = re.search(rf"^\s*{label}%\s+([\d.]+)(us|ms|s)\s*$", out, re.M)
        assert match, out
        value, unit = float(match.group(1)), match.group(2)
        return value / 1000 if unit == "us" else value * 1000 if unit == "s" else value

    cpu = cpu_seconds(pid) - cpu_before
    total = re.search(r"(\d+) requests in", out)
    rps = re.search(r"Requests/sec:\s+([\d.]+)", out)
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    assert rps and total, out
    return {
        "rps": float(rps.group(1)),
        "p50_ms": millis("50"),
        "p99_ms": millis("99"),
        "cpu_us": cpu / int(total.group(1)) * 1e6,
        "errors": float(non2xx.group(1)) if non2xx else 0.0,
    }


def main() -> None:
    if not shutil.which("wrk"):
        sys.exit("wrk is not installed: apt-get install wrk")
    data_dir = Path(tempfile.mkdtemp(prefix="hh-bench-"))
    env = {
        **os.environ,
        "HAPPYHORSE_DATA_DIR": str(data_dir),
        "HAPPYHORSE_RATE_LIMIT_STATUS": "1000000/second",
        "HAPPYHORSE_RATE_LIMIT_GENERATE": "1000000/second",
    }
    port, bare_port = free_port(), free_port()
    server = subprocess.Popen(
        [PY, "-m", "happyhorse", "serve", "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    bare = subprocess.Popen(
        [PY, "-m", "uvicorn", "bare_app:app", "--port", str(bare_port), "--log-level", "warning", "--no-access-log"],
        cwd=ROOT / "benchmarks",
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        base = f"http://127.0.0.1:{port}"
        wait_ready(base + "/healthz")
        wait_ready(f"http://127.0.0.1:{bare_port}/api/status")
        key = json.loads(
            subprocess.run(
                [PY, "-m", "happyhorse", "keys", "create", "--name", "bench", "--credits", "100000000", "--json"],
                env=env,
                capture_output=True,
                text=True,
                check=True,
            ).stdout
        )["api_key"]
        client = httpx.Client(base_url=base, headers={"Authorization": f"Bearer {key}"}, timeout=30)
        body = {
            "model": "happyhorse-1.0/video",
            "prompt": "a red fox in fresh snow",
            "mode": "std",
            "duration": 5,
            "sound": True,
        }
        client.post("/api/generate", json=body)  # warm the engine process
        time.sleep(3)
        latencies, task_id = [], ""
        for _ in range(5):
            start = time.perf_counter()
            task_id = client.post("/api/generate", json=body).json()["data"]["task_id"]
            while client.get("/api/status", params={"task_id": task_id}).json()["data"]["status"] == "IN_PROGRESS":
                time.sleep(0.02)
            latencies.append(time.perf_counter() - start)
        print(
            f"submit → SUCCESS, 5 s std with sound: median {statistics.median(latencies):.2f} s "
            f"(min {min(latencies):.2f}, max {max(latencies):.2f}, n={len(latencies)}; target ≤ 2 s)"
        )

        ours = wrk(f"{base}/api/status?task_id={task_id}", {"Authorization": f"Bearer {key}"}, server.pid)
        yard = wrk(f"http://127.0.0.1:{bare_port}/api/status?task_id={task_id}", {}, bare.pid)
        print("\nGET /api/status, 50 concurrent connections, 10 s (wrk -t2 -c50):")
        print(f"{'':24}{'req/s':>9}{'p50 ms':>9}{'p99 ms':>9}{'CPU µs/req':>12}{'non-2xx':>9}")
        for name, row in (("happyhorse /api/status", ours), ("bare Starlette JSON", yard)):
            print(
                f"{name:24}{row['rps']:>9.0f}{row['p50_ms']:>9.2f}{row['p99_ms']:>9.2f}{row['cpu_us']:>12.0f}"
                f"{row['errors']:>9.0f}"
            )
        print(
            f"ratio: {ours['rps'] / yard['rps']:.0%} of the bare endpoint's throughput (target ≥ 50%); "
            f"by server CPU per request {yard['cpu_us'] / ours['cpu_us']:.0%}"
        )
        print(f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")
    finally:
        for proc in (server, bare):
            proc.terminate()
            proc.wait(20)
        shutil.rmtree(data_dir, ignore_errors=True)


if __name__ == "__main__":
    main()
