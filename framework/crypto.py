"""Encryption of secrets at rest (account passwords, tokens).

Fernet (AES-128-CBC + HMAC-SHA256, from ``cryptography``) with one key per
installation: ``KONNECTOR_SECRET_KEY`` when a platform launches the job, or a key
file created once with mode 0600 for standalone use.
"""

from __future__ import annotations

import json
import os
import stat
from collections.abc import Callable
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken

from .errors import ConfigurationError

KEY_ENV = "KONNECTOR_SECRET_KEY"
KEY_FILE_NAME = "secret.key"


class SecretsUnreadable(ConfigurationError):
    """Stored secrets were sealed with another key (changed, or lost and re-created)."""


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
            raise SecretsUnreadable(
                f"the account's stored secrets cannot be decrypted with this key: {KEY_ENV} or the key file "
                "was changed or lost. Restore the old key; or re-enter the account's credentials (standalone: "
                "run again with --config; the secrets that cannot be read are replaced by the ones given)"
            ) from exc


def new_key() -> str:
    return Fernet.generate_key().decode()


def load_key(data_dir: Path | None, store_has_secrets: Callable[[], bool] = lambda: False) -> str:
    """The key from the environment, else from ``<data_dir>/secret.key``.

    The file is created (mode 0600) only for a store that holds no sealed secrets yet: a new key
    for an old store would silently make its secrets unreadable. An existing key file that its
    group or others may read is refused: the secrets it opens must be considered exposed.
    """
    if key := os.environ.get(KEY_ENV):
        return key
    if data_dir is None:
        raise ConfigurationError(f"{KEY_ENV} is not set: the job cannot read or store secrets")
    path = data_dir / KEY_FILE_NAME
    data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    if path.exists():
        return _read_key(path)
    if store_has_secrets():
        raise ConfigurationError(
            f"the secret key {path} is missing, but the store already holds account secrets sealed with it, "
            "which cannot be read without it. Restore the key file from a backup; or, to re-enter the "
            f"credentials, make a new key (konnector keygen > {path}; chmod 600 {path}) and run again with --config"
        )
    return _create_key(path)


def _create_key(path: Path) -> str:
    """Write a new key file whole before it appears (two first runs at once must never read a
    half-written key): a private temporary file, then a hard link that fails if one exists."""
    key = new_key()
    temporary = path.with_name(f".{path.name}.{os.getpid()}")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as key_file:
        key_file.write(key + "\n")
    try:
        os.link(temporary, path)
    except FileExistsError:
        return _read_key(path)
    finally:
        temporary.unlink()
    return key


def _read_key(path: Path) -> str:
    mode = stat.S_IMODE(path.stat().st_mode)
    if mode & 0o077:
        raise ConfigurationError(
            f"the secret key file {path} may be read by other users (mode {mode:04o}): it is not used. "
            f"Make it private (chmod 600 {path}) and, if others could read it, re-enter the credentials"
        )
    return path.read_text().strip()
