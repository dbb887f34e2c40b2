"""Encryption of secrets at rest (account passwords, tokens).

Fernet (AES-128-CBC + HMAC-SHA256, from ``cryptography``) with one key per
installation: ``KONNECTOR_SECRET_KEY`` when a platform launches the job, or a key
file created once with mode 0600 for standalone use.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken

from .errors import ConfigurationError

KEY_ENV = "KONNECTOR_SECRET_KEY"
KEY_FILE_NAME = "secret.key"


class SecretBox:
    """Encrypts JSON values to text and back."""

    def __init__(self, key: str | bytes) -> None:
        try:
            self._fernet = Fernet(key)
        except (ValueError, TypeError) as exc:
            raise ConfigurationError(
                f"{KEY_ENV} is not a valid key (32 url-safe base64 bytes); make one with: konnector keygen"
            ) from exc

    def seal(self, value: object) -> str:
        return self._fernet.encrypt(json.dumps(value, sort_keys=True).encode()).decode()

    def open(self, token: str) -> object:
        try:
            return json.loads(self._fernet.decrypt(token.encode()))
        except InvalidToken as exc:
            raise ConfigurationError(
                f"stored secrets cannot be decrypted with this key: was {KEY_ENV} or the key file changed?"
            ) from exc


def new_key() -> str:
    return Fernet.generate_key().decode()


def load_key(data_dir: Path | None) -> str:
    """The key from the environment, else from ``<data_dir>/secret.key`` (created if absent)."""
    if key := os.environ.get(KEY_ENV):
        return key
    if data_dir is None:
        raise ConfigurationError(f"{KEY_ENV} is not set: the job cannot read or store secrets")
    path = data_dir / KEY_FILE_NAME
    data_dir.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return path.read_text().strip()
    with os.fdopen(fd, "w") as key_file:
        key = new_key()
        key_file.write(key + "\n")
    return key
