"""``happyhorse models check``: what is on disk, what each (mode, kind) resolves to, exit codes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from test_diffusers_profiles import fake_model
from typer.testing import CliRunner

from happyhorse.engines.diffusers.check import models_app

runner = CliRunner()


def check(*args: str) -> tuple[int, str]:
    result = runner.invoke(models_app, ["check", *args])
    # stdout alone, as `models check --json | jq` reads it: libraries may warn on stderr (torchao on a CPU
    # machine says its CUDA kernels did not load), and the runner's ``output`` mixes the two.
    return result.exit_code, result.stdout


@pytest.fixture
def setup(tmp_path: Path) -> Path:
    ltx = fake_model(tmp_path, "ltx", "LTX2Pipeline")
    vace = fake_model(tmp_path, "vace", "WanVACEPipeline")
    audio = fake_model(tmp_path, "audio", "StableAudioPipeline")
    path = tmp_path / "models.toml"
    path.write_text(f"""
[std]
text_to_video = "{ltx}"
image_to_video = "{ltx}"
first_last_frame = "{ltx}"
elements = {{ path = "{vace}", audio = "{audio}" }}
[pro]
text_to_video = {{ path = "{ltx}", steps = 40, resolution = "1920x1080" }}
""")
    return path


def test_a_good_file_reports_models_and_resolutions(setup: Path) -> None:
    code, output = check("--models", str(setup))
    assert code == 0, output
    assert "LTX2Pipeline, native audio, on disk" in output
    assert "[std] first_last_frame → LTX2ConditionPipeline" in output
    assert "[std] elements → WanVACEPipeline" in output
    assert "frame 1920x1080" in output
    assert "[pro] has no image_to_video" in output  # a warning, not a problem
    assert output.rstrip().endswith("ok")


def test_json_report(setup: Path) -> None:
    code, output = check("--models", str(setup), "--json")
    report = json.loads(output)
    assert code == 0 and report["ok"] is True
    by_kind = {(p["mode"], p["kind"]): p for p in report["profiles"]}
    assert by_kind[("std", "image_to_video")]["pipeline"] == "LTX2ImageToVideoPipeline"
    assert by_kind[("std", "elements")]["audio"].endswith("/audio")
    assert by_kind[("pro", "text_to_video")]["steps"] == 40
    ltx = next(m for m in report["models"] if m["pipeline"] == "LTX2Pipeline")
    assert set(ltx["components"]) >= {"transformer", "vae", "audio_vae", "vocoder"}


def test_problems_exit_nonzero(tmp_path: Path) -> None:
    ltx = fake_model(tmp_path, "ltx", "LTX2Pipeline")
    wan = fake_model(tmp_path, "wan", "WanPipeline")  # Wan 2.1 text-to-video: no image conditioning
    broken = fake_model(tmp_path, "broken", "WanVACEPipeline")
    for file in (broken / "transformer").iterdir():
        file.unlink()
    path = tmp_path / "models.toml"
    path.write_text(
        f'[std]\ntext_to_video = "{tmp_path}/missing"\nimage_to_video = "{wan}"\n'
        f'elements = "{ltx}"\nfirst_last_frame = "{broken}"\n'
    )
    code, output = check("--models", str(path))
    assert code == 1
    assert "model_index.json not found" in output
    assert "a WanPipeline folder cannot render image_to_video" in output
    assert "a LTX2Pipeline folder cannot render elements" in output
    assert "component 'transformer'" in output and "missing or empty" in output


def test_an_invalid_file_exits_nonzero_with_the_reason(tmp_path: Path) -> None:
    path = tmp_path / "models.toml"
    path.write_text('[std]\ntext_to_video = { path = "/m", steps = 0 }\n')
    code, output = check("--models", str(path))
    assert code == 1 and "steps: must be a positive integer" in output


def test_a_hub_id_not_downloaded_is_a_problem_offline(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub"))
    path = tmp_path / "models.toml"
    path.write_text('[std]\ntext_to_video = "Lightricks/LTX-2"\n')
    code, output = check("--models", str(path))
    assert code == 1 and "huggingface-cli download Lightricks/LTX-2" in output


def test_the_real_cli_mounts_it_and_reads_happyhorse_models(setup: Path) -> None:
    env = {**os.environ, "HAPPYHORSE_MODELS": str(setup)}
    proc = subprocess.run(
        [sys.executable, "-m", "happyhorse", "models", "check"], env=env, capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "LTX2ConditionPipeline" in proc.stdout


def test_check_reports_each_option_and_whether_this_machine_honours_it(tmp_path: Path) -> None:
    ltx = fake_model(tmp_path, "ltx", "LTX2Pipeline")
    path = tmp_path / "models.toml"
    path.write_text(
        f'[std]\ntext_to_video = {{ path = "{ltx}", cache = {{ kind = "taylorseer" }}, '
        f'quantization = "fp8_storage", compile = "regional" }}\n'
        f'[pro]\ntext_to_video = {{ path = "{ltx}", quantization = "fp8", offload = "group" }}\n'
    )
    code, out = check("--models", str(path), "--json")
    report = json.loads(out)
    options = {p["mode"]: p["options"] for p in report["profiles"]}
    assert {k: o["ok"] for k, o in options["std"].items()} == {"cache": True, "compile": True, "quantization": True}
    assert options["std"]["cache"]["value"] == {"kind": "taylorseer"}
    import torch

    if not torch.cuda.is_available():  # this CPU machine cannot honour fp8 compute or streamed group offload
        assert options["pro"]["quantization"]["ok"] is False and options["pro"]["offload"]["ok"] is False
        assert code == 1 and any("fp8" in p for p in report["problems"])
    code, out = check("--models", str(path))
    assert "quantization = fp8_storage: ok here" in out


def test_check_reports_parallel_per_model_and_machine(tmp_path: Path) -> None:
    ltx = fake_model(tmp_path, "ltx", "LTX2Pipeline")
    wan = fake_model(tmp_path, "wan", "WanPipeline")
    path = tmp_path / "models.toml"
    path.write_text(
        f'[std]\ntext_to_video = {{ path = "{wan}", parallel = {{ ulysses = 2 }} }}\n'
        f'[pro]\ntext_to_video = {{ path = "{ltx}", parallel = {{ ulysses = 2 }} }}\n'
    )
    code, out = check("--models", str(path), "--json")
    report = json.loads(out)
    options = {p["mode"]: p["options"]["parallel"] for p in report["profiles"]}
    assert options["std"]["ok"] is True and "engine groups of 2" in options["std"]["group"]
    assert options["pro"]["ok"] is False and "cannot split LTX-2" in options["pro"]["problem"]
    assert code == 1
    import torch

    if not torch.cuda.is_available():  # the CPU has no attention backend that ring attention can use
        path.write_text(f'[std]\ntext_to_video = {{ path = "{wan}", parallel = {{ ring = 2 }} }}\n')
        code, out = check("--models", str(path))
        assert code == 1 and "parallel = {'ring': 2}: not here" in out and "CUDA only" in out
        path.write_text(f'[std]\ntext_to_video = {{ path = "{wan}", parallel = {{ ulysses = 2 }} }}\n')
        code, out = check("--models", str(path))
        assert code == 0, out
        assert "parallel = {'ulysses': 2}: ok here (engine groups of 2 CPU processes (gloo)" in out


def test_check_lists_every_option_value_this_machine_can_and_cannot_honour(tmp_path: Path) -> None:
    ltx = fake_model(tmp_path, "ltx", "LTX2Pipeline")
    wan = fake_model(tmp_path, "wan", "WanPipeline")
    path = tmp_path / "models.toml"
    path.write_text(
        f'[std]\ntext_to_video = {{ path = "{wan}", cache = {{ kind = "first_block", threshold = 0.2 }} }}\n'
        f'[pro]\ntext_to_video = {{ path = "{ltx}", cache = {{ kind = "first_block", threshold = 0.2 }} }}\n'
    )
    code, out = check("--models", str(path), "--json")
    report = json.loads(out)
    machine = {(r["option"], json.dumps(r["value"])): r for r in report["machine"]}
    from happyhorse.engines.diffusers.options import CACHE_KINDS

    expected = {("cache", json.dumps({"kind": kind})) for kind in CACHE_KINDS}
    expected |= {("compile", '"regional"'), ("compile", '"full"'), ("quantization", '"fp8_storage"')}
    expected |= {("quantization", '"fp8"'), ("offload", '"model"'), ("offload", '"sequential"')}
    expected |= {("offload", '"group"'), ("parallel", '{"ulysses": 2}'), ("parallel", '{"ring": 2}')}
    assert set(machine) == expected
    assert all(machine[("cache", json.dumps({"kind": kind}))]["ok"] for kind in CACHE_KINDS)  # diffusers 0.42
    assert machine[("quantization", '"fp8_storage"')]["ok"] is True
    import torch

    if not torch.cuda.is_available():
        assert machine[("quantization", '"fp8"')]["ok"] is False
        assert "CUDA" in machine[("offload", '"group"')]["problem"]
        assert "CUDA only" in machine[("parallel", '{"ring": 2}')]["problem"]
    # Per model: diffusers registers Wan's blocks for the first-block cache, not LTX-2's.
    options = {p["mode"]: p["options"]["cache"] for p in report["profiles"]}
    assert options["std"]["ok"] is True
    assert options["pro"]["ok"] is False and "LTX2VideoTransformerBlock" in options["pro"]["problem"]
    assert code == 1
    code, out = check("--models", str(path))
    assert "this machine" in out and "quantization = fp8_storage: ok here" in out
