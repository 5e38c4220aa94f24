"""``parallel = { ulysses = 2 }``: the tiny Wan model split across two CPU ranks (gloo) renders the
frames one process renders; and what cannot be split is refused at load, saying why.

The ranks are two spawned processes that join one group exactly as an engine group's ranks do
(``RankGroup`` over RANK / WORLD_SIZE / MASTER_ADDR / MASTER_PORT) and load the models.toml through
the real ``DiffusersEngine``; diffusers' hooks split the transformer's sequence between them.
"""

from __future__ import annotations

import multiprocessing as mp
import os
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import tiny_diffusers

from happyhorse.engines.base import EngineError, Shot
from happyhorse.engines.diffusers.engine import DiffusersEngine
from happyhorse.engines.diffusers.profiles import load_profiles
from happyhorse.worker.engine_group import RankGroup, free_port, rank_specs

SHOT = Shot(index=0, prompt="a horse on a beach", num_frames=9, width=64, height=32, seed=11, sound=False)


def models_file(tmp_path: Path, model: str, options: str = "", kind: str = "text_to_video") -> Path:
    models = tiny_diffusers.build_all(tmp_path.parent / "tiny-diffusers")
    toml = tmp_path / f"models-{abs(hash((model, options, kind)))}.toml"
    toml.write_text(
        f'[std]\nsteps = 4\nresolution = "64x32"\ncall_args = {{ max_sequence_length = 32 }}\n'
        f'{kind} = {{ path = "{models[model]}"{", " + options if options else ""} }}\n'
    )
    return toml


def frames_of(engine: DiffusersEngine) -> tuple[np.ndarray, int]:
    """The frames, and how many tokens the last transformer block saw (a split rank sees 1/N)."""
    transformer = next(iter(engine._models.values())).base.transformer
    tokens = [0]
    hook = transformer.blocks[-1].register_forward_pre_hook(  # after blocks.0, where diffusers splits
        lambda _, args, kwargs: tokens.__setitem__(0, (args[0] if args else kwargs["hidden_states"]).shape[1]),
        with_kwargs=True,
    )
    try:
        return np.stack(engine.render(SHOT, lambda _: None).frames), tokens[0]
    finally:
        hook.remove()


def rank_main(spec: Any, toml: str, out: Any) -> None:
    """One rank: join the group, load, render SHOT, hand back the frames (or the error)."""
    import torch

    torch.set_num_threads(1)
    os.environ.update(spec.env)
    try:
        group = RankGroup(spec)
        engine = DiffusersEngine(load_profiles(toml))
        engine.load()
        out.put((spec.rank, frames_of(engine)))
        group.close()
    except Exception as exc:
        out.put((spec.rank, (f"{type(exc).__name__}: {exc}", 0)))


@pytest.mark.slow
def test_ulysses_2_on_two_cpu_ranks_renders_the_frames_of_one_process(tmp_path: Path) -> None:
    import torch

    torch.set_num_threads(1)
    alone = DiffusersEngine(load_profiles(models_file(tmp_path, "wan-ti2v")))
    alone.load()
    expected, all_tokens = frames_of(alone)

    toml = models_file(tmp_path, "wan-ti2v", "parallel = { ulysses = 2 }")
    ctx = mp.get_context("spawn")
    out = ctx.SimpleQueue()
    ranks = [
        ctx.Process(target=rank_main, args=(spec, str(toml), out), daemon=True)
        for spec in rank_specs("engine-0", 2, free_port())
    ]
    for process in ranks:
        process.start()
    got = dict(out.get() for _ in ranks)
    for process in ranks:
        process.join(60)
    for rank, (frames, tokens) in got.items():
        assert not isinstance(frames, str), f"rank {rank}: {frames}"
        assert tokens == all_tokens // 2, (tokens, all_tokens)  # each rank's transformer saw its half
        assert frames.shape == expected.shape == (9, 32, 64, 3)
        diff = np.abs(frames.astype(np.int16) - expected.astype(np.int16))
        # Stated tolerance: at most 1 of 255 levels anywhere (the split attention sums in another
        # order: ~1e-6 apart in float, so a pixel may round to the neighbouring level), mean < 0.01.
        assert diff.max() <= 1 and diff.mean() < 0.01, (rank, diff.max(), diff.mean())
        print(f"rank {rank}: {tokens} of {all_tokens} tokens, max {diff.max()}, mean {diff.mean():.5f} levels")
    assert np.array_equal(got[0][0], got[1][0])  # every rank ends with the same whole video


@pytest.mark.parametrize(
    ("model", "options", "kind", "words"),
    [
        ("wan-ti2v", "parallel = { ring = 2 }", "text_to_video", "ring attention needs an attention backend"),
        ("ltx2", "parallel = { ulysses = 2 }", "text_to_video", "cannot split LTX-2"),
        ("wan-vace", "parallel = { ulysses = 2 }", "elements", "has no context-parallel plan"),
        ("wan-ti2v", "parallel = { ulysses = 2 }", "text_to_video", "this engine process is alone"),
        (
            "wan-ti2v",
            'parallel = { ulysses = 2 }, cache = { kind = "taylorseer" }',
            "text_to_video",
            "`cache` with `parallel`",
        ),
        ("wan-ti2v", 'parallel = { ulysses = 2 }, compile = "regional"', "text_to_video", "`compile` with `parallel`"),
    ],
)
def test_what_cannot_be_split_here_is_a_clear_load_error(
    tmp_path: Path, model: str, options: str, kind: str, words: str
) -> None:
    engine = DiffusersEngine(load_profiles(models_file(tmp_path, model, options, kind)))
    with pytest.raises(EngineError, match="cannot load") as caught:
        engine.load()
    assert words in str(caught.value)


def test_a_group_of_one_is_a_plain_engine(tmp_path: Path) -> None:
    engine = DiffusersEngine(load_profiles(models_file(tmp_path, "wan-ti2v", "parallel = { ulysses = 1 }")))
    engine.load()  # nothing to split, no group needed
    assert frames_of(engine)[0].shape == (9, 32, 64, 3)
