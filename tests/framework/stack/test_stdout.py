"""stdout lines within cozy-stack's limits: 64 KiB a line, 4,000 bytes a message (``worker/exec``)."""

from __future__ import annotations

import io
import json
import logging

from framework.logs import MAX_MESSAGE_BYTES, configure, get_logger
from framework.redact import Redactor


def test_messages_are_cut_at_the_stacks_4000_bytes_on_a_character_boundary():
    stream = io.StringIO()
    configure("json", Redactor(), logging.DEBUG, stream)
    log = get_logger("stack-test")
    log.error("é" * 3000)
    log.info("short")
    first, second = (json.loads(line) for line in stream.getvalue().splitlines())
    assert len(first["message"].encode()) <= MAX_MESSAGE_BYTES
    assert first["message"].endswith("[truncated]") and first["message"].startswith("é" * 1000)
    assert second["message"] == "short"
