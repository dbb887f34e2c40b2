"""Documents to JSON text: each serialised once, compactly, refusing what JSON cannot hold.

Both backends write through :class:`DocEncoder`. A save stamps every new document with
one shared ``cozyMetadata`` object (:class:`~framework.store.documents.Stamp`); the
encoder serialises that object once and splices its text into every document that
carries it, which cuts a third of the serialising work of a backfill.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from json.encoder import c_make_encoder, encode_basestring_ascii  # type: ignore[attr-defined]
from typing import Any

from ..errors import StoreError
from .backend import Doc

_ENCODER = json.JSONEncoder(separators=(",", ":"), allow_nan=False)
METADATA = "cozyMetadata"


def encode(value: Any) -> str:
    """Compact JSON; NaN and Infinity are refused with a :class:`StoreError` (JSON has no such numbers)."""
    try:
        return _ENCODER.encode(value)
    except ValueError:
        raise StoreError(f"cannot store a non-finite number (NaN or Infinity): {_non_finite(value)}") from None


def _non_finite(value: Any, where: str = "") -> str:
    """The first NaN/Infinity in ``value`` as ``field.path=nan``: the refusal names what to fix."""
    if isinstance(value, float) and not math.isfinite(value):
        return f"{where}={value}"
    items = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else ()
    for key, item in items:
        if found := _non_finite(item, f"{where}.{key}" if where else str(key)):
            return found
    return ""


class DocEncoder:
    """Serialises documents, reusing the text of the last ``cozyMetadata`` object seen.

    One encoder per batch (and so per thread): it keeps the C encoder that
    ``json.JSONEncoder.encode`` would build again for every document.
    """

    def __init__(self) -> None:
        self._metadata: tuple[Any, str] = (None, "")
        self._markers: dict[int, Any] = {}
        self._chunks = (
            None
            if c_make_encoder is None
            else c_make_encoder(
                self._markers, _ENCODER.default, encode_basestring_ascii, None, ":", ",", False, False, False
            )
        )

    def encode(self, value: Any) -> str:
        """:func:`encode`, with this encoder's reused C encoder."""
        if self._chunks is None:
            return encode(value)
        try:
            return "".join(self._chunks(value, 0))
        except ValueError:
            self._markers.clear()  # left behind by the interrupted walk
            return encode(value)  # raises the same refusal, naming the field

    def body(self, doc: Doc, skip: Sequence[str] = ()) -> str:
        """The JSON object of ``doc`` without the ``skip`` keys, ``cozyMetadata`` (if any) last."""
        try:
            return self._body(doc, skip)
        except StoreError as error:
            raise StoreError(f"document {doc.get('_id')!r}: {error}") from None

    def _body(self, doc: Doc, skip: Sequence[str]) -> str:
        metadata = doc.get(METADATA)
        if metadata is None and not skip:
            return self.encode(doc)
        body = doc.copy()  # a C copy and a few pops: cheaper than a filtering comprehension
        for key in skip:
            body.pop(key, None)
        body.pop(METADATA, None)
        text = self.encode(body)
        if metadata is None:
            return text
        if metadata is not self._metadata[0]:
            self._metadata = (metadata, self.encode(metadata))
        return ("{" if text == "{}" else text[:-1] + ",") + f'"{METADATA}":{self._metadata[1]}}}'

    def bulk_docs(self, docs: Sequence[Doc]) -> bytes:
        """The body of a ``_bulk_docs`` request."""
        return ('{"docs":[' + ",".join(map(self.body, docs)) + "]}").encode()
