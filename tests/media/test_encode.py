"""Mp4Writer: what a player sees in the file — length, rate, size, one continuous audio track, pixels."""

from __future__ import annotations

import tracemalloc
from pathlib import Path

import av
import numpy as np
import pytest

from happyhorse.media.encode import Mp4Writer, probe, read_audio, read_frame

FRAME = 1 / 24
RATE = 48_000


def gradient(width: int, height: int, shift: int = 0) -> np.ndarray:
    """A smooth, colourful frame (H.264 keeps smooth pictures close to the source)."""
    ys, xs = np.mgrid[0:height, 0:width]
    return np.stack(
        [(xs * 255 // max(1, width - 1) + shift) % 256, ys * 255 // max(1, height - 1), np.full_like(xs, 90)],
        axis=-1,
    ).astype(np.uint8)


def tone(seconds: float, freq: float = 440.0, amplitude: float = 0.4) -> np.ndarray:
    t = np.arange(round(seconds * RATE)) / RATE
    wave = (amplitude * np.sin(2 * np.pi * freq * t)).astype(np.float32)
    return np.stack([wave, wave])


def write(path: Path, frames: int, audio: np.ndarray | None, size: tuple[int, int] = (320, 240)) -> None:
    width, height = size
    with Mp4Writer(path, width, height, audio=audio is not None) as writer:
        if audio is not None:
            writer.write_audio(audio)
        for i in range(frames):
            writer.write_frame(gradient(width, height, shift=i * 4))


def mean_abs_diff(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.abs(a.astype(np.int16) - b.astype(np.int16)).mean())


def window_rms(audio: np.ndarray, seconds: float = 0.02) -> np.ndarray:
    """RMS of consecutive windows over the left channel."""
    size = round(seconds * RATE)
    n = audio.shape[1] // size
    return np.sqrt((audio[0, : n * size].reshape(n, size) ** 2).mean(axis=1))


def test_length_rate_size_and_audio_track(tmp_path: Path) -> None:
    path = tmp_path / "a.mp4"
    write(path, 36, tone(1.5))
    info = probe(path)
    assert (info["width"], info["height"]) == (320, 240)
    assert info["fps"] == pytest.approx(24)
    assert info["num_frames"] == 36
    assert info["duration"] == pytest.approx(1.5, abs=FRAME)
    assert info["video_codec"] == "h264" and info["audio_codec"] == "aac"
    assert info["has_audio"] and info["sample_rate"] == RATE and info["audio_channels"] == 2
    assert info["audio_duration"] == pytest.approx(info["duration"], abs=FRAME)


def test_no_audio_stream_when_audio_is_off(tmp_path: Path) -> None:
    path = tmp_path / "silent.mp4"
    write(path, 24, None)
    info = probe(path)
    assert info["has_audio"] is False and info["audio_codec"] is None
    with av.open(str(path)) as container:
        assert len(container.streams.audio) == 0
    with Mp4Writer(tmp_path / "x.mp4", 64, 64, audio=False) as writer, pytest.raises(ValueError, match="audio=False"):
        writer.write_audio(tone(0.1))


def test_short_audio_is_padded_with_silence_to_the_video(tmp_path: Path) -> None:
    path = tmp_path / "pad.mp4"
    write(path, 48, tone(0.5))
    info = probe(path)
    assert info["audio_duration"] == pytest.approx(2.0, abs=FRAME)
    rms = window_rms(read_audio(path))
    assert rms[2:20].min() > 0.1  # the tone (skipping the encoder's ramp-in)
    assert rms[35:95].max() < 0.01  # then silence up to the end of the video


def test_long_audio_is_trimmed_to_the_video(tmp_path: Path) -> None:
    path = tmp_path / "trim.mp4"
    write(path, 24, tone(3.0))
    info = probe(path)
    assert info["audio_duration"] == pytest.approx(1.0, abs=FRAME)
    assert read_audio(path).shape[1] / RATE == pytest.approx(1.0, abs=FRAME)


def test_audio_written_in_pieces_is_one_continuous_track(tmp_path: Path) -> None:
    """Chunks of odd sizes, interleaved with frames (as shots arrive), leave no gap anywhere."""
    path = tmp_path / "pieces.mp4"
    full = tone(2.0)
    bounds = [0, 7_001, 30_000, 48_000, 50_123, 96_000]
    frames_after = [12, 6, 14, 10, 6]  # 48 frames = 2 s, cut where the audio pieces are not
    with Mp4Writer(path, 160, 96) as writer:
        for k, count in enumerate(frames_after):
            writer.write_audio(full[:, bounds[k] : bounds[k + 1]])
            for i in range(count):
                writer.write_frame(gradient(160, 96, shift=k * 12 + i))
    decoded = read_audio(path)
    assert decoded.shape[1] / RATE == pytest.approx(2.0, abs=FRAME)
    rms = window_rms(decoded)
    assert rms[1:-1].min() > 0.2  # a 0.4 sine has RMS 0.28 everywhere: no dip at any seam


def test_mono_audio_becomes_stereo(tmp_path: Path) -> None:
    path = tmp_path / "mono.mp4"
    write(path, 24, tone(1.0)[:1])
    decoded = read_audio(path)
    assert decoded.shape[0] == 2
    assert np.allclose(decoded[0], decoded[1], atol=1e-3)


def test_pixels_survive_the_round_trip(tmp_path: Path) -> None:
    # 322 px wide: rows of the RGB staging frame are padded, which must not skew the picture.
    path = tmp_path / "pixels.mp4"
    width, height = 322, 180
    frames = [gradient(width, height, shift=i * 10) for i in range(10)]
    with Mp4Writer(path, width, height, audio=False) as writer:
        for frame in frames:
            writer.write_frame(frame)
    assert mean_abs_diff(read_frame(path, 0), frames[0]) < 6
    assert mean_abs_diff(read_frame(path, 5), frames[5]) < 6
    assert mean_abs_diff(read_frame(path, "last"), frames[-1]) < 6
    with pytest.raises(IndexError):
        read_frame(path, 10)


def test_saturated_colours_keep_their_hue(tmp_path: Path) -> None:
    """The stream is tagged BT.709, so a decoder's conversion matches ours."""
    path = tmp_path / "colours.mp4"
    frame = np.zeros((96, 128, 3), np.uint8)
    colours = [(230, 20, 20), (20, 200, 40), (30, 30, 220), (240, 200, 40)]
    for k, colour in enumerate(colours):
        frame[:, 32 * k : 32 * (k + 1)] = colour
    with Mp4Writer(path, 128, 96, audio=False) as writer:
        writer.write_frame(frame)
    decoded = read_frame(path, 0)
    for x in (16, 48, 80, 112):
        assert np.abs(decoded[48, x].astype(int) - frame[48, x]).max() <= 6


def test_moov_atom_comes_first_for_streaming(tmp_path: Path) -> None:
    path = tmp_path / "fast.mp4"
    write(path, 12, tone(0.5))
    data = path.read_bytes()
    assert 0 < data.index(b"moov") < data.index(b"mdat")


def test_rejects_bad_sizes_and_frames(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="even"):
        Mp4Writer(tmp_path / "odd.mp4", 321, 240)
    with Mp4Writer(tmp_path / "ok.mp4", 64, 48, audio=False) as writer:
        with pytest.raises(ValueError, match="shape"):
            writer.write_frame(np.zeros((48, 64), np.uint8))
        with pytest.raises(ValueError, match="uint8"):
            writer.write_frame(np.zeros((48, 64, 3), np.float32))
        writer.write_frame(np.zeros((48, 64, 3), np.uint8))
    with pytest.raises(ValueError, match="closed"):
        writer.write_frame(np.zeros((48, 64, 3), np.uint8))


def test_frames_stream_through_without_piling_up(tmp_path: Path) -> None:
    """A long video never sits in memory: 200 frames (46 MB raw) pass through a few MB at most."""
    frame = gradient(320, 240)
    tracemalloc.start()
    try:
        with Mp4Writer(tmp_path / "long.mp4", 320, 240, audio=False) as writer:
            for _ in range(200):
                writer.write_frame(frame.copy())
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 10 * 2**20
    assert probe(tmp_path / "long.mp4")["num_frames"] == 200


def test_an_encoder_failure_reaches_the_caller(tmp_path: Path) -> None:
    class Broken:
        def reformat(self, *args: object, **kwargs: object) -> None:
            raise RuntimeError("boom")

    writer = Mp4Writer(tmp_path / "broken.mp4", 64, 48, audio=False)
    writer._reformatter = Broken()  # type: ignore[assignment]
    with pytest.raises(RuntimeError, match="boom"):  # from a later write_frame, or at the latest from close
        for _ in range(2 * Mp4Writer.STAGING_FRAMES + 2):
            writer.write_frame(np.zeros((48, 64, 3), np.uint8))
        writer.close()
    writer.abort()  # idempotent after a failure; must not hang
