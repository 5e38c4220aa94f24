"""Model profiles: which model renders each (mode, kind), read from ``models.toml``. Torch-free.

The API process imports this module to refuse, at submit time, what no configured model can do;
so it reads TOML and JSON only, never torch or diffusers.

    [std]                                   # a mode: std or pro
    steps = 8                               # keys that are not kinds are defaults for the mode
    text_to_video    = "/models/ltx-2"      # a diffusers folder (model_index.json) or a hub id
    elements         = { path = "Wan-AI/Wan2.1-VACE-14B-diffusers", steps = 30, guidance = [3, 7] }

Kinds: ``text_to_video``, ``image_to_video``, ``first_last_frame``, ``elements``. What a model
folder can do is read from its ``model_index.json`` (``_class_name``, ``expand_timesteps``, its
audio components); ``pipeline = "…"`` declares the class for a hub id that is not on disk yet.
"""

from __future__ import annotations

import json
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from happyhorse.contract import GenerateRequest
from happyhorse.engines.base import FRAME_SIZES
from happyhorse.engines.diffusers import options as speed
from happyhorse.engines.diffusers.frames import frame_size_for, parse_resolution
from happyhorse.errors import InvalidRequest

MODES = ("std", "pro")
KINDS = ("text_to_video", "image_to_video", "first_last_frame", "elements")
DTYPES = {
    "bfloat16": "bfloat16",
    "bf16": "bfloat16",
    "float16": "float16",
    "fp16": "float16",
    "float32": "float32",
    "fp32": "float32",
}
OPTIONS = (
    "steps",
    "resolution",
    "guidance",
    "frames_per_pass",
    "dtype",
    "vae_dtype",
    "cpu_offload",
    "vae_tiling",
    "vae_slicing",
    "negative_prompt",
    "pipeline",
    "audio",
    "pin_keyframes",
    "call_args",
    "cache",
    "compile",
    "quantization",
    "parallel",
    "offload",
)
AUDIO_OPTIONS = ("path", "steps", "guidance", "dtype", "cpu_offload", "negative_prompt", "call_args")

# What each supported pipeline class can render, by family. Wan's answer also depends on
# ``expand_timesteps`` (the TI2V-5B layout), see ``capabilities``.
LTX2_CLASSES = ("LTX2Pipeline", "LTX2ImageToVideoPipeline", "LTX2ConditionPipeline")
WAN_CLASSES = ("WanPipeline", "WanImageToVideoPipeline", "WanVACEPipeline")
HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")


class ProfileError(ValueError):
    """models.toml is missing, unreadable or malformed; the message names the file and the key."""


@dataclass(frozen=True)
class AudioSourceSpec:
    """A text-to-audio pipeline whose track is used when the video model makes no sound."""

    path: str
    steps: int | None = None
    guidance: float | None = None
    dtype: str | None = None
    cpu_offload: str | None = None
    negative_prompt: str | None = None
    call_args: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Profile:
    mode: str
    kind: str
    path: str  # a local folder (absolute) or a hub id
    steps: int | None = None  # None: the pipeline's own default
    resolution: tuple[int, int] | None = None  # the 16:9 frame; None: the mode's default size
    guidance: tuple[float, float] | None = None  # cfg_scale 0..1 maps onto this range
    frames_per_pass: int | None = None  # None: the family's default
    dtype: str | None = None  # None: bfloat16 on a GPU, float32 on the CPU
    vae_dtype: str | None = None
    cpu_offload: str | None = None  # None | "model" | "sequential"
    vae_tiling: bool = False
    vae_slicing: bool = False  # decode a batch one video at a time
    negative_prompt: str | None = None  # used when a request sends none
    pipeline: str | None = None  # declared class, for a hub id not yet on disk
    audio: AudioSourceSpec | None = None
    pin_keyframes: bool = True  # first/last output frame = the given image, exactly
    call_args: Mapping[str, Any] = field(default_factory=dict)
    cache: Mapping[str, Any] | None = None  # {"kind": "first_block", "threshold": 0.2}: options.CACHE_KINDS
    compile: str | None = None  # None | "regional" | "full"
    quantization: str | None = None  # None | "fp8_storage" | "fp8"
    parallel: Mapping[str, int] | None = None  # {"ulysses": N} | {"ring": N}
    offload: str | None = None  # None | "model" | "sequential" | "group" (wins over cpu_offload)

    @property
    def load_key(self) -> tuple[Any, ...]:
        """Profiles with the same key share one loaded pipeline."""
        cache = repr(sorted(self.cache.items())) if self.cache else None
        parallel = repr(sorted(self.parallel.items())) if self.parallel else None
        return (
            self.path,
            self.dtype,
            self.vae_dtype,
            self.offload or self.cpu_offload,
            self.vae_tiling,
            self.vae_slicing,
            cache,
            self.compile,
            self.quantization,
            parallel,
        )


@dataclass(frozen=True)
class ModelInfo:
    """What a model folder is and can do, as far as can be told without loading it."""

    source: str
    local_dir: Path | None  # the folder holding model_index.json, when it is on disk
    class_name: str | None
    family: str | None  # "ltx2" | "wan" | None (unknown or unsupported)
    kinds: frozenset[str]
    native_audio: bool | None  # None: unknown until the folder is on disk
    index: Mapping[str, Any] = field(default_factory=dict)
    problem: str | None = None  # why it cannot be used, when that is known


def kind_of(has_elements: bool, has_first: bool, has_last: bool) -> str:
    """The kind of one shot (or pass) from what conditions it."""
    if has_elements:
        return "elements"
    if has_last:
        return "first_last_frame"
    return "image_to_video" if has_first else "text_to_video"


def request_kinds(req: GenerateRequest) -> list[str]:
    """Every kind a request needs: its first shot's, and text_to_video for later shots."""
    first = kind_of(bool(req.elements), bool(req.image_urls), len(req.image_urls) >= 2)
    kinds = [first]
    if req.multi_shots and len(req.multi_prompt) > 1 and first != "elements" and first != "text_to_video":
        kinds.append("text_to_video")
    return kinds


def capabilities(class_name: str, index: Mapping[str, Any]) -> tuple[str | None, frozenset[str], bool | None]:
    """(family, kinds, native audio) of a pipeline class and its model_index.json."""
    if class_name in LTX2_CLASSES:
        audio = bool(index.get("audio_vae", [None])[0] and index.get("vocoder", [None])[0]) if index else True
        return "ltx2", frozenset(("text_to_video", "image_to_video", "first_last_frame")), audio
    if class_name == "WanVACEPipeline":
        return "wan", frozenset(KINDS), False
    if class_name in ("WanPipeline", "WanImageToVideoPipeline"):
        if index.get("expand_timesteps"):  # Wan 2.2 TI2V: one model for text and image to video
            return "wan", frozenset(("text_to_video", "image_to_video")), False
        if class_name == "WanPipeline":
            return "wan", frozenset(("text_to_video",)), False
        return "wan", frozenset(("image_to_video", "first_last_frame")), False
    return None, frozenset(), None


def pipeline_name(class_name: str | None, index: Mapping[str, Any], kind: str) -> str | None:
    """The pipeline class that renders ``kind`` from a folder of ``class_name``, or None."""
    if class_name is None:
        return None
    family, kinds, _ = capabilities(class_name, index)
    if kind not in kinds:
        return None
    if family == "ltx2":
        return dict(zip(KINDS, LTX2_CLASSES, strict=False))[kind]
    if class_name == "WanVACEPipeline":
        return class_name
    return "WanPipeline" if kind == "text_to_video" else "WanImageToVideoPipeline"


def inspect_model(source: str, declared_class: str | None = None) -> ModelInfo:
    """Read a model folder's model_index.json (or the hub cache's copy) without loading it."""
    index_path = _find_model_index(source)
    if index_path is None:
        where = "folder" if source.startswith("/") else "hub id (not in the local Hugging Face cache)"
        if declared_class is None:
            problem = f"model_index.json not found for {where} {source}" if source.startswith("/") else None
            return ModelInfo(source, None, None, None, frozenset(), None, problem=problem)
        family, kinds, audio = capabilities(declared_class, {})
        problem = None if family else f"pipeline {declared_class!r} is not supported"
        if source.startswith("/"):
            problem = f"model_index.json not found in {source}"
        return ModelInfo(source, None, declared_class, family, kinds, audio, problem=problem)
    try:
        index = json.loads(index_path.read_text())
        class_name = str(index["_class_name"])
    except (OSError, ValueError, KeyError, TypeError) as exc:
        return ModelInfo(
            source,
            index_path.parent,
            None,
            None,
            frozenset(),
            None,
            problem=f"unreadable model_index.json in {index_path.parent}: {exc}",
        )
    family, kinds, audio = capabilities(class_name, index)
    problem = None
    if family is None:
        supported = ", ".join(LTX2_CLASSES + WAN_CLASSES)
        problem = f"pipeline {class_name} is not supported (supported: {supported})"
    return ModelInfo(source, index_path.parent, class_name, family, kinds, audio, index, problem)


def _find_model_index(source: str) -> Path | None:
    path = Path(source)
    if source.startswith("/"):
        candidate = path / "model_index.json"
        return candidate if candidate.is_file() else None
    try:  # a hub id: the cached snapshot, if it was downloaded (huggingface_hub is torch-free)
        from huggingface_hub import try_to_load_from_cache
    except ImportError:
        return None
    cached = try_to_load_from_cache(source, "model_index.json")
    return Path(cached) if isinstance(cached, str) else None


class Profiles:
    """The parsed models.toml: ``resolve(mode, kind)``, ``frame_size`` and ``check_request``."""

    def __init__(
        self, source: Path, profiles: dict[tuple[str, str], Profile], mode_resolutions: dict[str, tuple[int, int]]
    ) -> None:
        self.source = source
        self.profiles = profiles
        self.mode_resolutions = mode_resolutions
        self._infos: dict[tuple[str, str | None], ModelInfo] = {}

    def resolve(self, mode: str, kind: str) -> Profile | None:
        return self.profiles.get((mode, kind))

    def model_info(self, path: str, declared_class: str | None = None) -> ModelInfo:
        """Inspected once while on disk; re-inspected while not, so a later download is seen."""
        key = (path, declared_class)
        info = self._infos.get(key)
        if info is None or info.local_dir is None:
            info = self._infos[key] = inspect_model(path, declared_class)
        return info

    def frame_size(self, mode: str, aspect_ratio: str) -> tuple[int, int]:
        resolution = self.mode_resolutions.get(mode) or FRAME_SIZES[(mode if mode in MODES else "std", "16:9")]
        return frame_size_for(resolution, aspect_ratio)

    def check_request(self, req: GenerateRequest) -> None:
        """Raise ``InvalidRequest`` naming the missing profile or audio source, else return."""
        for kind in request_kinds(req):
            profile = self.resolve(req.mode, kind)
            if profile is None:
                configured = ", ".join(k for k in KINDS if (req.mode, k) in self.profiles) or "nothing"
                raise InvalidRequest(
                    f"this server has no model for {kind.replace('_', '-')} in {req.mode} mode "
                    f"(its models file configures {configured} for {req.mode}; add `{kind}` under [{req.mode}])"
                )
            info = self.model_info(profile.path, profile.pipeline)
            if info.class_name and info.family and kind not in info.kinds:
                raise InvalidRequest(
                    f"the {req.mode} model for {kind.replace('_', '-')} ({info.class_name}) cannot render it; "
                    f"ask the operator to fix the models file"
                )
            if req.sound and profile.audio is None and info.native_audio is False:
                raise InvalidRequest(
                    f"sound is true, but the {req.mode} {kind.replace('_', '-')} model ({info.class_name}) "
                    f'makes no audio and no audio source is configured for it: send "sound": false'
                )


def load_profiles(path: Path | str | None) -> Profiles:
    """Parse models.toml; raise ``ProfileError`` naming the file and key of the first problem."""
    if path is None or str(path) == "":
        raise ProfileError("HAPPYHORSE_MODELS is not set: the diffusers engine needs a models.toml")
    source = Path(path).expanduser()
    try:
        data = tomllib.loads(source.read_text())
    except FileNotFoundError:
        raise ProfileError(f"{source}: no such file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ProfileError(f"{source}: cannot read it ({exc})") from None
    except tomllib.TOMLDecodeError as exc:
        raise ProfileError(f"{source}: not valid TOML ({exc})") from None
    profiles: dict[tuple[str, str], Profile] = {}
    resolutions: dict[str, tuple[int, int]] = {}
    for mode, table in data.items():
        if mode not in MODES:
            raise ProfileError(f"{source}: unknown table [{mode}] (expected {' or '.join(f'[{m}]' for m in MODES)})")
        if not isinstance(table, dict):
            raise ProfileError(f"{source}: {mode} must be a table like [{mode}], got {table!r}")
        defaults = {k: v for k, v in table.items() if k not in KINDS}
        parser = _Parser(source, mode)
        parser.options(defaults, f"[{mode}]")
        for kind in KINDS:
            if kind in table:
                profiles[(mode, kind)] = parser.profile(kind, table[kind], defaults)
        if "resolution" in defaults:
            resolutions[mode] = parse_resolution(defaults["resolution"])
        else:
            for kind in KINDS:  # the mode's frame: its text-to-video size, else the first one given
                found = profiles.get((mode, kind))
                if found is not None and found.resolution is not None:
                    resolutions[mode] = found.resolution
                    break
    if not profiles:
        raise ProfileError(f'{source}: no profiles; add e.g. [std] text_to_video = "/models/ltx-2"')
    return Profiles(source, profiles, resolutions)


class _Parser:
    """Validates one mode's entries; every error names the file, the table and the key."""

    def __init__(self, source: Path, mode: str) -> None:
        self.source = source
        self.mode = mode

    def fail(self, where: str, message: str) -> ProfileError:
        return ProfileError(f"{self.source}: {where}: {message}")

    def profile(self, kind: str, value: object, defaults: dict[str, Any]) -> Profile:
        where = f"[{self.mode}].{kind}"
        entry = {"path": value} if isinstance(value, str) else value
        if not isinstance(entry, dict):
            raise self.fail(where, f"must be a path, a hub id or a table with `path`, got {value!r}")
        if "path" not in entry:
            raise self.fail(where, "a table needs `path` (a model folder or a hub id)")
        options = {k: v for k, v in entry.items() if k != "path"}
        self.options(options, where)
        merged = {**defaults, **options}
        return Profile(
            mode=self.mode,
            kind=kind,
            path=self.model_path(entry["path"], f"{where}.path"),
            **self.values(merged, where),
        )

    def options(self, options: dict[str, Any], where: str) -> None:
        for key in options:
            if key not in OPTIONS:
                raise self.fail(where, f"unknown option `{key}` (options: path, {', '.join(OPTIONS)})")
        self.values(options, where)

    def values(self, options: dict[str, Any], where: str) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for key, value in options.items():
            at = f"{where}.{key}"
            if key in ("steps", "frames_per_pass"):
                if type(value) is not int or value < 1:
                    raise self.fail(at, f"must be a positive integer, got {value!r}")
                out[key] = value
            elif key == "resolution":
                try:
                    out[key] = parse_resolution(value)
                except ValueError as exc:
                    raise self.fail(at, str(exc)) from None
            elif key == "guidance":
                out[key] = self.guidance(value, at)
            elif key in ("dtype", "vae_dtype"):
                out[key] = self.dtype(value, at)
            elif key == "cpu_offload":
                out[key] = self.offload(value, at)
            elif key in ("vae_tiling", "vae_slicing", "pin_keyframes"):
                if not isinstance(value, bool):
                    raise self.fail(at, f"must be true or false, got {value!r}")
                out[key] = value
            elif key in ("negative_prompt", "pipeline"):
                if not isinstance(value, str):
                    raise self.fail(at, f"must be a string, got {value!r}")
                out[key] = value
            elif key == "call_args":
                if not isinstance(value, dict):
                    raise self.fail(at, f"must be a table of pipeline arguments, got {value!r}")
                out[key] = dict(value)
            elif key == "audio":
                out[key] = self.audio(value, at)
            elif key in ("cache", "compile", "quantization", "parallel", "offload"):
                try:
                    out[key] = {
                        "cache": speed.parse_cache,
                        "parallel": speed.parse_parallel,
                        "compile": lambda v: speed.parse_choice(v, speed.COMPILE),
                        "quantization": lambda v: speed.parse_choice(v, speed.QUANTIZATION),
                        "offload": lambda v: speed.parse_choice(v, speed.OFFLOAD),
                    }[key](value)
                except ValueError as exc:
                    raise self.fail(at, str(exc)) from None
        return out

    def guidance(self, value: object, at: str) -> tuple[float, float]:
        if isinstance(value, int | float) and not isinstance(value, bool) and value >= 0:
            return float(value), float(value)
        if (
            isinstance(value, list)
            and len(value) == 2
            and all(isinstance(v, int | float) and not isinstance(v, bool) for v in value)
            and 0 <= value[0] <= value[1]
        ):
            return float(value[0]), float(value[1])
        raise self.fail(at, f"must be a number or a range [low, high] with 0 <= low <= high, got {value!r}")

    def dtype(self, value: object, at: str) -> str:
        if not isinstance(value, str) or value.lower() not in DTYPES:
            raise self.fail(at, f"must be one of bfloat16, float16, float32, got {value!r}")
        return DTYPES[value.lower()]

    def offload(self, value: object, at: str) -> str | None:
        if value is True or value == "model":
            return "model"
        if value == "sequential":
            return "sequential"
        if value is False or value == "none":
            return None
        raise self.fail(at, f'must be true, false, "model" or "sequential", got {value!r}')

    def audio(self, value: object, at: str) -> AudioSourceSpec | None:
        if value is False:
            return None
        entry = {"path": value} if isinstance(value, str) else value
        if not isinstance(entry, dict) or "path" not in entry:
            raise self.fail(at, f"must be a path, a hub id, false, or a table with `path`, got {value!r}")
        spec: dict[str, Any] = {"path": self.model_path(entry["path"], f"{at}.path")}
        for key, item in entry.items():
            if key not in AUDIO_OPTIONS:
                raise self.fail(at, f"unknown option `{key}` (options: {', '.join(AUDIO_OPTIONS)})")
            if key == "steps":
                if type(item) is not int or item < 1:
                    raise self.fail(f"{at}.{key}", f"must be a positive integer, got {item!r}")
                spec[key] = item
            elif key == "guidance":
                spec[key] = self.guidance(item, f"{at}.{key}")[0]
            elif key in ("dtype", "cpu_offload", "negative_prompt", "call_args"):
                spec.update(self.values({key: item}, at))
        return AudioSourceSpec(**spec)

    def model_path(self, value: object, at: str) -> str:
        """An absolute folder path, or a hub id; relative paths are relative to models.toml."""
        if not isinstance(value, str) or not value.strip():
            raise self.fail(at, f"must be a model folder or a hub id, got {value!r}")
        value = value.strip()
        local = Path(value).expanduser()
        if not local.is_absolute():
            local = self.source.parent / local
        if value.startswith(("/", "~", ".")) or local.exists() or not HUB_ID.match(value):
            return str(local.resolve())
        return value
