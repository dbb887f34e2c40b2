"""Konnectors: the runtime that collects a person's data from providers into their store.

The public API a konnector author needs is re-exported here, lazily: ``from framework
import Konnector`` imports the konnector machinery (and with it the store and HTTP
clients) only then, so ``import framework.cli`` stays cheap and ``konnector --help``
starts fast.
"""

# No ``from __future__ import annotations``: it imports ``__future__`` (~0.1 ms), which `konnector
# --help` and `list` need not pay; annotations here are valid at run time (or quoted).

TYPE_CHECKING = False  # ``typing`` costs ~5 ms to import, which `konnector --help` need not pay
if TYPE_CHECKING:
    from typing import Any

_EXPORTS = {
    "Context": ".context",
    "ChallengeAsked": ".errors",
    "KonnectorError": ".errors",
    "LoginFailed": ".errors",
    "Maintenance": ".errors",
    "OAuthOutdated": ".errors",
    "PartialSync": ".errors",
    "UserActionNeeded": ".errors",
    "VendorDown": ".errors",
    "Chunk": ".konnector",
    "Documents": ".konnector",
    "Konnector": ".konnector",
    "Rollup": ".store.timeseries",
    "Series": ".store.timeseries",
    "energy_series": ".store.timeseries",
    "point": ".store.timeseries",
}

__all__ = [
    "ChallengeAsked",
    "Chunk",
    "Context",
    "Documents",
    "Konnector",
    "KonnectorError",
    "LoginFailed",
    "Maintenance",
    "OAuthOutdated",
    "PartialSync",
    "Rollup",
    "Series",
    "UserActionNeeded",
    "VendorDown",
    "energy_series",
    "point",
]


def __getattr__(name: str) -> "Any":
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    import importlib  # here, not above: ``importlib`` imports ``warnings``, which `konnector --help` need not pay

    value = getattr(importlib.import_module(module, __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_EXPORTS})


if TYPE_CHECKING:
    from .context import Context
    from .errors import (
        ChallengeAsked,
        KonnectorError,
        LoginFailed,
        Maintenance,
        OAuthOutdated,
        PartialSync,
        UserActionNeeded,
        VendorDown,
    )
    from .konnector import Chunk, Documents, Konnector
    from .store.timeseries import Rollup, Series, energy_series, point
