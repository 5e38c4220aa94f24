"""The render scratch directory (``<data dir>/work``), and what a killed render leaves in it.

An attempt renders into ``.{task}-{attempt}.<random>.part.mp4`` and renames it ``{task}-{attempt}.mp4``,
which the runner stores and deletes. A process killed mid-render (SIGKILL, out of memory, power)
leaves either behind, and nothing else would ever remove them: the task itself is retried as a new
attempt, under new names.

``claim_work_dir`` runs once when a rendering process starts (``happyhorse serve`` in embedded mode,
``happyhorse worker``), before it takes a task. It takes an exclusive lock on the directory, held for
the life of the process, then removes those leftovers. If another live process holds the lock (two
processes given one data dir), it removes nothing: those files may be that process's renders.
"""

from __future__ import annotations

import logging
import os
import re
from pathlib import Path

log = logging.getLogger("happyhorse.worker")

# Exactly what an attempt writes (worker/render.py, worker/runner.py): nothing else in the directory goes.
LEFTOVER = re.compile(r"^(?:\.[A-Za-z0-9_-]+-\d+\.[A-Za-z0-9_]+\.part\.mp4|[A-Za-z0-9_-]+-\d+\.mp4)$")
LOCK_NAME = ".lock"

_held: dict[Path, int] = {}  # directory → the open, locked descriptor (closing it would drop the lock)


def claim_work_dir(work_dir: Path) -> int:
    """Lock ``work_dir`` for this process and remove what killed renders left; returns how many files went."""
    work_dir.parent.mkdir(mode=0o700, parents=True, exist_ok=True)  # the data dir, owner-only if it is new
    work_dir.mkdir(exist_ok=True)
    if work_dir in _held:
        return 0
    try:
        import fcntl
    except ImportError:  # pragma: no cover - not on POSIX: leftovers stay, as before
        return 0
    fd = os.open(work_dir / LOCK_NAME, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        log.warning("%s is in use by another process; leaving its files alone", work_dir)
        return 0
    _held[work_dir] = fd
    removed = 0
    for entry in os.scandir(work_dir):
        if LEFTOVER.match(entry.name) and entry.is_file(follow_symlinks=False):
            Path(entry.path).unlink(missing_ok=True)
            removed += 1
    if removed:
        log.info("removed %d file(s) left by interrupted renders in %s", removed, work_dir)
    return removed
