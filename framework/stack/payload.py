"""``COZY_PAYLOAD``: the body of the HTTP request that fired a ``@webhook`` trigger.

cozy-stack (``worker/exec/common.go``, ``preparePayload``; ``docs/konnectors-workflow.md``,
"Webhook triggers") passes the JSON body inline in the variable, or, when it is longer
than 100,000 bytes (the kernel limits the environment), writes it to
``cozy_payload.json`` in the konnector's work directory and sets the variable to
``@cozy_payload.json``. A debounced trigger gives ``{"payloads": [...]}``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ..errors import ConfigurationError

MAX_INLINE_BYTES = 100_000
"""cozy-stack's ``MaxPayloadSizeInEnvVar``: above this the payload comes as a file."""
MAX_FILE_BYTES = 32 * 1024 * 1024
"""What we accept in a payload file: memory stays bounded whatever a webhook sender posts."""


def read_payload(value: str | None, workdir: Path | None = None) -> Any:
    """The decoded payload, or None when the job was not started by a webhook."""
    if not value:
        return None
    if value.startswith("@"):
        return _payload_file(value[1:], workdir or Path.cwd())
    try:
        return json.loads(value)
    except json.JSONDecodeError as exc:
        raise ConfigurationError(f"COZY_PAYLOAD is not valid JSON: {exc.msg} at character {exc.pos}") from None


def _payload_file(name: str, workdir: Path) -> Any:
    """The decoded payload file, which must sit in the work directory (no path games)."""
    base = workdir.resolve()
    path = (base / name).resolve()
    if path.parent != base:
        raise ConfigurationError(f"COZY_PAYLOAD names {name!r}, which is not a file of the work directory")
    try:
        size = path.stat().st_size
        if size > MAX_FILE_BYTES:
            raise ConfigurationError(f"COZY_PAYLOAD file {name} holds {size} bytes, over {MAX_FILE_BYTES}")
        return json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigurationError(f"COZY_PAYLOAD file {name} cannot be read: {exc.strerror}") from None
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ConfigurationError(f"COZY_PAYLOAD file {name} is not valid JSON: {exc}") from None
