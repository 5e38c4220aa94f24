"""Profile speed/memory options on the tiny LTX-2 and Wan pipelines: parsing, every cache kind,
casting, compilation, refusals."""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import tiny_diffusers

from happyhorse.engines.base import EngineError, Shot
from happyhorse.engines.diffusers.engine import DiffusersEngine
from happyhorse.engines.diffusers.options import CACHE_KINDS
from happyhorse.engines.diffusers.profiles import ProfileError, load_profiles
from happyhorse.engines.diffusers.warmup import compiled_graphs

STEPS = 8


def engine_with(tmp_path: Path, options: str, model: str = "ltx2") -> DiffusersEngine:
    models = tiny_diffusers.build_all(tmp_path.parent / "tiny-diffusers")
    toml = tmp_path / "models.toml"
    toml.write_text(
        f'[std]\nsteps = {STEPS}\nresolution = "64x32"\ncall_args = {{ max_sequence_length = 32 }}\n'
        f'text_to_video = {{ path = "{models[model]}"{", " + options if options else ""} }}\n'
    )
    engine = DiffusersEngine(load_profiles(toml))
    engine.load()
    return engine


def render(engine: DiffusersEngine, seed: int = 7, frames: int = 9) -> tuple[np.ndarray, int]:
    """The frames, and how many times the last block's self-attention was computed."""
    transformer = next(iter(engine._models.values())).base.transformer
    calls = [0]
    blocks = transformer.transformer_blocks if hasattr(transformer, "transformer_blocks") else transformer.blocks
    block = blocks[-1].attn1.to_q  # skipped when a cache predicts
    handle = block.register_forward_pre_hook(lambda *_: calls.__setitem__(0, calls[0] + 1))
    try:
        clip = engine.render(
            Shot(index=0, prompt="a horse on a beach", num_frames=frames, width=64, height=32, seed=seed, sound=False),
            lambda _: None,
        )
    finally:
        handle.remove()
    return np.stack(clip.frames).astype(np.float64), calls[0]


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(((a - b) ** 2).mean())
    return float("inf") if mse == 0 else 10 * np.log10(255.0**2 / mse)


@pytest.fixture(scope="module")
def plain(tmp_path_factory: pytest.TempPathFactory) -> tuple[np.ndarray, int]:
    return render(engine_with(tmp_path_factory.mktemp("plain"), ""))


TAYLORSEER = (
    r"""{ kind = "taylorseer", cache_interval = 2, disable_cache_before_step = 2, """
    r"""cache_identifiers = ['transformer_blocks\.\d+\.attn1'] }"""
)


@pytest.mark.parametrize("cache", [TAYLORSEER])
def test_a_cache_cuts_transformer_calls_within_tolerance(
    tmp_path: Path, plain: tuple[np.ndarray, int], cache: str
) -> None:
    frames, calls = plain
    assert calls >= STEPS  # one full pass of the blocks per step (or more with guidance)
    engine = engine_with(tmp_path, f"cache = {cache}")
    cached, cached_calls = render(engine)
    assert cached_calls < calls, (cached_calls, calls)
    assert cached.shape == frames.shape
    assert psnr(cached, frames) > 15.0  # stated tolerance: PSNR above 15 dB against uncached frames
    assert_no_leak(engine, cached, cached_calls)


def assert_no_leak(engine: DiffusersEngine, first: np.ndarray, first_calls: int) -> None:
    """Another task between two identical ones: the cache is reset, so the third is the first again."""
    other, _ = render(engine, seed=8)
    assert not np.array_equal(other, first)
    again, again_calls = render(engine)
    assert again_calls == first_calls and np.array_equal(again, first)


# Every cache kind on the tiny Wan 2.2 TI2V (diffusers registers Wan's blocks for all of them).
# faster runs with guidance = 1: diffusers' FasterCache wants the guidance passes batched (options.py).
WAN_CACHES = {
    "first_block": ('{ kind = "first_block", threshold = 0.2 }', ""),
    "taylorseer": (
        r"""{ kind = "taylorseer", cache_interval = 2, disable_cache_before_step = 2, """
        r"""cache_identifiers = ['blocks\.\d+\.attn1'] }""",
        "",
    ),
    "mag": (
        '{ kind = "mag", threshold = 0.5, num_inference_steps = 8, '
        "mag_ratios = [1.0, 1.0, 0.99, 0.98, 0.97, 0.96, 0.95, 0.94] }",
        "",
    ),
    "faster": ('{ kind = "faster", is_guidance_distilled = true }', "guidance = 1.0"),
    "sea": ('{ kind = "sea" }', ""),
    "pyramid_attention_broadcast": (
        '{ kind = "pyramid_attention_broadcast", spatial_attention_block_skip_range = 2 }',
        "",
    ),
}


@pytest.fixture(scope="module")
def wan_plain(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """The uncached Wan frames and calls for a profile's other options, rendered once per module."""
    rendered: dict[str, tuple[np.ndarray, int]] = {}

    def plain(extra: str) -> tuple[np.ndarray, int]:
        if extra not in rendered:
            rendered[extra] = render(engine_with(tmp_path_factory.mktemp("wan-plain"), extra, "wan-ti2v"))
        return rendered[extra]

    return plain


def test_every_cache_kind_of_this_diffusers_is_tested() -> None:
    assert set(WAN_CACHES) == set(CACHE_KINDS)
    import diffusers

    assert all(hasattr(diffusers, name) for name in CACHE_KINDS.values())


@pytest.mark.parametrize("kind", list(WAN_CACHES))
def test_each_cache_kind_cuts_wan_transformer_calls_within_tolerance(tmp_path: Path, wan_plain: Any, kind: str) -> None:
    cache, extra = WAN_CACHES[kind]
    frames, calls = wan_plain(extra)
    assert calls >= STEPS
    engine = engine_with(tmp_path, f"cache = {cache}" + (f", {extra}" if extra else ""), "wan-ti2v")
    cached, cached_calls = render(engine)
    assert cached_calls < calls, (cached_calls, calls)
    assert cached.shape == frames.shape
    # Stated tolerance: above 30 dB PSNR against the uncached frames (measured 41-55 dB).
    assert psnr(cached, frames) > 30.0, psnr(cached, frames)
    assert_no_leak(engine, cached, cached_calls)


def test_fp8_storage_keeps_frames_close(tmp_path: Path, plain: tuple[np.ndarray, int]) -> None:
    frames, calls = plain
    cast, cast_calls = render(engine_with(tmp_path, 'quantization = "fp8_storage"'))
    assert cast_calls == calls and cast.shape == frames.shape
    assert psnr(cast, frames) > 15.0


@pytest.mark.parametrize(
    ("options", "words"),
    [
        ('quantization = "fp8"', 'quantization = "fp8"'),
        ('offload = "group"', "CUDA GPU"),
        (
            "parallel = { ulysses = 2 }",
            "cannot split LTX-2",
        ),  # diffusers 0.42's plan; Wan splits (test_diffusers_parallel)
        ('cache = { kind = "first_block", threshold = 0.2 }', "LTX2VideoTransformerBlock"),  # diffusers lacks it
        ('cache = { kind = "mag", mag_ratios = [1.0] }', "LTX2VideoTransformerBlock"),
        ('cache = { kind = "sea" }', "LTX2VideoTransformerBlock"),
        ('cache = { kind = "faster", is_guidance_distilled = true }', "packed tokens"),
        ('cache = { kind = "pyramid_attention_broadcast" }', "audio-video blocks"),
        ('cache = { kind = "mag" }', "`mag_ratios` must be provided"),  # diffusers' own words
        ('cache = { kind = "taylorseer", cache_every = 2 }', "cache_every"),  # not a TaylorSeerCacheConfig field
    ],
)
def test_what_the_cpu_cannot_honour_is_a_clear_load_error(tmp_path: Path, options: str, words: str) -> None:
    with pytest.raises(EngineError, match="cannot load") as caught:
        engine_with(tmp_path, options)
    assert words in str(caught.value)


@pytest.mark.parametrize(
    ("options", "words"),
    [
        ('cache = { kind = "faster" }', "is_guidance_distilled = true"),  # Wan makes two guidance passes
        ('cache = { kind = "faster", is_guidance_distilled = true }', "needs `guidance = 1`"),
    ],
)
def test_faster_cache_refuses_what_would_fail_or_mix_passes_on_wan(tmp_path: Path, options: str, words: str) -> None:
    with pytest.raises(EngineError, match="cannot load") as caught:
        engine_with(tmp_path, options, "wan-ti2v")
    assert words in str(caught.value)


@pytest.mark.parametrize(
    "options",
    [
        'cache = { kind = "nope" }',
        'compile = "maybe"',
        'quantization = "int3"',
        "parallel = { ulysses = 0 }",
        'offload = "disk"',
    ],
)
def test_malformed_options_name_the_key(tmp_path: Path, options: str) -> None:
    with pytest.raises(ProfileError, match=r"\[std\]\.text_to_video\.\w+"):
        engine_with(tmp_path, options)


def test_vae_tiling_and_slicing_are_switched_on_and_render_the_same_frames(
    tmp_path: Path, plain: tuple[np.ndarray, Any]
) -> None:
    engine = engine_with(tmp_path, "vae_tiling = true, vae_slicing = true")
    vae = next(iter(engine._models.values())).base.vae
    assert vae.use_tiling and vae.use_slicing
    frames, _ = render(engine)  # 64x32 is under the tile size and a batch of one: the same decode
    assert np.array_equal(frames, plain[0])


def test_offload_model_renders_on_the_cpu(tmp_path: Path, plain: tuple[np.ndarray, Any]) -> None:
    frames, _ = render(engine_with(tmp_path, 'offload = "model"'))  # a no-op on the CPU; still renders
    assert np.array_equal(frames, plain[0])


INDUCTOR = pytest.param(
    "inductor",
    "",
    id="inductor",
    marks=pytest.mark.skipif(
        os.environ.get("HAPPYHORSE_TEST_COMPILE") != "1",
        reason="inductor compiles for minutes on a shared 2-core CPU: set HAPPYHORSE_TEST_COMPILE=1",
    ),
)


@pytest.mark.slow
@pytest.mark.parametrize(
    ("backend", "cache"),
    [
        pytest.param("aot_eager", "", id="aot_eager"),  # dynamo and AOTAutograd for real, no code generation
        pytest.param("aot_eager", WAN_CACHES["taylorseer"][0], id="aot_eager+taylorseer"),  # hooks in the blocks
        INDUCTOR,
    ],
)
def test_regional_compile_warms_up_at_load_and_never_recompiles_for_a_new_duration(
    tmp_path: Path,
    tmp_path_factory: pytest.TempPathFactory,
    backend: str,
    cache: str,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    plain = engine_with(tmp_path_factory.mktemp("wan-plain"), "", "wan-ti2v")
    expected = [render(plain, frames=n)[0] for n in (9, 33)]
    monkeypatch.setenv("HAPPYHORSE_COMPILE_BACKEND", backend)
    caplog.set_level("INFO", logger="happyhorse.engine.diffusers")
    options = 'compile = "regional"' + (f", cache = {cache}" if cache else "")
    engine = engine_with(tmp_path, options, "wan-ti2v")  # load() compiles: the warm-up renders
    warmed = [r.getMessage() for r in caplog.records if "warm-up render" in r.getMessage()]
    assert len(warmed) == 1 and "[std].text_to_video (compile=regional)" in warmed[0], warmed
    graphs = compiled_graphs()
    assert graphs > 0
    for n, frames in zip((9, 33), expected, strict=True):  # a duration the warm-up never rendered included
        compiled, _ = render(engine, frames=n)
        assert compiled.shape == frames.shape and psnr(compiled, frames) > (30.0 if cache else 40.0)
    assert compiled_graphs() == graphs  # compiled once per process: no new duration recompiles
    assert not [r for r in caplog.records if "recompiled" in r.getMessage()]


def test_fp8_compute_builds_the_torchao_config_diffusers_accepts() -> None:
    # diffusers 0.42 refuses TorchAoConfig("float8dq_e4m3") (a string) with a TypeError; it wants
    # torchao's config object. Runs where torchao is installed (the fp8 extra; make install adds it).
    pytest.importorskip("torchao")
    from diffusers import PipelineQuantizationConfig, TorchAoConfig  # type: ignore[attr-defined]
    from torchao.quantization import Float8DynamicActivationFloat8WeightConfig

    from happyhorse.engines.diffusers.options import fp8_quantization_config

    config = fp8_quantization_config()
    assert isinstance(config, PipelineQuantizationConfig)
    transformer = config.quant_mapping["transformer"]
    assert isinstance(transformer, TorchAoConfig)
    assert isinstance(transformer.quant_type, Float8DynamicActivationFloat8WeightConfig)


def test_both_experts_of_a_two_expert_wan_get_the_cache_and_lose_it_between_tasks() -> None:
    """Wan 2.2 A14B denoises with ``transformer`` then ``transformer_2``: a profile's options reach both."""
    import copy

    import torch

    from happyhorse.engines.diffusers import options as speed
    from happyhorse.engines.diffusers.profiles import Profile

    def experts_pipe() -> Any:
        torch.manual_seed(0)
        pipe = tiny_diffusers.build_wan_ti2v()  # its parts, as an A14B layout: two experts, a boundary
        second = copy.deepcopy(pipe.transformer)
        pipe.register_modules(transformer_2=second)
        pipe.register_to_config(boundary_ratio=0.9, expand_timesteps=False)
        pipe.set_progress_bar_config(disable=True)
        for module in pipe.components.values():  # built in code, so in training mode: dropout would vary
            if isinstance(module, torch.nn.Module):
                module.eval()
        return pipe

    def call(pipe: Any, seed: int = 3) -> tuple[np.ndarray, list[int]]:
        calls = [0, 0]
        hooks = [
            model.blocks[-1].attn1.to_q.register_forward_pre_hook(lambda *_, i=i: calls.__setitem__(i, calls[i] + 1))
            for i, model in enumerate(speed.transformers(pipe))
        ]
        speed.reset(pipe)
        out = pipe(
            prompt="a horse",
            height=32,
            width=64,
            num_frames=9,
            num_inference_steps=STEPS,
            guidance_scale=1.0,
            max_sequence_length=32,
            output_type="np",
            generator=torch.Generator("cpu").manual_seed(seed),
        )
        for hook in hooks:
            hook.remove()
        return np.asarray(out.frames[0], dtype=np.float64) * 255, calls

    plain_frames, plain_calls = call(experts_pipe())
    assert all(c > 0 for c in plain_calls), plain_calls  # both experts denoise some of the steps
    pipe = experts_pipe()
    cache = {"kind": "first_block", "threshold": 0.2}
    speed.apply(pipe, Profile(mode="std", kind="text_to_video", path="/wan", cache=cache))
    assert all(t.is_cache_enabled for t in speed.transformers(pipe))
    frames, calls = call(pipe)
    assert all(c < p for c, p in zip(calls, plain_calls, strict=True)), (calls, plain_calls)
    assert psnr(frames, plain_frames) > 30.0
    call(pipe, seed=8)  # another task between two identical ones leaves nothing behind
    again, again_calls = call(pipe)
    assert again_calls == calls and np.array_equal(again, frames)


@pytest.mark.parametrize("kind", ["pyramid_attention_broadcast", "faster"])
def test_a_timestep_cache_reads_the_pipeline_that_runs(tmp_path: Path, kind: str) -> None:
    """Wan 2.2 TI2V loads a WanPipeline and renders image-to-video with a WanImageToVideoPipeline built
    around the same transformer: the caches that skip by timestep must see that pipeline's timestep."""
    models = tiny_diffusers.build_all(tmp_path.parent / "tiny-diffusers")
    cache = WAN_CACHES[kind][0]  # both run with guidance = 1 here
    shot = Shot(
        index=0,
        prompt="a horse on a beach",
        num_frames=9,
        width=64,
        height=32,
        seed=7,
        sound=False,
        first_frame=np.full((32, 64, 3), 128, dtype=np.uint8),
    )
    counted = []
    for options in ("", f"cache = {cache}"):
        toml = tmp_path / f"models-{len(counted)}.toml"
        toml.write_text(
            f'[std]\nsteps = {STEPS}\nresolution = "64x32"\ncall_args = {{ max_sequence_length = 32 }}\n'
            f"guidance = 1.0\n"
            f'image_to_video = {{ path = "{models["wan-ti2v"]}"{", " + options if options else ""} }}\n'
        )
        engine = DiffusersEngine(load_profiles(toml))
        engine.load()
        transformer = next(iter(engine._models.values())).base.transformer
        calls = [0]
        hook = transformer.blocks[-1].attn1.to_q.register_forward_pre_hook(
            lambda *_, c=calls: c.__setitem__(0, c[0] + 1)
        )
        engine.render(shot, lambda _: None)
        hook.remove()
        counted.append(calls[0])
    assert counted[1] < counted[0], counted


@pytest.mark.slow
def test_every_compiled_kind_warms_up_with_its_conditioning_and_never_recompiles(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Image, first+last frame and VACE reference profiles call the transformer with inputs of their
    own: each compiled one is warmed up at load with a stand-in image, so its first task compiles nothing."""
    from happyhorse.engines.base import Element

    models = tiny_diffusers.build_all(tmp_path.parent / "tiny-diffusers")
    common = 'steps = 2, resolution = "64x32", call_args = { max_sequence_length = 32 }, compile = "regional"'
    toml = tmp_path / "models.toml"
    toml.write_text(
        f'[std]\nimage_to_video = {{ path = "{models["wan-ti2v"]}", {common} }}\n'
        f'first_last_frame = {{ path = "{models["wan-flf"]}", {common} }}\n'
        f'elements = {{ path = "{models["wan-vace"]}", {common} }}\n'
    )
    monkeypatch.setenv("HAPPYHORSE_COMPILE_BACKEND", "aot_eager")
    caplog.set_level("INFO", logger="happyhorse.engine.diffusers")
    engine = DiffusersEngine(load_profiles(toml))
    engine.load()
    warmed = {r.getMessage().split(" (")[0] for r in caplog.records if "warm-up render" in r.getMessage()}
    assert warmed == {f"compiled [std].{kind}" for kind in ("image_to_video", "first_last_frame", "elements")}
    graphs = compiled_graphs()
    gray = np.full((32, 64, 3), 90, dtype=np.uint8)
    for conditioning in (
        {"first_frame": gray},
        {"first_frame": gray, "last_frame": gray},
        {"elements": [Element("rex", "a brown dog", [gray])]},
    ):
        shot = Shot(index=0, prompt="@rex runs", num_frames=33, width=64, height=32, seed=1, sound=False)
        clip = engine.render(dataclasses.replace(shot, **conditioning), lambda _: None)
        assert len(clip.frames) == 33
    assert compiled_graphs() == graphs
