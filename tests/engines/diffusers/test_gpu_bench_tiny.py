"""benchmarks/gpu_bench.py --tiny: the benchmark's whole code path on the CPU, with tiny configurations."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parents[3] / "benchmarks" / "gpu_bench.py"


def test_gpu_bench_tiny_runs_plain_and_happyhorse_renders(tmp_path: Path) -> None:
    out = tmp_path / "bench.json"
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(
        [sys.executable, str(BENCH), "--tiny", "--json", str(out), "--markdown"],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    report = json.loads(out.read_text())
    assert {(r["model"], r["resolution"]) for r in report["results"]} == {
        (model, res) for model in ("ltx2", "wan-ti2v") for res in ("720p", "1080p")
    }
    for row in report["results"]:
        for key in (
            "text_encode_s",
            "per_step_s",
            "decode_s",
            "mp4_encode_s",
            "plain_end_to_end_s",
            "happyhorse_end_to_end_s",
        ):
            assert row[key] > 0, (key, row)
    assert "| model | res |" in proc.stdout and "| option | res |" in proc.stdout
    options = {(r["option"], r["resolution"]): r for r in report["options"]}
    names = {name for name, _ in options}
    assert names >= {
        "plain diffusers",
        "cache taylorseer",
        "compile regional",
        "fp8 compute",
        "offload group",
        "parallel ulysses=2",
        "fp8 storage",
    }
    for res in ("720p", "1080p"):
        for measured in ("cache taylorseer", "fp8 storage"):
            row = options[(measured, res)]
            assert row["end_to_end_s"] > 0 and row["per_step_s"] > 0 and 10 < row["psnr_db"] < 200, row
        assert "skipped" in options[("fp8 compute", res)]
