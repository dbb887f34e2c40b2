"""Hostile XML is refused with a clear error; good XML streams."""

from __future__ import annotations

import pytest

from framework.safexml import UnsafeXml, iterparse, parse

BILLION_LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol1 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
<!ENTITY lol2 "&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;">]>
<lolz>&lol2;</lolz>"""

XXE = b"""<?xml version="1.0"?>
<!DOCTYPE foo [<!ENTITY xxe SYSTEM "file:///etc/passwd">]><foo>&xxe;</foo>"""

EXTERNAL_DTD = b"""<?xml version="1.0"?><!DOCTYPE foo SYSTEM "http://127.0.0.1:9/evil.dtd"><foo/>"""


@pytest.mark.parametrize("payload", [BILLION_LAUGHS, XXE, EXTERNAL_DTD])
def test_documents_with_a_dtd_are_refused(payload):
    with pytest.raises(UnsafeXml, match="declares a DTD"):
        parse(payload, name="hostile.xml")


def test_oversized_input_is_refused():
    with pytest.raises(UnsafeXml, match="larger than the 1000-byte limit"):
        parse(b"<a>" + b"<b>x</b>" * 500 + b"</a>", name="big.xml", max_bytes=1000)


def test_malformed_xml_is_a_clear_error():
    with pytest.raises(UnsafeXml, match="bad.xml: malformed XML"):
        parse(b"<a><b></a>", name="bad.xml")


def test_streaming_yields_wanted_elements_by_namespace():
    doc = b'<x:r xmlns:x="urn:n"><x:v>1</x:v><y:v xmlns:y="urn:n">2</y:v><v>3</v></x:r>'
    assert [e.text for e in iterparse(doc, "{urn:n}v")] == ["1", "2"]
