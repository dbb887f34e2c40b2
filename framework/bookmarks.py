"""Re-collect a period: rewind the dates a konnector's bookmark holds (``run --since``/``--full-refresh``).

Bookmarks are the konnector's own data, but the built-in ones share a shape: an ISO
date or date-time, or a mapping (per stream, per meter) of them. Rewinding moves
every such date later than ``since`` back to ``since``, so the konnector fetches
that period again; the store's dedup (ids from dates) keeps re-collected documents
from being duplicated. A bookmark only ever moves back here, never past stored data.
"""

from __future__ import annotations

from datetime import date, datetime, time
from typing import Any

from .errors import ConfigurationError

BOOKMARK = "bookmark"


def rewind(value: Any, since: date) -> tuple[Any, int]:
    """``value`` with every ISO date or date-time after ``since`` replaced by ``since``; and how many."""
    if isinstance(value, dict):
        rewound = {key: rewind(item, since) for key, item in value.items()}
        return {key: item for key, (item, _) in rewound.items()}, sum(n for _, n in rewound.values())
    if isinstance(value, list):
        rewound_items = [rewind(item, since) for item in value]
        return [item for item, _ in rewound_items], sum(n for _, n in rewound_items)
    if isinstance(value, str):
        return _rewind_text(value, since)
    return value, 0


def _rewind_text(text: str, since: date) -> tuple[str, int]:
    try:
        if len(text) == 10:
            return (since.isoformat(), 1) if date.fromisoformat(text) > since else (text, 0)
        moment = datetime.fromisoformat(text)
    except ValueError:
        return text, 0
    start = datetime.combine(since, time(), moment.tzinfo)
    return (start.isoformat(), 1) if moment > start else (text, 0)


def apply(state: dict[str, Any], since: date | None, full_refresh: bool, slug: str) -> str | None:
    """Change ``state`` for a re-collection; return what was done, for the log."""
    if full_refresh:
        removed = state.pop(BOOKMARK, None)
        return "full refresh: bookmark cleared" if removed is not None else "full refresh: there was no bookmark"
    if since is None:
        return None
    if state.get(BOOKMARK) is None:
        return f"re-collecting since {since}: there was no bookmark, everything is collected"
    state[BOOKMARK], moved = rewind(state[BOOKMARK], since)
    if not moved:
        raise ConfigurationError(
            f"konnector '{slug}' keeps no date after {since} in its bookmark: nothing to rewind "
            "(use --full-refresh to collect everything again)"
        )
    return f"re-collecting since {since}: {moved} bookmark date(s) moved back"
