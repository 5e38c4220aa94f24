"""MP4 writing (H.264 + AAC) with PyAV, plus small read-back helpers for tests and checks.

``Mp4Writer`` streams: each frame is converted and handed to the encoder as it arrives, so a long
1080p video never sits in memory whole. Audio is kept on the video's clock: samples are muxed only
as far as the frames written so far, and ``close`` pads with silence or trims to the exact video
length, so the file has ONE continuous AAC track that covers the video (no gaps at shot cuts).

    with Mp4Writer("out.mp4", 1280, 720, audio=True) as writer:
        writer.write_audio(samples)        # float32 (channels, n) in [-1, 1] at 48 kHz
        for rgb in frames:                 # uint8 (720, 1280, 3)
            writer.write_frame(rgb)
"""

from __future__ import annotations

import os
import queue
import threading
from dataclasses import dataclass
from fractions import Fraction
from types import TracebackType
from typing import Any, Literal

import av
import numpy as np
from av.video.reformatter import ColorRange, Colorspace, VideoReformatter

DEFAULT_FPS = 24
DEFAULT_SAMPLE_RATE = 48_000

# x264 settings: "veryfast" keeps a 5 s 720p render well under real time on two cores; crf 23 is
# x264's default quality. yuv420p + the "high" profile is what every browser decodes.
VIDEO_CODEC = "libx264"
VIDEO_OPTIONS = {"preset": "veryfast", "crf": "23", "profile": "high"}
AUDIO_CODEC = "aac"
AUDIO_BIT_RATE = 128_000

# ffmpeg enum values for BT.709 (colorspace, primaries, transfer) and limited ("MPEG") range. We
# convert RGB with BT.709 coefficients and tag the stream so players decode it with the same matrix.
_BT709 = 1
_RANGE_LIMITED = 1


@dataclass
class _Staging:
    """A reusable RGB frame and a numpy view of its pixels: frames are copied in once, never allocated."""

    frame: av.VideoFrame
    pixels: np.ndarray


class Mp4Writer:
    """Write RGB frames and float audio to an H.264/AAC MP4, frame by frame.

    ``fps`` frames per second; ``audio`` decides whether the file has an audio track at all. The
    ``moov`` atom is moved to the front (``+faststart``) so browsers can start playing at once.

    Conversion and encoding run on a background thread (PyAV releases the GIL there), so the caller
    renders frame n+1 while frame n is encoded. At most ``STAGING_FRAMES`` frames wait in between:
    ``write_frame`` blocks when the encoder falls behind, which keeps memory bounded. An encoder
    failure is raised from the next ``write_frame``, ``write_audio`` or ``close``.
    """

    STAGING_FRAMES = 4

    def __init__(
        self,
        path: str | os.PathLike[str],
        width: int,
        height: int,
        fps: int = DEFAULT_FPS,
        audio: bool = True,
        sample_rate: int = DEFAULT_SAMPLE_RATE,
        *,
        preset: str = VIDEO_OPTIONS["preset"],
        crf: int = int(VIDEO_OPTIONS["crf"]),
    ) -> None:
        if width <= 0 or height <= 0 or width % 2 or height % 2:
            # yuv420p subsamples chroma 2×2, so libx264 refuses odd sizes.
            raise ValueError(f"frame size must be positive and even, got {width}x{height}")
        if fps <= 0:
            raise ValueError(f"fps must be positive, got {fps}")
        self.path = os.fspath(path)
        self.width = width
        self.height = height
        self.fps = fps
        self.sample_rate = sample_rate
        self.has_audio = audio
        self.frames_written = 0
        self._closed = False
        self._container: Any = av.open(self.path, mode="w", format="mp4", container_options={"movflags": "+faststart"})
        self._video = self._add_video_stream({**VIDEO_OPTIONS, "preset": preset, "crf": str(crf)})
        self._audio = self._add_audio_stream() if audio else None
        # State below belongs to the encoder thread until it has been joined.
        self._frames_encoded = 0
        self._samples_muxed = 0
        self._pending: list[np.ndarray] = []  # audio received but not yet muxed, (2, n) float32
        self._reformatter = VideoReformatter()
        self._error: BaseException | None = None
        self._free: queue.SimpleQueue[_Staging] = queue.SimpleQueue()
        for _ in range(self.STAGING_FRAMES):
            frame = av.VideoFrame(width, height, "rgb24")
            self._free.put(_Staging(frame, _plane_pixels(frame, width, height)))
        self._work: queue.SimpleQueue[_Staging | np.ndarray | None] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._encode_loop, name="mp4-encoder", daemon=True)
        self._thread.start()

    # -- setup ---------------------------------------------------------------------------------

    def _add_video_stream(self, options: dict[str, str]) -> Any:
        stream = self._container.add_stream(VIDEO_CODEC, rate=self.fps)
        stream.width = self.width
        stream.height = self.height
        stream.pix_fmt = "yuv420p"
        stream.options = options
        ctx = stream.codec_context
        ctx.time_base = Fraction(1, self.fps)
        # 0 = let x264 pick its thread count from the cores.
        ctx.thread_count = 0
        ctx.thread_type = "AUTO"
        ctx.colorspace = _BT709
        ctx.color_primaries = _BT709
        ctx.color_trc = _BT709
        ctx.color_range = _RANGE_LIMITED
        return stream

    def _add_audio_stream(self) -> Any:
        stream = self._container.add_stream(AUDIO_CODEC, rate=self.sample_rate)
        stream.layout = "stereo"
        stream.bit_rate = AUDIO_BIT_RATE
        return stream

    # -- writing (caller's thread) ---------------------------------------------------------------

    def write_frame(self, rgb: np.ndarray) -> None:
        """Queue one (height, width, 3) uint8 RGB frame for encoding; ``rgb`` may be reused after."""
        self._check_usable()
        if rgb.shape != (self.height, self.width, 3) or rgb.dtype != np.uint8:
            raise ValueError(
                f"frame must be uint8 of shape {(self.height, self.width, 3)}, got {rgb.dtype} {rgb.shape}"
            )
        staging = self._free.get()  # blocks while STAGING_FRAMES frames wait for the encoder
        staging.pixels[...] = rgb
        self._work.put(staging)
        self.frames_written += 1

    def write_audio(self, samples: np.ndarray) -> None:
        """Queue (channels, n) float32 samples in [-1, 1] at ``sample_rate``; mono is duplicated.

        Audio is appended to one continuous track; it is muxed as far as the video has got, and
        whatever runs past the video's end when the file closes is dropped.
        """
        self._check_usable()
        if self._audio is None:
            raise ValueError("this writer was opened with audio=False")
        self._work.put(_as_stereo(samples))

    def close(self) -> None:
        """Encode what is queued, pad or trim the audio to the video's length and finish the file."""
        if self._closed:
            return
        self._closed = True
        self._stop_encoder()
        if self._error is not None:
            self._close_container_quietly()
            raise self._error
        try:
            self._mux(self._video.encode(None))
            if self._audio is not None:
                total = self._samples_for_frames(self._frames_encoded)
                self._flush_audio(total)
                if self._samples_muxed < total:
                    self._encode_audio(np.zeros((2, total - self._samples_muxed), np.float32))
                self._pending.clear()
                self._mux(self._audio.encode(None))
        except BaseException:
            self._close_container_quietly()
            raise
        self._container.close()

    def abort(self) -> None:
        """Stop without finishing the encoders; the file is left unusable (delete it)."""
        if self._closed:
            return
        self._closed = True
        self._error = self._error or RuntimeError("aborted")  # the encoder thread skips what is queued
        self._stop_encoder()
        self._close_container_quietly()

    def _stop_encoder(self) -> None:
        self._work.put(None)
        self._thread.join()

    def _close_container_quietly(self) -> None:
        # Only on a path that already failed: the original error is the one worth reporting.
        try:
            self._container.close()
        except Exception:
            pass

    def __enter__(self) -> Mp4Writer:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc_type is None:
            self.close()
        else:
            # On an error the file is garbage anyway; skip flushing encoders that may raise again.
            self.abort()

    def _check_usable(self) -> None:
        if self._closed:
            raise ValueError("the writer is closed")
        if self._error is not None:
            raise self._error

    # -- encoding (encoder thread) ---------------------------------------------------------------

    def _encode_loop(self) -> None:
        """Take frames and audio in order until ``None``; after a failure, only drain the queue."""
        while (item := self._work.get()) is not None:
            if self._error is not None:
                if isinstance(item, _Staging):
                    self._free.put(item)  # so a producer blocked on a free frame wakes up and sees the error
                continue
            try:
                if isinstance(item, _Staging):
                    self._encode_frame(item)
                else:
                    self._pending.append(item)
                    self._flush_audio(self._samples_for_frames(self._frames_encoded))
            except BaseException as exc:
                self._error = exc

    def _encode_frame(self, staging: _Staging) -> None:
        try:
            yuv = self._reformatter.reformat(
                staging.frame,
                format="yuv420p",
                dst_colorspace=Colorspace.ITU709,
                dst_color_range=ColorRange.MPEG,
            )
        finally:
            self._free.put(staging)
        yuv.colorspace = _BT709
        yuv.color_range = _RANGE_LIMITED
        yuv.pts = self._frames_encoded
        yuv.time_base = Fraction(1, self.fps)
        self._mux(self._video.encode(yuv))
        self._frames_encoded += 1
        # Let the audio advance with the picture so the two streams interleave in the file.
        self._flush_audio(self._samples_for_frames(self._frames_encoded))

    def _samples_for_frames(self, frames: int) -> int:
        # Rounded per cumulative frame count, so no drift builds up when rate/fps is not an integer.
        return round(frames * self.sample_rate / self.fps)

    def _flush_audio(self, until: int) -> None:
        """Encode queued audio until ``until`` samples have been muxed in total."""
        while self._pending and self._samples_muxed < until:
            chunk = self._pending[0]
            take = min(chunk.shape[1], until - self._samples_muxed)
            if take == chunk.shape[1]:
                self._pending.pop(0)
            else:
                self._pending[0] = chunk[:, take:]
                chunk = chunk[:, :take]
            self._encode_audio(chunk)

    def _encode_audio(self, samples: np.ndarray) -> None:
        assert self._audio is not None
        frame = av.AudioFrame.from_ndarray(np.ascontiguousarray(samples), format="fltp", layout="stereo")
        frame.sample_rate = self.sample_rate
        frame.pts = self._samples_muxed
        frame.time_base = Fraction(1, self.sample_rate)
        self._mux(self._audio.encode(frame))
        self._samples_muxed += samples.shape[1]

    def _mux(self, packets: list[Any]) -> None:
        for packet in packets:
            self._container.mux(packet)


def _plane_pixels(frame: av.VideoFrame, width: int, height: int) -> np.ndarray:
    """A writable (height, width, 3) view of a packed RGB frame's pixels (rows may be padded)."""
    plane = frame.planes[0]
    rows = np.frombuffer(memoryview(plane), dtype=np.uint8).reshape(height, plane.line_size)
    return rows[:, : width * 3].reshape(height, width, 3)


def _as_stereo(samples: np.ndarray) -> np.ndarray:
    """(channels, n) or (n,) float audio → contiguous float32 (2, n), clipped to [-1, 1]."""
    audio = np.asarray(samples, dtype=np.float32)
    if audio.ndim == 1:
        audio = audio[None, :]
    if audio.ndim != 2 or audio.shape[0] < 1:
        raise ValueError(f"audio must have shape (channels, samples), got {audio.shape}")
    if audio.shape[0] == 1:
        audio = np.repeat(audio, 2, axis=0)
    elif audio.shape[0] > 2:
        audio = audio[:2]  # keep front left/right; a real downmix is not worth it here
    return np.clip(np.nan_to_num(audio), -1.0, 1.0)


# -- read-back helpers ---------------------------------------------------------------------------


def probe(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Describe an MP4: width, height, fps, duration, num_frames, has_audio, audio_duration, codecs.

    Durations are in seconds; ``num_frames`` is counted from the packets when the container does
    not record it. Audio fields are None when there is no audio stream.
    """
    with av.open(os.fspath(path)) as container:
        video = container.streams.video[0]
        audio = container.streams.audio[0] if container.streams.audio else None
        num_frames = video.frames or sum(
            1
            for packet in container.demux(video)
            if packet.size  # the final packet is empty
        )
        fps = float(video.average_rate) if video.average_rate else 0.0
        duration = _stream_seconds(video)
        if duration is None:
            duration = num_frames / fps if fps else 0.0
        return {
            "width": video.codec_context.width,
            "height": video.codec_context.height,
            "fps": fps,
            "duration": duration,
            "num_frames": num_frames,
            "has_audio": audio is not None,
            "audio_duration": _stream_seconds(audio) if audio is not None else None,
            "video_codec": video.codec_context.name,
            "audio_codec": audio.codec_context.name if audio is not None else None,
            "sample_rate": audio.codec_context.sample_rate if audio is not None else None,
            "audio_channels": audio.codec_context.channels if audio is not None else None,
        }


def _stream_seconds(stream: Any) -> float | None:
    if stream.duration is None or stream.time_base is None:
        return None
    return float(stream.duration * stream.time_base)


def read_frame(path: str | os.PathLike[str], index: int | Literal["last"] = 0) -> np.ndarray:
    """Decode frame ``index`` (0-based, or "last") as a (height, width, 3) uint8 RGB array."""
    with av.open(os.fspath(path)) as container:
        last = None
        for i, frame in enumerate(container.decode(video=0)):
            if i == index:
                return frame.to_ndarray(format="rgb24")
            last = frame
        if index == "last" and last is not None:
            return last.to_ndarray(format="rgb24")
    raise IndexError(f"{path} has no frame {index!r}")


def read_audio(path: str | os.PathLike[str]) -> np.ndarray:
    """Decode the whole audio track as float32 (channels, samples); empty (0, 0) when there is none."""
    with av.open(os.fspath(path)) as container:
        if not container.streams.audio:
            return np.zeros((0, 0), np.float32)
        chunks = [frame.to_ndarray() for frame in container.decode(audio=0)]
    return np.concatenate(chunks, axis=1).astype(np.float32) if chunks else np.zeros((2, 0), np.float32)
