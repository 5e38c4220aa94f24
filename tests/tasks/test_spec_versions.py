"""A task spec stored in the format written before specs carried a version still renders."""

from __future__ import annotations

import io
import json
from pathlib import Path

from PIL import Image

from happyhorse.config import Settings
from happyhorse.engines.synthetic import SyntheticEngine
from happyhorse.media.encode import probe
from happyhorse.tasks import service
from happyhorse.worker.render import render_job
from happyhorse.worker.runner import TaskRunner

FIXTURE = Path(__file__).parent / "fixtures" / "spec_v1.json"


class SmallSynthetic(SyntheticEngine):
    def frame_size(self, mode: str, aspect_ratio: str) -> tuple[int, int]:
        return (160, 90)


def png(colour: tuple[int, int, int]) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (64, 64), colour).save(buf, "PNG")
    return buf.getvalue()


def test_fixture_is_todays_unversioned_format() -> None:
    spec = json.loads(FIXTURE.read_text())
    assert "spec_version" not in spec and spec["multi_shots"] and len(spec["elements"]) == 2


def test_version_1_spec_reads_as_the_request_it_was_written_from() -> None:
    request = service.request_of(json.loads(FIXTURE.read_text()))
    assert request.multi_shots and [s.duration for s in request.multi_prompt] == [3, 3]
    assert [e.name for e in request.elements] == ["fox", "owl"]
    assert request.elements[1].urls == ["https://example.com/c.png", "https://example.com/d.png"]
    # written today, the same request is version 2 and reads back the same
    today = service.spec_of(request)
    assert today["spec_version"] == service.SPEC_VERSION == 2
    assert service.request_of(today) == request


def test_a_newer_version_is_refused_clearly() -> None:
    spec = {**json.loads(FIXTURE.read_text()), "spec_version": 99}
    try:
        service.request_of(spec)
    except ValueError as exc:
        assert "99" in str(exc)
    else:
        raise AssertionError("a spec from the future was read")


async def test_version_1_spec_renders_with_the_synthetic_engine(tmp_path: Path) -> None:
    request = service.request_of(json.loads(FIXTURE.read_text()))
    runner = TaskRunner(None, Settings(data_dir=tmp_path), None)  # type: ignore[arg-type]
    colours = iter([(200, 30, 30), (30, 200, 30), (30, 30, 200), (200, 200, 30)])

    async def fetch(field: str, url: str) -> bytes:
        return png(next(colours))

    runner._fetch = fetch  # type: ignore[method-assign]  # no network: the element images are local
    job = await runner.prepare("t-v1", 1, 42, request)
    assert [e.name for e in job.elements] == ["fox", "owl"] and len(job.shots) == 2
    result = render_job(job, SmallSynthetic(), lambda fraction: None)
    assert Path(job.output_path).stat().st_size > 0
    assert abs(result.duration - 6) < 0.2 and result.has_audio
    info = probe(job.output_path)
    assert abs(info["duration"] - 6) < 0.2 and info["has_audio"] and (info["width"], info["height"]) == (160, 90)
