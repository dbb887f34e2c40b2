"""Parse XML from outside safely, streaming.

Provider XML is never trusted: a document type declaration (the vehicle of
XXE and of billion-laughs entity bombs) is refused outright, entities are never
resolved, nothing is fetched from the network, and input beyond a size limit
is refused. No provider format we read uses a DTD.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from typing import BinaryIO

from lxml import etree

from .errors import KonnectorError

DEFAULT_MAX_BYTES = 256 * 1024 * 1024


class UnsafeXml(KonnectorError):
    """Refused XML: a DTD, malformed markup, or too large."""

    code = "VENDOR_DOWN"


class _LimitedReader(io.RawIOBase):
    def __init__(self, source: BinaryIO, max_bytes: int, name: str) -> None:
        self.source, self.left, self.name, self.limit = source, max_bytes, name, max_bytes

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:  # type: ignore[override]
        data = self.source.read(min(len(buffer), self.left + 1))
        if len(data) > self.left:
            raise UnsafeXml(f"{self.name}: larger than the {self.limit}-byte limit; refused")
        self.left -= len(data)
        buffer[: len(data)] = data
        return len(data)


def iterparse(
    source: BinaryIO | bytes,
    tags: str | tuple[str, ...] | None = None,
    *,
    name: str = "XML document",
    max_bytes: int = DEFAULT_MAX_BYTES,
) -> Iterator[etree._Element]:
    """Yield each element (or those with ``tags``, Clark ``{ns}local`` names) as it closes.

    The caller may ``clear()`` elements it has used to keep memory flat.
    """
    if isinstance(source, bytes):
        source = io.BytesIO(source)
    reader = _LimitedReader(source, max_bytes, name)
    events = etree.iterparse(
        reader,
        events=("start", "end"),
        resolve_entities=False,
        no_network=True,
        load_dtd=False,
        huge_tree=False,
        remove_comments=True,
        remove_pis=True,
    )
    wanted = {tags} if isinstance(tags, str) else set(tags or ())
    try:
        checked = False
        for event, element in events:
            if not checked:
                if element.getroottree().docinfo.doctype:
                    raise UnsafeXml(f"{name}: declares a DTD (<!DOCTYPE>), which is refused for safety")
                checked = True
            if event == "end" and (not wanted or element.tag in wanted):
                yield element
    except etree.XMLSyntaxError as exc:
        raise UnsafeXml(f"{name}: malformed XML: {exc.msg}") from None


def parse(source: BinaryIO | bytes, *, name: str = "XML document", max_bytes: int = DEFAULT_MAX_BYTES):
    """The whole (small) document's root element, parsed with the same protections."""
    root = None
    for element in iterparse(source, name=name, max_bytes=max_bytes):
        root = element
    if root is None:
        raise UnsafeXml(f"{name}: empty document")
    return root
