"""Input images are decoded no larger than it takes to cover the output frame: a 24-megapixel JPEG for
a 720p video costs a few megabytes of memory, not hundreds, and the fitted frame looks the same."""

from __future__ import annotations

import base64
import io
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw

from happyhorse.media.images import decode_image, fit_to_frame

FRAME = (1280, 720)


def photo(width: int, height: int) -> Image.Image:
    """A picture with structure at every scale: gradients, bars and a circle."""
    img = Image.linear_gradient("L").resize((width, height)).convert("RGB")
    draw = ImageDraw.Draw(img)
    for i in range(0, width, width // 12):
        draw.rectangle([i, 0, i + width // 40, height], fill=(200, 40, 40))
    draw.ellipse([width // 3, height // 4, 2 * width // 3, 3 * height // 4], fill=(30, 90, 220))
    return img


def encoded(img: Image.Image, fmt: str, **options: object) -> bytes:
    buf = io.BytesIO()
    img.save(buf, fmt, **options)
    return buf.getvalue()


@pytest.fixture(scope="module")
def big_jpeg(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("images") / "big.jpg"
    path.write_bytes(encoded(photo(6000, 4000), "JPEG", quality=90))
    return path


def assert_covers_within_twice(shape: tuple[int, ...], source: tuple[int, int]) -> None:
    """At least what covering FRAME needs (so nothing is lost), less than twice that (so little is wasted)."""
    scale = max(FRAME[0] / source[0], FRAME[1] / source[1])
    need_w, need_h = source[0] * scale, source[1] * scale
    height, width = shape[:2]
    assert need_w - 1 <= width < 2 * need_w and need_h - 1 <= height < 2 * need_h, (shape, need_w, need_h)


def test_a_large_jpeg_is_decoded_at_a_reduced_scale(big_jpeg: Path) -> None:
    data = big_jpeg.read_bytes()
    small = decode_image(data, cover=FRAME)
    assert_covers_within_twice(small.shape, (6000, 4000))
    assert small.shape == (1000, 1500, 3)  # the decoder's own 1/4 scale

    full = decode_image(data)
    assert full.shape == (4000, 6000, 3)
    difference = np.abs(fit_to_frame(small, *FRAME).astype(int) - fit_to_frame(full, *FRAME).astype(int))
    assert difference.mean() < 2.0  # the same frame, to the eye


def test_sideways_jpegs_and_other_formats_are_bounded_too() -> None:
    exif = Image.Exif()
    exif[0x0112] = 6  # stored 4000×3000, shown 3000×4000
    sideways = encoded(photo(4000, 3000), "JPEG", exif=exif.tobytes())
    upright = decode_image(sideways, cover=FRAME)
    assert upright.shape[0] > upright.shape[1]  # rotated as displayed
    assert_covers_within_twice(upright.shape, (3000, 4000))

    for img, fmt in (
        (photo(5000, 3000), "PNG"),
        (photo(5000, 3000).convert("P"), "PNG"),
        (photo(5000, 3000).convert("RGBA"), "WEBP"),
    ):
        decoded = decode_image(encoded(img, fmt), cover=FRAME)
        assert_covers_within_twice(decoded.shape, (5000, 3000))

    tiny = decode_image(encoded(photo(320, 200), "PNG"), cover=FRAME)
    assert tiny.shape == (200, 320, 3)  # never scaled up here: fit_to_frame does that


PEAK_SCRIPT = """
import base64, json, sys
from pathlib import Path
from happyhorse.media.images import decode_image

def status(field):
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) // 1024
data = Path(sys.argv[1]).read_bytes()
cover = (1280, 720) if sys.argv[2] == "cover" else None
decode_image(base64.b64decode(sys.argv[3]))  # warm up: Pillow's plugins imported before measuring
before = status("VmRSS")
Path("/proc/self/clear_refs").write_text("5")  # restart the peak (VmHWM) from here
decoded = decode_image(data, cover=cover)
print(json.dumps({"growth_mb": status("VmHWM") - before, "shape": list(decoded.shape)}))
"""


def peak_growth(path: Path, how: str) -> dict[str, object]:
    warm_up = base64.b64encode(encoded(photo(64, 48), "JPEG")).decode()
    out = subprocess.run(
        [sys.executable, "-c", PEAK_SCRIPT, str(path), how, warm_up],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    return dict(json.loads(out.stdout))


@pytest.mark.skipif(not Path("/proc/self/clear_refs").exists(), reason="needs Linux's /proc peak-RSS reset")
def test_decoding_for_a_frame_takes_bounded_memory(big_jpeg: Path) -> None:
    full = peak_growth(big_jpeg, "full")
    bounded = peak_growth(big_jpeg, "cover")
    assert full["growth_mb"] > 60, full  # the measurement sees a full decode (6000×4000×3 = 69 MB)
    assert bounded["growth_mb"] < 40, bounded  # measured: 321 MB for the full decode, 20 MB bounded
    assert bounded["shape"] == [1000, 1500, 3]
