"""Warm-up renders for compiled profiles, and a count of the graphs torch.compile has made.

A compiled transformer compiles on its first call, which would otherwise be the first task's. The
engine renders these shots at start-up instead: one per compiled profile (each kind calls the
transformer with its own inputs), at two frame counts, so that any dimension the first trace
happened to specialise (a tiny model's token count equal to a constant, say) is made dynamic
there and then. After that a new duration or frame size reuses the graphs; ``compiled_graphs``
lets the engine log a recompile if one happens anyway.
"""

from __future__ import annotations

import numpy as np

from happyhorse.engines.base import Element, Shot
from happyhorse.engines.diffusers.profiles import Profile

WARM_UP_FRAMES = (9, 17)  # two short clips: LTX-2 renders 8k+1 frames, Wan 4k+1


def warm_up_shots(profile: Profile, width: int, height: int) -> list[Shot]:
    """The shots that exercise ``profile``'s pipeline (its kind's conditioning included)."""
    gray = np.full((height, width, 3), 128, dtype=np.uint8)
    first = gray if profile.kind in ("image_to_video", "first_last_frame") else None
    last = gray if profile.kind == "first_last_frame" else None
    elements = [Element(name="warmup", description="", images=[gray])] if profile.kind == "elements" else []
    return [
        Shot(
            index=0,
            prompt="warm-up",
            num_frames=frames,
            width=width,
            height=height,
            seed=0,
            sound=False,
            mode=profile.mode,
            first_frame=first,
            last_frame=last,
            elements=elements,
        )
        for frames in WARM_UP_FRAMES
    ]


def compiled_graphs() -> int:
    """How many graphs torch.compile has made in this process so far."""
    from torch._dynamo.utils import counters

    return int(counters["stats"]["unique_graphs"])
