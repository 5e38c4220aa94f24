"""Speed and memory options of a profile, applied through diffusers' own API.

    cache        = { kind = "first_block", threshold = 0.2 }   # transformer.enable_cache(<kind>CacheConfig(...))
    compile      = "regional" | "full"                         # compile_repeated_blocks / torch.compile
    quantization = "fp8_storage" | "fp8"                       # layerwise casting / TorchAoConfig float8
    parallel     = { ulysses = 2 } | { ring = 2 }              # ContextParallelConfig, engine groups (parallel.py)
    offload      = "model" | "sequential" | "group"            # beside vae_tiling, vae_slicing

Cache kinds: first_block, taylorseer, mag, faster, sea, pyramid_attention_broadcast (CACHE_KINDS);
what diffusers cannot run on a model's transformer is refused at load (``cache_refusal``).
``HAPPYHORSE_COMPILE_BACKEND`` picks torch.compile's backend (inductor unless set).

``parse`` is torch-free (the API process and ``models check`` use it); ``apply``, ``reset`` and
``can_honour`` import torch lazily. Every refusal is a ``ValueError`` whose message says what this
machine lacks, raised at load so a server never starts with an option it cannot honour.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import os
import re
import time
from collections.abc import Mapping
from typing import Any

CACHE_KINDS = {
    "first_block": "FirstBlockCacheConfig",
    "taylorseer": "TaylorSeerCacheConfig",
    "mag": "MagCacheConfig",
    "faster": "FasterCacheConfig",
    "sea": "SeaCacheConfig",
    "pyramid_attention_broadcast": "PyramidAttentionBroadcastConfig",
}
TIMESTEP_CACHES = ("faster", "pyramid_attention_broadcast")  # their configs read the denoising timestep
# These hook single transformer blocks, and work only on the block classes diffusers registered
# (``TransformerBlockRegistry``): the main block class of each family's transformer.
BLOCK_CACHES = ("first_block", "mag", "sea")
BLOCKS = {
    "LTX2": ("diffusers.models.transformers.transformer_ltx2", "LTX2VideoTransformerBlock"),
    "Wan": ("diffusers.models.transformers.transformer_wan", "WanTransformerBlock"),
}
EXPERTS = ("transformer", "transformer_2")  # Wan 2.2 A14B denoises with two experts: both get the options
TORCHAO_MIN = "0.15"  # diffusers 0.42's TorchAoConfig refuses older torchao
COMPILE = ("regional", "full")
QUANTIZATION = ("fp8_storage", "fp8")
OFFLOAD = ("model", "sequential", "group")
PARALLEL = ("ulysses", "ring")


def parse_cache(value: object) -> dict[str, Any]:
    if not isinstance(value, dict) or value.get("kind") not in CACHE_KINDS:
        raise ValueError(f"must be a table with kind = one of {', '.join(CACHE_KINDS)}, got {value!r}")
    args = {k: v for k, v in value.items() if k != "kind"}
    for key, item in args.items():
        if not isinstance(item, int | float | bool | str | list):
            raise ValueError(f"`{key}` must be a number, a string or a list, got {item!r}")
    return {"kind": value["kind"], **args}


def parse_choice(value: object, choices: tuple[str, ...]) -> str | None:
    if value is False or value == "none":
        return None
    if value not in choices:
        raise ValueError(f"must be one of {', '.join(repr(c) for c in choices)} or false, got {value!r}")
    return str(value)


def parse_parallel(value: object) -> dict[str, int]:
    if (
        not isinstance(value, dict)
        or len(value) != 1
        or next(iter(value)) not in PARALLEL
        or type(next(iter(value.values()))) is not int
        or next(iter(value.values())) < 1
    ):
        raise ValueError(f"must be {{ ulysses = N }} or {{ ring = N }} with N >= 1, got {value!r}")
    return {str(k): int(v) for k, v in value.items()}


def cache_config(spec: Mapping[str, Any], current_timestep: Any = None) -> Any:
    """The diffusers config object for a parsed ``cache`` table."""
    import diffusers

    name = CACHE_KINDS[spec["kind"]]
    cls = getattr(diffusers, name, None)
    if cls is None:
        raise ValueError(f"cache kind {spec['kind']!r}: this diffusers ({diffusers.__version__}) has no {name}")
    args = {k: v for k, v in spec.items() if k != "kind"}
    if spec["kind"] in TIMESTEP_CACHES and current_timestep is not None:
        args.setdefault("current_timestep_callback", current_timestep)
    try:
        return cls(**args)
    except TypeError as exc:
        raise ValueError(f"cache {spec['kind']!r}: {exc}") from None


def cache_refusal(spec: Mapping[str, Any], class_name: str | None) -> str | None:
    """Why this diffusers' ``spec`` cache cannot run on ``class_name``'s transformer, or None (also
    None when that cannot be told: the load then reports what diffusers says)."""
    import diffusers

    kind, version = spec["kind"], diffusers.__version__
    family = next((f for f in BLOCKS if (class_name or "").startswith(f)), None)
    if family is None:
        return None
    if kind in BLOCK_CACHES:
        module, block = BLOCKS[family]
        try:
            from diffusers.hooks._helpers import TransformerBlockRegistry

            TransformerBlockRegistry.get(getattr(importlib.import_module(module), block))
        except ValueError:
            return (
                f"cache kind {kind!r}: diffusers {version} has not registered {block} (the {class_name} "
                f'transformer\'s blocks) for {CACHE_KINDS[kind]}; use kind = "taylorseer" on this model'
            )
        except (ImportError, AttributeError):
            return None
    if kind == "faster" and family == "LTX2":
        return (
            f"cache kind 'faster': diffusers {version}'s FasterCache expects (batch, channels, frames, height, "
            f"width) block outputs and LTX-2's transformer works on packed tokens, so every render would fail; "
            f'use kind = "taylorseer" on this model'
        )
    if kind == "pyramid_attention_broadcast" and family == "LTX2":
        return (
            f"cache kind 'pyramid_attention_broadcast': diffusers {version}'s PyramidAttentionBroadcast "
            f"breaks on LTX-2's audio-video blocks (a shape mismatch in every render); "
            f'use kind = "taylorseer" on this model'
        )
    if kind == "faster" and not spec.get("is_guidance_distilled"):
        return (
            "cache kind 'faster': diffusers' FasterCache expects the conditional and unconditional passes in "
            "one batched call, and Wan makes two; set is_guidance_distilled = true (with guidance = 1)"
        )
    return None


def can_honour(option: str, value: Any, device: str | None = None, pipeline: str | None = None) -> str | None:
    """None when this machine can honour ``option = value``, else why not (in words); ``pipeline``
    (the model's class, when known) lets ``parallel`` say which models this diffusers cannot split."""
    import torch

    from happyhorse.engines.diffusers import parallel

    cuda = torch.cuda.is_available() if device is None else device.startswith("cuda") and torch.cuda.is_available()
    if option == "cache":
        try:
            cache_config(value, current_timestep=lambda: 0)
        except ValueError as exc:
            return str(exc)
        return cache_refusal(value, pipeline)
    if option == "quantization" and value == "fp8":
        if importlib.util.find_spec("torchao") is None:
            return f'quantization = "fp8" needs torchao >= {TORCHAO_MIN} (the fp8 extra: pip install "happyhorse[fp8]")'
        found = importlib.metadata.version("torchao")
        if tuple(int(p) for p in re.findall(r"\d+", found)[:2]) < tuple(int(p) for p in TORCHAO_MIN.split(".")):
            return f'quantization = "fp8" needs torchao >= {TORCHAO_MIN} (diffusers\' TorchAoConfig); this is {found}'
        if not cuda:
            return 'quantization = "fp8" (float8 compute) needs a CUDA GPU; this machine has none'
        major, minor = torch.cuda.get_device_capability()
        if (major, minor) < (8, 9):
            return (
                f'quantization = "fp8" needs compute capability 8.9+ (Ada, Hopper); '
                f'this GPU is {major}.{minor}: use "fp8_storage"'
            )
        return None
    if option == "offload" and value == "group" and not cuda:
        return 'offload = "group" streams weights to a CUDA GPU; this machine has none'
    if option == "parallel":
        return parallel.model_refusal(value, pipeline) or parallel.machine_refusal(value, device)
    if option == "compile" and not hasattr(torch, "compile"):
        return "compile needs torch.compile (torch 2.x)"
    return None


def combination_refusal(profile: Any) -> str | None:
    """Options that each work but not together, or None."""
    guidance = profile.guidance[1] if profile.guidance else None
    if profile.cache and profile.cache["kind"] == "faster" and (guidance is None or guidance > 1):
        return (
            '`cache = { kind = "faster" }` needs `guidance = 1`: with classifier-free guidance the model runs '
            "twice a step and FasterCache would mix the two passes' attention"
        )
    if not profile.parallel or next(iter(profile.parallel.values())) == 1:
        return None
    if profile.cache:  # a cache decides per rank, on that rank's shard: ranks that disagree deadlock
        return (
            "`cache` with `parallel`: a step cache decides on each rank's shard of the sequence, and ranks "
            "that decide differently wait on each other forever; choose one"
        )
    if profile.compile:
        return (
            "`compile` with `parallel`: diffusers 0.42 does not compile context-parallel transformers "
            "(`diffusers run` skips it too); choose one"
        )
    return None


def check_profile(profile: Any, device: str | None = None, pipeline: str | None = None) -> None:
    """Raise ValueError naming the first option of ``profile`` this machine cannot honour."""
    for option in ("cache", "quantization", "offload", "parallel", "compile"):
        value = getattr(profile, option)
        if value:
            problem = can_honour(option, value, device, pipeline)
            if problem:
                raise ValueError(f"[{profile.mode}].{profile.kind}: {problem}")
    problem = combination_refusal(profile)
    if problem:
        raise ValueError(f"[{profile.mode}].{profile.kind}: {problem}")


def fp8_quantization_config() -> Any:
    """The ``quantization_config`` for ``from_pretrained`` with quantization = "fp8"."""
    from diffusers import PipelineQuantizationConfig, TorchAoConfig  # type: ignore[attr-defined]
    from torchao.quantization import Float8DynamicActivationFloat8WeightConfig, PerRow

    # diffusers 0.42 takes a torchao config object (the old string names such as "float8dq_e4m3" are
    # refused): float8 weights and dynamically quantised float8 activations, scaled per row.
    fp8 = Float8DynamicActivationFloat8WeightConfig(granularity=PerRow())
    mapping: dict[str, Any] = {name: TorchAoConfig(fp8) for name in EXPERTS}  # a missing expert is skipped
    return PipelineQuantizationConfig(quant_mapping=mapping)


def place(pipe: Any, offload: str | None, device: Any) -> None:
    """Put ``pipe`` on ``device``, or offload it there: whole models ("model"), layer by layer
    ("sequential"), or leaf groups prefetched on a CUDA stream ("group")."""
    import torch

    if offload == "sequential":
        pipe.enable_sequential_cpu_offload(device=device)
    elif offload == "model":
        pipe.enable_model_cpu_offload(device=device)
    elif offload == "group" and torch.device(device).type == "cuda":  # check_profile refuses it elsewhere
        pipe.enable_group_offload(
            onload_device=device, offload_device=torch.device("cpu"), offload_type="leaf_level", use_stream=True
        )
    else:
        pipe.to(device)


def transformers(pipe: Any) -> list[Any]:
    """The pipeline's denoising transformer(s), unwrapped from a compile wrapper."""
    found = [getattr(pipe, name, None) for name in EXPERTS]
    return [getattr(t, "_orig_mod", t) for t in found if t is not None]


def apply(pipe: Any, profile: Any, device: Any = None) -> float:
    """Storage casting, cache, context parallelism and compilation on the pipeline's transformer(s);
    returns seconds spent setting up compilation (the compile itself happens on the first call: the
    warm-up render's job)."""
    import torch

    from happyhorse.engines.diffusers import parallel

    experts = transformers(pipe)
    if not experts:
        return 0.0
    for transformer in experts:
        if profile.quantization == "fp8_storage":
            transformer.enable_layerwise_casting(storage_dtype=torch.float8_e4m3fn, compute_dtype=transformer.dtype)
        if profile.cache:  # each expert keeps its own cache state
            transformer._serving_pipeline = pipe  # reset() points it at the pipeline about to run
            timestep = lambda t=transformer: current_timestep(t._serving_pipeline)  # noqa: E731
            transformer.enable_cache(cache_config(profile.cache, timestep))
    if profile.parallel:
        parallel.enable(pipe, profile.parallel, device if device is not None else experts[0].device)
    started = time.monotonic()
    # Dynamic shapes: a new duration (frame count) or frame size reuses the compiled graphs.
    backend = os.environ.get("HAPPYHORSE_COMPILE_BACKEND") or "inductor"
    for transformer in experts:
        if profile.compile == "regional":
            transformer.compile_repeated_blocks(dynamic=True, backend=backend)
        elif profile.compile == "full":
            transformer.compile(dynamic=True, backend=backend)  # in place: the pipelines keep their module
    return time.monotonic() - started


def current_timestep(pipe: Any) -> float:
    """The denoising timestep a cache's ``current_timestep_callback`` asks for: the pipeline's, its
    largest value where it is per token (Wan 2.2 TI2V gives the conditioning frame's tokens 0)."""
    value = getattr(pipe, "current_timestep", None)
    if value is None:
        return 0.0
    return float(value.max()) if hasattr(value, "max") else float(value)


def reset(pipe: Any) -> None:
    """Before ``pipe`` runs a pass: clear every cache's state so one task's residuals never leak into
    the next, and let the caches that read the timestep read ``pipe``'s (the pipelines of a family
    share one transformer: an image-to-video pass runs a pipeline other than the loaded one)."""
    for transformer in transformers(pipe):
        if getattr(transformer, "is_cache_enabled", False):
            transformer._serving_pipeline = pipe
            transformer._reset_stateful_cache()
