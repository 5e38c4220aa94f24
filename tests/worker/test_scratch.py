"""claim_work_dir removes exactly what interrupted renders leave, and nothing while another process holds it."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

from happyhorse.worker import scratch

HOLD = """
import fcntl, os, sys, time
fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT, 0o600)
fcntl.flock(fd, fcntl.LOCK_EX)
print("locked", flush=True)
time.sleep(60)
"""


def make(work: Path, *names: str) -> None:
    work.mkdir(parents=True, exist_ok=True)
    for name in names:
        (work / name).write_bytes(b"x")


LEFT = [".n92abc-1.k2_x9q0p.part.mp4", "n92abc-1.mp4", "n92abc-12.mp4"]
KEPT = ["notes.txt", "n92abc.mp4", ".n92abc-1.part.mp4.bak", "video.mp4", "n92abc-1.mp4.d"]


def test_only_leftovers_go(tmp_path: Path) -> None:
    work = tmp_path / "work"
    make(work, *LEFT, *KEPT)
    (work / "sub-1.mp4").mkdir()  # a directory of a matching name is not a render file
    assert scratch.claim_work_dir(work) == len(LEFT)
    assert sorted(p.name for p in work.iterdir()) == sorted([*KEPT, "sub-1.mp4", scratch.LOCK_NAME])


def test_a_directory_another_process_holds_is_left_alone(tmp_path: Path) -> None:
    work = tmp_path / "held"
    make(work, *LEFT)
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD, str(work / scratch.LOCK_NAME)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
        assert scratch.claim_work_dir(work) == 0
        assert all((work / name).exists() for name in LEFT)
    finally:
        holder.kill()
        holder.wait(10)
    time.sleep(0.1)
    assert scratch.claim_work_dir(work) == len(LEFT)  # its owner is gone: the files are leftovers now
