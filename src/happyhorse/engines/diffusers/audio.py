"""The audio source: a diffusers text-to-audio pipeline for video models that make no sound.

Any pipeline that takes a prompt and a length and returns ``.audios`` works (Stable Audio Open,
AudioLDM 2, …); the length argument and the sample rate are found by name, since these pipelines
do not agree on either. Tracks come back as float32 stereo at 48 kHz, the rate the MP4 carries.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

import av
import numpy as np
import torch

from happyhorse.engines.base import AUDIO_SAMPLE_RATE
from happyhorse.engines.diffusers.profiles import AudioSourceSpec

LENGTH_ARGS = ("audio_end_in_s", "audio_length_in_s", "duration", "audio_duration")


class AudioSource:
    """A loaded text-to-audio pipeline and how to call it."""

    def __init__(self, spec: AudioSourceSpec, pipe: Any) -> None:
        self.spec = spec
        self.pipe = pipe
        self.params = set(inspect.signature(pipe.__call__).parameters)
        length_arg = next((name for name in LENGTH_ARGS if name in self.params), None)
        if length_arg is None:
            raise ValueError(f"{type(pipe).__name__} takes no audio length ({', '.join(LENGTH_ARGS)})")
        self.length_arg: str = length_arg
        self.sample_rate = sample_rate_of(pipe)

    def render(
        self, prompt: str, negative_prompt: str | None, seconds: float, seed: int, progress: Callable[[float], None]
    ) -> np.ndarray:
        """A (2, samples) float32 track at 48 kHz for ``prompt``, about ``seconds`` long."""
        # 1. Arguments, by the names this pipeline understands.
        steps = self.spec.steps
        kwargs: dict[str, Any] = {
            "prompt": prompt,
            self.length_arg: seconds,
            "generator": torch.Generator("cpu").manual_seed(seed),
        }
        if steps is not None:
            kwargs["num_inference_steps"] = steps
        if self.spec.guidance is not None:
            kwargs["guidance_scale"] = self.spec.guidance
        negative = negative_prompt or self.spec.negative_prompt
        if negative and "negative_prompt" in self.params:
            kwargs["negative_prompt"] = negative
        total = steps or 1

        # 2. Progress: the new-style step callback where there is one, the old one elsewhere.
        if "callback_on_step_end" in self.params:

            def on_step_end(pipe: Any, step: int, timestep: Any, tensors: dict[str, Any]) -> dict[str, Any]:
                progress(min((step + 1) / total, 1.0))
                return tensors

            kwargs["callback_on_step_end"] = on_step_end
        elif "callback" in self.params:
            kwargs["callback"] = lambda step, timestep, latents: progress(min((step + 1) / total, 1.0))
            kwargs["callback_steps"] = 1
        kwargs.update(self.spec.call_args)

        # 3. Generate, then stereo at 48 kHz.
        audios = self.pipe(**kwargs).audios
        track = audios[0].float().cpu().numpy() if isinstance(audios, torch.Tensor) else np.asarray(audios[0])
        return to_stereo_48k(track, self.sample_rate)


def sample_rate_of(pipe: Any) -> int:
    """The output rate, wherever this pipeline keeps it (VAE for Stable Audio, vocoder for AudioLDM)."""
    for holder in (getattr(pipe, "vae", None), getattr(pipe, "vocoder", None)):
        config = getattr(holder, "config", None)
        for name in ("sampling_rate", "output_sampling_rate", "sample_rate"):
            rate = getattr(config, name, None) if config is not None else None
            if isinstance(rate, int) and rate > 0:
                return rate
    raise ValueError(f"cannot tell the sample rate of {type(pipe).__name__}; set call_args or use another pipeline")


def to_stereo_48k(audio: np.ndarray, rate: int) -> np.ndarray:
    """(samples,) or (channels, samples) at ``rate`` → (2, samples) float32 at 48 kHz.

    Mono is duplicated, more than two channels keep the first two. Resampling goes through
    libswresample (PyAV), which filters properly, rather than interpolating.
    """
    samples = np.asarray(audio, dtype=np.float32)
    if samples.ndim == 1:
        samples = samples[None, :]
    if samples.ndim != 2 or samples.shape[0] == 0:
        raise ValueError(f"audio must be (channels, samples), got shape {samples.shape}")
    if samples.shape[0] == 1:
        samples = np.repeat(samples, 2, axis=0)
    samples = np.ascontiguousarray(np.clip(samples[:2], -1.0, 1.0))
    if rate == AUDIO_SAMPLE_RATE or samples.shape[1] == 0:
        return samples
    frame = av.AudioFrame.from_ndarray(samples, format="fltp", layout="stereo")
    frame.sample_rate = rate
    resampler = av.AudioResampler(format="fltp", layout="stereo", rate=AUDIO_SAMPLE_RATE)
    chunks = [*resampler.resample(frame), *resampler.resample(None)]
    return np.concatenate([chunk.to_ndarray() for chunk in chunks], axis=1).astype(np.float32)
