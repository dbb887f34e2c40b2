"""A small per-user cache of derived, re-computable data: ``konnector --help``'s text, manifests known valid.

Every entry is a file whose first line is the exact key it was computed for; a reader that finds
another key (or no file, an unreadable one, one owned by another user) computes the value again.
Nothing here is a source of truth: deleting the directory is always safe, and when it cannot be
written the commands work as before, only slower. Writes are atomic (a private temporary file
renamed over the entry) with mode 0600, in a 0700 directory.

Where: ``KONNECTOR_CACHE_DIR`` if set (empty: no cache), else the platform's user cache directory,
as ``platformdirs.user_cache_dir("konnectors", appauthor=False)`` computes it (a test checks they
agree); platformdirs itself is not imported: it costs ~10 ms of CPU (tempfile, shutil, random),
half of what ``konnector --help`` may spend above a bare interpreter (bench/cli_start.py).
"""

# No ``from __future__ import annotations``: it imports ``__future__`` (~0.1 ms), which `konnector
# --help` and `list` need not pay; annotations here are valid at run time (or quoted).

import os
import sys

CACHE_ENV = "KONNECTOR_CACHE_DIR"
APP = "konnectors"


def directory() -> str | None:
    """The cache directory (not created here); None when caching is turned off."""
    chosen = os.environ.get(CACHE_ENV)
    if chosen is not None:
        return chosen or None
    if sys.platform == "win32":
        base = os.environ.get("LOCALAPPDATA") or os.path.expanduser(r"~\AppData\Local")
        return os.path.join(base, APP, "Cache")
    if sys.platform == "darwin":
        return os.path.expanduser(f"~/Library/Caches/{APP}")
    base = os.environ.get("XDG_CACHE_HOME", "").strip()
    return os.path.join(base if base else os.path.expanduser("~/.cache"), APP)


def read(name: str, key: str) -> str | None:
    """The value stored under ``name`` if it was stored for exactly ``key``, else None."""
    folder = directory()
    if folder is None or "\n" in key:
        return None
    try:
        with open(os.path.join(folder, name), encoding="utf-8") as file:
            if hasattr(os, "getuid") and os.fstat(file.fileno()).st_uid != os.getuid():
                return None  # someone else's file: not ours to trust
            stored_key, _, value = file.read().partition("\n")
    except (OSError, UnicodeDecodeError):
        return None
    return value if stored_key == key else None


def write(name: str, key: str, value: str) -> None:
    """Store ``value`` under ``name`` for ``key``; silently nothing if the cache cannot be written."""
    folder = directory()
    if folder is None or "\n" in key:
        return
    target = os.path.join(folder, name)
    temporary = f"{target}.{os.getpid()}.tmp"
    try:
        os.makedirs(folder, mode=0o700, exist_ok=True)
        descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | getattr(os, "O_NOFOLLOW", 0), 0o600)
        with open(descriptor, "w", encoding="utf-8") as file:
            file.write(f"{key}\n{value}")
        os.replace(temporary, target)
    except OSError:
        import contextlib

        with contextlib.suppress(OSError):
            os.unlink(temporary)


def fingerprint(text: str) -> str:
    """A short, stable name for ``text`` (FNV-1a, 64 bits): which file a key lives in, not the key
    itself, which is stored in full and compared exactly. ``hashlib`` would cost ~5 ms to import."""
    value = 0xCBF29CE484222325
    for byte in text.encode("utf-8", "surrogatepass"):
        value = ((value ^ byte) * 0x100000001B3) & 0xFFFFFFFFFFFFFFFF
    return f"{value:016x}"
