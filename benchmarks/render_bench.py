"""Seconds to render + encode a video with the synthetic engine through ``render_job``.

Run: ``.venv/bin/python benchmarks/render_bench.py [--runs 3]``. Prints the median of the runs for
5 s std, 5 s pro and 15 s pro, all with sound: the whole engine-process path (scene, frames,
soundtrack, H.264 + AAC encoding, atomic write), without fetching or storage.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

from happyhorse.engines.synthetic import SyntheticEngine
from happyhorse.media.encode import probe
from happyhorse.worker.job import RenderJob, ShotSpec
from happyhorse.worker.render import render_job

CASES = (("std", 5), ("pro", 5), ("pro", 15))
PROMPT = "A white horse gallops along a beach at sunset, waves breaking behind it, cinematic tracking shot"


def time_render(mode: str, duration: int, out_dir: Path) -> float:
    """One render; returns wall-clock seconds."""
    job = RenderJob(
        task_id="bench",
        attempt=1,
        output_path=str(out_dir / f"{mode}-{duration}.mp4"),
        mode=mode,
        aspect_ratio="16:9",
        sound=True,
        seed=1234,
        cfg_scale=0.5,
        negative_prompt=None,
        shots=[ShotSpec(prompt=PROMPT, duration=duration)],
    )
    start = time.perf_counter()
    render_job(job, SyntheticEngine(), lambda fraction: None)
    elapsed = time.perf_counter() - start
    info = probe(job.output_path)
    assert info["num_frames"] == duration * 24 and info["has_audio"], info
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        for mode, duration in CASES:
            times = [time_render(mode, duration, Path(tmp)) for _ in range(args.runs)]
            print(
                f"{mode} {duration:>2d} s with sound: median {statistics.median(times):.2f} s "
                f"(runs: {', '.join(f'{t:.2f}' for t in times)}; {duration / statistics.median(times):.1f}× real time)"
            )


if __name__ == "__main__":
    main()
