"""DiffusersEngine.render on tiny random-weight pipelines, loaded through the real from_pretrained path."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import tiny_diffusers
import torch

from happyhorse.engines.base import AUDIO_SAMPLE_RATE, Clip, Element, EngineError, Shot
from happyhorse.engines.diffusers.engine import DiffusersEngine, element_prompt
from happyhorse.engines.diffusers.profiles import load_profiles


@pytest.fixture(scope="module")
def engine(tmp_path_factory: pytest.TempPathFactory) -> DiffusersEngine:
    models = tiny_diffusers.build_all(tmp_path_factory.getbasetemp() / "tiny-diffusers")
    toml = tmp_path_factory.mktemp("engine") / "models.toml"
    toml.write_text(tiny_diffusers.models_toml(models))
    engine = DiffusersEngine(load_profiles(toml))
    engine.load()
    return engine


def picture(width: int = 64, height: int = 32, seed: int = 0) -> np.ndarray:
    return np.random.RandomState(seed).randint(0, 256, (height, width, 3), dtype=np.uint8)


def render(engine: DiffusersEngine, **fields: Any) -> tuple[Clip, list[np.ndarray], list[float]]:
    values: dict[str, Any] = {
        "index": 0,
        "prompt": "a horse on a beach",
        "num_frames": 20,
        "width": 64,
        "height": 32,
        "seed": 7,
        "sound": False,
    }
    values.update(fields)
    progress: list[float] = []
    clip = engine.render(Shot(**values), progress.append)
    return clip, list(clip.frames), progress


def assert_frames(frames: list[np.ndarray], count: int, width: int = 64, height: int = 32) -> None:
    assert len(frames) == count
    assert all(f.shape == (height, width, 3) and f.dtype == np.uint8 for f in frames)


def assert_rising(progress: list[float]) -> None:
    assert len(progress) >= 3 and progress[-1] == 1.0
    assert progress == sorted(progress) and progress[0] <= 0.5


def test_ltx2_text_to_video_with_native_audio(engine: DiffusersEngine) -> None:
    clip, frames, progress = render(engine, num_frames=20, sound=True)  # renders 25 (8k+1), trims to 20
    assert_frames(frames, 20)
    assert clip.audio is not None and clip.sample_rate == AUDIO_SAMPLE_RATE
    assert clip.audio.shape == (2, 20 * AUDIO_SAMPLE_RATE // 24) and clip.audio.dtype == np.float32
    assert np.abs(clip.audio).max() > 0  # the model's own track, not silence
    assert_rising(progress)


def test_without_sound_there_is_no_audio(engine: DiffusersEngine) -> None:
    clip, frames, _ = render(engine, num_frames=9, sound=False)
    assert_frames(frames, 9)
    assert clip.audio is None


def test_same_seed_same_video_other_seed_other_video(engine: DiffusersEngine) -> None:
    first, frames_a, _ = render(engine, seed=11, sound=True)
    second, frames_b, _ = render(engine, seed=11, sound=True)
    _, frames_c, _ = render(engine, seed=12, sound=True)
    assert all(np.array_equal(a, b) for a, b in zip(frames_a, frames_b, strict=True))
    assert first.audio is not None and second.audio is not None and np.array_equal(first.audio, second.audio)
    assert not all(np.array_equal(a, c) for a, c in zip(frames_a, frames_c, strict=True))


def test_a_long_shot_renders_in_passes_each_continued_from_the_last_frame(
    engine: DiffusersEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    model = engine._model(engine.profiles.resolve("std", "text_to_video"))  # type: ignore[arg-type]
    calls = spy_on_passes(model.family, monkeypatch)
    clip, frames, progress = render(engine, num_frames=50, sound=True)  # frames_per_pass 41: 41 + 16
    assert_frames(frames, 50)
    assert [c["num_frames"] for c in calls] == [41, 17]
    assert [c["kind"] for c in calls] == ["text_to_video", "image_to_video"]
    assert calls[0]["first"] is None
    continued_from = np.asarray(calls[1]["first"])
    assert np.array_equal(continued_from, frames[40])  # pass 2 starts on pass 1's last frame
    assert clip.audio is not None and clip.audio.shape == (2, 50 * 2000)
    assert_rising(progress)


def spy_on_passes(family: Any, monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    calls: list[dict[str, Any]] = []
    original = family.call

    def call(pipe: Any, inputs: Any) -> Any:
        calls.append(dict(vars(inputs)))
        return original(pipe, inputs)

    monkeypatch.setattr(family, "call", call)
    return calls


def test_wan_image_to_video_pins_the_first_frame(engine: DiffusersEngine) -> None:
    first = picture(seed=1)
    clip, frames, progress = render(engine, first_frame=first, num_frames=30, sound=True)
    assert_frames(frames, 30)
    assert np.array_equal(frames[0], first)
    assert clip.audio is not None and clip.audio.shape == (2, 30 * 2000)  # from the audio source
    assert_rising(progress)


def test_wan_first_and_last_frame(engine: DiffusersEngine, monkeypatch: pytest.MonkeyPatch) -> None:
    model = engine._model(engine.profiles.resolve("std", "first_last_frame"))  # type: ignore[arg-type]
    calls = spy_on_passes(model.family, monkeypatch)
    first, last = picture(seed=2), picture(seed=3)
    _, frames, _ = render(engine, first_frame=first, last_frame=last, num_frames=17)
    assert_frames(frames, 17)
    assert np.array_equal(frames[0], first) and np.array_equal(frames[-1], last)
    assert type(calls[0]["last"]).__name__ == "Image" and calls[0]["kind"] == "first_last_frame"


def test_wan_vace_elements_use_the_reference_images(engine: DiffusersEngine, monkeypatch: pytest.MonkeyPatch) -> None:
    model = engine._model(engine.profiles.resolve("std", "elements"))  # type: ignore[arg-type]
    calls = spy_on_passes(model.family, monkeypatch)
    rex = Element("rex", "a brown dog", [picture(48, 48, seed=4), picture(48, 48, seed=5)])
    _, frames, progress = render(engine, prompt="@rex runs", elements=[rex], first_frame=picture(seed=6), num_frames=12)
    assert_frames(frames, 12)
    assert calls[0]["kind"] == "elements" and len(calls[0]["references"]) == 1
    assert calls[0]["prompt"] == "rex runs (rex: a brown dog)"
    assert_rising(progress)


def test_elements_without_an_audio_source_refuse_sound(engine: DiffusersEngine) -> None:
    rex = Element("rex", "", [picture(seed=4)])
    with pytest.raises(EngineError, match=r"sound was requested.*no audio source"):
        render(engine, elements=[rex], sound=True)


def test_frame_sizes_follow_the_mode_and_aspect(engine: DiffusersEngine) -> None:
    assert engine.frame_size("std", "16:9") == (64, 32)
    assert engine.frame_size("std", "9:16") == (32, 64)
    assert engine.frame_size("pro", "16:9") == (96, 64)
    width, height = engine.frame_size("std", "1:1")  # 46x46: rendered at 48x48, centre-cropped
    _, frames, _ = render(engine, width=width, height=height, num_frames=9)
    assert_frames(frames, 9, width, height)
    _, frames, _ = render(engine, mode="pro", width=96, height=64, num_frames=9)
    assert_frames(frames, 9, 96, 64)


@pytest.mark.parametrize(
    ("error", "message"),
    [
        (RuntimeError("CUDA error: an illegal memory access"), r"video model failed.*RuntimeError"),
        (torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 20.00 GiB"), r"out of memory"),
    ],
)
def test_a_failing_pipeline_is_an_engine_error_and_the_engine_keeps_serving(
    engine: DiffusersEngine, monkeypatch: pytest.MonkeyPatch, error: Exception, message: str
) -> None:
    model = engine._model(engine.profiles.resolve("std", "text_to_video"))  # type: ignore[arg-type]
    transformer = model.base.transformer

    def boom(*args: Any, **kwargs: Any) -> Any:
        raise error

    monkeypatch.setattr(transformer, "forward", boom)
    with pytest.raises(EngineError, match=message) as caught:
        render(engine)
    assert "Traceback" not in str(caught.value)
    monkeypatch.undo()
    _, frames, _ = render(engine)
    assert_frames(frames, 20)


def test_a_kind_without_a_profile_is_an_engine_error(engine: DiffusersEngine) -> None:
    with pytest.raises(EngineError, match="no model is configured for image-to-video in pro mode"):
        render(engine, mode="pro", width=96, height=64, first_frame=picture(96, 64))


def test_element_prompt() -> None:
    rex = Element("rex", "a brown dog", [])
    cat = Element("cat", "", [])
    assert element_prompt("@rex chases @cat, @nobody watches", [rex, cat]) == (
        "rex chases cat, @nobody watches (rex: a brown dog)"
    )
    assert element_prompt("no mentions", [rex]) == "no mentions"
