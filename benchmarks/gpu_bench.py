"""GPU benchmark of the diffusers engine: full-size LTX-2 and Wan 2.2 TI2V-5B with random weights.

Weights cannot be downloaded where this runs, and speed does not depend on their values, so each
architecture is built in code at its real size, directly on the GPU in bfloat16. For each model
and each of 720p and 1080p it renders one 5 s shot (120 frames at 24 fps) twice:

    plain       the diffusers pipeline called directly, frames encoded with the same MP4 writer
    happyhorse  the same shot through ``render_job`` + ``DiffusersEngine``: what a worker runs

and reports text encoding, per denoising step, decode (VAE, and audio for LTX-2), MP4 encoding,
both end-to-end times, the serving overhead (happyhorse / plain - 1, target <= 3%) and peak GPU
memory. ``--tiny`` runs the same code on the CPU with tiny configurations (the test suite does).

Then, per model, one row per value of every profile option (docs/models.md: each cache kind, compile
regional/full, fp8 storage/compute, offload model/sequential/group, parallel ulysses/ring), each on a
freshly built pipeline with the same seed and so the same weights: end to end and seconds per step
for the same 5 s clip at 720p and 1080p, peak GPU memory, and PSNR of the frames against plain
diffusers. What the model or machine cannot run is a row saying why.

    python benchmarks/gpu_bench.py                 # H100/H200: about 5 minutes, plus the option rows
    python benchmarks/gpu_bench.py --no-options    # the plain/happyhorse rows only
    python benchmarks/gpu_bench.py --tiny          # CPU smoke run
    python benchmarks/gpu_bench.py --markdown      # also print a table for docs/benchmarks.md
"""

from __future__ import annotations

import argparse
import gc
import itertools
import json
import os
import statistics
import string
import sys
import tempfile
import time
from collections.abc import Callable
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))

from happyhorse.engines.diffusers.audio import to_stereo_48k  # noqa: E402
from happyhorse.engines.diffusers.engine import DiffusersEngine  # noqa: E402
from happyhorse.engines.diffusers.families import FAMILIES, to_uint8_frames  # noqa: E402
from happyhorse.engines.diffusers.frames import render_size  # noqa: E402
from happyhorse.engines.diffusers.profiles import load_profiles  # noqa: E402
from happyhorse.media.encode import Mp4Writer  # noqa: E402
from happyhorse.worker.job import RenderJob, ShotSpec, plain_request  # noqa: E402
from happyhorse.worker.render import render_job  # noqa: E402

PROMPT = "A red fox trots through fresh snow at dawn, its breath steaming, the camera tracking low beside it."
SECONDS = 5
FPS = 24
# One transformer pass per step, as a distilled checkpoint runs (no CFG, no STG, no modality guidance):
# the per-step figure then is the cost of one forward; multiply by the passes a recipe uses.
LTX2_CALL_ARGS = {
    "stg_scale": 0.0,
    "modality_scale": 1.0,
    "audio_guidance_scale": 1.0,
    "audio_stg_scale": 0.0,
    "audio_modality_scale": 1.0,
    "guidance_rescale": 0.0,
    "audio_guidance_rescale": 0.0,
}


# --- architectures ---------------------------------------------------------------------------------


def gemma_tokenizer():  # type: ignore[no-untyped-def]
    from transformers import GemmaTokenizer

    vocab = {"<pad>": 0, "<eos>": 1, "<bos>": 2, "<unk>": 3, "<mask>": 4}
    for ch in string.printable + "▁":
        vocab.setdefault(ch, len(vocab))
    return GemmaTokenizer(vocab=vocab, merges=[])


def t5_tokenizer():  # type: ignore[no-untyped-def]
    from transformers import T5Tokenizer

    pieces = [("<pad>", 0.0), ("</s>", 0.0), ("<unk>", 0.0), ("▁", -1.0)]
    pieces += [(c, -2.0) for c in string.ascii_letters + string.digits + ".,;:!?@_-'()"]
    return T5Tokenizer(vocab=pieces, extra_ids=0)


def build_ltx2(tiny: bool):  # type: ignore[no-untyped-def]
    """LTX-2: the diffusers defaults are the 19B release (48 layers, 4096 wide, Gemma 3 12B text)."""
    from diffusers import (
        AutoencoderKLLTX2Audio,
        AutoencoderKLLTX2Video,
        FlowMatchEulerDiscreteScheduler,
        LTX2Pipeline,
        LTX2VideoTransformer3DModel,
    )
    from diffusers.pipelines.ltx2 import LTX2TextConnectors
    from diffusers.pipelines.ltx2.vocoder import LTX2Vocoder
    from transformers import Gemma3Config, Gemma3ForConditionalGeneration

    tokenizer = gemma_tokenizer()
    if not tiny:
        text = {
            "vocab_size": 262208,
            "hidden_size": 3840,
            "intermediate_size": 15360,
            "num_hidden_layers": 48,
            "num_attention_heads": 16,
            "num_key_value_heads": 8,
            "head_dim": 256,
            "query_pre_attn_scalar": 256,
            "sliding_window": 1024,
            "max_position_embeddings": 131072,
        }
        return LTX2Pipeline(
            scheduler=FlowMatchEulerDiscreteScheduler(),
            vae=AutoencoderKLLTX2Video(),
            audio_vae=AutoencoderKLLTX2Audio(),
            text_encoder=Gemma3ForConditionalGeneration(Gemma3Config(text_config=text)),
            tokenizer=tokenizer,
            connectors=LTX2TextConnectors(),
            transformer=LTX2VideoTransformer3DModel(),
            vocoder=LTX2Vocoder(),
        )
    text_encoder = Gemma3ForConditionalGeneration(
        Gemma3Config(
            text_config={
                "vocab_size": len(tokenizer),
                "hidden_size": 32,
                "intermediate_size": 32,
                "num_hidden_layers": 2,
                "num_attention_heads": 2,
                "num_key_value_heads": 1,
                "head_dim": 16,
                "query_pre_attn_scalar": 16,
                "max_position_embeddings": 1024,
                "sliding_window": 64,
            },
            vision_config={
                "hidden_size": 16,
                "intermediate_size": 32,
                "num_hidden_layers": 1,
                "num_attention_heads": 2,
                "image_size": 28,
                "patch_size": 14,
            },
            mm_tokens_per_image=4,
            boi_token_index=4,
            eoi_token_index=4,
            image_token_index=4,
        )
    )
    return LTX2Pipeline(
        scheduler=FlowMatchEulerDiscreteScheduler(),
        vae=AutoencoderKLLTX2Video(
            in_channels=3,
            out_channels=3,
            latent_channels=4,
            block_out_channels=(8, 8, 8),
            decoder_block_out_channels=(8, 8, 8),
            down_block_types=("LTX2VideoDownBlock3D",) * 3,
            layers_per_block=(1, 1, 1, 1),
            decoder_layers_per_block=(1, 1, 1, 1),
            spatio_temporal_scaling=(True,) * 3,
            decoder_spatio_temporal_scaling=(True,) * 3,
            decoder_inject_noise=(False,) * 4,
            downsample_type=("spatiotemporal",) * 3,
            upsample_type=("spatiotemporal",) * 3,
            upsample_residual=(False,) * 3,
            upsample_factor=(1,) * 3,
            patch_size=2,
            decoder_causal=False,
        ),
        audio_vae=AutoencoderKLLTX2Audio(
            base_channels=4, ch_mult=(1,), num_res_blocks=1, resolution=32, latent_channels=2, mel_bins=8
        ),
        text_encoder=text_encoder,
        tokenizer=tokenizer,
        connectors=LTX2TextConnectors(
            caption_channels=32,
            text_proj_in_factor=3,
            video_connector_num_attention_heads=4,
            video_connector_attention_head_dim=8,
            video_connector_num_layers=1,
            video_connector_num_learnable_registers=None,
            audio_connector_num_attention_heads=4,
            audio_connector_attention_head_dim=8,
            audio_connector_num_layers=1,
            audio_connector_num_learnable_registers=None,
            connector_rope_base_seq_len=32,
            rope_type="split",
        ),
        transformer=LTX2VideoTransformer3DModel(
            in_channels=4,
            out_channels=4,
            num_attention_heads=2,
            attention_head_dim=8,
            cross_attention_dim=16,
            audio_in_channels=4,
            audio_out_channels=4,
            audio_num_attention_heads=2,
            audio_attention_head_dim=4,
            audio_cross_attention_dim=8,
            num_layers=2,
            caption_channels=32,
            rope_type="split",
        ),
        vocoder=LTX2Vocoder(
            in_channels=16,
            hidden_channels=32,
            upsample_kernel_sizes=[8, 8, 20],
            upsample_factors=[4, 4, 10],
            resnet_kernel_sizes=[3],
            resnet_dilations=[[1, 3, 5]],
            output_sampling_rate=16000,
        ),
    )


def build_wan_ti2v(tiny: bool):  # type: ignore[no-untyped-def]
    """Wan 2.2 TI2V-5B: 30 layers 3072 wide over the 16x Wan 2.2 VAE, UMT5-XXL text encoder."""
    from diffusers import AutoencoderKLWan, UniPCMultistepScheduler, WanPipeline, WanTransformer3DModel
    from transformers import UMT5Config, UMT5EncoderModel

    scheduler = UniPCMultistepScheduler(prediction_type="flow_prediction", use_flow_sigmas=True, flow_shift=5.0)
    vae_common = {
        "z_dim": 48,
        "in_channels": 12,
        "out_channels": 12,
        "is_residual": True,
        "patch_size": 2,
        "latents_mean": [0.0] * 48,
        "latents_std": [1.0] * 48,
        "scale_factor_spatial": 16,
        "scale_factor_temporal": 4,
        "temperal_downsample": [False, True, True],
    }
    if tiny:
        text = UMT5Config(
            vocab_size=128, d_model=32, d_kv=8, d_ff=37, num_layers=2, num_heads=4, relative_attention_num_buckets=8
        )
        vae = AutoencoderKLWan(base_dim=3, dim_mult=[1, 1, 1, 1], num_res_blocks=1, **vae_common)
        transformer = WanTransformer3DModel(
            num_attention_heads=2,
            attention_head_dim=12,
            in_channels=48,
            out_channels=48,
            text_dim=32,
            ffn_dim=32,
            num_layers=2,
            rope_max_seq_len=32,
        )
    else:
        text = UMT5Config(
            vocab_size=256384,
            d_model=4096,
            d_kv=64,
            d_ff=10240,
            num_layers=24,
            num_heads=64,
            feed_forward_proj="gated-gelu",
            relative_attention_num_buckets=32,
        )
        vae = AutoencoderKLWan(
            base_dim=160, decoder_base_dim=256, dim_mult=[1, 2, 4, 4], num_res_blocks=2, **vae_common
        )
        transformer = WanTransformer3DModel(
            num_attention_heads=24,
            attention_head_dim=128,
            in_channels=48,
            out_channels=48,
            text_dim=4096,
            ffn_dim=14336,
            num_layers=30,
        )
    return WanPipeline(
        tokenizer=t5_tokenizer(),
        text_encoder=UMT5EncoderModel(text),
        vae=vae,
        scheduler=scheduler,
        transformer=transformer,
        transformer_2=None,
        expand_timesteps=True,
    )


@contextmanager
def built_on(device: torch.device, dtype: torch.dtype):  # type: ignore[no-untyped-def]
    """Allocate (and randomly initialise) parameters directly on the device, in the target dtype."""
    previous = torch.get_default_dtype()
    torch.set_default_dtype(dtype)
    try:
        with device:
            yield
    finally:
        torch.set_default_dtype(previous)


def keep_in_float32(pipe: Any, family_name: str, tiny: bool) -> None:
    """What ``from_pretrained`` and the engine do to a bfloat16 load: the modules a model lists in
    ``_keep_in_fp32_modules`` stay float32, and so does Wan's VAE (the engine's default for Wan)."""
    if tiny:
        return
    for component in pipe.components.values():
        keep = getattr(component, "_keep_in_fp32_modules", None) or []
        if isinstance(component, torch.nn.Module) and keep:
            for name, module in component.named_modules():
                if any(part in keep for part in name.split(".")):
                    module.float()
    if family_name == "wan":
        pipe.vae.float()


# --- measurements ----------------------------------------------------------------------------------


class Clock:
    def __init__(self, device: torch.device) -> None:
        self.device = device

    def now(self) -> float:
        if self.device.type == "cuda":
            torch.cuda.synchronize()
        return time.perf_counter()


def time_plain(
    pipe: Any, family_name: str, width: int, height: int, steps: int, extra: dict[str, Any], clock: Clock, out_dir: Path
) -> dict[str, float]:
    """The pipeline called directly: text encoding, steps, decode; then the same MP4 writer."""
    family = FAMILIES[family_name]
    stamps: list[float] = []

    def on_step_end(p: Any, step: int, timestep: Any, tensors: dict[str, Any]) -> dict[str, Any]:
        stamps.append(clock.now())
        return tensors

    kwargs = {
        "prompt": PROMPT,
        "height": height,
        "width": width,
        "num_frames": SECONDS * FPS + 1,
        "num_inference_steps": steps,
        "guidance_scale": 1.0,
        "output_type": "pt",
        "generator": torch.Generator("cpu").manual_seed(0),
        "callback_on_step_end": on_step_end,
        **extra,
    }
    if family_name == "ltx2":
        kwargs["frame_rate"] = float(FPS)
    # 1. Text encoding alone (the pipeline call below encodes again: its steps are timed apart).
    start = clock.now()
    pipe.encode_prompt(prompt=PROMPT, do_classifier_free_guidance=False, device=clock.device)
    called = clock.now()
    # 2. The call: denoising steps, then decoding (VAE, and the audio VAE + vocoder for LTX-2).
    out = pipe(**kwargs)
    frames = to_uint8_frames(out.frames[0])[: SECONDS * FPS]
    decoded = clock.now()
    # 3. The MP4, with the writer happyhorse uses.
    track, rate = family.audio(pipe, out)
    with Mp4Writer(
        out_dir / f"plain-{family_name}-{height}.mp4",
        frames.shape[2],
        frames.shape[1],
        fps=FPS,
        audio=track is not None,
    ) as writer:
        if track is not None:
            writer.write_audio(to_stereo_48k(track, rate)[:, : SECONDS * 48_000])
        for frame in frames:
            writer.write_frame(frame)
    end = clock.now()
    step_times = [b - a for a, b in itertools.pairwise(stamps)] or [stamps[0] - called]
    return {
        "text_encode_s": called - start,
        "per_step_s": statistics.median(step_times),
        "decode_s": decoded - stamps[-1],
        "mp4_encode_s": end - decoded,
        "plain_end_to_end_s": end - called,
    }


def time_happyhorse(engine: DiffusersEngine, mode: str, sound: bool, clock: Clock, out_dir: Path) -> float:
    job = RenderJob(
        task_id=f"bench-{mode}",
        attempt=1,
        output_path=str(out_dir / f"hh-{mode}.mp4"),
        request=plain_request(mode=mode, sound=sound),
        aspect_ratio="16:9",
        seed=0,
        shots=[ShotSpec(prompt=PROMPT, duration=SECONDS)],
    )
    start = clock.now()
    render_job(job, engine, lambda fraction: None)
    return clock.now() - start


def bench_model(
    name: str,
    build: Callable[[bool], Any],
    family_name: str,
    args: argparse.Namespace,
    device: torch.device,
    out_dir: Path,
) -> list[dict[str, Any]]:
    clock = Clock(device)
    start = clock.now()
    pipe = _build(build, family_name, args, device)
    params = sum(p.numel() for c in pipe.components.values() if isinstance(c, torch.nn.Module) for p in c.parameters())
    print(f"{name}: built {params / 1e9:.2f}B parameters in {clock.now() - start:.1f}s", flush=True)

    sizes = {"720p": (64, 32), "1080p": (96, 64)} if args.tiny else {"720p": (1280, 720), "1080p": (1920, 1080)}
    extra = dict(LTX2_CALL_ARGS) if family_name == "ltx2" else {}
    toml = out_dir / f"{name}.toml"
    lines = []
    for mode, (width, height) in zip(("std", "pro"), sizes.values(), strict=True):
        call_args = ", ".join(f"{k} = {v}" for k, v in extra.items())
        lines.append(
            f'[{mode}]\ntext_to_video = {{ path = "/bench/{name}", steps = {args.steps}, guidance = 1.0, '
            f'resolution = "{width}x{height}", frames_per_pass = 121, call_args = {{ {call_args} }} }}'
        )
    toml.write_text("\n".join(lines) + "\n")
    engine = DiffusersEngine(load_profiles(toml), device=str(device))
    engine.preload(f"/bench/{name}", pipe)

    # Warm-up: kernels, allocator, cuDNN autotuning, at a small size.
    warm = render_size(256, 128, FAMILIES[family_name].spatial_multiple(pipe)) if not args.tiny else (64, 32)
    pipe(
        prompt=PROMPT,
        height=warm[1],
        width=warm[0],
        num_frames=9,
        num_inference_steps=1,
        output_type="pt",
        **({"frame_rate": float(FPS)} if family_name == "ltx2" else {}),
        **extra,
    )

    results = []
    for (label, (width, height)), mode in zip(sizes.items(), ("std", "pro"), strict=True):
        render_w, render_h = render_size(width, height, FAMILIES[family_name].spatial_multiple(pipe))
        if device.type == "cuda":
            torch.cuda.reset_peak_memory_stats()
        row: dict[str, Any] = {
            "model": name,
            "resolution": label,
            "render_size": f"{render_w}x{render_h}",
            "steps": args.steps,
        }
        row.update(time_plain(pipe, family_name, render_w, render_h, args.steps, extra, clock, out_dir))
        row["happyhorse_end_to_end_s"] = time_happyhorse(engine, mode, family_name == "ltx2", clock, out_dir)
        row["overhead"] = row["happyhorse_end_to_end_s"] / row["plain_end_to_end_s"] - 1
        row["peak_gpu_gb"] = torch.cuda.max_memory_allocated() / 1e9 if device.type == "cuda" else None
        print(json.dumps(row), flush=True)
        results.append(row)
    del engine, pipe
    _free(device)
    if args.options:
        args.option_rows += bench_options(name, build, family_name, sizes, args, device)
    return results


# --- profile options (docs/models.md) against the same pipeline unoptimised ------------------------------

# (row, option values). Every option and each of its values; a row this machine or model cannot run is
# listed as not run, with why. TaylorSeer caches self-attention (LTX-2: transformer_blocks.N.attn1, Wan:
# blocks.N.attn1); MagCache needs per-checkpoint ratios, and random weights have none: flat ones here.
OPTION_ROWS: list[tuple[str, dict[str, Any]]] = [
    ("cache first_block", {"cache": {"kind": "first_block", "threshold": 0.2}}),
    (
        "cache taylorseer",
        {
            "cache": {
                "kind": "taylorseer",
                "cache_interval": 2,
                "disable_cache_before_step": 1,
                "cache_identifiers": [r"(transformer_)?blocks\.\d+\.attn1"],
            }
        },
    ),
    ("cache mag", {"cache": {"kind": "mag", "threshold": 0.3, "mag_ratios": "flat"}}),
    ("cache faster", {"cache": {"kind": "faster", "is_guidance_distilled": True}}),
    ("cache sea", {"cache": {"kind": "sea"}}),
    (
        "cache pyramid_attention_broadcast",
        {"cache": {"kind": "pyramid_attention_broadcast", "spatial_attention_block_skip_range": 2}},
    ),
    ("compile regional", {"compile": "regional"}),
    ("compile full", {"compile": "full"}),
    ("fp8 storage", {"quantization": "fp8_storage"}),
    ("fp8 compute", {"quantization": "fp8"}),
    ("offload model", {"offload": "model"}),
    ("offload sequential", {"offload": "sequential"}),
    ("offload group", {"offload": "group"}),
    ("parallel ulysses=2", {"parallel": {"ulysses": 2}}),
    ("parallel ring=2", {"parallel": {"ring": 2}}),
]


class _OptionProfile:
    """What ``options.apply`` and ``options.combination_refusal`` read from a Profile."""

    def __init__(self, **values: Any) -> None:
        self.mode, self.kind = "bench", "text_to_video"
        self.guidance = (1.0, 1.0)  # every render here is one transformer pass per step
        self.cache = values.get("cache")
        self.compile = values.get("compile")
        self.quantization = values.get("quantization")
        self.parallel = values.get("parallel")
        self.offload = values.get("offload")


def _frames(
    pipe: Any, family_name: str, width: int, height: int, steps: int, extra: dict[str, Any], clock: Clock
) -> tuple[Any, float, float]:
    """One 5 s render (text encoding, steps, decode): frames, seconds end to end, median seconds per step."""
    stamps: list[float] = []

    def on_step_end(p: Any, step: int, timestep: Any, tensors: dict[str, Any]) -> dict[str, Any]:
        stamps.append(clock.now())
        return tensors

    start = clock.now()
    out = pipe(
        prompt=PROMPT,
        width=width,
        height=height,
        num_frames=SECONDS * FPS + 1,
        num_inference_steps=steps,
        guidance_scale=1.0,
        generator=torch.Generator("cpu").manual_seed(0),
        output_type="pt",
        callback_on_step_end=on_step_end,
        **({"frame_rate": float(FPS)} if family_name == "ltx2" else {}),
        **extra,
    )
    seconds = clock.now() - start
    frames = out.frames[0] if hasattr(out, "frames") else out[0][0]
    per_step = statistics.median(b - a for a, b in itertools.pairwise(stamps)) if len(stamps) > 1 else seconds / steps
    return frames.float().clamp(0, 1).cpu(), seconds, per_step


def psnr(a: Any, b: Any) -> float:
    mse = float(((a - b) ** 2).mean())
    return float("inf") if mse == 0 else float(10 * torch.log10(torch.tensor(1.0 / mse)))


def _option_refusal(option: str, value: Any, values: dict[str, Any], pipe: Any, args: argparse.Namespace) -> str | None:
    """Why this row is not run here, or None."""
    from happyhorse.engines.diffusers import options as speed

    device_type = "cpu" if args.tiny else "cuda"
    problem = speed.can_honour(option, value, device_type, type(pipe).__name__)
    problem = problem or speed.combination_refusal(_OptionProfile(**values))
    if problem is None and option == "compile" and args.tiny:
        problem = "skipped in --tiny (compiling takes minutes on a shared CPU; the tests compile the tiny Wan)"
    if problem is None and option == "offload" and args.tiny:
        problem = "a no-op without a GPU (nothing to offload to)"
    if problem is None and option == "parallel":
        problem = "needs an engine group of N rank processes (happyhorse serve --gpus); this benchmark is one"
    return problem


def _with_option(pipe: Any, option: str, values: dict[str, Any], device: torch.device) -> None:
    """Switch ``option`` on a freshly built pipeline the way a profile does at load."""
    from happyhorse.engines.diffusers import options as speed

    if option == "offload":
        speed.place(pipe, values["offload"], device)
    elif values.get("quantization") == "fp8":  # what TorchAoConfig does inside from_pretrained, on built weights
        from torchao.quantization import quantize_

        quantize_(pipe.transformer, speed.fp8_quantization_config().quant_mapping["transformer"].quant_type)
    else:
        speed.apply(pipe, _OptionProfile(**values), device)


def bench_options(
    model: str,
    build: Callable[[bool], Any],
    family_name: str,
    sizes: dict[str, tuple[int, int]],
    args: argparse.Namespace,
    device: torch.device,
) -> list[dict[str, Any]]:
    """One row per option value and resolution, each on a freshly built pipeline (same seed, so the same
    random weights): end to end and per step for a 5 s clip, peak GPU memory, PSNR against plain diffusers."""
    clock = Clock(device)
    extra = dict(LTX2_CALL_ARGS) if family_name == "ltx2" else {}
    pipe = _build(build, family_name, args, device)
    multiple = FAMILIES[family_name].spatial_multiple(pipe)
    renders = {label: render_size(w, h, multiple) for label, (w, h) in sizes.items()}
    baseline = {}
    rows: list[dict[str, Any]] = []
    for label, (w, h) in renders.items():
        _reset_peak(device)
        frames, seconds, per_step = _frames(pipe, family_name, w, h, args.steps, extra, clock)
        baseline[label] = frames
        rows.append(
            {
                "model": model,
                "option": "plain diffusers",
                "resolution": label,
                "end_to_end_s": seconds,
                "per_step_s": per_step,
                "peak_gpu_gb": _peak(device),
                "psnr_db": None,
            }
        )
    for name, values in OPTION_ROWS:
        if name == "cache mag":  # flat ratios, one per step
            values = {"cache": {**values["cache"], "num_inference_steps": args.steps, "mag_ratios": [1.0] * args.steps}}
        option, value = next(iter(values.items()))
        problem = _option_refusal(option, value, values, pipe, args)
        if problem:
            rows += [{"model": model, "option": name, "resolution": label, "skipped": problem} for label in renders]
            continue
        del pipe
        _free(device)
        pipe = _build(build, family_name, args, device, placed=option != "offload")
        _with_option(pipe, option, values, device)
        if option == "compile":  # compile outside the timing: one step at each size (dynamic shapes after)
            for w, h in renders.values():
                _frames(pipe, family_name, w, h, 1, extra, clock)
        for label, (w, h) in renders.items():
            from happyhorse.engines.diffusers import options as speed

            speed.reset(pipe)
            _reset_peak(device)
            frames, seconds, per_step = _frames(pipe, family_name, w, h, args.steps, extra, clock)
            rows.append(
                {
                    "model": model,
                    "option": name,
                    "resolution": label,
                    "end_to_end_s": seconds,
                    "per_step_s": per_step,
                    "peak_gpu_gb": _peak(device),
                    "psnr_db": psnr(frames, baseline[label]),
                }
            )
    del pipe
    _free(device)
    for row in rows:
        print(json.dumps(row), flush=True)
    return rows


def _build(
    build: Callable[[bool], Any], family_name: str, args: argparse.Namespace, device: torch.device, placed: bool = True
) -> Any:
    """The random-weight pipeline, seeded as in ``bench_model``: the same weights every time. Built on the
    device, or on the CPU when an offload option is to place it (``placed`` False)."""
    with built_on(device if placed else torch.device("cpu"), torch.float32 if args.tiny else torch.bfloat16):
        torch.manual_seed(0)
        pipe = build(args.tiny)
    keep_in_float32(pipe, family_name, tiny=args.tiny)
    pipe.set_progress_bar_config(disable=True)
    if args.vae_tiling:
        pipe.vae.enable_tiling()
    return pipe


def _free(device: torch.device) -> None:
    gc.collect()
    if device.type == "cuda":
        torch.cuda.empty_cache()


def _reset_peak(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats()


def _peak(device: torch.device) -> float | None:
    return torch.cuda.max_memory_allocated() / 1e9 if device.type == "cuda" else None


def options_markdown(rows: list[dict[str, Any]]) -> str:
    head = (
        "| model | option | res | end to end | per step | peak GPU | PSNR vs plain |\n|---|---|---|---|---|---|---|\n"
    )
    lines = []
    for r in rows:
        if "skipped" in r:
            lines.append(f"| {r['model']} | {r['option']} | {r['resolution']} | - | - | - | not run: {r['skipped']} |")
            continue
        peak = "-" if r["peak_gpu_gb"] is None else f"{r['peak_gpu_gb']:.0f} GB"
        quality = "reference" if r["psnr_db"] is None else f"{r['psnr_db']:.1f} dB"
        lines.append(
            f"| {r['model']} | {r['option']} | {r['resolution']} | {r['end_to_end_s']:.1f} s | "
            f"{r['per_step_s']:.2f} s | {peak} | {quality} |"
        )
    return head + "\n".join(lines) + "\n"


def markdown(results: list[dict[str, Any]], device_name: str, steps: int) -> str:
    head = (
        f"### {device_name}, {SECONDS} s at {FPS} fps, {steps} steps, one transformer pass per step\n\n"
        "| model | res | render | text enc | per step | decode | mp4 enc | plain e2e | happyhorse e2e | "
        "overhead | peak GPU |\n|---|---|---|---|---|---|---|---|---|---|---|\n"
    )
    rows = []
    for r in results:
        peak = "-" if r["peak_gpu_gb"] is None else f"{r['peak_gpu_gb']:.0f} GB"
        rows.append(
            f"| {r['model']} | {r['resolution']} | {r['render_size']} | {r['text_encode_s']:.2f} s | "
            f"{r['per_step_s']:.2f} s | {r['decode_s']:.2f} s | {r['mp4_encode_s']:.2f} s | "
            f"{r['plain_end_to_end_s']:.1f} s | {r['happyhorse_end_to_end_s']:.1f} s | "
            f"{r['overhead']:+.1%} | {peak} |"
        )
    return head + "\n".join(rows) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tiny", action="store_true", help="tiny configurations on the CPU (a smoke run)")
    parser.add_argument("--steps", type=int, default=None, help="denoising steps (default 4; 2 with --tiny)")
    parser.add_argument("--models", default="ltx2,wan-ti2v", help="comma-separated: ltx2, wan-ti2v")
    parser.add_argument("--vae-tiling", action="store_true", help="decode with VAE tiling (less memory)")
    parser.add_argument(
        "--no-options",
        dest="options",
        action="store_false",
        help="skip the per-option rows (cache, compile, quantization, offload, parallel) of each model",
    )
    parser.add_argument("--json", type=Path, help="also write the results to this JSON file")
    parser.add_argument("--markdown", action="store_true", help="print a markdown table for docs/benchmarks.md")
    args = parser.parse_args()
    args.steps = args.steps or (2 if args.tiny else 4)
    args.option_rows = []
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    if args.tiny:
        torch.set_num_threads(1)  # tiny kernels on a shared CPU: threads only contend
        device = torch.device("cpu")
    elif torch.cuda.is_available():
        device = torch.device("cuda")
    else:
        print("no CUDA device: run with --tiny for a CPU smoke run", file=sys.stderr)
        return 2
    device_name = torch.cuda.get_device_name() if device.type == "cuda" else "CPU (tiny configurations)"
    builders = {"ltx2": (build_ltx2, "ltx2"), "wan-ti2v": (build_wan_ti2v, "wan")}
    started = time.perf_counter()
    results: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="gpu-bench-") as tmp:
        for name in args.models.split(","):
            build, family_name = builders[name.strip()]
            results += bench_model(name.strip(), build, family_name, args, device, Path(tmp))
    print(f"done in {time.perf_counter() - started:.0f}s on {device_name}")
    if args.json:
        args.json.write_text(
            json.dumps(
                {"device": device_name, "steps": args.steps, "results": results, "options": args.option_rows}, indent=2
            )
        )
    if args.markdown:
        print(markdown(results, device_name, args.steps))
        print(options_markdown(args.option_rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
