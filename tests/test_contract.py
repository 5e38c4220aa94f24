"""``parse_generate`` against every rule of spec/contract.md, plus the pricing and shape helpers."""

from __future__ import annotations

from typing import Any

import pytest

from happyhorse import errors
from happyhorse.contract import (
    KNOWN_FIELDS,
    MODEL_NAME,
    GenerateRequest,
    ShotPrompt,
    coerce_int,
    frame_shots,
    is_http_url,
    loads_request_body,
    nearest_aspect_ratio,
    parse_generate,
)
from happyhorse.contract_schema import ErrorResponse, GenerateBody, StatusResponse
from happyhorse.pricing import task_cost

IMG = "https://example.com/a.jpg"
IMG2 = "http://example.com/b.png"


def body(**fields: Any) -> dict[str, Any]:
    return {"model": MODEL_NAME, "prompt": "a horse runs", **fields}


def multi(**fields: Any) -> dict[str, Any]:
    shots = [{"prompt": "shot one", "duration": 3}, {"prompt": "shot two", "duration": 4}]
    return {"model": MODEL_NAME, "multi_shots": True, "sound": True, "multi_prompt": shots, **fields}


def fails(payload: Any, error: type[errors.ApiError], *words: str) -> errors.ApiError:
    """Assert the exact error class (so the exact error_code) and that the message names the field."""
    with pytest.raises(errors.ApiError) as info:
        parse_generate(payload)
    assert type(info.value) is error, info.value.message
    assert info.value.status == 400
    for word in words:
        assert word in info.value.message
    return info.value


# --- defaults and a full request --------------------------------------------------------------


def test_minimal_request_gets_the_defaults() -> None:
    req = parse_generate(body())
    assert isinstance(req, GenerateRequest)
    assert (req.model, req.prompt, req.mode, req.duration) == (MODEL_NAME, "a horse runs", "std", 5)
    assert (req.aspect_ratio, req.image_urls, req.sound, req.cfg_scale) == ("16:9", [], True, 0.5)
    assert (req.multi_shots, req.multi_prompt, req.elements) == (False, [], [])
    assert req.seed is None and req.negative_prompt is None
    assert req.type == "text-to-video"


def test_full_request_is_parsed() -> None:
    req = parse_generate(
        body(
            mode="pro", duration=15, aspect_ratio="9:16", image_urls=[IMG, IMG2], sound=False,
            cfg_scale=1, seed=2147483647, negative_prompt="blur",
        )
    )  # fmt: skip
    assert (req.mode, req.duration, req.aspect_ratio, req.sound) == ("pro", 15, "9:16", False)
    assert req.image_urls == [IMG, IMG2] and req.type == "image-to-video"
    assert req.cfg_scale == 1.0 and isinstance(req.cfg_scale, float)
    assert (req.seed, req.negative_prompt) == (2147483647, "blur")


def test_null_counts_as_absent_and_unknown_fields_are_ignored() -> None:
    req = parse_generate(
        body(mode=None, duration=None, aspect_ratio=None, image_urls=None, sound=None, cfg_scale=None,
             multi_shots=None, seed=None, negative_prompt=None, elements=None, whatever={"x": 1})
    )  # fmt: skip
    assert (req.mode, req.duration, req.aspect_ratio, req.sound) == ("std", 5, "16:9", True)
    assert req.cfg_scale == 0.5
    assert req.multi_shots is False and req.seed is None
    assert "whatever" not in req.echo and "mode" not in req.echo


# --- body shape and model ---------------------------------------------------------------------


@pytest.mark.parametrize("payload", [[], [body()], "x", 5, 1.5, None, True])
def test_body_that_is_not_an_object(payload: Any) -> None:
    fails(payload, errors.InvalidRequest, "JSON object")


@pytest.mark.parametrize(
    "fields",
    [{}, {"model": None}, {"model": "happyhorse-1.0"}, {"model": "HAPPYHORSE-1.0/VIDEO"},
     {"model": " happyhorse-1.0/video"}, {"model": 1}, {"model": [MODEL_NAME]}],
)  # fmt: skip
def test_invalid_model(fields: dict[str, Any]) -> None:
    fails({"prompt": "p", **fields}, errors.InvalidModel, "model")


# --- prompt ------------------------------------------------------------------------------------


@pytest.mark.parametrize("prompt", [None, "", "   ", "\n\t\u3000", 5, ["p"], {"p": 1}, True])
def test_invalid_single_shot_prompt(prompt: Any) -> None:
    payload = body(prompt=prompt)
    if prompt is None:
        del payload["prompt"]
    fails(payload, errors.InvalidPrompt, "prompt")


def test_prompt_length_counts_code_points() -> None:
    assert parse_generate(body(prompt="🐎" * 2500)).prompt == "🐎" * 2500
    fails(body(prompt="a" * 2501), errors.InvalidPrompt, "prompt", "2500")


def test_multi_shot_prompt_is_optional_shared_context() -> None:
    assert parse_generate(multi()).prompt is None
    assert parse_generate(multi(prompt="  ")).prompt == "  "
    fails(multi(prompt=3), errors.InvalidPrompt, "prompt")
    fails(multi(prompt="a" * 2501), errors.InvalidPrompt, "prompt")


@pytest.mark.parametrize(
    ("shot", "word"),
    [({"duration": 3}, "required"), ({"prompt": None, "duration": 3}, "required"),
     ({"prompt": "", "duration": 3}, "blank"), ({"prompt": " ", "duration": 3}, "blank"),
     ({"prompt": 7, "duration": 3}, "string"), ({"prompt": "a" * 501, "duration": 3}, "500")],
)  # fmt: skip
def test_invalid_shot_prompt(shot: dict[str, Any], word: str) -> None:
    payload = multi()
    payload["multi_prompt"].append(shot)
    fails(payload, errors.InvalidPrompt, "multi_prompt[2].prompt", word)


def test_shot_prompt_of_500_is_fine() -> None:
    payload = multi()
    payload["multi_prompt"][0]["prompt"] = "é" * 500
    assert parse_generate(payload).multi_prompt[0].prompt == "é" * 500


# --- duration ----------------------------------------------------------------------------------


@pytest.mark.parametrize(("sent", "want"), [(3, 3), (15, 15), (5.0, 5), ("5", 5), ("15", 15), ("07", 7)])
def test_duration_coercion_accepted(sent: Any, want: int) -> None:
    req = parse_generate(body(duration=sent))
    assert req.duration == want and type(req.duration) is int


@pytest.mark.parametrize(
    "sent",
    [2, 16, 0, -5, 5.5, True, False, "five", "5.0", " 5", "5 ", "-5", "+5", "", "٥", "1e1", [5], {"s": 5},
     float("inf"), float("nan"), "9" * 40],
)  # fmt: skip
def test_duration_rejected(sent: Any) -> None:
    err = fails(body(duration=sent), errors.InvalidDuration, "duration")
    assert err.message == "duration must be an integer from 3 to 15"
    assert err.error_code == "INVALID_DURATION"


def test_coerce_int_rejects_bool() -> None:
    assert coerce_int(True) is None and coerce_int(1) == 1 and coerce_int(2.0) == 2


def test_multi_shot_duration_defaults_to_the_sum() -> None:
    req = parse_generate(multi())
    assert req.duration == 7 and req.multi_shots
    assert req.multi_prompt == [ShotPrompt("shot one", 3), ShotPrompt("shot two", 4)]


@pytest.mark.parametrize("sent", [7, 7.0, "7"])
def test_multi_shot_explicit_duration_equal_to_the_sum(sent: Any) -> None:
    assert parse_generate(multi(duration=sent)).duration == 7


def test_multi_shot_explicit_duration_not_the_sum() -> None:
    fails(multi(duration=8), errors.InvalidDuration, "duration", "7")
    fails(multi(duration=20), errors.InvalidDuration, "duration must be an integer from 3 to 15")


@pytest.mark.parametrize("durations", [[1, 1], [2], [12, 4], [5, 5, 5, 1]])  # sums 2, 2, 16, 16
def test_multi_shot_sum_outside_3_to_15(durations: list[int]) -> None:
    shots = [{"prompt": f"s{i}", "duration": d} for i, d in enumerate(durations)]
    fails(multi(multi_prompt=shots), errors.InvalidDuration, "multi_prompt", "3 to 15")


@pytest.mark.parametrize("sent", [0, 13, 2.5, True, "x", None, "3.0"])
def test_invalid_shot_duration(sent: Any) -> None:
    payload = multi()
    payload["multi_prompt"][1]["duration"] = sent
    fails(payload, errors.InvalidDuration, "multi_prompt[1].duration", "1 to 12")


def test_shot_duration_coercion() -> None:
    payload = multi()
    payload["multi_prompt"][0]["duration"] = "3"
    payload["multi_prompt"][1]["duration"] = 4.0
    assert [s.duration for s in parse_generate(payload).multi_prompt] == [3, 4]


# --- order of precedence -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("payload", "error"),
    [
        ({"model": "x", "prompt": "", "duration": 99, "mode": "ultra"}, errors.InvalidModel),
        ({"prompt": "", "duration": 99}, errors.InvalidModel),
        (body(prompt="", duration=99, mode="ultra"), errors.InvalidPrompt),
        (body(prompt=None, duration="five"), errors.InvalidPrompt),
        (body(duration=1, mode="ultra", sound="yes", seed=-1), errors.InvalidDuration),
        (body(mode="ultra", aspect_ratio="4:3"), errors.InvalidRequest),
        # shots: every shot prompt is checked before any duration
        (multi(multi_prompt=[{"prompt": "a", "duration": 99}, {"prompt": ""}]), errors.InvalidPrompt),
        (multi(duration="x", multi_prompt=[{"prompt": "", "duration": 3}]), errors.InvalidPrompt),
        # a shot fault is reported before a multi_prompt shape fault or a missing sound
        ({**multi(multi_prompt=[{"prompt": "", "duration": 3}] * 6)}, errors.InvalidPrompt),
        ({**multi(multi_prompt=[{"prompt": "a", "duration": 0}, 5])}, errors.InvalidDuration),
        ({k: v for k, v in multi(duration=99).items() if k != "sound"}, errors.InvalidDuration),
    ],
)  # fmt: skip
def test_first_fault_in_contract_order_answers(payload: dict[str, Any], error: type[errors.ApiError]) -> None:
    fails(payload, error)


def test_malformed_multi_shots_is_reported_before_the_prompt() -> None:
    # multi_shots decides whether a prompt is required, so it is judged first.
    fails({"model": MODEL_NAME, "multi_shots": "true"}, errors.InvalidRequest, "multi_shots")
    fails(body(multi_shots=1), errors.InvalidRequest, "multi_shots")


# --- multi-shot shape ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("shots", "word"),
    [(None, "required"), ("shot", "list"), ({"prompt": "a", "duration": 5}, "list"), ([], "1 to 5"),
     ([{"prompt": "a", "duration": 3}] * 6, "1 to 5"),
     ([{"prompt": "a", "duration": 3}, "b"], "multi_prompt[1]")],
)  # fmt: skip
def test_invalid_multi_prompt_shape(shots: Any, word: str) -> None:
    fails(multi(multi_prompt=shots), errors.InvalidRequest, "multi_prompt", word)


def test_multi_prompt_is_not_rendered_without_multi_shots() -> None:
    shots = [{"prompt": "one", "duration": 3}, {"prompt": "", "duration": 2}]
    req = parse_generate(body(multi_shots=False, multi_prompt=shots, duration=6))
    assert req.multi_prompt == [] and req.duration == 6 and not req.multi_shots
    assert req.echo["multi_prompt"] == shots  # still echoed as sent
    assert parse_generate(body(multi_prompt=[])).multi_prompt == []


@pytest.mark.parametrize(
    ("shots", "error", "word"),
    [
        ("garbage", errors.InvalidRequest, "multi_prompt"),
        ([{"prompt": "a", "duration": 3}] * 6, errors.InvalidRequest, "at most 5"),
        ([{"prompt": "x" * 501}], errors.InvalidPrompt, "multi_prompt[0].prompt"),
        ([{"prompt": "a", "duration": 99}], errors.InvalidDuration, "multi_prompt[0].duration"),
        ([5], errors.InvalidRequest, "multi_prompt[0]"),
    ],
)
def test_unused_multi_prompt_is_held_to_its_limits(shots: Any, error: type[Exception], word: str) -> None:
    """Stored and echoed even when not rendered, so as bounded as when it is (issue 15, item 2)."""
    fails(body(multi_shots=False, multi_prompt=shots), error, word)


@pytest.mark.parametrize(
    "raw",
    [
        '{"model": "m", "multi_prompt": [NaN]}',
        '{"cfg_scale": Infinity}',
        '{"x": -Infinity}',
        '{"prompt": "\\ud800"}',
        '{"\\udfff": 1}',
        "[" * 65 + "]" * 65,
        '{"a": ' * 70 + "1" + "}" * 70,
        "[" * 100_000 + "]" * 100_000,
        '{"multi_prompt": [{"prompt": "a", "x": 1e999}]}',  # overflows to inf: Infinity by another name
        '{"x": -1e400}',
        '{"prompt": "a\\u0000b"}',  # PostgreSQL cannot store NUL in text
        '{"x": ' + "9" * 5000 + "}",  # more digits than int() takes
    ],
)
def test_request_body_refuses_what_cannot_be_served_back(raw: str) -> None:
    with pytest.raises(errors.InvalidRequest):
        loads_request_body(raw.encode())


def test_request_body_allows_64_levels_and_paired_surrogates() -> None:
    assert loads_request_body(("[" * 64 + "]" * 64).encode()) is not None
    assert loads_request_body(b'{"p": "\\ud83d\\ude00"}') == {"p": "\U0001f600"}


def test_multi_shot_requires_explicit_sound() -> None:
    payload = multi()
    del payload["sound"]
    fails(payload, errors.InvalidRequest, "sound")
    fails(multi(sound=None), errors.InvalidRequest, "sound")
    assert parse_generate(multi(sound=False)).sound is False


def test_multi_shot_takes_at_most_one_image() -> None:
    assert parse_generate(multi(image_urls=[IMG])).image_urls == [IMG]
    fails(multi(image_urls=[IMG, IMG2]), errors.InvalidRequest, "image_urls", "at most 1")


# --- other fields --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fields", "words"),
    [
        ({"mode": "ultra"}, ("mode must be one of std, pro",)),
        ({"mode": "PRO"}, ("mode",)),
        ({"mode": 1}, ("mode",)),
        ({"aspect_ratio": "4:3"}, ("aspect_ratio must be one of 16:9, 9:16, 1:1",)),
        ({"aspect_ratio": 1.77}, ("aspect_ratio",)),
        ({"image_urls": IMG}, ("image_urls", "list")),
        ({"image_urls": [IMG, IMG, IMG]}, ("image_urls", "at most 2")),
        ({"image_urls": ["ftp://example.com/a.jpg"]}, ("image_urls[0]",)),
        ({"image_urls": [IMG, "file:///etc/passwd"]}, ("image_urls[1]",)),
        ({"image_urls": ["https://"]}, ("image_urls[0]",)),
        ({"image_urls": ["example.com/a.jpg"]}, ("image_urls[0]",)),
        ({"image_urls": ["https://exa mple.com/a.jpg"]}, ("image_urls[0]",)),
        ({"image_urls": ["https://[::1/a.jpg"]}, ("image_urls[0]",)),
        ({"image_urls": ["https://example.com:99999/a.jpg"]}, ("image_urls[0]",)),
        ({"image_urls": ["https://example.com/" + "a" * 2048]}, ("image_urls[0]",)),
        ({"image_urls": [5]}, ("image_urls[0]",)),
        ({"sound": "true"}, ("sound",)),
        ({"sound": 1}, ("sound",)),
        ({"cfg_scale": 1.5}, ("cfg_scale", "0 to 1")),
        ({"cfg_scale": -0.1}, ("cfg_scale",)),
        ({"cfg_scale": "0.5"}, ("cfg_scale",)),
        ({"cfg_scale": True}, ("cfg_scale",)),
        ({"cfg_scale": float("nan")}, ("cfg_scale",)),
        ({"seed": -1}, ("seed", "2147483647")),
        ({"seed": 2147483648}, ("seed",)),
        ({"seed": 1.5}, ("seed",)),
        ({"seed": True}, ("seed",)),
        ({"seed": "42"}, ("seed",)),
        ({"negative_prompt": 5}, ("negative_prompt",)),
        ({"negative_prompt": "a" * 2501}, ("negative_prompt", "2500")),
    ],
)
def test_invalid_other_field(fields: dict[str, Any], words: tuple[str, ...]) -> None:
    err = fails(body(**fields), errors.InvalidRequest, *words)
    assert err.error_code == "INVALID_REQUEST"


def test_other_fields_accepted_edges() -> None:
    assert parse_generate(body(cfg_scale=0)).cfg_scale == 0.0
    assert parse_generate(body(seed=0)).seed == 0
    assert parse_generate(body(seed=42.0)).seed == 42  # integer-valued float, like duration
    assert parse_generate(body(image_urls=[])).image_urls == []
    assert parse_generate(body(negative_prompt="")).negative_prompt == ""
    assert parse_generate(body(image_urls=["HTTPS://Example.com:8443/x?y=1#z"])).image_urls


def test_is_http_url() -> None:
    assert is_http_url("http://127.0.0.1/a.png")  # shape only; the fetcher's SSRF guard judges hosts
    assert not is_http_url("javascript:alert(1)") and not is_http_url("https://ex\nample.com/")


# --- elements ------------------------------------------------------------------------------------


def element(name: str = "dog", **fields: Any) -> dict[str, Any]:
    return {"name": name, "description": "a dog", "element_input_urls": [IMG, IMG2], **fields}


@pytest.mark.parametrize("key", ["happyhorse_elements", "kling_elements", "elements"])
def test_elements_and_their_aliases(key: str) -> None:
    req = parse_generate(body(**{key: [element("dog"), element("Cat_2", description=None)]}))
    assert [(e.name, e.description, e.urls) for e in req.elements] == [
        ("dog", "a dog", [IMG, IMG2]),
        ("Cat_2", "", [IMG, IMG2]),
    ]
    assert key in req.echo


def test_element_images_alias_and_optional_description() -> None:
    item = {"name": "x", "images": [IMG, IMG2, IMG, IMG2]}
    assert parse_generate(body(elements=[item])).elements[0].urls == [IMG, IMG2, IMG, IMG2]


def test_two_element_aliases_at_once() -> None:
    fails(body(elements=[element()], kling_elements=[element()]), errors.InvalidRequest, "only one")
    assert parse_generate(body(elements=[element()], kling_elements=None)).elements


@pytest.mark.parametrize(
    ("elements", "words"),
    [
        ("dog", ("happyhorse_elements", "list")),
        ([element(str(i)) for i in range(4)], ("happyhorse_elements", "at most 3")),
        (["dog"], ("happyhorse_elements[0]", "object")),
        ([element("bad name")], ("happyhorse_elements[0].name",)),
        ([element("dog-1")], ("happyhorse_elements[0].name",)),
        ([element("a" * 65)], ("happyhorse_elements[0].name",)),
        ([element("dog\n")], ("happyhorse_elements[0].name",)),
        ([element(None)], ("happyhorse_elements[0].name",)),
        ([element("dog"), element("dog")], ("happyhorse_elements[1].name", "unique")),
        ([element(description=5)], ("happyhorse_elements[0].description",)),
        ([{"name": "dog"}], ("happyhorse_elements[0].element_input_urls", "required")),
        ([element(element_input_urls=[IMG])], ("happyhorse_elements[0].element_input_urls", "2 to 4")),
        ([element(element_input_urls=[IMG] * 5)], ("happyhorse_elements[0].element_input_urls", "2 to 4")),
        ([element(element_input_urls=[IMG, "nope"])], ("happyhorse_elements[0].element_input_urls[1]",)),
        ([element(images=[IMG, IMG2])], ("happyhorse_elements[0]", "not both")),
        ([{"name": "dog", "images": [IMG]}], ("happyhorse_elements[0].images", "2 to 4")),
    ],
)
def test_invalid_elements(elements: Any, words: tuple[str, ...]) -> None:
    fails(body(happyhorse_elements=elements), errors.InvalidRequest, *words)


def test_element_errors_name_the_alias_the_client_used() -> None:
    fails(body(kling_elements=[element("bad name")]), errors.InvalidRequest, "kling_elements[0].name")


def test_element_name_of_64_chars_and_empty_list() -> None:
    assert parse_generate(body(elements=[element("a" * 64)])).elements[0].name == "a" * 64
    assert parse_generate(body(elements=[])).elements == []


# --- echo ------------------------------------------------------------------------------------------


def test_echo_keeps_known_fields_as_sent() -> None:
    sent = body(duration="5", mode="pro", seed=None, junk=1, kling_elements=[element()], cfg_scale=1)
    req = parse_generate(sent)
    assert req.echo == {
        "model": MODEL_NAME, "prompt": "a horse runs", "duration": "5", "mode": "pro",
        "kling_elements": [element()], "cfg_scale": 1,
    }  # fmt: skip
    assert list(req.echo) == [k for k in sent if k in req.echo]  # the client's order
    sent["kling_elements"][0]["name"] = "changed"
    assert req.echo["kling_elements"][0]["name"] == "dog"  # a copy, not the client's object


def test_echo_of_the_docs_multi_shot_example() -> None:
    sent = multi(duration=7, mode="pro", aspect_ratio="16:9")
    assert parse_generate(sent).echo == sent


# --- helpers ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("size", "ratio"),
    [
        ((1920, 1080), "16:9"), ((1080, 1920), "9:16"), ((500, 500), "1:1"),
        ((4000, 1000), "16:9"), ((1000, 4000), "9:16"),
        ((1024, 768), "16:9"), ((768, 1024), "9:16"),  # exact ties (4:3, 3:4): landscape/portrait side
        ((1023, 768), "1:1"), ((768, 1023), "1:1"),  # just inside the square's band
        ((1025, 768), "16:9"), ((768, 1025), "9:16"),
        ((1, 1), "1:1"),
    ],
)  # fmt: skip
def test_nearest_aspect_ratio(size: tuple[int, int], ratio: str) -> None:
    assert nearest_aspect_ratio(*size) == ratio


def test_nearest_aspect_ratio_matches_the_log_rule_away_from_ties() -> None:
    import math

    targets = {"16:9": math.log(16 / 9), "1:1": 0.0, "9:16": math.log(9 / 16)}
    for w in range(100, 400, 7):
        for h in (100, 150, 213, 300):
            if 3 * w == 4 * h or 4 * w == 3 * h:  # exact ties are tested above
                continue
            want = min(targets, key=lambda k: abs(math.log(w / h) - targets[k]))
            assert nearest_aspect_ratio(w, h) == want


def test_nearest_aspect_ratio_rejects_empty_images() -> None:
    with pytest.raises(ValueError):
        nearest_aspect_ratio(0, 10)


def test_frame_shots() -> None:
    single = parse_generate(body(duration=8))
    assert frame_shots(single) == [ShotPrompt("a horse runs", 8)]
    plain = [ShotPrompt("shot one", 3), ShotPrompt("shot two", 4)]
    assert frame_shots(parse_generate(multi())) == plain
    assert frame_shots(parse_generate(multi(prompt="  "))) == plain
    shared = frame_shots(parse_generate(multi(prompt="A rainy city")))
    assert [s.prompt for s in shared] == ["A rainy city. shot one", "A rainy city. shot two"]
    ended = frame_shots(parse_generate(multi(prompt="A rainy city.")))
    assert ended[0].prompt == "A rainy city. shot one"


@pytest.mark.parametrize(
    ("mode", "duration", "sound", "cost"),
    [("pro", 5, True, 400), ("pro", 5, False, 270), ("std", 5, True, 300), ("std", 10, False, 400),
     ("pro", 15, True, 1200), ("std", 3, False, 120)],
)  # fmt: skip
def test_task_cost(mode: str, duration: int, sound: bool, cost: int) -> None:
    assert task_cost(mode, duration, sound) == cost


def test_cost_of_a_parsed_request() -> None:
    req = parse_generate(body(mode="pro", duration="5"))
    assert task_cost(req.mode, req.duration, req.sound) == 400


# --- docs schema -------------------------------------------------------------------------------------


def test_docs_schema_describes_every_known_field() -> None:
    schema = GenerateBody.model_json_schema()
    props = schema["properties"]
    known = KNOWN_FIELDS - {"kling_elements", "elements"}  # the aliases are described on the main name
    for name in known:
        assert props[name].get("description"), name
    assert props["mode"]["default"] == "std" and props["cfg_scale"]["default"] == 0.5
    assert "data" in ErrorResponse.model_json_schema()["properties"]
    assert "seed" in StatusResponse.model_json_schema()["$defs"]["StatusData"]["properties"]
