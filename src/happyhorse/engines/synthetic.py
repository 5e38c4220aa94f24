"""The synthetic engine: a CPU-only, weight-free, deterministic stand-in that visibly follows requests.

Integrators test against it, so everything a request asks for shows on screen:

- the prompt, legible in a caption box, under a "SYNTHETIC PREVIEW" badge;
- a scene derived from a hash of (prompt, seed, negative prompt, cfg scale): palette, gradient
  direction, soft blobs and moving shapes — a different prompt gives a visibly different scene,
  and the shapes move so it is clearly video;
- elements: each element whose ``@name`` occurs in the shot's prompt moves through the scene as a
  thumbnail of its reference images labelled ``@name``, cycling through all of them (about a second
  each, faster in a short shot so every one shows); unreferenced elements stay out, the way the
  contract says a prompt refers to one;
- image-to-video: frame 0 *is* ``first_frame`` and the last frame *is* ``last_frame``, exactly and
  without overlay; in between the video zooms slowly away from the first image, into the last
  one, or dissolves from one to the other when both are given;
- a soundtrack when ``shot.sound``: an arpeggio over a pad whose chord comes from the same hash, so
  it changes at shot cuts.

Speed: everything static (background, caption, badge, sprites, thumbnails) is drawn once per shot;
a frame is a copy of the background, a few small blends and slice copies.
"""

from __future__ import annotations

import colorsys
import functools
import hashlib
import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import av
import numpy as np
from PIL import Image, ImageDraw, ImageFont

from happyhorse.engines.base import AUDIO_SAMPLE_RATE, FRAME_SIZES, Clip, EngineError, Progress, Shot
from happyhorse.engines.synthetic_sound import soundtrack

BADGE_TEXT = "SYNTHETIC PREVIEW"
PANEL_COLOR = (14, 14, 18)  # near-black: scene colours never get this dark, so overlays stand out
TEXT_COLOR = (245, 245, 245)
MAX_CAPTION_LINES = 4
NUM_SHAPES = 6
# Image-to-video zooms by this fraction of the frame per second of shot, at most MAX_ZOOM: slow
# enough that the picture stays the input image, fast enough to be clearly video.
ZOOM_PER_SECOND = 0.02
MAX_ZOOM = 0.1
ELEMENT_IMAGE_SECONDS = 1.0  # how long an element thumbnail shows each reference image


class SyntheticEngine:
    """Renders previews on the CPU. See the module docstring for what each request field does."""

    name = "synthetic"

    def load(self) -> None:
        """Nothing to load: no weights."""

    def frame_size(self, mode: str, aspect_ratio: str) -> tuple[int, int]:
        try:
            return FRAME_SIZES[(mode, aspect_ratio)]
        except KeyError:
            raise EngineError(f"unsupported mode/aspect ratio: {mode!r} {aspect_ratio!r}") from None

    def render(self, shot: Shot, progress: Progress) -> Clip:
        scene = _Scene(shot)  # all per-shot drawing happens here, before the first frame
        audio = soundtrack(shot, _digest(shot)) if shot.sound else None
        return Clip(frames=scene.frames(progress), audio=audio, sample_rate=AUDIO_SAMPLE_RATE)


# -- the scene -------------------------------------------------------------------------------------


def _digest(shot: Shot) -> bytes:
    """The hash that every visual and audible choice derives from (never Python's salted ``hash``)."""
    key = f"{shot.seed}\x00{shot.prompt}\x00{shot.negative_prompt or ''}\x00{shot.cfg_scale:.4f}"
    return hashlib.sha256(key.encode()).digest()


@dataclass
class _Sprite:
    """A small picture that moves along a Lissajous path.

    A blended sprite keeps ``inverse_alpha`` = 256 − alpha, (h, w, 1) uint16, and ``rgb`` as the
    premultiplied colour (colour · alpha, uint16), so a blend is one multiply and one add per
    pixel. An opaque sprite has ``inverse_alpha`` None and uint8 ``rgb``.
    """

    rgb: np.ndarray
    inverse_alpha: np.ndarray | None  # 256 − alpha
    centre: tuple[float, float]  # path centre, fractions of the frame
    amplitude: tuple[float, float]
    speed: tuple[float, float]  # cycles per second on each axis
    phase: tuple[float, float]
    cycle: tuple[np.ndarray, ...] = ()  # pictures shown in turn (an element's images); same shape as rgb

    def picture(self, t: float, seconds: float) -> np.ndarray:
        """What the sprite shows at ``t`` in a shot of ``seconds``: each picture of ``cycle`` in turn."""
        if len(self.cycle) < 2:
            return self.rgb
        period = min(ELEMENT_IMAGE_SECONDS, seconds / len(self.cycle))
        return self.cycle[int(t / period) % len(self.cycle)]

    def position(self, t: float, width: int, height: int) -> tuple[int, int]:
        """Top-left corner at ``t`` seconds."""
        fx = self.centre[0] + self.amplitude[0] * math.sin(2 * math.pi * (self.speed[0] * t + self.phase[0]))
        fy = self.centre[1] + self.amplitude[1] * math.sin(2 * math.pi * (self.speed[1] * t + self.phase[1]))
        h, w = self.rgb.shape[:2]
        return round(fx * width - w / 2), round(fy * height - h / 2)


class _Scene:
    """Everything drawn once for a shot, and the per-frame compositing."""

    def __init__(self, shot: Shot) -> None:
        _check_pinned(shot)
        self.shot = shot
        self.width, self.height = shot.width, shot.height
        self.rng = np.random.default_rng(np.frombuffer(_digest(shot), dtype=np.uint32))
        self.palette = _palette(self.rng)
        self.image_motion = self._image_motion()
        image_to_video = self.image_motion is not None
        self.background = None if image_to_video else self._background()
        self.sprites = [] if image_to_video else self._shapes()
        self.overlays = self._overlays()  # (image, x, y): badge and caption, opaque
        # Elements move only between the badge and the caption, so they are always fully in view.
        badge, caption = self.overlays
        stage = (badge[2] + badge[0].shape[0], caption[2])
        self.sprites += self._element_thumbnails(stage)

    # -- drawn once --------------------------------------------------------------------------

    def _background(self) -> np.ndarray:
        """A gradient along a hashed angle with soft blobs.

        It is smooth, so it is computed at a quarter of the size and scaled up: 16× less maths.
        It stays still (the shapes move): a panning background costs the encoder ~20% more.
        """
        full_w, full_h = self.width, self.height
        h, w = max(2, full_h // 4), max(2, full_w // 4)
        ys = np.linspace(-1.0, 1.0, h, dtype=np.float32)[:, None]
        xs = np.linspace(-1.0, 1.0, w, dtype=np.float32)[None, :] * (w / h)
        angle = self.rng.uniform(0, 2 * math.pi)
        ramp = np.clip(0.5 + 0.35 * (xs * math.cos(angle) + ys * math.sin(angle)), 0, 1)[..., None]
        c0, c1 = self.palette[0], self.palette[1]
        img = c0 * (1 - ramp) + c1 * ramp
        for colour in self.palette[2:4]:
            bx, by = self.rng.uniform(-1.2, 1.2), self.rng.uniform(-0.8, 0.8)
            radius = self.rng.uniform(0.35, 0.7)
            weight = np.exp(-((xs - bx) ** 2 + (ys - by) ** 2) / (2 * radius**2))[..., None] * 0.7
            img = img * (1 - weight) + colour * weight
        small = Image.fromarray(img.clip(0, 255).astype(np.uint8))
        return np.asarray(small.resize((full_w, full_h), Image.Resampling.BILINEAR)).copy()

    def _image_motion(self) -> Callable[[float], np.ndarray] | None:
        """Image-to-video: the picture at shot position s (0 → 1), or None without input images."""
        first, last = self.shot.first_frame, self.shot.last_frame
        if first is not None and last is not None:
            dissolve = _Dissolve(first, last)
            return lambda s: dissolve(s * s * (3 - 2 * s))  # smoothstep: eases in and out
        zoom = min(MAX_ZOOM, ZOOM_PER_SECOND * self.shot.duration)
        if first is not None:
            zoom_out_of = _Zoom(first)
            return lambda s: zoom_out_of(1 + zoom * s)
        if last is not None:
            zoom_into = _Zoom(last)
            return lambda s: zoom_into(1 + zoom * (1 - s))
        return None

    def _shapes(self) -> list[_Sprite]:
        """Anti-aliased circles, rings, squares and diamonds in the palette's accent colours."""
        unit = min(self.width, self.height)
        sprites = []
        for i in range(NUM_SHAPES):
            size = int(unit * self.rng.uniform(0.08, 0.2))
            kind = ("circle", "ring", "square", "diamond")[int(self.rng.integers(4))]
            colour = self.palette[2 + i % 3]
            alpha = _shape_alpha(kind, size)
            premultiplied = colour.astype(np.uint16)[None, None, :] * alpha
            sprites.append(self._moving(premultiplied, 256 - alpha))
        return sprites

    def _element_thumbnails(self, stage: tuple[int, int]) -> list[_Sprite]:
        """A labelled thumbnail for each element the prompt names as ``@name``, moving within the
        rows ``stage`` (top, bottom)."""
        # The image part takes 0.22 of the short side, less if the stage is short (label included).
        box = max(8, round(min(0.22 * min(self.width, self.height), 0.6 * (stage[1] - stage[0]))))
        sprites = []
        for element in self.shot.elements:
            if not element.images or not element.mentioned_in(self.shot.prompt):
                continue
            cards = _same_size(
                [_thumbnail(img, box, f"@{element.name}", self.palette[4]) for img in element.images], self.palette[4]
            )
            sprite = self._moving_within(cards[0], stage)
            sprite.cycle = tuple(cards)
            sprites.append(sprite)
        return sprites

    def _moving_within(self, rgb: np.ndarray, stage: tuple[int, int]) -> _Sprite:
        """An opaque sprite whose whole path keeps it inside the frame and the rows ``stage``."""
        h, w = rgb.shape[:2]
        top, bottom = stage
        # Fractions of the frame for the sprite's centre: the span it may travel, halved.
        x_lo, x_hi = w / 2 / self.width, 1 - w / 2 / self.width
        y_lo, y_hi = (top + h / 2) / self.height, (bottom - h / 2) / self.height
        r = self.rng
        return _Sprite(
            rgb=rgb,
            inverse_alpha=None,
            centre=((x_lo + x_hi) / 2, (y_lo + y_hi) / 2),
            amplitude=(max(0.0, x_hi - x_lo) / 2 * r.uniform(0.5, 1), max(0.0, y_hi - y_lo) / 2 * r.uniform(0.5, 1)),
            speed=(r.uniform(0.15, 0.35), r.uniform(0.15, 0.35)),
            phase=(r.uniform(0, 1), r.uniform(0, 1)),
        )

    def _moving(self, rgb: np.ndarray, inverse_alpha: np.ndarray | None) -> _Sprite:
        r = self.rng
        return _Sprite(
            rgb=rgb,
            inverse_alpha=inverse_alpha,
            centre=(r.uniform(0.3, 0.7), r.uniform(0.3, 0.6)),
            amplitude=(r.uniform(0.15, 0.3), r.uniform(0.1, 0.25)),
            speed=(r.uniform(0.1, 0.35), r.uniform(0.1, 0.35)),
            phase=(r.uniform(0, 1), r.uniform(0, 1)),
        )

    def _overlays(self) -> list[tuple[np.ndarray, int, int]]:
        """The badge (top left) and the prompt caption (bottom centre), as opaque panels."""
        w, h = self.width, self.height
        unit = min(w, h)
        pad = max(6, unit // 60)
        badge_font = _font(max(12, unit // 30))
        # The task's seed, the one its status and card report: a later shot's own seed would confuse.
        shown_seed = self.shot.seed if self.shot.task_seed is None else self.shot.task_seed
        badge_text = f"{BADGE_TEXT} · shot {self.shot.index + 1} · seed {shown_seed}"
        badge = _text_panel([badge_text], badge_font, pad)
        caption_font = _font(max(12, unit // 24))
        lines = _wrap(self.shot.prompt, caption_font, w - 6 * pad) or [" "]
        caption = _text_panel(lines, caption_font, pad)
        return [
            (badge, pad, pad),
            (caption, (w - caption.shape[1]) // 2, h - caption.shape[0] - 3 * pad),
        ]

    # -- per frame -----------------------------------------------------------------------------

    def frames(self, progress: Progress) -> Iterator[np.ndarray]:
        """Yield ``shot.num_frames`` new (H, W, 3) uint8 arrays, reporting progress after each."""
        n = self.shot.num_frames
        for i in range(n):
            yield self._frame(i, n)
            progress((i + 1) / n)

    def _frame(self, i: int, n: int) -> np.ndarray:
        shot = self.shot
        # Pinned frames are the caller's images, bit for bit: no overlay, no processing.
        if i == 0 and shot.first_frame is not None:
            return shot.first_frame.copy()
        if i == n - 1 and shot.last_frame is not None:
            return shot.last_frame.copy()
        t = i / shot.fps
        frame = self._base(i, n)
        for sprite in self.sprites:
            x, y = sprite.position(t, self.width, self.height)
            _paste(frame, sprite.picture(t, n / shot.fps), sprite.inverse_alpha, x, y)
        for panel, x, y in self.overlays:
            _paste(frame, panel, None, x, y)
        self._progress_bar(frame, (i + 1) / n)
        return frame

    def _base(self, i: int, n: int) -> np.ndarray:
        """The picture under the sprites: the input image(s) in motion, or the background."""
        if self.image_motion is not None:
            return self.image_motion(i / max(1, n - 1))
        assert self.background is not None
        return self.background.copy()

    def _progress_bar(self, frame: np.ndarray, fraction: float) -> None:
        """A thin bar along the bottom edge that fills over the shot: time is visible on every frame."""
        bar = max(2, self.height // 180)
        frame[-bar:, : round(self.width * fraction)] = TEXT_COLOR


# -- drawing helpers -------------------------------------------------------------------------------


@functools.lru_cache(maxsize=32)
def _font(size: int) -> ImageFont.FreeTypeFont:
    """Pillow's bundled scalable font (Pillow ≥ 10.1 with FreeType): nothing to download or install."""
    font = ImageFont.load_default(size=size)
    if not isinstance(font, ImageFont.FreeTypeFont):
        raise EngineError("the synthetic engine needs Pillow built with FreeType")
    return font


def _check_pinned(shot: Shot) -> None:
    for name, img in (("first_frame", shot.first_frame), ("last_frame", shot.last_frame)):
        if img is not None and (img.shape != (shot.height, shot.width, 3) or img.dtype != np.uint8):
            raise EngineError(f"{name} must be uint8 ({shot.height}, {shot.width}, 3), got {img.dtype} {img.shape}")


def _palette(rng: np.random.Generator) -> list[np.ndarray]:
    """Five colours: two background tones and three accents around a hashed base hue.

    Saturation and value stay in a band that is never near-black nor near-white, so the black
    caption panels and white text always stand out from the scene.
    """
    hue = rng.uniform(0, 1)
    offsets = (0.0, rng.uniform(0.08, 0.2), 0.5, rng.uniform(0.3, 0.45), rng.uniform(0.6, 0.8))
    colours = []
    for k, offset in enumerate(offsets):
        sat = rng.uniform(0.45, 0.8)
        val = rng.uniform(0.45, 0.7) if k < 2 else rng.uniform(0.75, 0.95)
        rgb = colorsys.hsv_to_rgb((hue + offset) % 1.0, sat, val)
        colours.append(np.array(rgb, dtype=np.float32) * 255)
    return colours


def _shape_alpha(kind: str, size: int) -> np.ndarray:
    """An anti-aliased mask (size, size, 1) as uint16 weights 0..256."""
    c = (size - 1) / 2
    ys, xs = np.mgrid[0:size, 0:size].astype(np.float32)
    r = size / 2 - 1
    if kind == "circle":
        dist = np.hypot(xs - c, ys - c) - r
    elif kind == "ring":
        dist = np.abs(np.hypot(xs - c, ys - c) - r * 0.75) - r * 0.25
    elif kind == "square":
        dist = np.maximum(np.abs(xs - c), np.abs(ys - c)) - r * 0.85
    else:  # diamond
        dist = (np.abs(xs - c) + np.abs(ys - c)) - r
    coverage = np.clip(0.5 - dist, 0.0, 1.0)  # one pixel of soft edge
    mask: np.ndarray = (coverage * 256).astype(np.uint16)[..., None]
    return mask


def _paste(frame: np.ndarray, rgb: np.ndarray, inverse_alpha: np.ndarray | None, x: int, y: int) -> None:
    """Draw ``rgb`` with its top-left at (x, y), clipped to the frame.

    Opaque when ``inverse_alpha`` is None; otherwise ``rgb`` is premultiplied uint16 (see ``_Sprite``).
    """
    fh, fw = frame.shape[:2]
    h, w = rgb.shape[:2]
    x0, y0, x1, y1 = max(x, 0), max(y, 0), min(x + w, fw), min(y + h, fh)
    if x0 >= x1 or y0 >= y1:
        return
    src = rgb[y0 - y : y1 - y, x0 - x : x1 - x]
    if inverse_alpha is None:
        frame[y0:y1, x0:x1] = src
        return
    keep = inverse_alpha[y0 - y : y1 - y, x0 - x : x1 - x]
    dst = frame[y0:y1, x0:x1]
    # Integer blend (dst·(256−a) + colour·a) / 256, in place: exact enough and far cheaper than floats.
    mixed = dst * keep
    mixed += src
    mixed >>= 8
    dst[...] = mixed


class _Dissolve:
    """Blends between two images; the difference is computed once, so a frame costs four passes."""

    STEPS = 128  # weights in 1/128ths: (b − a) · 128 still fits int16, and the steps are invisible

    def __init__(self, a: np.ndarray, b: np.ndarray) -> None:
        self.a = a.astype(np.int16)
        self.delta = b.astype(np.int16) - self.a

    def __call__(self, weight: float) -> np.ndarray:
        """(1 − weight)·a + weight·b as uint8; weight 0 gives a and 1 gives b exactly."""
        mixed = self.delta * np.int16(round(weight * self.STEPS))
        mixed >>= 7  # / STEPS
        mixed += self.a
        return mixed.astype(np.uint8)


class _Zoom:
    """Centre-zooms of one image, with FFmpeg's scaler (much faster than Pillow per frame).

    The crop moves in whole pixels, so a slow zoom gives the same picture for several frames in a
    row: the last one is kept and reused instead of being scaled again.
    """

    def __init__(self, img: np.ndarray) -> None:
        self.img = img
        self._last: tuple[tuple[int, int], np.ndarray] | None = None

    def __call__(self, scale: float) -> np.ndarray:
        """The image zoomed by ``scale`` (≥ 1) about its centre, as a new array."""
        h, w = self.img.shape[:2]
        top = int((h - h / scale) / 2)
        crop = (top, round(top * w / h))  # one step drives both sides, so both change together
        if self._last is None or self._last[0] != crop:
            top, left = crop
            region = np.ascontiguousarray(self.img[top : h - top, left : w - left])
            frame = av.VideoFrame.from_ndarray(region, format="rgb24")
            self._last = (crop, frame.reformat(width=w, height=h, interpolation="BILINEAR").to_ndarray())
        return self._last[1].copy()


def _same_size(cards: list[np.ndarray], fill: np.ndarray) -> list[np.ndarray]:
    """Pad the cards (centred, in ``fill``) to the largest height and width among them."""
    h = max(card.shape[0] for card in cards)
    w = max(card.shape[1] for card in cards)
    padded = []
    for card in cards:
        out = np.empty((h, w, 3), dtype=np.uint8)
        out[:] = fill[:3].astype(np.uint8)
        top, left = (h - card.shape[0]) // 2, (w - card.shape[1]) // 2
        out[top : top + card.shape[0], left : left + card.shape[1]] = card[..., :3]
        padded.append(out)
    return padded


def _thumbnail(img: np.ndarray, box: int, label: str, accent: np.ndarray) -> np.ndarray:
    """The image fitted inside ``box``×``box``, framed in the accent colour, with ``label`` below."""
    pil = Image.fromarray(np.ascontiguousarray(img[..., :3]).astype(np.uint8))
    pil.thumbnail((box, box), Image.Resampling.BILINEAR)
    font = _font(max(10, box // 8))
    border = max(2, box // 40)
    label_h = int(font.size * 1.4)
    width = max(pil.width, int(font.getlength(label)) + 2 * border) + 2 * border
    height = pil.height + label_h + 2 * border
    card = Image.new("RGB", (width, height), tuple(int(c) for c in accent))
    card.paste(pil, ((width - pil.width) // 2, border))
    draw = ImageDraw.Draw(card)
    draw.rectangle((0, pil.height + border, width, height), fill=PANEL_COLOR)
    label_centre = (width // 2, pil.height + border + label_h // 2)
    draw.text(label_centre, label, font=font, fill=TEXT_COLOR, anchor="mm")
    return np.asarray(card)


def _wrap(text: str, font: ImageFont.FreeTypeFont, max_width: int) -> list[str]:
    """Greedy word wrap to ``max_width`` pixels, at most ``MAX_CAPTION_LINES`` lines, "…" if cut."""
    words = text.split()
    lines: list[str] = []
    current = ""
    for word in words:
        while font.getlength(word) > max_width and len(word) > 1:  # a word wider than a line
            cut = max(1, int(len(word) * max_width / font.getlength(word)) - 1)
            lines.append(f"{current} {word[:cut]}".strip())
            current, word = "", word[cut:]
        candidate = f"{current} {word}".strip()
        if font.getlength(candidate) <= max_width:
            current = candidate
        else:
            lines.append(current)
            current = word
    if current:
        lines.append(current)
    if len(lines) > MAX_CAPTION_LINES:
        lines = lines[:MAX_CAPTION_LINES]
        last = lines[-1]
        while last and font.getlength(last + " …") > max_width:
            last = last[:-1]
        lines[-1] = last + " …"
    return lines


def _text_panel(lines: list[str], font: ImageFont.FreeTypeFont, pad: int) -> np.ndarray:
    """Lines of light text on an opaque dark panel."""
    ascent, descent = font.getmetrics()
    line_h = ascent + descent + pad // 2
    width = int(max(font.getlength(line) for line in lines)) + 2 * pad
    height = line_h * len(lines) + 2 * pad - pad // 2
    panel = Image.new("RGB", (width, height), PANEL_COLOR)
    draw = ImageDraw.Draw(panel)
    for k, line in enumerate(lines):
        draw.text((pad, pad + k * line_h), line, font=font, fill=TEXT_COLOR)
    return np.asarray(panel)
