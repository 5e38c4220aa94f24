"""The credits table: cost per second of output by mode and sound."""

from __future__ import annotations

RATES: dict[tuple[str, bool], int] = {
    ("pro", False): 54,
    ("pro", True): 80,
    ("std", False): 40,
    ("std", True): 60,
}


def task_cost(mode: str, duration: int, sound: bool) -> int:
    """Credits for a task: rate × duration (pro, 5 s, sound → 400)."""
    return RATES[(mode, sound)] * duration
