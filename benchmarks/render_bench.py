"""Seconds to render + encode a video with the synthetic engine through ``render_job``.

Run: ``.venv/bin/python benchmarks/render_bench.py [--runs 3]``. Prints the median of the runs for
5 s std, 5 s pro and 15 s pro, all with sound: the whole engine-process path (scene, frames,
soundtrack, H.264 + AAC encoding, atomic write), without fetching or storage.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

from happyhorse.engines.synthetic import SyntheticEngine
from happyhorse.media.encode import probe
from happyhorse.worker.job import RenderJob, ShotSpec, plain_request
from happyhorse.worker.render import render_job

CASES = (("std", 5), ("pro", 5), ("pro", 15))
PROMPT = "A white horse gallops along a beach at sunset, waves breaking behind it, cinematic tracking shot"


def time_render(mode: str, duration: int, out_dir: Path) -> tuple[float, float]:
    """One render; returns (wall-clock seconds, CPU seconds of this process, all threads)."""
    job = RenderJob(
        task_id="bench",
        attempt=1,
        output_path=str(out_dir / f"{mode}-{duration}.mp4"),
        request=plain_request(mode=mode, sound=True),
        aspect_ratio="16:9",
        seed=1234,
        shots=[ShotSpec(prompt=PROMPT, duration=duration)],
    )
    start, cpu_start = time.perf_counter(), time.process_time()
    render_job(job, SyntheticEngine(), lambda fraction: None)
    elapsed, cpu = time.perf_counter() - start, time.process_time() - cpu_start
    info = probe(job.output_path)
    assert info["num_frames"] == duration * 24 and info["has_audio"], info
    return elapsed, cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        for mode, duration in CASES:
            runs = [time_render(mode, duration, Path(tmp)) for _ in range(args.runs)]
            wall = statistics.median(r[0] for r in runs)
            cpu = statistics.median(r[1] for r in runs)
            print(
                f"{mode} {duration:>2d} s with sound: median {wall:.2f} s wall, {cpu:.2f} s CPU "
                f"(runs: {', '.join(f'{r[0]:.2f}' for r in runs)} s; {duration / wall:.1f}× real time)"
            )
    print(f"load average while running: {', '.join(f'{x:.1f}' for x in os.getloadavg())} on {os.cpu_count()} CPUs")


if __name__ == "__main__":
    main()
