"""Context parallelism: one task across the N ranks of an engine group, through diffusers' own API.

    parallel = { ulysses = N }   every attention all-to-alls its heads across the N ranks
    parallel = { ring = N }      every rank keeps 1/N of the keys and values and passes them round

Every rank of a group loads the same pipelines and makes the same call with the same seed;
``enable_parallelism`` hooks the transformer so the sequence is split on the way in and gathered
on the way out, and each rank ends with the whole latents (rank 0's frames are the task's). The
group itself (processes, ``torch.distributed``, devices) belongs to the worker
(``worker/engine_group.py``); this module says whether a profile can run so, and switches it on.

What was found with diffusers 0.42 and torch 2.13 on the tiny test pipelines (docs/models.md):
Wan's plan runs on the CPU over gloo and matches one process; ring attention needs an attention
backend that returns the log-sum-exp (cuDNN or flash attention: CUDA only); LTX-2's plan does
not cover its split RoPE, and with that fixed its per-head text mask breaks Ulysses; Wan VACE has
no plan at all. Those are refused at load with the reason, never half-run.
"""

from __future__ import annotations

import types
from collections.abc import Mapping
from typing import Any

RING_BACKEND = "_native_cudnn"  # returns the log-sum-exp ring attention merges with; CUDA, bf16/fp16

UNSUPPORTED = {
    "LTX2Pipeline": "ltx2",
    "LTX2ImageToVideoPipeline": "ltx2",
    "LTX2ConditionPipeline": "ltx2",
    "WanVACEPipeline": "vace",
}


def degree(spec: Mapping[str, int]) -> tuple[str, int]:
    """("ulysses" | "ring", N) of a parsed ``parallel`` table."""
    kind, n = next(iter(spec.items()))
    return str(kind), int(n)


def describe(spec: Mapping[str, int]) -> str:
    kind, n = degree(spec)
    return f"parallel = {{ {kind} = {n} }}"


def model_refusal(spec: Mapping[str, int], class_name: str | None) -> str | None:
    """Why this diffusers cannot split ``class_name``'s transformer, or None."""
    import diffusers

    if degree(spec)[1] == 1:
        return None
    family = UNSUPPORTED.get(class_name or "")
    if family == "ltx2":
        return (
            f"{describe(spec)}: diffusers {diffusers.__version__} cannot split LTX-2 across ranks (its "
            f"context-parallel plan misses the split RoPE, and Ulysses breaks on LTX-2's per-head text mask); "
            f"serve LTX-2 one GPU per task, or use parallel with a Wan model"
        )
    if family == "vace":
        return (
            f"{describe(spec)}: diffusers {diffusers.__version__}'s WanVACETransformer3DModel has no "
            f"context-parallel plan; serve elements one GPU per task"
        )
    return None


def machine_refusal(spec: Mapping[str, int], device_type: str | None = None) -> str | None:
    """Why this machine cannot run ``spec``'s group, or None (``device_type`` None: the default device)."""
    import torch
    import torch.distributed as dist

    kind, n = degree(spec)
    if n == 1:
        return None
    if not dist.is_available():
        return f"{describe(spec)} needs torch.distributed, which this torch build lacks"
    cuda = torch.cuda.is_available() and (device_type is None or device_type.startswith("cuda"))
    if cuda:
        if not dist.is_nccl_available():
            return f"{describe(spec)} on GPUs needs NCCL, which this torch build lacks"
        if torch.cuda.device_count() < n:
            return f"{describe(spec)} needs {n} GPUs per engine group; this machine sees {torch.cuda.device_count()}"
        return None
    if not dist.is_gloo_available():
        return f"{describe(spec)} on the CPU needs gloo, which this torch build lacks"
    if kind == "ring":
        return (
            f"{describe(spec)}: ring attention needs an attention backend that returns the log-sum-exp "
            f"(cuDNN or flash attention, CUDA only); on the CPU use {{ ulysses = {n} }}"
        )
    return None


def group_refusal(spec: Mapping[str, int]) -> str | None:
    """Why this process cannot be one rank of ``spec``'s group (it was not started as one), or None."""
    import torch.distributed as dist

    n = degree(spec)[1]
    if n == 1:
        return None
    if not dist.is_available() or not dist.is_initialized():
        return (
            f"{describe(spec)} runs in an engine group of {n} processes, which `happyhorse serve` and "
            f"`happyhorse worker` start; this engine process is alone"
        )
    if dist.get_world_size() != n:
        return f"{describe(spec)} needs a group of {n} ranks; this one has {dist.get_world_size()}"
    return None


def enable(pipe: Any, spec: Mapping[str, int], device: Any) -> None:
    """Split ``pipe``'s transformer(s) across the group; every rank calls it, after ``pipe.to(device)``."""
    from diffusers import ContextParallelConfig

    kind, n = degree(spec)
    if n == 1:
        return
    for name in ("transformer", "transformer_2"):  # Wan 2.2 A14B has two experts; both are split
        model = getattr(pipe, name, None)
        if model is None:
            continue
        if kind == "ring":
            model.set_attention_backend(RING_BACKEND)
            config = ContextParallelConfig(ring_degree=n)
        else:  # "anything": any token and head count, as `diffusers run --context-parallel` does
            config = ContextParallelConfig(ulysses_degree=n, ulysses_anything=True)
        if device.type == "cpu":
            model._resolve_parallel_config = types.MethodType(_resolve_on_cpu, model)
        model.enable_parallelism(config=config)


def _resolve_on_cpu(model: Any, config: Any) -> Any:
    """``ModelMixin._resolve_parallel_config`` with the CPU as the rank's device.

    diffusers 0.42 picks a rank's device as ``rank % torch.accelerator.device_count()``: a division
    by zero where there is no accelerator. These are its steps otherwise unchanged (the mesh, then
    ``config.setup``), so the CPU ranks of the tests run the same hooks the GPU ranks do.
    """
    import torch
    import torch.distributed as dist
    from diffusers import ContextParallelConfig, ParallelConfig
    from torch.distributed.device_mesh import init_device_mesh

    if isinstance(config, ContextParallelConfig):
        config = ParallelConfig(context_parallel_config=config)
    cp = config.context_parallel_config
    mesh = cp.mesh or init_device_mesh("cpu", mesh_shape=cp.mesh_shape, mesh_dim_names=cp.mesh_dim_names)
    config.setup(dist.get_rank(), dist.get_world_size(), torch.device("cpu"), mesh=mesh)
    model._parallel_config = config
    return config
