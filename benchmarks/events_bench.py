"""Events benchmark (run on demand: ``make bench``; not a test).

1. Cancel → render stopped: ``POST /api/cancel`` on a running task until its engine takes the next
   task (the next one's progress moves), median of 5, for the synthetic engine and for a tiny
   random-weight LTX-2 pipeline with many steps (diffusers; skipped when torch is not installed).
2. Open status streams: the API process's CPU per second with 200 ``/api/status/stream``
   connections open on queued tasks, against the same server with none open (same run).
"""

from __future__ import annotations

import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
from server_bench import PY, ROOT, cpu_seconds, free_port, wait_ready

LONG = {"model": "happyhorse-1.0/video", "prompt": "a long ride", "mode": "pro", "duration": 15, "sound": True}
SHORT = {"model": "happyhorse-1.0/video", "prompt": "a horse", "duration": 3, "sound": False}


def start(**env: str) -> tuple[subprocess.Popen[bytes], httpx.Client, str]:
    data_dir = Path(tempfile.mkdtemp(prefix="hh-events-"))
    full = {
        **os.environ,
        "HAPPYHORSE_DATA_DIR": str(data_dir),
        "HAPPYHORSE_RATE_LIMIT_STATUS": "1000000/second",
        "HAPPYHORSE_RATE_LIMIT_GENERATE": "1000000/second",
        "OMP_NUM_THREADS": "1",
        **env,
    }
    port = free_port()
    proc = subprocess.Popen(
        [PY, "-m", "happyhorse", "serve", "--port", str(port)],
        env=full,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    wait_ready(base + "/healthz")
    key = json.loads(
        subprocess.run(
            [PY, "-m", "happyhorse", "keys", "create", "--name", "bench", "--credits", "100000000", "--json"],
            env=full,
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    )["api_key"]
    return proc, httpx.Client(base_url=base, headers={"Authorization": f"Bearer {key}"}, timeout=60), key


def progress(client: httpx.Client, task_id: str) -> int:
    return int(client.get("/api/status", params={"task_id": task_id}).json()["data"]["progress"])


def cancel_latency(client: httpx.Client, long_body: dict, rounds: int = 5) -> list[float]:
    times = []
    for _ in range(rounds):
        running = client.post("/api/generate", json=long_body).json()["data"]["task_id"]
        while progress(client, running) < 3:
            time.sleep(0.02)
        nxt = client.post("/api/generate", json=long_body).json()["data"]["task_id"]
        started = time.monotonic()
        client.post("/api/cancel", json={"task_id": running})
        while progress(client, nxt) == 0:
            time.sleep(0.01)
        times.append(time.monotonic() - started)
        client.post("/api/cancel", json={"task_id": nxt})
    return times


def synthetic_cancel() -> list[float]:
    proc, client, _ = start()
    try:
        return cancel_latency(client, LONG)
    finally:
        proc.terminate()
        proc.wait(30)


def diffusers_cancel() -> list[float] | None:
    try:
        sys.path.insert(0, str(ROOT / "tests" / "engines" / "diffusers"))
        import tiny_diffusers
    except ImportError:
        return None
    root = Path(tempfile.mkdtemp(prefix="hh-tiny-"))
    models = tiny_diffusers.build_all(root)
    toml = root / "models.toml"
    toml.write_text(
        tiny_diffusers.models_toml(
            models,
            std_defaults=(
                'steps = 400\nresolution = "64x32"\nframes_per_pass = 41\nguidance = [1.0, 5.0]\n'
                "call_args = { max_sequence_length = 32 }"
            ),
        )
    )
    proc, client, _ = start(HAPPYHORSE_ENGINE="diffusers", HAPPYHORSE_MODELS=str(toml))
    try:
        return cancel_latency(client, SHORT)
    finally:
        proc.terminate()
        proc.wait(30)


async def hold_streams(base: str, key: str, task_ids: list[str], opened: asyncio.Event, hold_s: float) -> int:
    async with httpx.AsyncClient(
        base_url=base,
        headers={"Authorization": f"Bearer {key}"},
        timeout=httpx.Timeout(30, read=None),
        limits=httpx.Limits(max_connections=len(task_ids) + 10),
    ) as client:
        got_first = 0

        async def one(task_id: str) -> None:
            nonlocal got_first
            async with client.stream("GET", "/api/status/stream", params={"task_id": task_id}) as response:
                async for line in response.aiter_lines():
                    if line.startswith("data: "):
                        got_first += 1
                        break
                await asyncio.sleep(hold_s)

        tasks = [asyncio.create_task(one(t)) for t in task_ids]
        while got_first < len(task_ids):
            await asyncio.sleep(0.05)
        opened.set()
        await asyncio.gather(*tasks)
        return got_first


def stream_cpu(streams: int = 200, window_s: float = 10.0) -> tuple[float, float]:
    proc, client, key = start()
    try:
        blocker = client.post("/api/generate", json=LONG).json()["data"]["task_id"]
        queued = [client.post("/api/generate", json=SHORT).json()["data"]["task_id"] for _ in range(streams)]
        while progress(client, blocker) == 0:
            time.sleep(0.05)
        before = cpu_seconds(proc.pid)
        time.sleep(window_s)
        idle = (cpu_seconds(proc.pid) - before) / window_s

        async def run() -> float:
            opened = asyncio.Event()
            holder = asyncio.create_task(hold_streams(str(client.base_url), key, queued, opened, window_s + 2))
            await opened.wait()
            start_cpu = cpu_seconds(proc.pid)
            await asyncio.sleep(window_s)
            busy = (cpu_seconds(proc.pid) - start_cpu) / window_s
            await holder
            return busy

        with_streams = asyncio.run(run())
        return idle, with_streams
    finally:
        proc.terminate()
        proc.wait(30)


def main() -> None:
    load = os.getloadavg()[0]
    synthetic = synthetic_cancel()
    print(
        f"cancel → render stopped, synthetic (pro 15 s): median {statistics.median(synthetic):.2f} s "
        f"(runs {', '.join(f'{t:.2f}' for t in synthetic)})"
    )
    tiny = diffusers_cancel()
    if tiny is None:
        print("cancel → render stopped, diffusers: skipped (torch not installed)")
    else:
        print(
            f"cancel → render stopped, tiny diffusers LTX-2 (400 steps): median {statistics.median(tiny):.2f} s "
            f"(runs {', '.join(f'{t:.2f}' for t in tiny)})"
        )
    idle, busy = stream_cpu()
    print(
        f"API process CPU, 1 task rendering: {idle * 1000:.0f} ms/s with no stream open, "
        f"{busy * 1000:.0f} ms/s with 200 status streams open"
    )
    print(f"load average at start: {load:.1f}")


if __name__ == "__main__":
    main()
