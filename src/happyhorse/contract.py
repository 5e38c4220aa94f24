"""The wire contract of ``POST /api/generate``: the parsed request and its validation.

``parse_generate`` takes the decoded JSON body exactly as the client sent it and either returns a
``GenerateRequest`` or raises the ``errors.InvalidRequest`` subclass the contract names, checking in
the contract's order: body shape, model, prompt, duration, then every other field.

    body not an object         InvalidRequest
    model                      InvalidModel
    multi_shots                InvalidRequest   (it picks the prompt/duration rules, so it comes first)
    prompt, shot prompts       InvalidPrompt
    duration, shot durations   InvalidDuration
    every other field          InvalidRequest

An optional field sent as ``null`` counts as absent; unknown fields are ignored.
"""

from __future__ import annotations

import copy
import json
import math
import re
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from happyhorse.errors import InvalidDuration, InvalidModel, InvalidPrompt, InvalidRequest

# The contract's limits: the one place each lives. The validation below, the OpenAPI schema
# (contract_schema.py) and the Playground's form (served to the page) all read them from here.
MODEL_NAME = "happyhorse-1.0/video"
MODES = ("std", "pro")
DEFAULT_MODE = "std"
ASPECT_RATIOS = ("16:9", "9:16", "1:1")
DEFAULT_ASPECT_RATIO = "16:9"
PROMPT_MAX = 2500
SHOT_PROMPT_MAX = 500
MAX_SHOTS = 5
DURATION_RANGE = (3, 15)
DEFAULT_DURATION = 5
SHOT_DURATION_RANGE = (1, 12)
CFG_SCALE_RANGE = (0.0, 1.0)
DEFAULT_CFG_SCALE = 0.5
SEED_MAX = 2_147_483_647
URL_MAX = 2048
MAX_IMAGES = 2  # first frame, last frame
MAX_IMAGES_MULTI_SHOT = 1  # the first frame only
MAX_ELEMENTS = 3
ELEMENT_URLS_RANGE = (2, 4)
ELEMENT_NAME_MAX = 64
ELEMENT_KEYS = ("happyhorse_elements", "kling_elements", "elements")  # canonical name first
KNOWN_FIELDS = frozenset(
    {
        "model", "prompt", "mode", "duration", "aspect_ratio", "image_urls", "sound", "cfg_scale",
        "multi_shots", "multi_prompt", "seed", "negative_prompt", *ELEMENT_KEYS,
    }
)  # fmt: skip

# ASCII digits only: str.isdigit() and int() would also take "٥", "+5", "5_0" and " 5 ".
# Nine digits is plenty for every range here and keeps int() away from huge strings.
_DIGITS = re.compile(r"[0-9]{1,9}")
ELEMENT_NAME_PATTERN = rf"[A-Za-z0-9_]{{1,{ELEMENT_NAME_MAX}}}"
_ELEMENT_NAME = re.compile(ELEMENT_NAME_PATTERN)
MAX_JSON_DEPTH = 64
MAX_JSON_INT_DIGITS = 1000
_SURROGATE = re.compile("[\ud800-\udfff]")


def _refuse_constant(name: str) -> Any:
    raise InvalidRequest(f"request body must be plain JSON: {name} is not a JSON number")


def _finite_float(text: str) -> float:
    # 1e999 parses to inf: Infinity by another spelling, which no status answer could send back
    number = float(text)
    if not math.isfinite(number):
        raise InvalidRequest(f"request body must be plain JSON: {text[:20]} is too large for a JSON number")
    return number


def _bounded_int(digits: str) -> int:
    # int() refuses more than sys.get_int_max_str_digits() digits with a ValueError that would read as
    # "not UTF-8" below; no field takes a number anywhere near that long.
    if len(digits) > MAX_JSON_INT_DIGITS:
        raise InvalidRequest(f"request body holds a number with more than {MAX_JSON_INT_DIGITS} digits")
    return int(digits)


def loads_request_body(raw: bytes | str) -> Any:
    """Decode a request body as strict JSON, or raise ``InvalidRequest``.

    Stricter than ``json.loads``: ``NaN``, ``Infinity`` and ``-Infinity`` are refused (no JSON encoder
    can send them back in a status answer), and so are numbers that overflow to them (``1e999``) or
    have more than ``MAX_JSON_INT_DIGITS`` digits; lone UTF-16 surrogates (``"\\ud800"``: not
    encodable as UTF-8) and NUL characters (PostgreSQL cannot store them in text) in any string or
    key; and nesting deeper than ``MAX_JSON_DEPTH`` anywhere.
    """
    try:
        value = json.loads(raw, parse_constant=_refuse_constant, parse_int=_bounded_int, parse_float=_finite_float)
    except RecursionError:
        raise InvalidRequest(f"request body is nested deeper than {MAX_JSON_DEPTH} levels") from None
    except json.JSONDecodeError as exc:
        raise InvalidRequest(f"request body is not valid JSON: line {exc.lineno}, column {exc.colno}") from None
    except (ValueError, UnicodeDecodeError):
        raise InvalidRequest("request body is not valid JSON: it is not UTF-8 text") from None
    check_storable(value)
    return value


def check_storable(value: Any) -> None:
    """Depth, surrogates and NULs, walked without recursion (a deep body must not exhaust the stack).
    ``loads_request_body`` runs it; a surface that decodes its own body (a multipart form) calls it too."""
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, str):
            if _SURROGATE.search(item):
                raise InvalidRequest("request body holds a lone UTF-16 surrogate (\\ud800-\\udfff) in a string")
            if "\x00" in item:
                raise InvalidRequest("request body holds a NUL character (\\u0000) in a string")
            continue
        if not isinstance(item, dict | list):
            continue
        if depth > MAX_JSON_DEPTH:
            raise InvalidRequest(f"request body is nested deeper than {MAX_JSON_DEPTH} levels")
        if isinstance(item, dict):
            stack.extend((k, depth) for k in item)
            stack.extend((v, depth + 1) for v in item.values())
        else:
            stack.extend((v, depth + 1) for v in item)


@dataclass
class ShotPrompt:
    prompt: str
    duration: int


@dataclass
class ElementInput:
    name: str
    description: str  # "" when the client sent none
    urls: list[str]


@dataclass
class GenerateRequest:
    model: str
    prompt: str | None
    mode: str  # "std" | "pro"
    duration: int  # total seconds (sum of shots when multi-shot)
    aspect_ratio: str  # as requested (the worker adapts it to the first image)
    image_urls: list[str]
    sound: bool
    cfg_scale: float
    multi_shots: bool
    multi_prompt: list[ShotPrompt]
    elements: list[ElementInput]
    seed: int | None
    negative_prompt: str | None
    echo: dict[str, Any] = field(default_factory=dict)  # accepted request as sent, known fields only
    # A visible mark on every frame. Not a field of /api/generate: DashScope's parameters.watermark sets it.
    watermark: bool = False

    @property
    def type(self) -> str:
        return "image-to-video" if self.image_urls else "text-to-video"


def parse_generate(body: Any) -> GenerateRequest:
    """Validate a decoded ``/api/generate`` body; raise the contract's error for the first fault."""
    if not isinstance(body, dict):
        raise InvalidRequest("request body must be a JSON object")
    model = _check_model(body.get("model"))
    multi = _check_multi_shots(body.get("multi_shots"))
    # With multi_shots false, multi_prompt is not rendered: the public docs describe it only "for
    # multi-shot mode", and rejecting a stray, well-formed field would break clients that always send
    # the whole form. It still appears in the echo, as sent, so it is held to the same limits
    # (at most MAX_SHOTS shots of at most SHOT_PROMPT_MAX characters; an empty list is fine).
    raw_shots = body.get("multi_prompt") if multi else None
    if not multi:
        _check_unused_shots(body.get("multi_prompt"))

    prompt = _check_prompt(body.get("prompt"), multi)
    shot_prompts = _check_shot_prompts(raw_shots)
    duration, shot_durations = _check_durations(body.get("duration"), raw_shots, multi)

    shots: list[ShotPrompt] = []
    if multi:
        _check_shots_shape(raw_shots)
        shots = [ShotPrompt(p, d) for p, d in zip(shot_prompts, shot_durations, strict=True)]
    return GenerateRequest(
        model=model,
        prompt=prompt,
        mode=_choice(body.get("mode"), "mode", MODES, DEFAULT_MODE),
        duration=duration,
        aspect_ratio=_choice(body.get("aspect_ratio"), "aspect_ratio", ASPECT_RATIOS, DEFAULT_ASPECT_RATIO),
        image_urls=_check_image_urls(body.get("image_urls"), multi),
        sound=_check_sound(body.get("sound"), multi),
        cfg_scale=_check_cfg_scale(body.get("cfg_scale")),
        multi_shots=multi,
        multi_prompt=shots,
        elements=_check_elements(body),
        seed=_check_seed(body.get("seed")),
        negative_prompt=_check_negative_prompt(body.get("negative_prompt")),
        echo=_echo(body),
    )


# --- model, multi_shots, prompts -------------------------------------------------------------


def _check_model(value: Any) -> str:
    if value is None:
        raise InvalidModel(f"model is required and must be '{MODEL_NAME}'")
    if not isinstance(value, str) or value != MODEL_NAME:
        raise InvalidModel(f"model must be '{MODEL_NAME}'")
    return value


def _check_multi_shots(value: Any) -> bool:
    # Checked before the prompt although it is "another field": whether a prompt is required
    # depends on it, so with a malformed multi_shots the prompt cannot be judged at all.
    if value is None:
        return False
    if not isinstance(value, bool):
        raise InvalidRequest("multi_shots must be true or false")
    return value


def _check_prompt(value: Any, multi: bool) -> str | None:
    if value is None:
        if multi:
            return None
        raise InvalidPrompt("prompt is required unless multi_shots is true")
    # With multi-shot the top-level prompt is shared context and may be blank.
    return _check_text(value, "prompt", PROMPT_MAX, InvalidPrompt, allow_blank=multi)


def _check_shot_prompts(raw_shots: Any) -> list[str]:
    """Check every shot prompt before any duration, so a bad prompt always wins over a bad duration.

    Items that are not objects are skipped here and rejected later as a multi_prompt shape error.
    """
    if not isinstance(raw_shots, list):
        return []
    prompts = []
    for i, shot in enumerate(raw_shots):
        if not isinstance(shot, dict):
            continue
        name = f"multi_prompt[{i}].prompt"
        value = shot.get("prompt")
        if value is None:
            raise InvalidPrompt(f"{name} is required")
        prompts.append(_check_text(value, name, SHOT_PROMPT_MAX, InvalidPrompt, allow_blank=False))
    return prompts


def _check_text(value: Any, name: str, limit: int, error: type[InvalidRequest], *, allow_blank: bool) -> str:
    if not isinstance(value, str):
        raise error(f"{name} must be a string")
    if not allow_blank and not value.strip():
        raise error(f"{name} must not be blank")
    if len(value) > limit:  # len() counts code points, which is what the contract limits
        raise error(f"{name} must be at most {limit} characters (got {len(value)})")
    return value


# --- durations -------------------------------------------------------------------------------


def coerce_int(value: Any) -> int | None:
    """The contract's integer coercion: ints, integer-valued numbers (5.0) and ASCII digit strings
    ("5") become an int; anything else (5.5, true, "five", "5.0", " 5", "-3") gives None."""
    if isinstance(value, bool):  # bool is an int subclass, but true is not a duration
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        return int(value) if value.is_integer() else None  # is_integer() is False for inf and nan
    if isinstance(value, str) and _DIGITS.fullmatch(value):
        return int(value)
    return None


def _check_int_range(value: Any, name: str, bounds: tuple[int, int]) -> int:
    number = coerce_int(value)
    low, high = bounds
    if number is None or not low <= number <= high:
        raise InvalidDuration(f"{name} must be an integer from {low} to {high}")
    return number


def _check_durations(value: Any, raw_shots: Any, multi: bool) -> tuple[int, list[int]]:
    """Resolve the total duration and the shot durations (empty for single-shot)."""
    sent = None if value is None else _check_int_range(value, "duration", DURATION_RANGE)
    if not multi:
        return (DEFAULT_DURATION if sent is None else sent), []
    if not isinstance(raw_shots, list):
        return sent or 0, []  # multi_prompt missing or malformed: rejected with the other fields
    durations = [
        _check_int_range(shot.get("duration"), f"multi_prompt[{i}].duration", SHOT_DURATION_RANGE)
        for i, shot in enumerate(raw_shots)
        if isinstance(shot, dict)
    ]
    if len(durations) != len(raw_shots) or not 1 <= len(raw_shots) <= MAX_SHOTS:
        return sent or 0, durations  # shape error: the sum means nothing yet; reported later
    total = sum(durations)
    low, high = DURATION_RANGE
    if not low <= total <= high:
        raise InvalidDuration(f"multi_prompt durations must add up to {low} to {high} seconds (they add up to {total})")
    if sent is not None and sent != total:
        raise InvalidDuration(f"duration must equal the sum of the multi_prompt durations ({total}), not {sent}")
    return total, durations


# --- every other field -----------------------------------------------------------------------


def _check_shots_shape(raw_shots: Any) -> None:
    if raw_shots is None:
        raise InvalidRequest("multi_prompt is required when multi_shots is true")
    if not isinstance(raw_shots, list):
        raise InvalidRequest("multi_prompt must be a list of {prompt, duration} objects")
    if not 1 <= len(raw_shots) <= MAX_SHOTS:
        raise InvalidRequest(f"multi_prompt must hold 1 to {MAX_SHOTS} shots (got {len(raw_shots)})")
    for i, shot in enumerate(raw_shots):
        if not isinstance(shot, dict):
            raise InvalidRequest(f"multi_prompt[{i}] must be a {{prompt, duration}} object")


def _check_unused_shots(raw_shots: Any) -> None:
    """multi_prompt sent with multi_shots false: not rendered, but stored and echoed, so within limits."""
    if raw_shots is None:
        return
    if not isinstance(raw_shots, list):
        raise InvalidRequest("multi_prompt must be a list of {prompt, duration} objects")
    if len(raw_shots) > MAX_SHOTS:
        raise InvalidRequest(f"multi_prompt must hold at most {MAX_SHOTS} shots (got {len(raw_shots)})")
    for i, shot in enumerate(raw_shots):
        if not isinstance(shot, dict):
            raise InvalidRequest(f"multi_prompt[{i}] must be a {{prompt, duration}} object")
        if shot.get("prompt") is not None:
            _check_text(shot["prompt"], f"multi_prompt[{i}].prompt", SHOT_PROMPT_MAX, InvalidPrompt, allow_blank=True)
        if shot.get("duration") is not None:
            _check_int_range(shot["duration"], f"multi_prompt[{i}].duration", SHOT_DURATION_RANGE)


def _choice(value: Any, name: str, options: tuple[str, ...], default: str) -> str:
    if value is None:
        return default
    if not isinstance(value, str) or value not in options:
        raise InvalidRequest(f"{name} must be one of {', '.join(options)}")
    return value


def _check_image_urls(value: Any, multi: bool) -> list[str]:
    if value is None:
        return []
    if multi:
        return _check_urls(value, "image_urls", 0, MAX_IMAGES_MULTI_SHOT, " with multi_shots (the first frame only)")
    return _check_urls(value, "image_urls", 0, MAX_IMAGES, " (first frame, last frame)")


def _check_urls(value: Any, name: str, low: int, high: int, why: str = "") -> list[str]:
    if not isinstance(value, list):
        raise InvalidRequest(f"{name} must be a list of http(s) URLs")
    if not low <= len(value) <= high:
        count = f"at most {high}" if low == 0 else f"{low} to {high}"
        plural = "" if high == 1 else "s"
        raise InvalidRequest(f"{name} takes {count} URL{plural}{why}, got {len(value)}")
    for i, url in enumerate(value):
        if not is_http_url(url):
            raise InvalidRequest(f"{name}[{i}] must be an http(s) URL of at most {URL_MAX} characters")
    return list(value)


def is_http_url(value: Any) -> bool:
    """An absolute http(s) URL with a host, no whitespace, within ``URL_MAX`` characters.

    Only the shape is checked here; what the host resolves to is the fetcher's SSRF guard's job.
    """
    if not isinstance(value, str) or not value or len(value) > URL_MAX:
        return False
    if any(c.isspace() or ord(c) < 0x20 or ord(c) == 0x7F for c in value):
        return False
    try:
        parts = urlsplit(value)
        host = parts.hostname
        _ = parts.port  # raises ValueError for a port that is not a number in range
    except ValueError:  # e.g. an unbalanced "[" in the host
        return False
    return parts.scheme.lower() in ("http", "https") and bool(host)


def _check_sound(value: Any, multi: bool) -> bool:
    if value is None:
        if multi:
            raise InvalidRequest("sound is required with multi_shots: send true or false")
        return True
    if not isinstance(value, bool):
        raise InvalidRequest("sound must be true or false")
    return value


def _check_cfg_scale(value: Any) -> float:
    if value is None:
        return DEFAULT_CFG_SCALE
    low, high = CFG_SCALE_RANGE
    ok = isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
    if not ok or not low <= value <= high:
        raise InvalidRequest(f"cfg_scale must be a number from {low:g} to {high:g}")
    return float(value)


def _check_seed(value: Any) -> int | None:
    # Integer-valued floats (42.0) are accepted like for duration, since JavaScript clients can't tell
    # them apart; strings are not: the contract grants string coercion to duration only.
    if value is None:
        return None
    seed = None if isinstance(value, str) else coerce_int(value)
    if seed is None or not 0 <= seed <= SEED_MAX:
        raise InvalidRequest(f"seed must be an integer from 0 to {SEED_MAX}")
    return seed


def _check_negative_prompt(value: Any) -> str | None:
    if value is None:
        return None
    return _check_text(value, "negative_prompt", PROMPT_MAX, InvalidRequest, allow_blank=True)


def _check_elements(body: dict[str, Any]) -> list[ElementInput]:
    sent = [key for key in ELEMENT_KEYS if body.get(key) is not None]
    if len(sent) > 1:
        raise InvalidRequest(f"send only one of {', '.join(ELEMENT_KEYS)} (they are aliases)")
    if not sent:
        return []
    key = sent[0]  # messages use the name the client used
    raw = body[key]
    if not isinstance(raw, list):
        raise InvalidRequest(f"{key} must be a list of element objects")
    if len(raw) > MAX_ELEMENTS:
        raise InvalidRequest(f"{key} takes at most {MAX_ELEMENTS} elements (got {len(raw)})")
    elements: list[ElementInput] = []
    for i, item in enumerate(raw):
        element = _check_element(item, f"{key}[{i}]")
        if any(e.name == element.name for e in elements):  # case-sensitive, like the @name match
            raise InvalidRequest(f"{key}[{i}].name '{element.name}' is already used; names must be unique")
        elements.append(element)
    return elements


def _check_element(item: Any, path: str) -> ElementInput:
    if not isinstance(item, dict):
        raise InvalidRequest(f"{path} must be an object with name, description and element_input_urls")
    name = item.get("name")
    if not isinstance(name, str) or not _ELEMENT_NAME.fullmatch(name):
        raise InvalidRequest(f"{path}.name must be 1 to 64 letters, digits or underscores")
    description = item.get("description")
    if description is not None:
        _check_text(description, f"{path}.description", PROMPT_MAX, InvalidRequest, allow_blank=True)
    # `images` is an alias of element_input_urls; sending both is ambiguous, so it is refused
    # the same way as sending two of the top-level element aliases.
    urls_keys = [k for k in ("element_input_urls", "images") if item.get(k) is not None]
    if len(urls_keys) > 1:
        raise InvalidRequest(f"{path}: send element_input_urls or its alias images, not both")
    if not urls_keys:
        raise InvalidRequest(f"{path}.element_input_urls is required (2 to 4 image URLs)")
    low, high = ELEMENT_URLS_RANGE
    urls = _check_urls(item[urls_keys[0]], f"{path}.{urls_keys[0]}", low, high)
    return ElementInput(name=name, description=description or "", urls=urls)


def _echo(body: dict[str, Any]) -> dict[str, Any]:
    """The known, non-null top-level fields with their values exactly as sent, in the client's order.

    Deep-copied so that later changes to the parsed body can never alter the stored request.
    """
    return {k: copy.deepcopy(v) for k, v in body.items() if k in KNOWN_FIELDS and v is not None}


# --- helpers for the worker ------------------------------------------------------------------


def nearest_aspect_ratio(width: int, height: int) -> str:
    """The contract's output shape for an input image: the nearest of 16:9, 1:1, 9:16 on a log scale.

    On a log scale the midpoint between two ratios is their geometric mean: sqrt(16/9 · 1) = 4/3 and
    sqrt(1 · 9/16) = 3/4. So the rule is exact integer arithmetic, with no floating-point ties:
    w/h >= 4/3 → 16:9, w/h <= 3/4 → 9:16, else 1:1. A tie (exactly 4:3 or 3:4) goes to 16:9 for
    the landscape 4:3 and to 9:16 for the portrait 3:4, as the contract says.
    """
    if width <= 0 or height <= 0:
        raise ValueError(f"image size must be positive, got {width}x{height}")
    if 3 * width >= 4 * height:
        return "16:9"
    if 4 * width <= 3 * height:
        return "9:16"
    return "1:1"


def frame_shots(req: GenerateRequest) -> list[ShotPrompt]:
    """The shots to render, each with its full prompt.

    Single-shot: one shot of the whole duration. Multi-shot: each shot's prompt is prefixed with the
    shared top-level prompt when that is not blank, as "<shared>. <shot>" (no extra period when the
    shared context already ends a sentence), so every shot sees the same context.
    """
    if not req.multi_shots:
        return [ShotPrompt(prompt=req.prompt or "", duration=req.duration)]
    shared = (req.prompt or "").strip()
    if not shared:
        return [ShotPrompt(s.prompt, s.duration) for s in req.multi_prompt]
    joiner = " " if shared[-1] in ".!?…。！？" else ". "
    return [ShotPrompt(f"{shared}{joiner}{s.prompt.strip()}", s.duration) for s in req.multi_prompt]
