"""ADICT answers: NDJSON, or the same objects pretty-printed over several lines (GRDF's sandbox).

Both are a sequence of JSON objects separated by whitespace, so one decoder
reads both. A body over the size limit is refused before decoding (NDJSON bombs).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

from framework import VendorDown

MAX_BYTES = 32 * 1024 * 1024


def objects(body: bytes, what: str = "GRDF answer") -> Iterator[dict[str, Any]]:
    if len(body) > MAX_BYTES:
        raise VendorDown(f"{what} is larger than {MAX_BYTES // 1024 // 1024} MiB; refused")
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise VendorDown(f"{what} is not UTF-8") from None
    decoder, position = json.JSONDecoder(), 0
    while True:
        while position < len(text) and text[position].isspace():
            position += 1
        if position == len(text):
            return
        try:
            value, position = decoder.raw_decode(text, position)
        except json.JSONDecodeError as exc:
            raise VendorDown(f"{what} is malformed at character {exc.pos}: {exc.msg}") from None
        if not isinstance(value, dict):
            raise VendorDown(f"{what} holds a JSON value that is not an object")
        yield value
