"""Job logging: JSON lines for a platform, readable lines for a person.

Launched by a platform, a job prints only JSON objects on stdout, one a line:
``{"time", "type", "namespace", "message", "no_retry"?}``. Each line stays under
64 KiB and goes through the job's :class:`~framework.redact.Redactor`, so no
secret reaches the platform's log store. On a terminal the same records are
printed as short human lines on stderr.
"""

from __future__ import annotations

import json
import logging
import sys
import traceback
from datetime import UTC, datetime
from typing import TextIO

from .redact import Redactor

MAX_LINE_BYTES = 64 * 1024 - 1
"""cozy-stack reads stdout with a 64 KiB line buffer (``worker/exec/common.go``)."""
MAX_MESSAGE_BYTES = 4000
"""cozy-stack keeps the first 4,000 bytes of a message (``ScanOutput``, ``worker/exec/konnector.go``);
we cut first, on a character boundary, and say so."""
TRUNCATED = " [truncated]"
_TYPES = {
    logging.DEBUG: "debug",
    logging.INFO: "info",
    logging.WARNING: "warning",
    logging.ERROR: "error",
    logging.CRITICAL: "critical",
}
ROOT = "konnector"


def _message_of(record: logging.LogRecord) -> str:
    message = record.getMessage()
    if record.exc_info and record.exc_info[0] is not None:
        message += "\n" + "".join(traceback.format_exception(*record.exc_info)).rstrip()
    return message


class JsonLineFormatter(logging.Formatter):
    """One JSON object per record, redacted and capped at 64 KiB."""

    def __init__(self, redactor: Redactor) -> None:
        super().__init__()
        self.redactor = redactor

    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "type": _TYPES.get(record.levelno, "info"),
            "namespace": record.name,
            "message": _capped(self.redactor(_message_of(record))),
        }
        if getattr(record, "no_retry", None) is not None:
            entry["no_retry"] = record.no_retry
        line = json.dumps(entry, ensure_ascii=False)
        if len(line.encode()) > MAX_LINE_BYTES:
            line = self._shortened(entry, len(line.encode()))
        return line

    @staticmethod
    def _shortened(entry: dict, size: int) -> str:
        message = entry["message"]
        excess = size - MAX_LINE_BYTES + 64
        cut = message.encode()[: max(0, len(message.encode()) - excess * 2)]
        entry["message"] = cut.decode(errors="ignore") + TRUNCATED
        return json.dumps(entry, ensure_ascii=False)


def _capped(message: str) -> str:
    """``message`` within :data:`MAX_MESSAGE_BYTES` of UTF-8, marked when cut."""
    data = message.encode()
    if len(data) <= MAX_MESSAGE_BYTES:
        return message
    return data[: MAX_MESSAGE_BYTES - len(TRUNCATED)].decode(errors="ignore") + TRUNCATED


CLEAR_LINE = "\r\x1b[K"


class HumanFormatter(logging.Formatter):
    """``12:03:04 info  enedis-sge: message`` lines for a terminal."""

    def __init__(self, redactor: Redactor, terminal: bool = False) -> None:
        super().__init__()
        self.redactor = redactor
        self.prefix = CLEAR_LINE if terminal else ""
        """On a terminal, each line first erases a progress line being shown."""

    def format(self, record: logging.LogRecord) -> str:
        time = datetime.fromtimestamp(record.created).strftime("%H:%M:%S")
        kind = _TYPES.get(record.levelno, "info")
        namespace = record.name.removeprefix(ROOT + ".") or ROOT
        return self.prefix + self.redactor(f"{time} {kind:<8} {namespace}: {_message_of(record)}")


class Progress:
    """A counter of documents written, redrawn in place on a terminal while a job runs."""

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream

    def __call__(self, written: dict[str, int]) -> None:
        total = sum(written.values())
        names = short_names(sorted(written))
        each = ", ".join(f"{written[doctype]:,} {name}" for doctype, name in names.items())
        self.stream.write(f"{CLEAR_LINE}  {total:,} documents written: {each}…")
        self.stream.flush()


class ProgressLines:
    """The same counts for a platform: a JSON log line ``{"written": {doctype: n}}`` when they change."""

    def __init__(self, log: logging.Logger) -> None:
        self.log = log
        self.last: dict[str, int] = {}

    def __call__(self, written: dict[str, int]) -> None:
        if written and written != self.last:
            self.last = dict(written)
            self.log.info(json.dumps({"written": self.last}, sort_keys=True))


def short_names(doctypes: list[str]) -> dict[str, str]:
    """Doctypes without the dotted prefix they share (``day``, ``month``…): a progress line fits a terminal."""
    parts = [doctype.split(".") for doctype in doctypes]
    shared = 0
    while parts and all(len(p) > shared + 1 and p[shared] == parts[0][shared] for p in parts):
        shared += 1
    return {doctype: ".".join(p[shared:]) for doctype, p in zip(doctypes, parts, strict=True)}


def configure(
    log_format: str, redactor: Redactor, level: int = logging.INFO, stream: TextIO | None = None
) -> logging.Logger:
    """Route the ``konnector`` logger tree to one handler in the chosen format.

    JSON goes to stdout (the platform reads it); human lines go to stderr so
    that stdout stays free for command output.
    """
    if stream is None:
        stream = sys.stdout if log_format == "json" else sys.stderr
    handler = logging.StreamHandler(stream)
    if log_format == "json":
        handler.setFormatter(JsonLineFormatter(redactor))
    else:
        handler.setFormatter(HumanFormatter(redactor, terminal=stream.isatty()))
    root = logging.getLogger(ROOT)
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)
    root.propagate = False
    return root


def get_logger(name: str) -> logging.Logger:
    """A logger in the ``konnector`` tree (``konnector.<name>``)."""
    return logging.getLogger(f"{ROOT}.{name}")
