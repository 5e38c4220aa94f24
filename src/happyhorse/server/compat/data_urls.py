"""``data:`` URLs, which the OpenAI Videos API takes for ``input_reference.image_url`` ("a fully qualified URL
or base64-encoded data URL"): decoded here, then kept as an upload like a file sent in the form."""

from __future__ import annotations

import base64
import binascii
import urllib.parse


class BadDataUrl(ValueError):
    """A ``data:`` URL that does not hold base64 or percent-encoded bytes."""


def is_data_url(url: str) -> bool:
    return url[:5].lower() == "data:"


def decode_data_url(url: str, max_bytes: int) -> bytes:
    """The bytes of ``data:[<media type>][;base64],<data>``; what they are (an image?) is checked later."""
    header, comma, payload = url[5:].partition(",")
    if not comma:
        raise BadDataUrl("a data URL needs a comma before its data")
    if len(payload) > max_bytes * 4 // 3 + 4:  # base64 is 4/3 the bytes: refuse before decoding
        raise BadDataUrl("the data URL is larger than the upload limit")
    if header.lower().endswith(";base64"):
        try:
            data = base64.b64decode("".join(payload.split()), validate=True)
        except (binascii.Error, ValueError):
            raise BadDataUrl("the data URL's base64 does not decode") from None
    else:
        data = urllib.parse.unquote_to_bytes(payload)
    if len(data) > max_bytes:
        raise BadDataUrl("the data URL is larger than the upload limit")
    return data
