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
    """Serialises documents, reusing the text of the last ``cozyMetadata`` object seen."""

    def __init__(self) -> None:
        self._metadata: tuple[Any, str] = (None, "")

    def body(self, doc: Doc, skip: Sequence[str] = ()) -> str:
        """The JSON object of ``doc`` without the ``skip`` keys, ``cozyMetadata`` (if any) last."""
        try:
            return self._body(doc, skip)
        except StoreError as error:
            raise StoreError(f"document {doc.get('_id')!r}: {error}") from None

    def _body(self, doc: Doc, skip: Sequence[str]) -> str:
        metadata = doc.get(METADATA)
        if metadata is None and not skip:
            return encode(doc)
        dropped = (*skip, METADATA)
        text = encode({k: v for k, v in doc.items() if k not in dropped})
        if metadata is None:
            return text
        if metadata is not self._metadata[0]:
            self._metadata = (metadata, encode(metadata))
        return ("{" if text == "{}" else text[:-1] + ",") + f'"{METADATA}":{self._metadata[1]}}}'

    def bulk_docs(self, docs: Sequence[Doc]) -> bytes:
        """The body of a ``_bulk_docs`` request."""
        return ('{"docs":[' + ",".join(map(self.body, docs)) + "]}").encode()
