"""Decoding input images to RGB arrays and fitting them to the output frame."""

from __future__ import annotations

import io
from collections.abc import Callable

import numpy as np
import pytest
from PIL import Image

from happyhorse.media.images import (
    ImageError,
    decode_image,
    fit_to_frame,
    image_size,
    probe_image,
)

RED, GREEN, BLUE = (255, 0, 0), (0, 255, 0), (0, 0, 255)


def encode(img: Image.Image, fmt: str = "PNG", **params: object) -> bytes:
    buf = io.BytesIO()
    img.save(buf, fmt, **params)
    return buf.getvalue()


def bands(width: int, height: int, edges: tuple[int, int], *, vertical: bool) -> np.ndarray:
    """Red | green | blue bands split at ``edges``: columns if ``vertical``, else rows."""
    img = np.zeros((height, width, 3), np.uint8)
    first, second = edges
    parts = (slice(0, first), slice(first, second), slice(second, None))
    for part, color in zip(parts, (RED, GREEN, BLUE), strict=True):
        if vertical:
            img[:, part] = color
        else:
            img[part, :] = color
    return img


def close_to(pixels: np.ndarray, color: tuple[int, int, int], tolerance: int = 8) -> bool:
    return bool(np.all(np.abs(pixels.astype(int) - np.array(color)) <= tolerance))


# --- decode_image ---------------------------------------------------------------------------------


def test_decodes_png_to_exact_rgb_pixels() -> None:
    src = np.random.default_rng(1).integers(0, 256, (30, 40, 3), dtype=np.uint8)
    out = decode_image(encode(Image.fromarray(src)))
    assert out.dtype == np.uint8
    assert out.shape == (30, 40, 3)
    np.testing.assert_array_equal(out, src)


def test_decodes_jpeg() -> None:
    out = decode_image(encode(Image.new("RGB", (33, 17), (10, 120, 240)), "JPEG", quality=95))
    assert out.shape == (17, 33, 3)
    assert close_to(out, (10, 120, 240), tolerance=4)


def test_applies_exif_orientation() -> None:
    # Stored 40 wide × 20 high, red on the left; orientation 6 means "rotate 90° clockwise to show",
    # so it is displayed 20 wide × 40 high with the red half on top.
    stored = Image.fromarray(bands(40, 20, (20, 20), vertical=True))
    exif = Image.Exif()
    exif[0x0112] = 6
    data = encode(stored, "JPEG", quality=95, exif=exif)
    assert image_size(data) == (20, 40)
    out = decode_image(data)
    assert out.shape == (40, 20, 3)
    assert close_to(out[2:16], RED, tolerance=40)
    assert close_to(out[24:38], BLUE, tolerance=40)


def test_greyscale_becomes_three_equal_channels() -> None:
    out = decode_image(encode(Image.new("L", (5, 4), 77)))
    assert out.shape == (4, 5, 3)
    assert np.all(out == 77)


def test_sixteen_bit_greyscale_keeps_its_tones() -> None:
    # Pillow's own conversion would clip every value above 255 to white.
    grey = np.array([[0, 32768, 65535]], dtype=np.uint16)
    out = decode_image(encode(Image.fromarray(grey)))
    np.testing.assert_array_equal(out[0, :, 0], [0, 128, 255])


def test_alpha_is_flattened_on_white() -> None:
    rgba = np.zeros((2, 3, 4), np.uint8)
    rgba[0] = (255, 0, 0, 255)  # opaque red
    rgba[1] = (0, 0, 0, 0)  # fully transparent
    out = decode_image(encode(Image.fromarray(rgba)))
    assert close_to(out[0], RED, tolerance=0)
    assert close_to(out[1], (255, 255, 255), tolerance=0)


def test_palette_with_transparency_is_flattened_on_white() -> None:
    img = Image.new("P", (4, 1), 0)
    img.putpalette([0, 0, 255, 0, 255, 0] + [0] * 762)
    img.putpixel((3, 0), 1)
    out = decode_image(encode(img, transparency=0))
    assert close_to(out[0, :3], (255, 255, 255), tolerance=0)
    assert close_to(out[0, 3], GREEN, tolerance=0)


def test_animated_gif_gives_its_first_frame() -> None:
    frames = [Image.new("RGB", (6, 6), c) for c in (RED, BLUE)]
    data = encode(frames[0], "GIF", save_all=True, append_images=frames[1:])
    assert close_to(decode_image(data), RED, tolerance=0)


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"<html><body>hello</body></html>",
        b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 10 10\n",  # EPS would run Ghostscript
        b"\x89PNG\r\n\x1a\n",
    ],
)
def test_non_images_raise_image_error(data: bytes) -> None:
    with pytest.raises(ImageError) as info:
        decode_image(data)
    assert info.value.reason == "not an image"


def test_truncated_image_raises_image_error() -> None:
    data = encode(Image.fromarray(np.random.default_rng(2).integers(0, 256, (64, 64, 3), dtype=np.uint8)))
    with pytest.raises(ImageError):
        decode_image(data[: len(data) // 2])


def test_decode_refuses_more_pixels_than_allowed() -> None:
    with pytest.raises(ImageError, match="image is 10×10 pixels"):
        decode_image(encode(Image.new("RGB", (10, 10))), max_pixels=99)


# --- probe_image and image_size --------------------------------------------------------------------------


def test_probe_reports_format_and_size() -> None:
    info = probe_image(encode(Image.new("RGB", (12, 7)), "WEBP"))
    assert (info.format, info.width, info.height) == ("WEBP", 12, 7)


def test_probe_refuses_a_decompression_bomb_from_its_header(make_bomb_png: Callable[[int, int], bytes]) -> None:
    with pytest.raises(ImageError, match="more pixels than the 40 megapixel limit"):
        probe_image(make_bomb_png(100_000, 100_000), max_pixels=40_000_000)
    with pytest.raises(ImageError, match=r"image is 8000×8000 pixels, more than the 40 megapixel limit"):
        probe_image(make_bomb_png(8000, 8000), max_pixels=40_000_000)


def test_probe_refuses_truncated_png() -> None:
    data = encode(Image.new("RGB", (64, 48), (1, 2, 3)))
    with pytest.raises(ImageError, match="corrupt or truncated"):
        probe_image(data[: len(data) // 2])


def test_image_size_reads_only_the_header(make_bomb_png: Callable[[int, int], bytes]) -> None:
    # The file holds no real pixel data for an 8000×8000 canvas: decoding it would fail.
    assert image_size(make_bomb_png(8000, 6000)) == (8000, 6000)


# --- fit_to_frame ------------------------------------------------------------------------------------


def test_portrait_into_landscape_covers_and_crops_top_and_bottom() -> None:
    # 100×200, red rows 0–79, green 80–119, blue 120–199. Covering 160×90 scales by 1.6 and keeps
    # source rows 71.875–128.125: about 13 output rows of red, 50 of green, 13 of blue; all 160
    # columns. Stretching would give 36 rows of red; fitting inside would leave bars at the sides.
    out = fit_to_frame(bands(100, 200, (80, 120), vertical=False), 160, 90)
    assert out.shape == (90, 160, 3)
    assert out.dtype == np.uint8
    assert close_to(out[:10], RED)
    assert close_to(out[16:74], GREEN)
    assert close_to(out[-10:], BLUE)
    red_rows = int(np.sum(out[:, 80, 0] > 128))
    blue_rows = int(np.sum(out[:, 80, 2] > 128))
    assert red_rows in (12, 13, 14)
    assert red_rows == blue_rows  # centred


def test_landscape_into_portrait_covers_and_crops_the_sides() -> None:
    out = fit_to_frame(bands(200, 100, (80, 120), vertical=True), 90, 160)
    assert out.shape == (160, 90, 3)
    assert close_to(out[:, :10], RED)
    assert close_to(out[:, 16:74], GREEN)
    assert close_to(out[:, -10:], BLUE)
    assert int(np.sum(out[80, :, 0] > 128)) == int(np.sum(out[80, :, 2] > 128))


def test_same_aspect_keeps_the_whole_picture() -> None:
    out = fit_to_frame(bands(64, 36, (16, 48), vertical=True), 1280, 720)
    assert out.shape == (720, 1280, 3)
    assert close_to(out[:, :300], RED)
    assert close_to(out[:, 340:940], GREEN)
    assert close_to(out[:, -300:], BLUE)


@pytest.mark.parametrize(
    ("src", "frame"),
    [
        ((1, 1), (1280, 720)),
        ((2, 1), (720, 1280)),
        ((4000, 3000), (960, 960)),
        ((721, 1279), (1920, 1080)),
        ((1919, 1081), (1080, 1920)),
        ((333, 333), (1279, 721)),
    ],
)
def test_output_shape_is_exactly_the_frame(src: tuple[int, int], frame: tuple[int, int]) -> None:
    img = np.full((src[1], src[0], 3), 99, np.uint8)
    out = fit_to_frame(img, *frame)
    assert out.shape == (frame[1], frame[0], 3)
    assert out.flags["C_CONTIGUOUS"]
    assert np.all(out == 99)  # a flat colour stays flat: no padding anywhere


@pytest.mark.parametrize(
    ("img", "size"),
    [
        (np.zeros((10, 10, 3), np.uint8), (0, 10)),
        (np.zeros((10, 10, 3), np.uint8), (10, -1)),
        (np.zeros((10, 10, 4), np.uint8), (10, 10)),
        (np.zeros((10, 10), np.uint8), (10, 10)),
        (np.zeros((10, 10, 3), np.float32), (10, 10)),
        (np.zeros((0, 10, 3), np.uint8), (10, 10)),
    ],
)
def test_fit_to_frame_rejects_bad_input(img: np.ndarray, size: tuple[int, int]) -> None:
    with pytest.raises(ValueError):
        fit_to_frame(img, *size)
