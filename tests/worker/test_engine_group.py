"""Engine groups: how --gpus is split into groups, and a real group of rank processes at work.

The arithmetic tests read a models.toml only (no torch). The group tests start two real rank
processes that meet over torch.distributed (gloo, on the CPU) and render with the synthetic engine,
so the plumbing — spawn, rank env, rendezvous, rank 0's result, a cancel all ranks agree on, a
rank killed mid-render — runs without any model; tests/e2e/test_diffusers_engine_groups_e2e.py
does the same through the real server with a diffusers model split across the ranks.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from happyhorse.config import Settings
from happyhorse.engines.base import RenderCancelled
from happyhorse.worker.engine_group import EngineGroup, GroupingError, Slot, plan_slots, rank_specs
from happyhorse.worker.engine_pool import EnginePool
from happyhorse.worker.engine_process import EngineCrashed, EngineProcess
from happyhorse.worker.job import RenderJob, ShotSpec, plain_request


def models(tmp_path: Path, std: str = "parallel = { ulysses = 2 }", pro: str = "") -> Path:
    toml = tmp_path / "models.toml"
    toml.write_text(
        f'[std]\ntext_to_video = {{ path = "/models/wan"{", " + std if std else ""} }}\n'
        f'[pro]\ntext_to_video = {{ path = "/models/wan"{", " + pro if pro else ""} }}\n'
    )
    return toml


def settings(tmp_path: Path, **overrides: object) -> Settings:
    return Settings(engine="diffusers", models=models(tmp_path), data_dir=tmp_path / "data", **overrides)


def test_four_gpus_for_groups_of_two_make_two_groups(tmp_path: Path) -> None:
    assert plan_slots(settings(tmp_path, gpus="0,1,2,3")) == [Slot(["0", "1"], 2), Slot(["2", "3"], 2)]


def test_three_gpus_for_groups_of_two_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(GroupingError) as caught:
        plan_slots(settings(tmp_path, gpus="0,1,2"))
    message = str(caught.value)
    assert "3 GPU(s) (0,1,2) cannot form engine groups of 2" in message
    assert "[std].text_to_video" in message and "a multiple of 2" in message and "--gpus 0,1" in message


def test_without_gpus_a_group_is_n_cpu_processes(tmp_path: Path) -> None:
    assert plan_slots(settings(tmp_path, engine_processes=2)) == [Slot(None, 2), Slot(None, 2)]


def test_without_parallel_there_is_one_engine_per_gpu(tmp_path: Path) -> None:
    plain = Settings(engine="diffusers", models=models(tmp_path, std=""), gpus="0,1,2")
    assert plan_slots(plain) == [Slot(["0"]), Slot(["1"]), Slot(["2"])]
    one = Settings(engine="diffusers", models=models(tmp_path, std="parallel = { ring = 1 }"), gpus="0,1,2")
    assert plan_slots(one) == [Slot(["0"]), Slot(["1"]), Slot(["2"])]  # a group of 1 is a plain engine


def test_profiles_asking_for_different_group_sizes_are_refused(tmp_path: Path) -> None:
    mixed = Settings(engine="diffusers", gpus="0,1,2,3", models=models(tmp_path, pro="parallel = { ring = 4 }"))
    with pytest.raises(GroupingError, match=r"\[std\]\.text_to_video asks for 2, \[pro\]\.text_to_video asks for 4"):
        plan_slots(mixed)


def test_the_pool_makes_one_slot_per_group_with_the_groups_gpus(tmp_path: Path) -> None:
    pool = EnginePool(settings(tmp_path, gpus="0,1,2,3"))
    assert len(pool) == 2 and all(isinstance(e, EngineGroup) for e in pool.engines)
    assert [e.device for e in pool.engines] == ["0,1", "2,3"]  # each rank's CUDA_VISIBLE_DEVICES


def test_each_rank_is_told_its_rank_and_where_to_meet() -> None:
    specs = rank_specs("engine-1", 2, 29512)
    assert [s.env for s in specs] == [
        {
            "RANK": str(r),
            "LOCAL_RANK": str(r),
            "WORLD_SIZE": "2",
            "LOCAL_WORLD_SIZE": "2",
            "MASTER_ADDR": "127.0.0.1",
            "MASTER_PORT": "29512",
        }
        for r in (0, 1)
    ]
    assert [s.title for s in specs] == ["hh-e1-rank0", "hh-e1-rank1"]


@pytest.mark.parametrize("command", ["serve", "worker"])
def test_serve_and_worker_refuse_gpus_that_cannot_be_grouped(tmp_path: Path, command: str) -> None:
    env = {
        **os.environ,
        "HAPPYHORSE_ENGINE": "diffusers",
        "HAPPYHORSE_MODELS": str(models(tmp_path)),
        "HAPPYHORSE_DATA_DIR": str(tmp_path / "data"),
    }
    proc = subprocess.run(
        [sys.executable, "-m", "happyhorse", command, "--gpus", "0,1,2"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "error: 3 GPU(s) (0,1,2) cannot form engine groups of 2" in proc.stderr


# -- a real group of two CPU ranks (torch.distributed over gloo), synthetic engine ---------------------


def job(tmp_path: Path, name: str, seconds: int = 1) -> RenderJob:
    return RenderJob(
        task_id=name,
        attempt=1,
        output_path=str(tmp_path / f"{name}.mp4"),
        request=plain_request(mode="std", sound=False),
        aspect_ratio="16:9",
        seed=3,
        shots=[ShotSpec("a lighthouse", seconds)],
    )


def rank_pids(group: EngineGroup) -> list[int]:
    return [rank.process.pid for rank in group.ranks]


@pytest.mark.slow
async def test_a_group_renders_cancels_in_step_and_restarts_after_a_rank_dies(tmp_path: Path) -> None:
    pytest.importorskip("torch")
    group = EngineGroup(Settings(engine="synthetic", data_dir=tmp_path / "data"), None, 2)
    await group.start()
    try:
        first = rank_pids(group)
        assert [Path(f"/proc/{pid}/comm").read_text().strip() for pid in first] == ["hh-e0-rank0", "hh-e0-rank1"]
        seen: list[float] = []
        result = await group.render(job(tmp_path, "one"), seen.append)
        assert result.num_frames == 24 and (tmp_path / "one.mp4").is_file()
        assert sorted(p.name for p in tmp_path.iterdir() if p.is_file()) == ["one.mp4"]  # rank 1's scratch is gone
        assert seen  # rank 0's progress reaches the caller

        # A cancel stops both ranks at the same step, and the group keeps serving.
        long = asyncio.create_task(group.render(job(tmp_path, "long", seconds=15), lambda f: None))
        while group.current_task != "long":
            await asyncio.sleep(0.05)
        await asyncio.sleep(0.5)
        assert group.interrupt("long")
        with pytest.raises(RenderCancelled):
            await long
        assert group.alive() and rank_pids(group) == first
        assert (await group.render(job(tmp_path, "two"), lambda f: None)).num_frames == 24

        # A rank killed mid-render fails that render as a crash and takes the group down with it.
        doomed = asyncio.create_task(group.render(job(tmp_path, "doomed", seconds=15), lambda f: None))
        await asyncio.sleep(1.0)
        os.kill(first[1], signal.SIGKILL)
        with pytest.raises(EngineCrashed, match="rank 1"):
            await asyncio.wait_for(doomed, 60)
        assert not group.alive()
        await group.restart()
        assert group.alive() and set(rank_pids(group)).isdisjoint(first)
        assert (await group.render(job(tmp_path, "three"), lambda f: None)).num_frames == 24
    finally:
        await group.stop()


def test_a_group_is_one_engine_process_to_the_dispatcher() -> None:
    assert issubclass(EngineGroup, EngineProcess)  # the dispatcher's type, interface and all
