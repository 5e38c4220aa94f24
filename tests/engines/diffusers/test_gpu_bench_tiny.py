"""benchmarks/gpu_bench.py --tiny: the benchmark's whole code path on the CPU, with tiny configurations."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from happyhorse.engines.diffusers.options import CACHE_KINDS

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
    # A row per option value, per model and resolution: measured where the model and machine can run it,
    # else "not run" with the reason (the CPU cannot offload, compute in fp8 or split with ring).
    options = {(r["model"], r["option"], r["resolution"]): r for r in report["options"]}
    kinds = [f"cache {kind}" for kind in CACHE_KINDS]
    names = ["plain diffusers", *kinds, "compile regional", "compile full", "fp8 storage", "fp8 compute"]
    names += ["offload model", "offload sequential", "offload group", "parallel ulysses=2", "parallel ring=2"]
    assert set(options) == {(m, n, res) for m in ("ltx2", "wan-ti2v") for n in names for res in ("720p", "1080p")}
    measured = {("ltx2", "cache taylorseer"), ("ltx2", "fp8 storage"), ("wan-ti2v", "fp8 storage")}
    measured |= {("wan-ti2v", kind) for kind in kinds}  # diffusers runs every cache kind on Wan
    for model, name in measured:
        for res in ("720p", "1080p"):
            row = options[(model, name, res)]
            assert "skipped" not in row, row
            assert row["end_to_end_s"] > 0 and row["per_step_s"] > 0 and row["psnr_db"] > 10, row
    for res in ("720p", "1080p"):
        assert "LTX2VideoTransformerBlock" in options[("ltx2", "cache first_block", res)]["skipped"]
        assert "fp8" in options[("ltx2", "fp8 compute", res)]["skipped"]
        assert "engine group" in options[("wan-ti2v", "parallel ulysses=2", res)]["skipped"]
