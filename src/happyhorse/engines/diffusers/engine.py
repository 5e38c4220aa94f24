"""DiffusersEngine: real models from models.toml, loaded once per engine process, kept warm.

``render`` reads top to bottom:

    1. the profile for the shot's (mode, kind), and its loaded model
    2. the sound plan: the model's own audio, the profile's audio source, or a clear refusal
    3. geometry: a render size the model accepts, the passes that make up the shot
    4. the conditioning images at the render size (first, last, element references)
    5. the passes, each continued from the last frame of the one before, with per-step progress
    6. frames trimmed to exactly ``shot.num_frames``, fitted to the frame, keyframes pinned
    7. the soundtrack, stereo at 48 kHz

Any failure inside a pipeline — out of memory included — frees what it can and becomes an
``EngineError`` with a message a user may read; the engine stays loaded for the next task.
"""

from __future__ import annotations

import gc
import logging
import os
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import PIL.Image
import torch

from happyhorse.config import Settings
from happyhorse.engines.base import AUDIO_SAMPLE_RATE, Clip, Element, EngineError, Progress, RenderCancelled, Shot
from happyhorse.engines.diffusers import options as speed
from happyhorse.engines.diffusers import parallel
from happyhorse.engines.diffusers.audio import AudioSource, to_stereo_48k
from happyhorse.engines.diffusers.families import (
    FAMILIES,
    Family,
    PassInputs,
    derive_pipeline,
    ensure_wan_prompt_cleaning,
)
from happyhorse.engines.diffusers.frames import map_guidance, plan_passes, render_size
from happyhorse.engines.diffusers.profiles import (
    AudioSourceSpec,
    ModelInfo,
    Profile,
    Profiles,
    capabilities,
    kind_of,
    load_profiles,
)
from happyhorse.engines.diffusers.warmup import compiled_graphs, warm_up_shots
from happyhorse.media.images import fit_to_frame

log = logging.getLogger("happyhorse.engine.diffusers")


@dataclass
class LoadedModel:
    """One model folder in memory, and the pipelines of its family built around it."""

    info: ModelInfo
    family: Family
    base: Any
    offload: str | None
    pipes: dict[str, Any] = field(default_factory=dict)
    hooked: Any = None  # the pipeline whose offload hooks are installed on the shared modules

    def pipeline_for(self, kind: str) -> Any:
        try:
            cls = self.family.pipeline_class(self.base, kind)
        except ValueError as exc:  # a profile naming a folder for a kind it cannot render
            raise EngineError(f"{exc} (fix the models file; `happyhorse models check` shows this)") from None
        pipe = self.pipes.get(cls.__name__)
        if pipe is None:
            pipe = self.pipes[cls.__name__] = derive_pipeline(self.base, cls)
        if self.offload and self.hooked is not pipe:
            # Offload hooks live on the shared modules: re-install them for the pipeline in use.
            if self.offload == "sequential":
                pipe.enable_sequential_cpu_offload()
            else:
                pipe.enable_model_cpu_offload()
            self.hooked = pipe
        return pipe


class DiffusersEngine:
    name = "diffusers"

    def __init__(self, profiles: Profiles, device: str | None = None) -> None:
        self.profiles = profiles
        # A rank of an engine group sees the group's GPUs and takes its own (LOCAL_RANK); a lone engine, cuda:0.
        default = f"cuda:{int(os.environ.get('LOCAL_RANK', '0'))}" if torch.cuda.is_available() else "cpu"
        self.device = torch.device(device or default)
        self._models: dict[tuple[Any, ...], LoadedModel] = {}
        self._audio: dict[tuple[Any, ...], AudioSource] = {}
        self._graphs: int | None = None  # graphs compiled by the end of the warm-up (None: nothing compiled)

    @classmethod
    def from_settings(cls, settings: Settings) -> DiffusersEngine:
        return cls(load_profiles(settings.models))

    # -- loading ---------------------------------------------------------------------------

    def load(self) -> None:
        """Load every profile's pipeline (and audio source) once; shared folders load once."""
        for profile in self.profiles.profiles.values():
            self._model(profile)
            if profile.audio is not None:
                self._audio_source(profile.audio)
        self.warm_up()

    def warm_up(self) -> None:
        """Short renders per compiled profile at start-up, so the first task is not the one that
        compiles (warmup.py); logs the time each took, and how many graphs were compiled."""
        for profile in self.profiles.profiles.values():
            if not profile.compile:
                continue
            width, height = self.frame_size(profile.mode, "16:9")
            started = time.monotonic()
            for shot in warm_up_shots(profile, width, height):
                self._render(shot, lambda _: None)
            self._graphs = compiled_graphs()
            log.info(
                "compiled [%s].%s (compile=%s): warm-up render %.1fs, %d graph(s)",
                profile.mode,
                profile.kind,
                profile.compile,
                time.monotonic() - started,
                self._graphs,
            )

    def preload(self, path: str, pipe: Any) -> None:
        """Serve every profile whose model is ``path`` with ``pipe``, a pipeline already built and
        placed on its device (benchmarks with random weights, notebooks); nothing is read from disk."""
        index = {
            name: [type(c).__module__.split(".")[0], type(c).__name__]
            for name, c in pipe.components.items()
            if c is not None
        }
        class_name = type(pipe).__name__
        family, kinds, audio = capabilities(class_name, {**dict(pipe.config), **index})
        if family is None:
            raise EngineError(f"{class_name} is not a supported pipeline")
        info = ModelInfo(path, None, class_name, family, kinds, audio, {**dict(pipe.config), **index})
        pipe.set_progress_bar_config(disable=True)
        for profile in self.profiles.profiles.values():
            if profile.path == path:
                model = LoadedModel(info, FAMILIES[family], pipe, None, {class_name: pipe})
                self._models[profile.load_key] = model

    def _model(self, profile: Profile) -> LoadedModel:
        model = self._models.get(profile.load_key)
        if model is not None:
            return model
        info = self.profiles.model_info(profile.path, profile.pipeline)
        if info.family is None:
            raise EngineError(f"cannot load [{profile.mode}].{profile.kind}: {info.problem or 'unknown pipeline'}")
        try:
            speed.check_profile(profile, self.device.type, info.class_name)
        except ValueError as exc:
            raise EngineError(f"cannot load {profile.path}: {exc}") from None
        alone = parallel.group_refusal(profile.parallel) if profile.parallel else None
        if alone:
            raise EngineError(f"cannot load {profile.path}: [{profile.mode}].{profile.kind}: {alone}")
        dtype = self._dtype(profile.dtype)
        vae_dtype = profile.vae_dtype or ("float32" if info.family == "wan" else None)  # diffusers' advice
        if info.family == "wan":
            ensure_wan_prompt_cleaning()
        offload = profile.offload or profile.cpu_offload
        base = self._from_pretrained(
            profile.path,
            dtype,
            vae_dtype,
            offload,
            profile.vae_tiling,
            profile.quantization == "fp8",
            vae_slicing=profile.vae_slicing,
        )
        try:
            compile_s = speed.apply(base, profile, self.device)
        except (ValueError, TypeError) as exc:  # e.g. a cache diffusers has not registered for this model
            raise EngineError(f"cannot load {profile.path}: [{profile.mode}].{profile.kind}: {exc}") from None
        if profile.compile:
            log.info("compile=%s set up in %.1fs for %s", profile.compile, compile_s, profile.path)
        if profile.parallel and parallel.degree(profile.parallel)[1] > 1:
            log.info(
                "[%s].%s: %s, this process is rank %s",
                profile.mode,
                profile.kind,
                parallel.describe(profile.parallel),
                os.environ.get("RANK", "?"),
            )
        if info.local_dir is None:  # a hub id: now in the cache, so its model_index.json can be read
            info = self.profiles.model_info(profile.path, profile.pipeline)
        model = LoadedModel(
            info, FAMILIES[info.family or ""], base, None if offload == "group" else self._offload(offload)
        )
        model.pipes[type(base).__name__] = base
        model.hooked = base if model.offload else None
        self._models[profile.load_key] = model
        log.info(
            "loaded %s (%s) for [%s].%s on %s",
            profile.path,
            type(base).__name__,
            profile.mode,
            profile.kind,
            self.device,
        )
        return model

    def _audio_source(self, spec: AudioSourceSpec) -> AudioSource:
        key = (spec.path, spec.dtype, spec.cpu_offload)
        source = self._audio.get(key)
        if source is None:
            pipe = self._from_pretrained(spec.path, self._dtype(spec.dtype), None, spec.cpu_offload, False)
            try:
                source = self._audio[key] = AudioSource(spec, pipe)
            except ValueError as exc:
                raise EngineError(f"audio source {spec.path}: {exc}") from None
        return source

    def _from_pretrained(
        self,
        path: str,
        dtype: torch.dtype,
        vae_dtype: str | None,
        offload: str | None,
        vae_tiling: bool,
        fp8: bool = False,
        vae_slicing: bool = False,
    ) -> Any:
        from diffusers import DiffusionPipeline

        dtypes: Any = {"default": dtype, "vae": getattr(torch, vae_dtype)} if vae_dtype else dtype
        extra: dict[str, Any] = {"quantization_config": speed.fp8_quantization_config()} if fp8 else {}
        try:
            pipe = DiffusionPipeline.from_pretrained(path, dtype=dtypes, **extra)
        except (OSError, ValueError) as exc:
            raise EngineError(f"cannot load the model at {path}: {exc}") from None
        pipe.set_progress_bar_config(disable=True)
        if vae_tiling and hasattr(getattr(pipe, "vae", None), "enable_tiling"):
            pipe.vae.enable_tiling()
        if vae_slicing and hasattr(getattr(pipe, "vae", None), "enable_slicing"):
            pipe.vae.enable_slicing()
        speed.place(pipe, self._offload(offload), self.device)
        return pipe

    def _dtype(self, name: str | None) -> torch.dtype:
        return getattr(torch, name) if name else (torch.bfloat16 if self.device.type == "cuda" else torch.float32)

    def _offload(self, offload: str | None) -> str | None:
        return offload if self.device.type == "cuda" else None  # offloading to the CPU from the CPU: no-op

    # -- rendering -------------------------------------------------------------------------

    def frame_size(self, mode: str, aspect_ratio: str) -> tuple[int, int]:
        try:
            return self.profiles.frame_size(mode, aspect_ratio)
        except (KeyError, ValueError) as exc:
            raise EngineError(f"unsupported mode/aspect ratio {mode!r} {aspect_ratio!r}: {exc}") from None

    def render(self, shot: Shot, progress: Progress) -> Clip:
        try:
            clip = self._render(shot, progress)
            if self._graphs is not None and compiled_graphs() > self._graphs:
                log.warning(
                    "recompiled after the warm-up for %d frames at %dx%d (%d new graph(s))",
                    shot.num_frames,
                    shot.width,
                    shot.height,
                    compiled_graphs() - self._graphs,
                )
                self._graphs = compiled_graphs()
            return clip
        except (EngineError, RenderCancelled):
            self._free()
            raise
        except (torch.OutOfMemoryError, MemoryError):
            self._free()
            raise EngineError(
                f"out of memory rendering {shot.width}x{shot.height}, {shot.num_frames} frames: try std mode or "
                f"a shorter shot (the operator can enable cpu_offload / vae_tiling)"
            ) from None
        except Exception as exc:
            log.exception("shot %d failed in the %s pipeline", shot.index + 1, shot.mode)
            self._free()
            raise EngineError(
                f"the video model failed while rendering shot {shot.index + 1} "
                f"({type(exc).__name__}); see the worker log"
            ) from None

    def _render(self, shot: Shot, progress: Progress) -> Clip:
        # 1. The profile for this shot's (mode, kind), and its loaded model.
        kind = kind_of(bool(shot.elements), shot.first_frame is not None, shot.last_frame is not None)
        profile = self.profiles.resolve(shot.mode, kind)
        if profile is None:
            raise EngineError(f"no model is configured for {kind.replace('_', '-')} in {shot.mode} mode")
        model = self._model(profile)
        family, base = model.family, model.base

        # 2. Sound: the profile's audio source wins, else the model's own audio, else refuse.
        audio_source = self._audio_source(profile.audio) if shot.sound and profile.audio else None
        native_audio = shot.sound and audio_source is None
        if native_audio and not model.info.native_audio:
            raise EngineError(
                f"sound was requested but the {shot.mode} {kind.replace('_', '-')} model makes no "
                f"audio and no audio source is configured for it"
            )

        # 3. Geometry: a size the model accepts that covers the frame, and the passes.
        width, height = render_size(shot.width, shot.height, family.spatial_multiple(base))
        quantum = family.frame_quantum(base)
        can_continue = "image_to_video" in model.info.kinds
        per_pass = (profile.frames_per_pass or family.frames_per_pass(base)) if can_continue else None
        plan = plan_passes(shot.num_frames, quantum, per_pass)
        guidance = map_guidance(shot.cfg_scale, profile.guidance) if profile.guidance else None

        # 4. Conditioning images, at the render size.
        first = _pil(shot.first_frame, width, height)
        last = _pil(shot.last_frame, width, height)
        references = [PIL.Image.fromarray(e.images[0]) for e in shot.elements if e.images]
        prompt = element_prompt(shot.prompt, shot.elements)
        negative = shot.negative_prompt or profile.negative_prompt

        # 5. The passes: each starts on the last frame of the previous one, which is then dropped.
        video_share = 0.9 if audio_source else 1.0
        report = _Progress(progress, len(plan), video_share)
        segments: list[np.ndarray] = []
        tracks: list[np.ndarray] = []
        track_rate = 0
        for index, count in enumerate(plan):
            is_last = index == len(plan) - 1
            pass_first = first if index == 0 else _pil(segments[-1][-1], width, height)
            pass_last = last if is_last else None
            pass_kind = kind_of(bool(shot.elements), pass_first is not None, pass_last is not None)
            pipe = model.pipeline_for(pass_kind)
            speed.reset(pipe)  # a step cache starts empty for every pass of every task
            out = family.call(
                pipe,
                PassInputs(
                    kind=pass_kind,
                    prompt=prompt,
                    negative_prompt=negative,
                    width=width,
                    height=height,
                    num_frames=count,
                    fps=shot.fps,
                    steps=profile.steps,
                    guidance=guidance,
                    generator=torch.Generator("cpu").manual_seed(shot.seed + index),
                    callback=report.callback(index),
                    first=pass_first,
                    last=pass_last,
                    references=references,
                    extra=dict(profile.call_args),
                ),
            )
            frames, track = out.frames, out.audio
            if index > 0:  # its first frame is the previous pass's last one
                frames = frames[1:]
                if track is not None:
                    track = track[:, round(out.sample_rate / shot.fps) :]
            segments.append(frames)
            if native_audio and track is not None:
                tracks.append(track)
                track_rate = out.sample_rate

        # 6. Exactly num_frames, fitted to the frame; the given images pinned as first/last frame.
        frames_out = _exact_frames(segments, shot.num_frames, shot.width, shot.height)
        if profile.pin_keyframes and shot.first_frame is not None:
            frames_out[0] = shot.first_frame
        if profile.pin_keyframes and shot.last_frame is not None:
            frames_out[-1] = shot.last_frame

        # 7. The soundtrack.
        audio = None
        if audio_source is not None:
            audio = audio_source.render(
                prompt, negative, shot.num_frames / shot.fps, shot.seed, lambda f: report.audio(f)
            )
        elif native_audio:
            if not tracks:
                raise EngineError("the video model returned no audio although sound was requested")
            audio = to_stereo_48k(np.concatenate(tracks, axis=1), track_rate)
        if audio is not None:
            audio = _exact_length(audio, round(shot.num_frames * AUDIO_SAMPLE_RATE / shot.fps))
        progress(1.0)
        return Clip(frames=frames_out, audio=audio, sample_rate=AUDIO_SAMPLE_RATE)

    def _free(self) -> None:
        """Give back what a failed render held, so the next task starts clean."""
        for model in self._models.values():
            if model.offload and model.hooked is not None:
                model.hooked.maybe_free_model_hooks()
        gc.collect()
        if self.device.type == "cuda":
            torch.cuda.empty_cache()


class _Progress:
    """Per-step progress across passes (and the audio source), never going backwards."""

    def __init__(self, progress: Progress, passes: int, video_share: float) -> None:
        self.progress = progress
        self.passes = passes
        self.video_share = video_share
        self.last = 0.0

    def report(self, fraction: float) -> None:
        if fraction > self.last:
            self.last = min(fraction, 0.999)
            self.progress(self.last)

    def callback(self, index: int) -> Any:
        def on_step_end(pipe: Any, step: int, timestep: Any, tensors: dict[str, Any]) -> dict[str, Any]:
            steps = getattr(pipe, "num_timesteps", None) or step + 1
            self.report(self.video_share * (index + min((step + 1) / steps, 1.0)) / self.passes)
            return tensors

        return on_step_end

    def audio(self, fraction: float) -> None:
        self.report(self.video_share + (1 - self.video_share) * fraction)


def element_prompt(prompt: str, elements: list[Element]) -> str:
    """``@name`` becomes ``name``, and each referenced element's description is appended."""
    described = []
    for element in elements:
        pattern = element.reference()
        if pattern.search(prompt):
            prompt = pattern.sub(element.name, prompt)
            if element.description:
                described.append(f"{element.name}: {element.description}")
    return prompt if not described else f"{prompt} ({'; '.join(described)})"


def _pil(frame: np.ndarray | None, width: int, height: int) -> PIL.Image.Image | None:
    if frame is None:
        return None
    if frame.shape[:2] != (height, width):
        frame = fit_to_frame(frame, width, height)
    return PIL.Image.fromarray(frame)


def _exact_frames(segments: list[np.ndarray], num_frames: int, width: int, height: int) -> list[np.ndarray]:
    """The passes' frames as exactly ``num_frames`` (H, W, 3) arrays: surplus trimmed, a shortfall
    padded with the last frame, each centre-cropped (or fitted) to width×height."""
    frames = [frame for segment in segments for frame in segment][:num_frames]
    if not frames:
        raise EngineError("the video model returned no frames")
    frames += [frames[-1]] * (num_frames - len(frames))
    out_h, out_w = frames[0].shape[:2]
    if (out_h, out_w) == (height, width):
        return [np.ascontiguousarray(f) for f in frames]
    if out_h >= height and out_w >= width:
        top, left = (out_h - height) // 2, (out_w - width) // 2
        return [np.ascontiguousarray(f[top : top + height, left : left + width]) for f in frames]
    return [fit_to_frame(f, width, height) for f in frames]


def _exact_length(audio: np.ndarray, samples: int) -> np.ndarray:
    if audio.shape[1] >= samples:
        return np.ascontiguousarray(audio[:, :samples])
    return np.pad(audio, ((0, 0), (0, samples - audio.shape[1])))
