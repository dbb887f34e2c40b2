"""Konnectors: the runtime that collects a person's data from providers into their store.

The public API a konnector author needs is re-exported here.
"""

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
