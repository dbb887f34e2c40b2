"""Keep secrets out of every line we print.

Two nets: the exact values we know are secret (account fields of type password,
tokens obtained during the job), and patterns that look like credentials in
free text (an ``Authorization`` header, ``access_token=...`` in a URL or body).
Both are applied to every log line, at every level, before it is written.
"""

from __future__ import annotations

import re
import threading

MASK = "***"
MIN_SECRET_LENGTH = 4
"""Shorter values are not masked: masking "1" or "ab" everywhere would garble logs."""

_SECRET_NAME = re.compile(r"pass(word|wd)?|secret|token|api_?key|credential|private|signature", re.I)

_CREDENTIAL_PATTERNS = (
    # a password in a URL, even with an unencoded / # ? (up to the last @ of the URL)
    re.compile(r"(?i)(\b[a-z][a-z0-9+.-]*://[^\s:/@]*:)(\S*)(?=@[^\s@]*(?:\s|$))"),
    # an XML element or attribute named like a secret (PG&E's XML token answer)
    re.compile(r"(?i)(<(?:[\w.-]+:)?[\w.-]*(?:token|secret|password|apikey|api_key)[\w.-]*(?:\s[^>]*)?>\s*)([^<\s]+)"),
    re.compile(r"(?i)(\s[\w.-]*(?:token|secret|password)[\w.-]*\s*=\s*[\"'])([^\"']+)"),
    re.compile(r"(?i)(authorization[\"']?\s*[:=]\s*[\"']?)([^\"',}\r\n]+)"),
    re.compile(r"(?i)(x-[a-z-]*(?:key|secret|token)[\"']?\s*[:=]\s*[\"']?)([^\"',}\r\n]+)"),
    re.compile(r"(?i)([\"']?[a-z_]*(?:token|secret|password|apikey|api_key)[\"']?\s*[:=]\s*[\"']?)([^\"'&,}\s]+)"),
)


def is_secret_name(name: str) -> bool:
    """Whether a field or key name says it holds a secret (``apiToken``, ``client_secret``)."""
    return bool(_SECRET_NAME.search(name))


def url_password(url: str) -> str | None:
    """The password inside a URL's user info, read as a person wrote it: up to the last ``@``,
    so that an unencoded ``/``, ``#`` or ``?`` in it is still found (``urlsplit`` would not)."""
    match = re.match(r"^[a-z][a-z0-9+.-]*://([^@\s]*)@[^@\s]*$", url.strip(), re.I)
    if not match or ":" not in match.group(1):
        return None
    return match.group(1).partition(":")[2] or None


class Redactor:
    """Masks known secret values and credential-looking patterns in text."""

    def __init__(self) -> None:
        self._secrets: set[str] = set()
        self._lock = threading.Lock()

    def add(self, value: object) -> None:
        """Register a secret value (a string, or every string inside a dict or list)."""
        if isinstance(value, dict):
            for item in value.values():
                self.add(item)
        elif isinstance(value, (list, tuple)):
            for item in value:
                self.add(item)
        elif isinstance(value, str) and len(value) >= MIN_SECRET_LENGTH:
            with self._lock:
                self._secrets.add(value)

    def __call__(self, text: str) -> str:
        with self._lock:
            secrets = sorted(self._secrets, key=len, reverse=True)
        for secret in secrets:
            if secret in text:
                text = text.replace(secret, MASK)
        for pattern in _CREDENTIAL_PATTERNS:
            text = pattern.sub(lambda m: m.group(1) + MASK, text)
        return text


class SecretDict(dict):
    """A dict whose values are registered with a redactor as they are set."""

    def __init__(self, redactor: Redactor, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)
        self._redactor = redactor
        redactor.add(dict(self))

    def __setitem__(self, key: str, value: object) -> None:
        self._redactor.add(value)
        super().__setitem__(key, value)

    def update(self, *args: object, **kwargs: object) -> None:
        for key, value in dict(*args, **kwargs).items():
            self[key] = value

    def setdefault(self, key: str, default: object = None) -> object:
        if key not in self:
            self[key] = default
        return self[key]
