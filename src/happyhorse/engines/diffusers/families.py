"""Family adapters: which diffusers pipeline serves a kind, with which call arguments.

One model folder is loaded once (its class comes from model_index.json); the other pipeline
classes of its family are built around the very same modules, so an LTX-2 folder serves text,
image and first+last-frame requests with one copy of the weights in memory.

    LTX-2   text_to_video     LTX2Pipeline
            image_to_video    LTX2ImageToVideoPipeline   image=first
            first_last_frame  LTX2ConditionPipeline      conditions at frame 0 and frame -1
            (native audio: out.audio at vocoder.config.output_sampling_rate)
    Wan     text_to_video     WanPipeline                (or WanVACEPipeline for a VACE folder)
            image_to_video    WanImageToVideoPipeline    image=first
            first_last_frame  WanImageToVideoPipeline    image=first, last_image=last
            elements          WanVACEPipeline            reference_images, plus video+mask for
                                                         first/last frames
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import PIL.Image
import torch

from happyhorse.engines.diffusers.profiles import pipeline_name

PassCallback = Callable[[Any, int, Any, dict[str, Any]], dict[str, Any]]


@dataclass
class PassInputs:
    """Everything one pipeline call needs, already in the model's render size."""

    kind: str
    prompt: str
    negative_prompt: str | None
    width: int
    height: int
    num_frames: int
    fps: int
    steps: int | None
    guidance: float | None
    generator: torch.Generator
    callback: PassCallback
    first: PIL.Image.Image | None = None
    last: PIL.Image.Image | None = None
    references: list[PIL.Image.Image] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)  # the profile's call_args


@dataclass
class PassOutput:
    frames: np.ndarray  # (T, H, W, 3) uint8
    audio: np.ndarray | None  # (channels, samples) float32
    sample_rate: int


class Family:
    """The shared parts; subclasses name the classes and the conditioning arguments."""

    name = ""
    default_frames_per_pass = 121

    def pipeline_class(self, base: Any, kind: str) -> type:
        """The class for ``kind``, by the same table ``models check`` prints (``pipeline_name``)."""
        import diffusers

        name = pipeline_name(type(base).__name__, dict(base.config), kind)
        if name is None:
            raise ValueError(f"a {type(base).__name__} folder cannot render {kind}")
        return getattr(diffusers, name)  # type: ignore[no-any-return]

    def frame_quantum(self, pipe: Any) -> int:
        raise NotImplementedError

    def spatial_multiple(self, pipe: Any) -> int:
        raise NotImplementedError

    def conditioning(self, pipe: Any, inputs: PassInputs) -> dict[str, Any]:
        raise NotImplementedError

    def frames_per_pass(self, base: Any) -> int:
        return self.default_frames_per_pass

    def call(self, pipe: Any, inputs: PassInputs) -> PassOutput:
        """Run one pass: common arguments, the family's conditioning, then the profile's extras."""
        kwargs: dict[str, Any] = {
            "prompt": inputs.prompt,
            "negative_prompt": inputs.negative_prompt or "",
            "height": inputs.height,
            "width": inputs.width,
            "num_frames": inputs.num_frames,
            "generator": inputs.generator,
            "output_type": "pt",
            "return_dict": True,
            "callback_on_step_end": inputs.callback,
            "callback_on_step_end_tensor_inputs": ["latents"],
        }
        if inputs.steps is not None:
            kwargs["num_inference_steps"] = inputs.steps
        if inputs.guidance is not None:
            kwargs["guidance_scale"] = inputs.guidance
        kwargs.update(self.conditioning(pipe, inputs))
        kwargs.update(inputs.extra)
        out = pipe(**kwargs)
        return PassOutput(to_uint8_frames(out.frames[0]), *self.audio(pipe, out))

    def audio(self, pipe: Any, out: Any) -> tuple[np.ndarray | None, int]:
        return None, 0


class LTX2Family(Family):
    name = "ltx2"
    default_frames_per_pass = 121  # 5 s at 24 fps, the length LTX-2 is tuned for

    def frame_quantum(self, pipe: Any) -> int:
        return int(pipe.vae_temporal_compression_ratio)

    def spatial_multiple(self, pipe: Any) -> int:
        # The pipelines check for multiples of 32 whatever the VAE (the real one compresses 32x anyway).
        return math.lcm(32, int(pipe.vae_spatial_compression_ratio * pipe.transformer_spatial_patch_size))

    def conditioning(self, pipe: Any, inputs: PassInputs) -> dict[str, Any]:
        args: dict[str, Any] = {"frame_rate": float(inputs.fps)}
        if inputs.kind == "image_to_video":
            args["image"] = inputs.first
        elif inputs.kind == "first_last_frame":
            from diffusers.pipelines.ltx2.pipeline_ltx2_condition import LTX2VideoCondition

            conditions = []
            if inputs.first is not None:
                conditions.append(LTX2VideoCondition(frames=inputs.first, index=0))
            if inputs.last is not None:
                conditions.append(LTX2VideoCondition(frames=inputs.last, index=-1))  # the last latent frame
            args["conditions"] = conditions
        return args

    def audio(self, pipe: Any, out: Any) -> tuple[np.ndarray | None, int]:
        if getattr(out, "audio", None) is None:
            return None, 0
        track = out.audio[0].float().cpu().numpy()
        return track.reshape(-1, track.shape[-1]), int(pipe.vocoder.config.output_sampling_rate)


class WanFamily(Family):
    name = "wan"
    default_frames_per_pass = 81  # Wan 2.1: 81 frames; Wan 2.2 TI2V is trained on 121

    def frames_per_pass(self, base: Any) -> int:
        return 121 if base.config.get("expand_timesteps") else 81

    def frame_quantum(self, pipe: Any) -> int:
        return int(pipe.vae_scale_factor_temporal)

    def spatial_multiple(self, pipe: Any) -> int:
        transformer = pipe.transformer if pipe.transformer is not None else pipe.transformer_2
        return int(pipe.vae_scale_factor_spatial * transformer.config.patch_size[1])

    def conditioning(self, pipe: Any, inputs: PassInputs) -> dict[str, Any]:
        if type(pipe).__name__ == "WanVACEPipeline":
            return self._vace(inputs)
        if inputs.kind == "image_to_video":
            return {"image": inputs.first}
        if inputs.kind == "first_last_frame":
            return {"image": inputs.first, "last_image": inputs.last}
        return {}

    def _vace(self, inputs: PassInputs) -> dict[str, Any]:
        """VACE conditions by a video plus a mask: black keeps a given frame, white generates."""
        args: dict[str, Any] = {}
        if inputs.references:
            args["reference_images"] = inputs.references
        if inputs.first is not None or inputs.last is not None:
            size = (inputs.width, inputs.height)
            gray = PIL.Image.new("RGB", size, (127, 127, 127))
            keep, generate = PIL.Image.new("L", size, 0), PIL.Image.new("L", size, 255)
            video = [gray] * inputs.num_frames
            mask = [generate] * inputs.num_frames
            if inputs.first is not None:
                video[0], mask[0] = inputs.first, keep
            if inputs.last is not None:
                video[-1], mask[-1] = inputs.last, keep
            args["video"], args["mask"] = video, mask
        return args


FAMILIES: dict[str, Family] = {"ltx2": LTX2Family(), "wan": WanFamily()}


def ensure_wan_prompt_cleaning() -> None:
    """Wan's image-to-video and VACE pipelines call ``ftfy.fix_text`` on every prompt without
    checking that ftfy is installed (a NameError at render). ftfy belongs in the environment
    (``pip install ftfy``); without it, prompts — already valid UTF-8 from the JSON body — are
    used as they are, with a warning, instead of failing every Wan task."""
    try:
        import ftfy  # noqa: F401
    except ImportError:
        import importlib
        import logging
        import types

        logging.getLogger("happyhorse.engine.diffusers").warning(
            "ftfy is not installed: Wan prompts are not mojibake-fixed (pip install ftfy)"
        )
        shim = types.SimpleNamespace(fix_text=lambda text: text)
        for name in ("pipeline_wan", "pipeline_wan_i2v", "pipeline_wan_vace"):
            module = importlib.import_module(f"diffusers.pipelines.wan.{name}")
            if not hasattr(module, "ftfy"):
                module.ftfy = shim  # type: ignore[attr-defined]


def derive_pipeline(base: Any, cls: type) -> Any:
    """``cls`` built around ``base``'s modules: no copy, no dtype change (unlike ``from_pipe``)."""
    if type(base) is cls:
        return base
    params = inspect.signature(cls.__init__).parameters  # type: ignore[misc]
    components = base.components
    kwargs = {name: components[name] for name in params if name in components}
    kwargs.update(
        {name: base.config[name] for name in params if name not in kwargs and name != "self" and name in base.config}
    )
    pipe = cls(**kwargs)
    pipe.set_progress_bar_config(disable=True)
    return pipe


def to_uint8_frames(video: torch.Tensor) -> np.ndarray:
    """(T, C, H, W) floats in [0, 1] → (T, H, W, 3) uint8, converted on the device (4× less to copy)."""
    frames = (video.float().clamp(0, 1) * 255).round().to(torch.uint8)
    return np.ascontiguousarray(frames.permute(0, 2, 3, 1).cpu().numpy())
