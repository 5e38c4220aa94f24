"""models.toml parsing, model-folder inspection and submit-time checks. Torch-free, like the API."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from happyhorse.contract import ElementInput, GenerateRequest, ShotPrompt
from happyhorse.engines.diffusers.profiles import ProfileError, load_profiles, request_kinds
from happyhorse.errors import InvalidRequest

MINIMAL = """
[std]
text_to_video    = "/models/ltx-2-distilled"   # a diffusers pipeline folder (model_index.json) or a hub id
image_to_video   = "/models/ltx-2-distilled"
first_last_frame = "/models/ltx-2-distilled"
elements         = "/models/wan-vace"
[pro]
text_to_video = { path = "/models/ltx-2", steps = 40, resolution = "1920x1080" }
"""


def fake_model(root: Path, name: str, class_name: str, **config: object) -> Path:
    """A model folder as far as a torch-free reader can tell: model_index.json and its components."""
    folder = root / name
    components = {"transformer": ["diffusers", "Transformer"], "vae": ["diffusers", "Vae"]}
    if class_name.startswith("LTX2"):
        components |= {"audio_vae": ["diffusers", "AutoencoderKLLTX2Audio"], "vocoder": ["ltx2", "LTX2Vocoder"]}
    for component in components:
        (folder / component).mkdir(parents=True)
        (folder / component / "config.json").write_text("{}")
    (folder / "model_index.json").write_text(json.dumps({"_class_name": class_name, **components, **config}))
    return folder


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "models.toml"
    path.write_text(text)
    return path


def request(**fields: object) -> GenerateRequest:
    values: dict[str, object] = {
        "model": "happyhorse-1.0/video",
        "prompt": "a fox",
        "mode": "std",
        "duration": 5,
        "aspect_ratio": "16:9",
        "image_urls": [],
        "sound": False,
        "cfg_scale": 0.5,
        "multi_shots": False,
        "multi_prompt": [],
        "elements": [],
        "seed": None,
        "negative_prompt": None,
    }
    values.update(fields)
    return GenerateRequest(**values)  # type: ignore[arg-type]


def test_the_minimal_form_from_the_issue(tmp_path: Path) -> None:
    profiles = load_profiles(write(tmp_path, MINIMAL))
    std = profiles.resolve("std", "first_last_frame")
    assert std is not None and std.path == "/models/ltx-2-distilled" and std.steps is None
    pro = profiles.resolve("pro", "text_to_video")
    assert pro is not None and (pro.path, pro.steps, pro.resolution) == ("/models/ltx-2", 40, (1920, 1080))
    assert profiles.resolve("pro", "elements") is None
    assert profiles.frame_size("pro", "16:9") == (1920, 1080)
    assert profiles.frame_size("pro", "1:1") == (1440, 1440)
    assert profiles.frame_size("std", "9:16") == (720, 1280)  # no resolution given: the contract's sizes


def test_mode_defaults_rich_tables_and_hub_ids(tmp_path: Path) -> None:
    (tmp_path / "local").mkdir()
    profiles = load_profiles(
        write(
            tmp_path,
            """
[std]
steps = 8
guidance = 1.0
dtype = "bf16"
cpu_offload = true
text_to_video = "Lightricks/LTX-2"

[std.image_to_video]
path = "local"
steps = 30
guidance = [3, 7]
vae_tiling = true
frames_per_pass = 81
audio = { path = "stabilityai/stable-audio-open-1.0", steps = 50 }
call_args = { stg_scale = 0.0 }
""",
        )
    )
    t2v = profiles.resolve("std", "text_to_video")
    assert t2v is not None
    assert (t2v.path, t2v.steps, t2v.guidance, t2v.dtype, t2v.cpu_offload) == (
        "Lightricks/LTX-2",
        8,
        (1.0, 1.0),
        "bfloat16",
        "model",
    )
    i2v = profiles.resolve("std", "image_to_video")
    assert i2v is not None
    assert i2v.path == str(tmp_path / "local")  # relative to models.toml
    assert (i2v.steps, i2v.guidance, i2v.vae_tiling, i2v.frames_per_pass) == (30, (3.0, 7.0), True, 81)
    assert i2v.audio is not None and i2v.audio.path == "stabilityai/stable-audio-open-1.0" and i2v.audio.steps == 50
    assert dict(i2v.call_args) == {"stg_scale": 0.0}


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[std]\ntext_to_video = { steps = 4 }", r"\[std\]\.text_to_video: a table needs `path`"),
        (
            '[std]\ntext_to_video = { path = "/m", steps = "forty" }',
            r"text_to_video\.steps: must be a positive integer",
        ),
        ('[std]\ntext_to_video = { path = "/m", stepz = 4 }', r"unknown option `stepz`"),
        ('[std]\ntext_to_video = { path = "/m", resolution = "1280x" }', r"resolution.*'1280x'"),
        ('[std]\ntext_to_video = { path = "/m", guidance = [7, 1] }', r"guidance: must be a number or a range"),
        ('[std]\ntext_to_video = { path = "/m", dtype = "int8" }', r"dtype: must be one of"),
        ('[std]\ntext_to_video = { path = "/m", cpu_offload = "maybe" }', r"cpu_offload"),
        ('[turbo]\ntext_to_video = "/m"', r"unknown table \[turbo\]"),
        ("[std]\nsteps = 4", r"no profiles"),
        ("[std\n", r"not valid TOML"),
    ],
)
def test_errors_name_the_file_and_the_key(tmp_path: Path, text: str, message: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(ProfileError, match=message) as caught:
        load_profiles(path)
    assert str(path) in str(caught.value)


def test_a_missing_file_or_setting_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ProfileError, match="no such file"):
        load_profiles(tmp_path / "nope.toml")
    with pytest.raises(ProfileError, match="HAPPYHORSE_MODELS is not set"):
        load_profiles(None)


def test_what_a_folder_can_do_comes_from_model_index(tmp_path: Path) -> None:
    ltx = fake_model(tmp_path, "ltx", "LTX2Pipeline")
    ti2v = fake_model(tmp_path, "ti2v", "WanPipeline", expand_timesteps=True)
    flf = fake_model(tmp_path, "flf", "WanImageToVideoPipeline")
    vace = fake_model(tmp_path, "vace", "WanVACEPipeline")
    profiles = load_profiles(
        write(
            tmp_path,
            f'[std]\ntext_to_video = "{ltx}"\nimage_to_video = "{ti2v}"\n'
            f'first_last_frame = "{flf}"\nelements = "{vace}"\n',
        )
    )
    infos = {name: profiles.model_info(str(tmp_path / name)) for name in ("ltx", "ti2v", "flf", "vace")}
    assert infos["ltx"].native_audio is True and "first_last_frame" in infos["ltx"].kinds
    assert infos["ti2v"].kinds == {"text_to_video", "image_to_video"} and infos["ti2v"].native_audio is False
    assert infos["flf"].kinds == {"image_to_video", "first_last_frame"}
    assert "elements" in infos["vace"].kinds


def test_check_request_refuses_a_kind_without_a_profile(tmp_path: Path) -> None:
    profiles = load_profiles(write(tmp_path, MINIMAL))
    profiles.check_request(request(mode="pro"))
    with pytest.raises(InvalidRequest, match=r"no model for image-to-video in pro mode.*image_to_video") as caught:
        profiles.check_request(request(mode="pro", image_urls=["https://x/a.png"]))
    assert caught.value.error_code == "INVALID_REQUEST" and caught.value.status == 400
    with pytest.raises(InvalidRequest, match="elements"):
        profiles.check_request(request(mode="pro", elements=[ElementInput("rex", "", ["https://x/1.png"] * 2)]))


def test_check_request_refuses_sound_without_an_audio_source(tmp_path: Path) -> None:
    ltx = fake_model(tmp_path, "ltx", "LTX2Pipeline")
    wan = fake_model(tmp_path, "wan", "WanPipeline", expand_timesteps=True)
    profiles = load_profiles(
        write(
            tmp_path,
            f"""
[std]
text_to_video = "{ltx}"
image_to_video = "{wan}"
[pro]
image_to_video = {{ path = "{wan}", audio = "{tmp_path}" }}
""",
        )
    )
    profiles.check_request(request(sound=True))  # LTX-2 makes its own audio
    profiles.check_request(request(sound=False, image_urls=["https://x/a.png"]))
    with pytest.raises(InvalidRequest, match=r"sound is true.*WanPipeline.*makes no audio.*\"sound\": false"):
        profiles.check_request(request(sound=True, image_urls=["https://x/a.png"]))
    profiles.check_request(request(mode="pro", sound=True, image_urls=["https://x/a.png"]))  # an audio source


def test_check_request_refuses_a_kind_the_model_cannot_render(tmp_path: Path) -> None:
    ltx = fake_model(tmp_path, "ltx", "LTX2Pipeline")
    profiles = load_profiles(write(tmp_path, f'[std]\ntext_to_video = "{ltx}"\nelements = "{ltx}"\n'))
    with pytest.raises(InvalidRequest, match=r"LTX2Pipeline.*cannot render"):
        profiles.check_request(request(elements=[ElementInput("rex", "", ["https://x/1.png"] * 2)]))


def test_request_kinds() -> None:
    assert request_kinds(request()) == ["text_to_video"]
    assert request_kinds(request(image_urls=["a"])) == ["image_to_video"]
    assert request_kinds(request(image_urls=["a", "b"])) == ["first_last_frame"]
    shots = [ShotPrompt("a", 2), ShotPrompt("b", 2)]
    assert request_kinds(request(multi_shots=True, multi_prompt=shots, image_urls=["a"])) == [
        "image_to_video",
        "text_to_video",
    ]
    assert request_kinds(request(elements=[ElementInput("rex", "", ["a", "b"])], image_urls=["a"])) == ["elements"]


def test_the_api_side_never_imports_torch(tmp_path: Path) -> None:
    ltx = fake_model(tmp_path, "ltx", "LTX2Pipeline")
    path = write(tmp_path, f'[std]\ntext_to_video = "{ltx}"\n')
    code = (
        "import sys\n"
        "from happyhorse.engines.diffusers.profiles import load_profiles\n"
        "import happyhorse.engines.diffusers.check\n"
        f"load_profiles({str(path)!r}).check_request\n"
        "heavy = [m for m in ('torch', 'diffusers', 'transformers') if m in sys.modules]\n"
        "assert not heavy, heavy\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)
