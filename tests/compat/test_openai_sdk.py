# mypy: disable-error-code="arg-type"
# (the SDK types seconds as "4"|"8"|"12" and four sizes; this server takes "3".."15" and its own frame sizes)
"""The real ``openai`` SDK, unmodified, against the real server's ``/v1/videos`` (both deployments)."""

from __future__ import annotations

import base64
import io
from collections.abc import Callable
from pathlib import Path

import av
import httpx
import pytest
from openai import (
    AsyncOpenAI,
    AuthenticationError,
    BadRequestError,
    ConflictError,
    NotFoundError,
    OpenAI,
    RateLimitError,
)
from openai.types import Video
from PIL import Image

from harness import LiveServer, png_bytes

pytestmark = [pytest.mark.e2e, pytest.mark.filterwarnings("ignore:The Sora API:DeprecationWarning")]
POLL_MS = 200


@pytest.fixture
def api_server(shared_api_server: LiveServer) -> LiveServer:
    """One server per deployment for the whole module: every test here makes its own keys."""
    return shared_api_server


def sdk(server: LiveServer, key: str) -> OpenAI:
    return OpenAI(base_url=f"{server.url}/v1", api_key=key, max_retries=0, timeout=60)


def first_frame(path: Path) -> Image.Image:
    with av.open(str(path)) as container:
        return next(container.decode(video=0)).to_image().convert("RGB")


def mean_colour(image: Image.Image) -> tuple[float, ...]:
    raw = image.convert("RGB").resize((16, 16)).tobytes()
    return tuple(sum(raw[i::3]) / (len(raw) / 3) for i in range(3))


def test_sync_sdk_create_poll_download_list_delete_cancel(api_server: LiveServer, tmp_path: Path) -> None:
    key = api_server.create_key(credits=100_000)
    client = sdk(api_server, key)
    api = api_server.client(key)

    video = client.videos.create_and_poll(
        prompt="a horse on a beach at dawn", seconds="3", size="1280x720", poll_interval_ms=POLL_MS
    )
    assert video.status == "completed", video.error
    assert (video.object, video.progress, video.model, video.seconds, video.size) == (
        "video",
        100,
        "happyhorse-1.0/video",
        "3",
        "1280x720",
    )
    assert video.completed_at is not None and video.completed_at >= video.created_at
    assert video.prompt == "a horse on a beach at dawn" and video.error is None
    assert client.videos.retrieve(video.id) == video

    # The MP4, decoded.
    mp4 = tmp_path / "video.mp4"
    client.videos.download_content(video.id).write_to_file(mp4)
    with av.open(str(mp4)) as container:
        stream = container.streams.video[0]
        assert (stream.codec_context.width, stream.codec_context.height) == (1280, 720)
        frames = sum(1 for _ in container.decode(video=0))
    assert frames > 24  # about three seconds of video
    if api_server.mode == "embedded":  # local storage: Range requests (S3 streams the whole object)
        part = api.get(f"/v1/videos/{video.id}/content", headers={"Range": "bytes=0-99"})
        assert part.status_code == 206 and part.content == mp4.read_bytes()[:100]
    # The thumbnail: a JPEG of the first frame.
    thumb = client.videos.download_content(video.id, variant="thumbnail").content
    image = Image.open(io.BytesIO(thumb))
    assert image.format == "JPEG" and image.size == (1280, 720)
    assert (
        max(abs(a - b) for a, b in zip(mean_colour(image.convert("RGB")), mean_colour(first_frame(mp4)), strict=True))
        < 8
    )

    # input_reference as a file: the first frame follows the image; a name from HAPPYHORSE_OPENAI_MODELS.
    first = tmp_path / "first.png"
    first.write_bytes(png_bytes(720, 1280, (200, 30, 40), pattern=False))
    with first.open("rb") as handle:
        i2v = client.videos.create(
            prompt="the red card flutters", input_reference=handle, model="sora-2", seconds="3", size="720x1280"
        )
    assert i2v.status in ("queued", "in_progress") and i2v.model == "sora-2" and i2v.size == "720x1280"
    i2v = client.videos.poll(i2v.id, poll_interval_ms=POLL_MS)
    assert i2v.status == "completed", i2v.error
    i2v_mp4 = tmp_path / "i2v.mp4"
    client.videos.download_content(i2v.id).write_to_file(i2v_mp4)
    frame = first_frame(i2v_mp4)
    assert frame.size == (720, 1280)
    red, green, blue = mean_colour(frame)
    assert red > 150 and green < 80 and blue < 90, (red, green, blue)

    # The same task on /api/: status and the task list.
    status = api.get("/api/status", params={"task_id": i2v.id}).json()["data"]
    assert status["status"] == "SUCCESS" and status["type"] == "image-to-video"
    listed = api.get("/api/tasks").json()["data"]["tasks"]
    assert {video.id, i2v.id} <= {t["task_id"] for t in listed}

    # A third video, cancelled at once (the SDK has no cancel method: its generic post is used), refunded.
    before = api.get("/api/credits").json()["data"]["balance"]
    third = client.videos.create(prompt="a slow pan over hills", seconds="15", size="1920x1080")
    assert third.size == "1920x1080"  # happyhorse-1.0/video: 1080p picks pro
    assert api.get("/api/credits").json()["data"]["balance"] < before
    cancelled = client.post(f"/videos/{third.id}/cancel", cast_to=Video)
    assert cancelled.status == "failed" and cancelled.error is not None and cancelled.error.code == "cancelled"
    assert api.get("/api/credits").json()["data"]["balance"] == before
    with pytest.raises(ConflictError):
        client.post(f"/videos/{third.id}/cancel", cast_to=Video)

    # The list, auto-paginated two at a time: newest first, every video once; asc is the reverse.
    ids = [v.id for v in client.videos.list(limit=2)]
    assert ids == [third.id, i2v.id, video.id]
    page = client.videos.list(limit=2)
    assert len(page.data) == 2 and page.has_more is True and page.last_id == i2v.id
    assert [v.id for v in client.videos.list(limit=2, order="asc")] == [video.id, i2v.id, third.id]

    # Delete: the file goes, the record stays (as on DELETE /api/tasks/{id}).
    deleted = client.videos.delete(video.id)
    assert (deleted.id, deleted.object, deleted.deleted) == (video.id, "video.deleted", True)
    with pytest.raises(NotFoundError):
        client.videos.download_content(video.id)
    assert api.get("/api/status", params={"task_id": video.id}).json()["data"]["expired"] is True


async def test_async_sdk(api_server: LiveServer) -> None:
    key = api_server.create_key()
    client = AsyncOpenAI(base_url=f"{api_server.url}/v1", api_key=key, max_retries=0, timeout=60)
    video = await client.videos.create_and_poll(
        prompt="a horse in the snow", seconds="3", size="960x960", poll_interval_ms=POLL_MS
    )
    assert video.status == "completed" and video.size == "960x960", video.error
    assert (await client.videos.retrieve(video.id)).id == video.id
    assert [v.id async for v in client.videos.list(limit=1)] == [video.id]
    content = await client.videos.download_content(video.id)
    assert content.content[4:8] == b"ftyp"
    assert (await client.videos.delete(video.id)).deleted is True
    await client.close()


def test_errors_raise_the_sdk_classes(live_server: LiveServer) -> None:
    key = live_server.create_key()
    client = sdk(live_server, key)
    with pytest.raises(AuthenticationError) as auth:
        sdk(live_server, "hh_not_a_key").videos.list()
    assert auth.value.code == "invalid_api_key"
    for kwargs, param in (
        ({"size": "1000x500"}, "size"),  # 2:1: no ratio the engines render
        ({"seconds": "20"}, "seconds"),
        ({"model": "dall-e-3"}, "model"),
        ({"prompt": ""}, "prompt"),
    ):
        with pytest.raises(BadRequestError) as bad:
            client.videos.create(**{"prompt": "a horse", **kwargs})  # type: ignore[arg-type]
        assert bad.value.param == param, (kwargs, bad.value.body)
    with pytest.raises(BadRequestError):
        client.videos.list(order="sideways")  # type: ignore[arg-type]
    with pytest.raises(NotFoundError):
        client.videos.retrieve("no-such-video")
    with pytest.raises(NotFoundError):
        client.videos.delete("no-such-video")
    with pytest.raises(NotFoundError) as unknown:
        client.videos.remix("no-such-video", prompt="again")  # no remix here: OpenAI's 404, in its shape
    assert unknown.value.code == "unknown_url"

    # OpenAI's own sizes: the ratio they are nearest, pro for the large ones unless the model fixes the mode.
    sizes = sdk(live_server, live_server.create_key())
    for model, size, rendered in (
        ("sora-2-pro", "1792x1024", "1920x1080"),
        ("sora-2", "1024x1792", "720x1280"),
        ("happyhorse-1.0/video", "1792x1024", "1920x1080"),
        ("happyhorse-1.0/video", "1024x1024", "960x960"),
    ):
        made = sizes.videos.create(prompt="a horse", model=model, size=size, seconds="3")
        assert made.size == rendered, (model, size, made.size)
        sizes.post(f"/videos/{made.id}/cancel", cast_to=Video)

    # Out of credits: 429 insufficient_quota (what OpenAI answers), not retried by the SDK.
    poor = OpenAI(base_url=f"{live_server.url}/v1", api_key=live_server.create_key(credits=1), max_retries=2)
    with pytest.raises(RateLimitError) as quota:
        poor.videos.create(prompt="a horse", seconds="3")
    assert quota.value.code == "insufficient_quota"
    assert quota.value.response.headers["x-should-retry"] == "false"

    # Malformed bodies: OpenAI's error shape, never a 500. A key of their own: the submits above
    # already used most of one key's 10/second, and raw httpx does not retry a 429.
    raw_key = live_server.create_key()
    raw = httpx.Client(base_url=live_server.url, headers={"Authorization": f"Bearer {raw_key}"})
    for content, ctype in (
        (b"{not json", "application/json"),
        (b"[1,2]", "application/json"),
        (b"--x\r\nbroken", "multipart/form-data; boundary=x"),
        (b'{"prompt": 5}', "application/json"),
        (b'{"prompt": "a", "input_reference": {"file_id": "file_1"}}', "application/json"),
        (b'{"prompt": "a", "seconds": "3.5"}', "application/json"),
    ):
        answer = raw.post("/v1/videos", content=content, headers={"Content-Type": ctype})
        assert answer.status_code == 400, (content, answer.text)
        assert set(answer.json()["error"]) == {"message", "type", "param", "code"}
    bad_image = raw.post("/v1/videos", data={"prompt": "a"}, files={"input_reference": ("x.png", b"not an image")})
    assert bad_image.status_code == 400 and bad_image.json()["error"]["param"] == "input_reference"


def test_idempotency_key_through_the_sdk(live_server: LiveServer) -> None:
    client = sdk(live_server, live_server.create_key())
    once = {"Idempotency-Key": "openai-once"}
    first = client.videos.create(prompt="a horse", seconds="3", extra_headers=once)
    again = client.videos.create(prompt="a horse", seconds="3", extra_headers=once)
    assert again.id == first.id
    with pytest.raises(ConflictError) as conflict:
        client.videos.create(prompt="another horse", seconds="3", extra_headers=once)
    assert conflict.value.code == "idempotency_conflict"
    # With a file: the same bytes replay, other bytes under the same key are a conflict.
    image = png_bytes(64, 36, (10, 20, 30))
    with_file = {"Idempotency-Key": "openai-file"}
    one = client.videos.create(prompt="a horse", seconds="3", input_reference=("a.png", image), extra_headers=with_file)
    two = client.videos.create(prompt="a horse", seconds="3", input_reference=("b.png", image), extra_headers=with_file)
    assert one.id == two.id
    with pytest.raises(ConflictError):
        client.videos.create(
            prompt="a horse",
            seconds="3",
            input_reference=("c.png", png_bytes(64, 36, (1, 2, 3))),
            extra_headers=with_file,
        )
    assert [v.id for v in client.videos.list()] == [one.id, first.id]


def test_ssrf_guard_and_rate_limit(server_factory: Callable[..., LiveServer], tmp_path: Path) -> None:
    server = server_factory(HAPPYHORSE_ALLOW_PRIVATE_URLS="false", HAPPYHORSE_RATE_LIMIT_GENERATE="3/minute")
    client = sdk(server, server.create_key())
    with pytest.raises(BadRequestError):  # a loopback URL as the first frame: the SSRF guard refuses it
        # (the SDK's create() takes only files for input_reference: the URL form goes through extra_body)
        client.videos.create(
            prompt="a horse", seconds="3", extra_body={"input_reference": {"image_url": "http://127.0.0.1:9/first.png"}}
        )
    first = tmp_path / "first.png"
    first.write_bytes(png_bytes(1280, 720, (20, 160, 60)))
    with first.open("rb") as handle:  # an uploaded file is this server's own upload: allowed
        video = client.videos.create_and_poll(
            prompt="a horse", seconds="3", size="1280x720", input_reference=handle, poll_interval_ms=POLL_MS
        )
    assert video.status == "completed", video.error
    client.videos.create(prompt="a horse", seconds="3")
    with pytest.raises(RateLimitError) as limited:
        client.videos.create(prompt="a horse", seconds="3")
    assert limited.value.code == "rate_limit_exceeded" and "retry-after" in limited.value.response.headers


def test_model_names_setting_data_urls_and_plain_forms(
    server_factory: Callable[..., LiveServer], tmp_path: Path
) -> None:
    """HAPPYHORSE_OPENAI_MODELS names the models and the mode each renders. OpenAI takes
    ``input_reference.image_url`` as "a fully qualified URL or base64-encoded data URL"; the SDK's
    ``create()`` takes only files there, so the object form goes through ``extra_body``."""
    live_server = server_factory(HAPPYHORSE_OPENAI_MODELS="studio-hd=pro, studio=std")
    key = live_server.create_key()
    client = sdk(live_server, key)
    api = live_server.client(key)
    hd = client.videos.create(prompt="a horse", model="studio-hd", seconds="3", size="1280x720")
    assert (hd.model, hd.size) == ("studio-hd", "1920x1080")  # the name fixed the mode: pro, 16:9
    assert api.get("/api/status", params={"task_id": hd.id}).json()["data"]["request"]["mode"] == "pro"
    plain = client.videos.create(prompt="a horse", model="studio", seconds="3", size="1080x1920")
    assert (plain.model, plain.size) == ("studio", "720x1280")  # std, 9:16
    with pytest.raises(BadRequestError) as unknown:  # the default names are gone with the setting
        client.videos.create(prompt="a horse", model="sora-2", seconds="3")
    assert (unknown.value.param, unknown.value.code) == ("model", "model_not_found")
    for queued in (hd, plain):  # out of the way of the render below
        client.post(f"/videos/{queued.id}/cancel", cast_to=Video)

    image = png_bytes(1280, 720, (30, 40, 210), pattern=False)
    data_url = "data:image/png;base64," + base64.b64encode(image).decode()
    video = client.videos.create_and_poll(
        prompt="a blue card", seconds="3", size="1280x720", extra_body={"input_reference": {"image_url": data_url}}
    )
    assert video.status == "completed", video.error
    request = api.get("/api/status", params={"task_id": video.id}).json()["data"]["request"]
    assert request["image_urls"][0].startswith(f"{live_server.url}/uploads/")  # kept as an upload
    mp4 = tmp_path / "v.mp4"
    client.videos.download_content(video.id).write_to_file(mp4)
    red, green, blue = mean_colour(first_frame(mp4))
    assert blue > 150 and red < 90 and green < 90, (red, green, blue)
    for bad in ("data:image/png;base64,!!!", "data:image/png;base64", "data:text/plain,hello"):
        with pytest.raises(BadRequestError) as refused:
            client.videos.create(prompt="x", seconds="3", extra_body={"input_reference": {"image_url": bad}})
        assert refused.value.param == "input_reference", refused.value.body
    # An HTML form post (application/x-www-form-urlencoded) is read like the SDK's multipart.
    form = api.post("/v1/videos", data={"prompt": "a horse", "seconds": "3", "size": "960x960"})
    assert form.status_code == 200 and form.json()["size"] == "960x960" and form.json()["seconds"] == "3", form.text
