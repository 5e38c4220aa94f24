"""Small pure pieces of the compat surfaces: data URLs and the OpenAI model-name setting."""

from __future__ import annotations

import base64

import pytest
from pydantic import ValidationError

from happyhorse.config import Settings
from happyhorse.server.compat.data_urls import BadDataUrl, decode_data_url, is_data_url
from happyhorse.server.compat.openai_translate import model_modes


def test_data_urls_decode_base64_and_percent_forms_within_the_limit() -> None:
    assert is_data_url("DATA:image/png;base64,AA==") and not is_data_url("https://example.com/a.png")
    assert decode_data_url("data:image/png;base64," + base64.b64encode(b"\x89PNG").decode(), 100) == b"\x89PNG"
    assert decode_data_url("data:image/png;base64,iVBO\nRw==", 100) == base64.b64decode("iVBORw==")
    assert decode_data_url("data:,a%20b", 100) == b"a b"
    for bad in ("data:image/png;base64", "data:image/png;base64,***", "data:;base64," + "A" * 400):
        with pytest.raises(BadDataUrl):
            decode_data_url(bad, 100)


def test_openai_model_names_setting() -> None:
    assert model_modes(Settings(openai_models=" studio-hd = pro ,studio=std,")) == {
        "happyhorse-1.0/video": None,
        "studio-hd": "pro",
        "studio": "std",
    }
    for typo in ("sora-2=ultra", "=pro", "sora-2"):  # refused at start-up, not silently dropped
        with pytest.raises(ValidationError, match="HAPPYHORSE_OPENAI_MODELS"):
            Settings(openai_models=typo)
