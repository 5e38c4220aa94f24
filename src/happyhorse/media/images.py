"""Input images: sniff, measure, decode to RGB arrays, and fit them to a video frame.

    probe_image(data)      format and displayed size from the header only, plus a structural check
    image_size(data)       (width, height) as displayed, i.e. after EXIF orientation
    decode_image(data)     RGB uint8 array (H, W, 3), EXIF-rotated, alpha flattened on white;
                           with ``cover=(w, h)`` no larger than it takes to cover that frame
    fit_to_frame(img, w, h)  scale to cover the frame, centre-crop to exactly (h, w, 3)

Every failure to read the bytes is an ``ImageError`` whose ``reason`` is safe to show a user.
"""

from __future__ import annotations

import io
import math
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

# Only formats Pillow decodes itself. Anything else (EPS hands the bytes to Ghostscript, for one)
# is refused: these bytes come from arbitrary URLs.
ALLOWED_FORMATS: tuple[str, ...] = ("PNG", "JPEG", "WEBP", "AVIF", "GIF", "BMP", "TIFF")  # JPEG covers MPO

# EXIF orientations 5–8 rotate by 90° (with or without a flip), so width and height swap on screen.
_EXIF_ORIENTATION_TAG = 0x0112
_SWAPPING_ORIENTATIONS = frozenset({5, 6, 7, 8})

# Transparent pixels are laid on white: that is how the picture looked on the web page it came from.
_BACKGROUND = (255, 255, 255)


class ImageError(ValueError):
    """The bytes are not a usable image; ``reason`` is short, lower-case and safe to show a user."""

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(reason)


@dataclass(frozen=True)
class ImageInfo:
    """What the header says: the Pillow format name and the size as displayed (EXIF applied)."""

    format: str
    width: int
    height: int


def _open(data: bytes, max_pixels: int | None) -> Image.Image:
    """Open lazily (header only) with the allowed formats, refusing oversized images before decoding."""
    try:
        img = Image.open(io.BytesIO(data), formats=_openable_formats())
    except Image.DecompressionBombError:
        # Pillow's own guard (far above ours) fired first, before the size could be read.
        limit = f" {_megapixels(max_pixels)} megapixel" if max_pixels is not None else ""
        raise ImageError(f"image has more pixels than the{limit} limit") from None
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError):
        raise ImageError("not an image") from None
    width, height = img.size
    if width <= 0 or height <= 0:
        raise ImageError("not an image")
    if max_pixels is not None and width * height > max_pixels:
        raise ImageError(f"image is {width}×{height} pixels, more than the {_megapixels(max_pixels)} megapixel limit")
    return img


def _openable_formats() -> list[str]:
    """ALLOWED_FORMATS that this Pillow build can open (AVIF needs libavif, for one)."""
    Image.init()  # registers every plugin; returns at once after the first call
    return [name for name in ALLOWED_FORMATS if name in Image.OPEN]


def _megapixels(pixels: int) -> str:
    return f"{pixels / 1_000_000:g}"


def _displayed_size(img: Image.Image) -> tuple[int, int]:
    """Width and height after EXIF orientation, read from the header without decoding pixels."""
    width, height = img.size
    try:
        orientation = img.getexif().get(_EXIF_ORIENTATION_TAG)
    except Exception:  # a broken EXIF block must not make a good image unusable
        orientation = None
    if orientation in _SWAPPING_ORIENTATIONS:
        return height, width
    return width, height


def probe_image(data: bytes, *, max_pixels: int | None = None) -> ImageInfo:
    """Check that ``data`` is an allowed image no larger than ``max_pixels``, without decoding it.

    The pixel limit is checked on the header's dimensions, before any pixel is decoded, so a
    decompression bomb (a tiny file declaring a huge canvas) costs nothing. ``verify()`` then
    walks the file's structure (PNG chunk CRCs, for instance) to catch corrupt data early.
    """
    img = _open(data, max_pixels)
    try:
        img.verify()  # must come straight after open: reading EXIF first consumes the chunks it walks
    except Exception:  # Pillow raises a zoo of types for corrupt data
        raise ImageError("not a valid image (corrupt or truncated)") from None
    with _open(data, None) as fresh:  # verify() leaves the image unusable; the header is cheap to reread
        return ImageInfo(fresh.format or "unknown", *_displayed_size(fresh))


def image_size(data: bytes) -> tuple[int, int]:
    """(width, height) as the image is displayed (EXIF orientation applied), from the header only."""
    with _open(data, None) as img:
        return _displayed_size(img)


def decode_image(data: bytes, *, max_pixels: int | None = None, cover: tuple[int, int] | None = None) -> np.ndarray:
    """Decode to an RGB uint8 array (H, W, 3): EXIF-rotated, first frame of an animation,
    palette / greyscale / CMYK / 16-bit converted, transparency flattened on white.

    With ``cover=(width, height)`` the result is only as large as it takes to cover that frame
    (still at least that, so ``fit_to_frame`` loses nothing): a JPEG is decoded at 1/2, 1/4 or 1/8
    scale straight from its DCT (``Image.draft``), and anything larger than twice the need is
    box-reduced before it is converted. A 24-megapixel photo for a 720p frame then costs a few
    megabytes, not a quarter of a gigabyte.

    CPU-bound for large images: call it from a worker thread or process, not on the event loop.
    """
    img = _open(data, max_pixels)
    if cover is not None:
        _draft(img, cover)
    try:
        img.load()
    except Exception:  # Pillow raises a zoo of types for corrupt data
        raise ImageError("not a valid image (corrupt or truncated)") from None
    img = _upright(img)
    if cover is None:
        return _to_rgb_array(img)
    rgb = _to_rgb_array(_shrunk(img, cover))  # in the source's own mode where Pillow can reduce it
    if _reduction(rgb.shape[1], rgb.shape[0], cover) > 1:  # modes reduce() refuses (palette, 16-bit)
        rgb = np.ascontiguousarray(np.asarray(_shrunk(Image.fromarray(rgb), cover), dtype=np.uint8))
    return rgb


def _cover_need(width: int, height: int, cover: tuple[int, int]) -> tuple[int, int] | None:
    """The size ``width``×``height`` scales to when it just covers ``cover``; None when it is not larger."""
    scale = max(cover[0] / width, cover[1] / height)
    if scale >= 1:
        return None
    return max(1, math.ceil(width * scale)), max(1, math.ceil(height * scale))


def _reduction(width: int, height: int, cover: tuple[int, int]) -> int:
    """The integer factor an image may be divided by and still cover ``cover`` (1: none)."""
    need = _cover_need(width, height, cover)
    return 1 if need is None else max(1, min(width // need[0], height // need[1]))


def _draft(img: Image.Image, cover: tuple[int, int]) -> None:
    """Ask the JPEG decoder for the smallest DCT scale that still covers the frame (others ignore it)."""
    frame = (cover[1], cover[0]) if _displayed_size(img) != img.size else cover  # stored sideways (EXIF)
    need = _cover_need(*img.size, frame)
    if need is not None:
        img.draft(None, need)


def _shrunk(img: Image.Image, cover: tuple[int, int]) -> Image.Image:
    factor = _reduction(*img.size, cover)
    if factor < 2:
        return img
    try:
        return img.reduce(factor)  # a box filter in one pass: cheap, and exact enough before the final Lanczos
    except ValueError:  # "image has wrong mode" (P, 1, I;16): converted first, reduced after
        return img


def _upright(img: Image.Image) -> Image.Image:
    """Apply EXIF orientation; a broken EXIF block leaves the picture as stored rather than failing."""
    try:
        return ImageOps.exif_transpose(img)
    except Exception:
        return img


def _to_rgb_array(img: Image.Image) -> np.ndarray:
    """Convert any Pillow mode to an RGB uint8 array."""
    if img.mode in ("I;16", "I;16L", "I;16B", "I;16N", "I"):
        # Pillow's own I→RGB conversion clips at 255, turning a 16-bit greyscale image white.
        grey = (np.asarray(img).astype(np.int64).clip(0, 65535) >> 8).astype(np.uint8)
        return np.ascontiguousarray(np.repeat(grey[:, :, None], 3, axis=2))
    if img.mode == "F":
        img = img.convert("L")
    if _has_alpha(img):
        rgba = img.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (*_BACKGROUND, 255))
        img = Image.alpha_composite(background, rgba)
    return np.ascontiguousarray(np.asarray(img.convert("RGB"), dtype=np.uint8))


def _has_alpha(img: Image.Image) -> bool:
    return img.mode in ("RGBA", "LA", "PA", "RGBa", "La") or "transparency" in img.info


def fit_to_frame(img: np.ndarray, width: int, height: int) -> np.ndarray:
    """Scale ``img`` (H, W, 3) uint8 to cover a ``width``×``height`` frame and centre-crop it.

    The crop is taken in source coordinates (Pillow's ``box``), so scaling and cropping are a
    single Lanczos resample and the crop stays centred to sub-pixel precision.
    """
    if width <= 0 or height <= 0:
        raise ValueError(f"frame size must be positive, got {width}×{height}")
    if img.ndim != 3 or img.shape[2] != 3 or img.dtype != np.uint8 or img.shape[0] == 0 or img.shape[1] == 0:
        raise ValueError(f"expected an RGB uint8 array (H, W, 3), got {img.dtype} {img.shape}")
    src_h, src_w = img.shape[:2]
    box = _cover_box(src_w, src_h, width, height)
    out = Image.fromarray(img).resize((width, height), Image.Resampling.LANCZOS, box=box)
    return np.ascontiguousarray(np.asarray(out, dtype=np.uint8))


def _cover_box(src_w: int, src_h: int, width: int, height: int) -> tuple[float, float, float, float]:
    """The centred region of the source with the frame's aspect ratio (left, top, right, bottom)."""
    frame_aspect = width / height
    if src_w / src_h > frame_aspect:  # source is wider: keep full height, trim the sides
        crop_w = src_h * frame_aspect
        left = (src_w - crop_w) / 2
        return (left, 0.0, left + crop_w, float(src_h))
    crop_h = src_w / frame_aspect  # source is taller (or equal): keep full width, trim top and bottom
    top = (src_h - crop_h) / 2
    return (0.0, top, float(src_w), top + crop_h)
