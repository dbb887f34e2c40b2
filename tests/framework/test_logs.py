"""JSON log lines: shape, size cap, redaction of known secrets and credential patterns."""

from __future__ import annotations

import io
import json
import logging

from framework.logs import MAX_LINE_BYTES, configure, get_logger
from framework.redact import MASK, Redactor, SecretDict


def capture(level=logging.DEBUG):
    redactor, stream = Redactor(), io.StringIO()
    configure("json", redactor, level, stream)
    return redactor, stream, get_logger("test")


def test_lines_are_json_objects_with_the_platform_fields():
    _, stream, log = capture()
    log.info("hello")
    log.critical("VENDOR_DOWN", extra={"no_retry": False})
    first, second = (json.loads(line) for line in stream.getvalue().splitlines())
    assert set(first) == {"time", "type", "namespace", "message"} and first["type"] == "info"
    assert first["namespace"] == "konnector.test" and first["time"].endswith("+00:00")
    assert second == {**second, "type": "critical", "message": "VENDOR_DOWN", "no_retry": False}


def test_long_messages_are_cut_below_64_kib():
    _, stream, log = capture()
    log.warning("é" * 100_000)
    line = stream.getvalue().splitlines()[0]
    assert len(line.encode()) <= MAX_LINE_BYTES
    assert json.loads(line)["message"].endswith("[truncated]")


def test_known_secrets_and_credential_patterns_are_masked_at_every_level():
    redactor, stream, log = capture()
    redactor.add({"password": "hunter2-long", "nested": ["tok-abcdef"]})
    log.debug("login with hunter2-long then tok-abcdef")
    log.info('headers {"Authorization": "Bearer eyJhbGciOi.x.y", "X-Api-Key": "k-123456"}')
    log.error("GET /data?access_token=abc123&client_secret=s3cr3t&page=2")
    try:
        raise ValueError("failure with hunter2-long")
    except ValueError:
        log.exception("crashed")
    text = stream.getvalue()
    for secret in ("hunter2-long", "tok-abcdef", "eyJhbGciOi", "k-123456", "abc123", "s3cr3t"):
        assert secret not in text
    assert text.count(MASK) >= 7 and "page=2" in text


def test_short_values_are_not_masked_everywhere():
    redactor = Redactor()
    redactor.add("ab")
    assert redactor("abc") == "abc"


def test_secret_dict_registers_values_when_set():
    redactor = Redactor()
    secrets = SecretDict(redactor, {"old": "first-secret"})
    secrets["token"] = "second-secret"
    secrets.update(refresh="third-secret")
    assert redactor("first-secret second-secret third-secret") == f"{MASK} {MASK} {MASK}"
