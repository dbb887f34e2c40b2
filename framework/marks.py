"""Bookmarks that follow the data, not the calendar.

A provider publishes late (Enedis' curve a day or more, sometimes several): a window asked for
today may come back with its last days missing. A stream therefore keeps two marks:

- ``data_until``: the end (excluded) of the last period the provider delivered and we stored;
  the bookmark proper, never past stored data;
- ``asked_until``: the end (excluded) of the last window we asked for.

The next run resumes ``look_back`` before ``data_until``, so trailing days not yet published
are asked for again. That catch-up is bounded: days asked for ``patience`` ago and still not
published are given up on (with a warning), so a meter that stopped sending does not make every
later run ask for an ever longer period. All dates come from the job's clock (``ctx.now()``).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any


@dataclass
class StreamMark:
    """The two marks of one stream, saved as ISO dates in the konnector's bookmark."""

    data_until: date | None = None
    asked_until: date | None = None

    @classmethod
    def load(cls, saved: Any) -> StreamMark:
        """From the saved form; an older bookmark (one ISO date: the end asked) reads as both marks."""
        if isinstance(saved, str):
            return cls(date.fromisoformat(saved), date.fromisoformat(saved))
        if isinstance(saved, dict):
            data, asked = saved.get("data_until"), saved.get("asked_until")
            return cls(date.fromisoformat(data) if data else None, date.fromisoformat(asked) if asked else None)
        return cls()

    def dump(self) -> dict[str, str | None]:
        return {
            "data_until": self.data_until.isoformat() if self.data_until else None,
            "asked_until": self.asked_until.isoformat() if self.asked_until else None,
        }

    def delivered(self, last_day: date | None, asked_end: date) -> None:
        """Record an answer: ``last_day`` is the last day stored from it (None: nothing usable)."""
        if last_day is not None:
            self.data_until = max(self.data_until or last_day, last_day + timedelta(1))
        self.asked_until = max(self.asked_until or asked_end, asked_end)

    def resume_from(
        self, floor: date, look_back: int, patience: int, log: logging.Logger | None = None, what: str = ""
    ) -> date:
        """Where the next window starts: ``look_back`` days before the data, within ``patience``."""
        if self.asked_until is None:
            return floor
        given_up = self.asked_until - timedelta(patience)
        data_until = self.data_until or floor
        if data_until < given_up and log is not None:
            log.warning(
                f"{what}: the provider has published nothing from {data_until} to {given_up - timedelta(1)} "
                f"though it was asked for over {patience} days; these days are no longer asked for"
            )
        return max(floor, max(data_until, given_up) - timedelta(look_back))
