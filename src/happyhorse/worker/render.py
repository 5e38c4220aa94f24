"""One render, end to end, inside the engine process: inputs → shots → engine → one MP4.

Every engine gets every contract feature from here: multi-shot assembly, the first and last
frames, elements, a continuous audio track across cuts, H.264/AAC encoding, and an atomic
write of the finished file. ``render_job`` reads top to bottom:

    1. frame size from the engine
    2. decode and fit the first/last images; decode the element images
    3. build one ``Shot`` per ``ShotSpec``
    4. render each shot and stream its frames (and its audio, padded to the shot) into the MP4
    5. move the finished file into place
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from collections.abc import Callable, Iterable
from pathlib import Path

import numpy as np

from happyhorse.engines.base import AUDIO_SAMPLE_RATE, FPS, Element, Engine, EngineError, Shot
from happyhorse.media.encode import Mp4Writer
from happyhorse.media.images import ImageError, decode_image, fit_to_frame
from happyhorse.media.watermark import Watermark
from happyhorse.worker.job import RenderJob, RenderResult

AudioSource = Callable[[Shot], np.ndarray | None]
"""The seam for engines that make no sound: given a shot, return float32 (channels, samples) audio
at ``AUDIO_SAMPLE_RATE`` (any length; it is padded or trimmed to the shot), or None for silence.
Not built yet; ``render_job`` consults it only when the engine returns no audio for a shot."""

MAX_SEED = 2**31 - 1


def render_job(
    job: RenderJob,
    engine: Engine,
    progress: Callable[[float], None],
    *,
    audio_source: AudioSource | None = None,
) -> RenderResult:
    """Render ``job`` with ``engine`` into ``job.output_path``; ``progress`` gets 0..1 overall.

    Raises ``EngineError`` (a message a user may see) when an input image is unusable or the
    engine breaks its contract; no partial file is left at ``output_path`` then.
    """
    # 1. The engine decides the pixels; the caller already adapted the aspect ratio to the image.
    width, height = engine.frame_size(job.mode, job.aspect_ratio)

    # 2. Inputs, decoded here because raw bytes are what crosses the process boundary.
    first = _fitted(job.first_image, width, height, "first image")
    last = _fitted(job.last_image, width, height, "last image")
    elements = [
        Element(
            spec.name,
            spec.description,
            [_decoded(data, f"element @{spec.name}", (width, height)) for data in spec.images],
        )
        for spec in job.elements
    ]

    # 3. Shots.
    shots = build_shots(job, width, height, first, last, elements)
    total_frames = sum(shot.num_frames for shot in shots)

    # 4. + 5. Render into a temp file beside the target, so a reader never sees half a video.
    output = Path(job.output_path)
    output.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(dir=output.parent, prefix=f".{output.stem}.", suffix=".part.mp4")
    os.close(fd)
    try:
        mark = Watermark(width, height) if job.watermark else None
        with Mp4Writer(tmp_name, width, height, fps=FPS, audio=job.sound) as writer:
            done = 0
            for shot in shots:
                _render_shot(engine, shot, writer, audio_source, done, total_frames, progress, mark)
                done += shot.num_frames
        os.chmod(tmp_name, 0o644)  # mkstemp makes it owner-only; a video is served like any file
        os.replace(tmp_name, output)
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise
    progress(1.0)
    return RenderResult(
        width=width,
        height=height,
        duration=total_frames / FPS,
        num_frames=total_frames,
        has_audio=job.sound,
    )


def build_shots(
    job: RenderJob,
    width: int,
    height: int,
    first: np.ndarray | None,
    last: np.ndarray | None,
    elements: list[Element],
) -> list[Shot]:
    """One ``Shot`` per ``ShotSpec``: the first image opens the first shot, the last image closes
    the last one (the contract only allows it with a single shot)."""
    if not job.shots:
        raise EngineError("the task has no shots")
    shots = []
    for index, spec in enumerate(job.shots):
        shots.append(
            Shot(
                index=index,
                prompt=spec.prompt,
                num_frames=spec.duration * FPS,
                width=width,
                height=height,
                seed=shot_seed(job.seed, index),
                task_seed=job.seed,
                cfg_scale=job.cfg_scale,
                negative_prompt=job.negative_prompt,
                sound=job.sound,
                mode=job.mode,
                first_frame=first if index == 0 else None,
                last_frame=last if index == len(job.shots) - 1 else None,
                elements=elements,
                fps=FPS,
            )
        )
    return shots


def shot_seed(seed: int, index: int) -> int:
    """The seed for shot ``index``: the task's own seed for the first shot (so a single-shot task
    renders with exactly the seed it reports), a hash of both for the others (so shots differ)."""
    if index == 0:
        return seed
    digest = hashlib.sha256(f"{seed}:{index}".encode()).digest()
    return int.from_bytes(digest[:4], "big") & MAX_SEED


def _render_shot(
    engine: Engine,
    shot: Shot,
    writer: Mp4Writer,
    audio_source: AudioSource | None,
    done: int,
    total: int,
    progress: Callable[[float], None],
    mark: Watermark | None = None,
) -> None:
    """Render one shot into the writer; ``done`` frames of ``total`` came before it."""

    def shot_progress(fraction: float) -> None:
        # Weighted by frames, so a 12 s shot moves the bar more than a 1 s one.
        progress((done + min(max(fraction, 0.0), 1.0) * shot.num_frames) / total)

    clip = engine.render(shot, shot_progress)
    if writer.has_audio:
        # Audio first: the writer releases it as the frames arrive, interleaving the two streams.
        audio, rate = clip.audio, clip.sample_rate
        if audio is None and audio_source is not None:
            audio, rate = audio_source(shot), AUDIO_SAMPLE_RATE
        writer.write_audio(shot_audio(audio, rate, shot, writer.sample_rate))
    _write_frames(engine, shot, clip.frames, writer, mark)


def _write_frames(
    engine: Engine, shot: Shot, frames: Iterable[np.ndarray], writer: Mp4Writer, mark: Watermark | None = None
) -> None:
    """Stream frames into the writer, holding the engine to exactly ``num_frames`` of the right shape."""
    expected = (shot.height, shot.width, 3)
    count = 0
    for frame in frames:
        if count == shot.num_frames:
            raise EngineError(
                f"engine {engine.name!r} yielded more than {shot.num_frames} frames for shot {shot.index + 1}"
            )
        if not isinstance(frame, np.ndarray) or frame.shape != expected or frame.dtype != np.uint8:
            got = f"{frame.dtype} {frame.shape}" if isinstance(frame, np.ndarray) else type(frame).__name__
            raise EngineError(
                f"engine {engine.name!r} yielded frame {count} of shot {shot.index + 1} as {got}, "
                f"expected uint8 {expected}"
            )
        # A copy before stamping: an engine may hand out the same buffer (a pinned first frame) again.
        writer.write_frame(mark.apply(frame.copy()) if mark is not None else frame)
        count += 1
    if count != shot.num_frames:
        raise EngineError(
            f"engine {engine.name!r} yielded {count} frames for shot {shot.index + 1}, expected {shot.num_frames}"
        )


def shot_audio(audio: np.ndarray | None, rate: int, shot: Shot, target_rate: int) -> np.ndarray:
    """A shot's audio as float32 (channels, n) at ``target_rate``, exactly the shot's length.

    None becomes silence. Shorter audio is padded with silence and longer audio trimmed, so every
    cut in the video is a cut in the audio too and the track never drifts off the picture.
    """
    n = round(shot.num_frames * target_rate / shot.fps)
    if audio is None:
        return np.zeros((2, n), np.float32)
    samples = np.asarray(audio, dtype=np.float32)
    if samples.ndim == 1:
        samples = samples[None, :]
    if samples.ndim != 2 or samples.shape[0] == 0:
        raise EngineError(f"shot {shot.index + 1} audio must be (channels, samples), got {samples.shape}")
    if rate != target_rate:
        samples = _resample(samples, rate, target_rate)
    if samples.shape[1] < n:
        samples = np.pad(samples, ((0, 0), (0, n - samples.shape[1])))
    return samples[:, :n]


def _resample(samples: np.ndarray, rate: int, target_rate: int) -> np.ndarray:
    """Linear-interpolation resampling: adequate for a soundtrack, and no extra dependency."""
    if rate <= 0:
        raise EngineError(f"audio sample rate must be positive, got {rate}")
    length = round(samples.shape[1] * target_rate / rate)
    src_t = np.arange(samples.shape[1]) / rate
    dst_t = np.arange(length) / target_rate
    return np.stack([np.interp(dst_t, src_t, channel) for channel in samples]).astype(np.float32)


def _fitted(data: bytes | None, width: int, height: int, what: str) -> np.ndarray | None:
    """Decode an input image and fit it to the frame (cover, centre-crop), or None when absent."""
    if data is None:
        return None
    return fit_to_frame(_decoded(data, what, (width, height)), width, height)


def _decoded(data: bytes, what: str, frame: tuple[int, int]) -> np.ndarray:
    """Decoded no larger than it takes to cover the frame: one task's inputs never cost gigabytes."""
    try:
        return decode_image(data, cover=frame)
    except ImageError as exc:
        raise EngineError(f"the {what} could not be used: {exc.reason}") from None
