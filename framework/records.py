"""Per-record validation: one bad record is skipped with a warning naming it, never the run.

Providers send, now and then, a reading that is null, not a number, ``NaN``, out of its
documented range or of an enumerated value nobody documented. Such a record is left out and
reported (date, field, value, why); the records around it are stored. Parsers call
:func:`number` / :func:`level` for each field they keep and catch :class:`BadRecord`; the
konnector logs what was skipped with :func:`warn_skipped`.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from typing import Any

WARNED_AT_MOST = 10
"""Skipped records logged one by one; the rest are counted (a bounded log for a bad year)."""


class BadRecord(ValueError):
    """A field of one record cannot be stored; the parser skips that record."""

    def __init__(self, field: str, value: Any, reason: str) -> None:
        super().__init__(f"{field}={value!r:.60} {reason}")
        self.field, self.value, self.reason = field, value, reason


@dataclass(frozen=True)
class Skipped:
    """A record left out: when it was for, which field was wrong, its value and why."""

    when: str
    field: str
    value: Any
    reason: str

    @classmethod
    def of(cls, when: Any, error: BadRecord) -> Skipped:
        return cls(str(when), error.field, error.value, error.reason)

    def __str__(self) -> str:
        return f"{self.when}: {self.field}={self.value!r:.60} {self.reason}"


def number(record: Any, field: str, *, low: float | None = None, high: float | None = None) -> float:
    """``record[field]`` as a finite float within [low, high]; numbers sent as strings are accepted."""
    value = record.get(field) if isinstance(record, dict) else None
    if value is None:
        raise BadRecord(field, value, "is missing or null")
    if isinstance(value, bool):
        raise BadRecord(field, value, "is not a number")
    try:
        found = float(value)
    except (TypeError, ValueError):
        raise BadRecord(field, value, "is not a number") from None
    if not math.isfinite(found):
        raise BadRecord(field, value, "is not a finite number")
    if (low is not None and found < low) or (high is not None and found > high):
        raise BadRecord(field, value, f"is outside {low}..{high}")
    return found


def level(record: Any, field: str, allowed: Collection[int]) -> int:
    """``record[field]`` as one of the documented integer levels (``dvalue`` 1–3, ``hvalue`` 0–3)."""
    found = number(record, field)
    if found != int(found) or int(found) not in allowed:
        raise BadRecord(field, record.get(field), f"is not one of {sorted(allowed)}")
    return int(found)


def warn_skipped(log: logging.Logger, what: str, skipped: Sequence[Skipped]) -> None:
    """One warning per skipped record (at most :data:`WARNED_AT_MOST`, then a count)."""
    for record in skipped[:WARNED_AT_MOST]:
        log.warning(f"{what}: record skipped, {record}")
    if len(skipped) > WARNED_AT_MOST:
        log.warning(f"{what}: {len(skipped) - WARNED_AT_MOST} more record(s) skipped")
