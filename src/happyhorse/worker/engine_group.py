"""Engine groups: N engine processes that render one task together (``parallel = { ulysses = N }``).

    --gpus 0,1,2,3 and a profile asking for 2  →  engine-0 = ranks on GPUs 0,1 · engine-1 = ranks on GPUs 2,3

To the dispatcher a group is one engine slot: ``EngineGroup`` is an ``EngineProcess`` (same
``start`` / ``render`` / ``interrupt`` / ``alive`` / ``stop``), so nothing above the pool knows
there are several processes behind it.

    parent (this module)                      each rank (engine_process.engine_main)
    ─────────────────────                     ──────────────────────────────────────
    a fresh MASTER_PORT per start             RANK, WORLD_SIZE, MASTER_ADDR/PORT, LOCAL_RANK
    CUDA_VISIBLE_DEVICES = the group's GPUs   torch.distributed: gloo (CPU) / nccl + gloo
    the same RenderJob to every rank          the same call, same seed; diffusers splits the
    rank 0's progress and result                sequence inside the transformer
    cancel: every rank's flag                 ranks agree on a cancel at each step (all_reduce)

A rank that dies, or fails while the others still wait for it in a collective, breaks the group:
every rank is killed, the task fails (``EngineCrashed`` / ``RenderFailed``: failed and refunded
by the runner) and the pool starts the whole group afresh. An error every rank hits alike (a bad
input image) fails only the task; the group keeps serving.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from happyhorse.config import Settings
from happyhorse.worker.engine_process import EngineCrashed, EngineProcess, RenderFailed, detect_gpus
from happyhorse.worker.job import RenderJob, RenderResult

log = logging.getLogger("happyhorse.engine")

PEER_GRACE_S = 10.0  # after one rank ends badly, how long the others get to end the same way
COLLECTIVE_TIMEOUT_S = 600.0  # a collective waiting longer than this for a peer raises in the rank


class GroupingError(ValueError):
    """The GPUs given cannot be split into the engine groups the models file asks for."""


@dataclass(frozen=True)
class Slot:
    """One dispatcher slot: ``ranks`` processes on ``devices`` (None: the CPU)."""

    devices: list[str] | None
    ranks: int = 1


@dataclass(frozen=True)
class RankSpec:
    """What one rank process is told (picklable: it crosses the spawn)."""

    rank: int
    world_size: int
    port: int
    title: str  # the process name in ps/top (15 characters at most)
    env: dict[str, str] = field(default_factory=dict)


def group_size(settings: Settings) -> tuple[int, str | None]:
    """(N, where) the models file asks for: the profiles' common ``parallel`` degree, 1 without one.

    Torch-free (profiles only). A models file that cannot be read answers 1: the engine's load then
    reports the real problem.
    """
    if settings.engine != "diffusers":
        return 1, None
    from happyhorse.engines.diffusers.profiles import ProfileError, load_profiles

    try:
        profiles = load_profiles(settings.models)
    except ProfileError:
        return 1, None
    asked = {f"[{p.mode}].{p.kind}": next(iter(p.parallel.values())) for p in profiles.profiles.values() if p.parallel}
    sizes = set(asked.values()) - {1}
    if len(sizes) > 1:
        listed = ", ".join(f"{where} asks for {n}" for where, n in asked.items())
        raise GroupingError(
            f"{profiles.source}: every `parallel` profile must use the same number of "
            f"ranks, since one engine group serves them all ({listed})"
        )
    if not sizes:
        return 1, None
    size = sizes.pop()
    return size, next(where for where, n in asked.items() if n == size)


def plan_slots(settings: Settings) -> list[Slot]:
    """The dispatcher slots: one per GPU (or per CPU engine process), or one per group of N of them."""
    size, where = group_size(settings)
    gpus = detect_gpus(settings)
    if size == 1:
        return [Slot([g]) for g in gpus] if gpus else [Slot(None)] * max(1, settings.engine_processes)
    if not gpus:  # CPU ranks (gloo): HAPPYHORSE_ENGINE_PROCESSES groups of N processes
        return [Slot(None, size)] * max(1, settings.engine_processes)
    if len(gpus) % size:
        raise GroupingError(
            f"{len(gpus)} GPU(s) ({','.join(gpus)}) cannot form engine groups of {size}: {where} has "
            f"parallel = {size} ranks, so give --gpus (HAPPYHORSE_GPUS) a multiple of {size}, e.g. "
            f"--gpus {','.join(gpus[: len(gpus) - len(gpus) % size] or [str(i) for i in range(size)])}"
        )
    return [Slot(gpus[i : i + size], size) for i in range(0, len(gpus), size)]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def rank_specs(name: str, size: int, port: int) -> list[RankSpec]:
    slot = name.rsplit("-", 1)[-1]
    return [
        RankSpec(
            rank,
            size,
            port,
            f"hh-e{slot}-rank{rank}"[:15],
            {
                "RANK": str(rank),
                "LOCAL_RANK": str(rank),
                "WORLD_SIZE": str(size),
                "LOCAL_WORLD_SIZE": str(size),
                "MASTER_ADDR": "127.0.0.1",
                "MASTER_PORT": str(port),
            },
        )
        for rank in range(size)
    ]


class EngineGroup(EngineProcess):
    """N rank processes behind the interface of one ``EngineProcess``."""

    def __init__(self, settings: Settings, devices: list[str] | None, size: int, name: str = "engine-0") -> None:
        super().__init__(settings, ",".join(devices) if devices else None, name)
        self.size = size
        self.ranks: list[EngineProcess] = []

    async def start(self) -> None:
        """Start every rank at once (they meet in ``init_process_group``); all load, or none stays."""
        specs = rank_specs(self.name, self.size, free_port())
        self.ranks = [EngineProcess(self.settings, self.device, f"{self.name}.rank{s.rank}", rank=s) for s in specs]
        starts = [asyncio.create_task(rank.start()) for rank in self.ranks]
        done, pending = await asyncio.wait(starts, return_when=asyncio.FIRST_EXCEPTION)
        failed = [t.exception() for t in done if t.exception() is not None]
        if failed or pending:
            await self.stop()  # a rank that waits for a dead peer dies with it
            await asyncio.gather(*pending, return_exceptions=True)
            raise EngineCrashed(f"{self.name} could not start its {self.size} ranks: {failed[0]}")
        self.ready = True
        log.info(
            "%s ready: %d ranks (pids %s, devices %s)",
            self.name,
            self.size,
            ", ".join(str(r.process.pid) for r in self.ranks),
            self.device or "cpu",
        )

    async def render(self, job: RenderJob, on_progress: Callable[[float], None]) -> RenderResult:
        """Every rank renders ``job``; rank 0's progress and result are the task's."""
        if not self.alive():
            raise EngineCrashed(f"{self.name} is not running")
        runs = [
            asyncio.create_task(rank.render(job, on_progress if i == 0 else _ignore))
            for i, rank in enumerate(self.ranks)
        ]
        await asyncio.sleep(0)  # each rank has cleared its cancel flag before interrupt() can set it
        self.current_task = job.task_id
        try:
            _, pending = await asyncio.wait(runs, return_when=asyncio.FIRST_EXCEPTION)
            if pending:  # one rank ended badly: the others end alike soon, or wait on it in a collective
                _, pending = await asyncio.wait(pending, timeout=PEER_GRACE_S)
            errors = [run.exception() if run.done() else None for run in runs]
            if pending or any(isinstance(e, EngineCrashed) for e in errors) or _mixed(errors):
                await self._break(runs, errors)
            if errors[0] is not None:
                raise errors[0]
            return runs[0].result()
        finally:
            self.current_task = None

    async def _break(self, runs: list[asyncio.Task[RenderResult]], errors: list[BaseException | None]) -> None:
        """Kill every rank and raise what happened; the pool restarts the group (``alive()`` is False)."""
        await self.stop()
        await asyncio.gather(*runs, return_exceptions=True)
        crashed = [i for i, e in enumerate(errors) if isinstance(e, EngineCrashed)]
        if crashed:
            raise EngineCrashed(f"{self.name}: rank {crashed[0]} died ({errors[crashed[0]]}); the group restarts")
        first = next((e for e in errors if e is not None), None)
        if isinstance(first, RenderFailed):
            raise RenderFailed(str(first))
        raise EngineCrashed(f"{self.name}: its ranks fell out of step; the group restarts")

    def interrupt(self, task_id: str) -> bool:
        if self.current_task != task_id:
            return False
        for rank in self.ranks:  # every rank stops at the same step: they agree on it (agree_to_stop)
            if rank.cancel_flag is not None:
                rank.cancel_flag.set()
        log.info("%s: interrupting task %s", self.name, task_id)
        return True

    def alive(self) -> bool:
        return bool(self.ranks) and all(rank.alive() for rank in self.ranks)

    async def stop(self) -> None:
        self.ready = False
        await asyncio.gather(*(rank.stop() for rank in self.ranks), return_exceptions=True)


def _ignore(_: float) -> None:
    return None


def _mixed(errors: list[BaseException | None]) -> bool:
    """Ranks that ended differently (one succeeded, another failed): the group is out of step."""
    return len({type(e) for e in errors}) > 1


# -- inside a rank process (torch is imported only here) ---------------------------------------------


class RankGroup:
    """This process's membership of its group: ``torch.distributed`` over the rank's env."""

    def __init__(self, spec: RankSpec) -> None:
        from datetime import timedelta

        import torch
        import torch.distributed as dist

        self.rank = spec.rank
        if torch.cuda.is_available():
            torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
            backend = "cpu:gloo,cuda:nccl"  # the cancel vote is a CPU tensor; attention stays on NCCL
        else:
            backend = "gloo"
        dist.init_process_group(
            backend, rank=spec.rank, world_size=spec.world_size, timeout=timedelta(seconds=COLLECTIVE_TIMEOUT_S)
        )

    def agree_to_stop(self, mine: bool) -> bool:
        """True on every rank when any rank's cancel flag is set: all stop at the same step.

        Every rank calls it at the same points (the same job, the same code), so it never blocks
        on a peer that is elsewhere.
        """
        import torch
        import torch.distributed as dist

        vote = torch.tensor([1 if mine else 0])
        dist.all_reduce(vote, op=dist.ReduceOp.MAX)
        return bool(vote.item())

    def close(self) -> None:
        import torch.distributed as dist

        with contextlib.suppress(Exception):
            dist.destroy_process_group()


def scratch_job(job: RenderJob, rank: int) -> Any:
    """Rank > 0 renders the same job into its own scratch file, deleted afterwards."""
    from dataclasses import replace

    return replace(job, output_path=f"{job.output_path}.rank{rank}")
