"""render_job: a RenderJob in, one playable MP4 out — decoded and checked the way a viewer would."""

from __future__ import annotations

import io
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw

from happyhorse.engines.base import Clip, EngineError, Progress, Shot
from happyhorse.engines.synthetic import SyntheticEngine
from happyhorse.media.encode import probe, read_audio, read_frame
from happyhorse.media.images import decode_image, fit_to_frame
from happyhorse.worker.job import ElementSpec, RenderJob, ShotSpec, plain_request
from happyhorse.worker.render import render_job, shot_seed

FRAME = 1 / 24
RATE = 48_000


REQUEST_FIELDS = ("mode", "sound", "cfg_scale", "negative_prompt", "watermark")


def make_job(tmp_path: Path, shots: list[tuple[str, int]] | None = None, **overrides: object) -> RenderJob:
    """A job; overrides name a job field or one of the request's (``mode``, ``sound``…)."""
    request = plain_request(**{k: overrides.pop(k) for k in REQUEST_FIELDS if k in overrides})  # type: ignore[arg-type]
    fields: dict = {
        "task_id": "t1",
        "attempt": 1,
        "output_path": str(tmp_path / "out" / "video.mp4"),
        "request": request,
        "aspect_ratio": "16:9",
        "seed": 1234,
        "shots": [ShotSpec(prompt, seconds) for prompt, seconds in (shots or [("a lighthouse at dusk", 1)])],
    }
    fields.update(overrides)
    return RenderJob(**fields)


def png(width: int, height: int, colour: tuple[int, int, int]) -> bytes:
    """A picture with structure (a disc and a bar), so a wrong crop or a wrong image shows."""
    img = Image.new("RGB", (width, height), colour)
    draw = ImageDraw.Draw(img)
    draw.ellipse((width // 4, height // 4, width // 2, height // 2), fill=(250, 250, 250))
    draw.rectangle((0, height * 3 // 4, width, height * 3 // 4 + height // 10), fill=(10, 10, 10))
    buf = io.BytesIO()
    img.save(buf, "PNG")
    return buf.getvalue()


def diff(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.abs(a.astype(np.int16) - b.astype(np.int16)).mean())


def no_progress(fraction: float) -> None:
    pass


class SmallSynthetic(SyntheticEngine):
    """The synthetic engine at 320×180, for tests about shots and sound rather than pixels."""

    def frame_size(self, mode: str, aspect_ratio: str) -> tuple[int, int]:
        return (320, 180)


@dataclass
class FakeEngine:
    """A tiny engine that records its shots and can be told to misbehave."""

    name: str = "fake"
    size: tuple[int, int] = (64, 48)
    extra_frames: int = 0
    bad_shape: bool = False
    audio: np.ndarray | None = None
    sample_rate: int = RATE
    shots: list[Shot] = field(default_factory=list)

    def load(self) -> None:
        pass

    def frame_size(self, mode: str, aspect_ratio: str) -> tuple[int, int]:
        return self.size

    def render(self, shot: Shot, progress: Progress) -> Clip:
        self.shots.append(shot)
        return Clip(frames=self._frames(shot, progress), audio=self.audio, sample_rate=self.sample_rate)

    def _frames(self, shot: Shot, progress: Progress) -> Iterator[np.ndarray]:
        n = shot.num_frames + self.extra_frames
        for i in range(n):
            shape = (shot.height, shot.width + 2, 3) if self.bad_shape and i == 3 else (shot.height, shot.width, 3)
            yield np.full(shape, (i * 9 + shot.index * 80) % 256, np.uint8)
            progress((i + 1) / n)


def test_text_to_video_with_sound(tmp_path: Path) -> None:
    job = make_job(tmp_path)
    result = render_job(job, SyntheticEngine(), no_progress)
    info = probe(job.output_path)
    assert (info["width"], info["height"]) == (1280, 720) == (result.width, result.height)
    assert info["fps"] == pytest.approx(24) and info["video_codec"] == "h264"
    assert info["num_frames"] == 24 == result.num_frames
    assert info["duration"] == pytest.approx(1.0, abs=FRAME) and result.duration == pytest.approx(1.0)
    assert info["has_audio"] and result.has_audio and info["audio_codec"] == "aac"
    assert info["audio_duration"] == pytest.approx(info["duration"], abs=FRAME)
    # nothing but the finished file is left beside it
    assert sorted(p.name for p in Path(job.output_path).parent.iterdir()) == ["video.mp4"]


def test_no_sound_means_no_audio_stream(tmp_path: Path) -> None:
    job = make_job(tmp_path, sound=False, mode="std", aspect_ratio="9:16")
    result = render_job(job, SyntheticEngine(), no_progress)
    info = probe(job.output_path)
    assert (info["width"], info["height"]) == (720, 1280)
    assert info["has_audio"] is False and result.has_audio is False


def test_first_and_last_images_are_the_first_and_last_frames(tmp_path: Path) -> None:
    first, last = png(800, 600, (200, 50, 40)), png(600, 800, (30, 70, 200))  # 4:3 and 3:4: both cropped
    job = make_job(tmp_path, first_image=first, last_image=last, sound=False)
    render_job(job, SyntheticEngine(), no_progress)
    expected_first = fit_to_frame(decode_image(first), 1280, 720)
    expected_last = fit_to_frame(decode_image(last), 1280, 720)
    assert diff(read_frame(job.output_path, 0), expected_first) < 6
    assert diff(read_frame(job.output_path, "last"), expected_last) < 6
    middle = read_frame(job.output_path, 12)
    assert diff(middle, expected_first) > 6 and diff(middle, expected_last) > 6


def test_multi_shot_is_one_file_with_cuts_and_continuous_sound(tmp_path: Path) -> None:
    job = make_job(tmp_path, shots=[("a door opens", 1), ("a cat walks in", 2), ("the cat sleeps", 1)])
    result = render_job(job, SmallSynthetic(), no_progress)
    info = probe(job.output_path)
    assert info["num_frames"] == 96 == result.num_frames
    assert info["duration"] == pytest.approx(4.0, abs=FRAME)
    assert info["audio_duration"] == pytest.approx(4.0, abs=FRAME)
    frames = {i: read_frame(job.output_path, i) for i in (11, 12, 23, 24, 71, 72)}
    within = diff(frames[11], frames[12])
    assert diff(frames[23], frames[24]) > max(15, 3 * within)
    assert diff(frames[71], frames[72]) > max(15, 3 * within)
    # the track has sound right across each cut: 20 ms windows never fall silent
    audio = read_audio(job.output_path)
    assert audio.shape[1] / RATE == pytest.approx(4.0, abs=FRAME)
    window = RATE // 50
    for cut in (1.0, 3.0):
        start = int(cut * RATE) - 3 * window
        rms = np.sqrt((audio[:, start : start + 6 * window] ** 2).reshape(2, 6, window).mean(axis=(0, 2)))
        assert rms.min() > 0.005


def test_same_job_same_video_and_a_new_prompt_changes_it(tmp_path: Path) -> None:
    a = make_job(tmp_path, output_path=str(tmp_path / "a.mp4"))
    b = make_job(tmp_path, output_path=str(tmp_path / "b.mp4"))
    c = make_job(tmp_path, output_path=str(tmp_path / "c.mp4"), shots=[("a desert at noon", 1)])
    for job in (a, b, c):
        render_job(job, SmallSynthetic(), no_progress)
    # Decoded frames match to within a fraction of a level: after a silent render in the same
    # process the second encode differs in a few macroblocks (mean 0.34, seen with av 18.1 at the
    # last landed commit too; cause not found yet). A changed scene differs by far more (below).
    assert diff(read_frame(a.output_path, 0), read_frame(b.output_path, 0)) < 1.0
    assert diff(read_frame(a.output_path, "last"), read_frame(b.output_path, "last")) < 1.0
    assert np.array_equal(read_audio(a.output_path), read_audio(b.output_path))
    assert diff(read_frame(a.output_path, 0), read_frame(c.output_path, 0)) > 10


def test_shots_get_the_inputs_and_derived_seeds(tmp_path: Path) -> None:
    engine = FakeEngine()
    elements = [ElementSpec("hero", "a red box", [png(40, 30, (255, 0, 0)), png(30, 30, (0, 0, 255))])]
    job = make_job(
        tmp_path,
        shots=[("one @hero", 1), ("two", 2)],
        first_image=png(128, 96, (0, 200, 0)),
        elements=elements,
        cfg_scale=0.8,
        negative_prompt="blur",
        seed=99,
    )
    render_job(job, engine, no_progress)
    first, second = engine.shots
    assert (first.num_frames, second.num_frames) == (24, 48)
    assert (first.width, first.height) == (64, 48)
    assert first.seed == 99 == shot_seed(99, 0) and second.seed == shot_seed(99, 1) != 99
    assert first.first_frame is not None and first.first_frame.shape == (48, 64, 3)
    assert second.first_frame is None and first.last_frame is None
    assert first.cfg_scale == 0.8 and first.negative_prompt == "blur" and first.sound and first.mode == "std"
    hero = first.elements[0]
    assert hero.name == "hero" and [img.shape for img in hero.images] == [(30, 40, 3), (30, 30, 3)]


def test_progress_is_overall_and_weighted_by_frames(tmp_path: Path) -> None:
    seen: list[float] = []
    render_job(make_job(tmp_path, shots=[("a", 1), ("b", 2), ("c", 1)]), FakeEngine(), seen.append)
    assert seen == sorted(seen) and seen[-1] == 1.0
    assert seen[23] == pytest.approx(0.25)  # the 1 s shot of 4 s is done
    assert seen[71] == pytest.approx(0.75)


def test_engine_without_sound_gets_silence_or_the_audio_source(tmp_path: Path) -> None:
    silent = make_job(tmp_path, output_path=str(tmp_path / "silent.mp4"))
    render_job(silent, FakeEngine(), no_progress)
    info = probe(silent.output_path)
    assert info["has_audio"] and info["audio_duration"] == pytest.approx(1.0, abs=FRAME)
    assert np.abs(read_audio(silent.output_path)).max() < 1e-3

    def beep(shot: Shot) -> np.ndarray:
        t = np.arange(RATE // 2) / RATE  # half a shot: padded to the shot with silence
        return np.sin(2 * np.pi * 440 * t).astype(np.float32)[None, :] * 0.5

    sourced = make_job(tmp_path, output_path=str(tmp_path / "sourced.mp4"))
    render_job(sourced, FakeEngine(), no_progress, audio_source=beep)
    audio = read_audio(sourced.output_path)
    assert np.abs(audio[:, RATE // 10 : RATE // 3]).max() > 0.3
    assert np.abs(audio[:, RATE * 3 // 4 :]).max() < 1e-2


def test_engine_audio_at_another_rate_is_resampled_to_the_shot(tmp_path: Path) -> None:
    t = np.arange(16_000 * 2) / 16_000  # 2 s of mono at 16 kHz for a 1 s shot: resampled, then trimmed
    engine = FakeEngine(audio=(0.5 * np.sin(2 * np.pi * 300 * t)).astype(np.float32)[None, :], sample_rate=16_000)
    job = make_job(tmp_path)
    render_job(job, engine, no_progress)
    info = probe(job.output_path)
    assert info["audio_duration"] == pytest.approx(1.0, abs=FRAME)
    audio = read_audio(job.output_path)
    assert audio.shape[0] == 2 and np.abs(audio[:, RATE // 10 : RATE * 9 // 10]).max() > 0.3


@pytest.mark.parametrize(
    ("engine", "message"),
    [
        (FakeEngine(extra_frames=1), "more than 24 frames"),
        (FakeEngine(extra_frames=-5), "yielded 19 frames for shot 1, expected 24"),
        (FakeEngine(bad_shape=True), r"frame 3 of shot 1 as uint8 \(48, 66, 3\), expected uint8 \(48, 64, 3\)"),
    ],
)
def test_an_engine_breaking_its_contract_fails_cleanly(tmp_path: Path, engine: FakeEngine, message: str) -> None:
    job = make_job(tmp_path)
    with pytest.raises(EngineError, match=message):
        render_job(job, engine, no_progress)
    out = Path(job.output_path).parent
    assert list(out.iterdir()) == []  # neither the video nor a temp file is left behind


def test_an_unusable_image_is_an_engine_error(tmp_path: Path) -> None:
    job = make_job(tmp_path, first_image=b"definitely not a picture")
    with pytest.raises(EngineError, match="first image could not be used"):
        render_job(job, FakeEngine(), no_progress)
    assert not Path(job.output_path).exists()


def test_shot_seeds_are_stable_and_in_range() -> None:
    assert shot_seed(5, 0) == 5
    seeds = [shot_seed(5, i) for i in range(1, 5)]
    assert seeds == [shot_seed(5, i) for i in range(1, 5)]
    assert len(set(seeds)) == 4 and all(0 <= s < 2**31 for s in seeds)
