"""What a store holds: doctypes, document counts and the dates they cover (``konnector doctypes``).

The store has no catalogue of its own, so the doctypes looked at are those the
installed konnectors' manifests grant, plus accounts; each is read in id order,
one page at a time, so memory stays bounded whatever the store's size.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date

from .accounts import DOCTYPE as ACCOUNTS
from .errors import ConfigurationError
from .export import document_date
from .manifest import Manifest
from .store import DocumentStore


@dataclass(frozen=True)
class Holding:
    doctype: str
    count: int
    first: date | None
    last: date | None


def known_doctypes(manifests: Iterable[Manifest]) -> list[str]:
    """Every doctype an installed konnector may write, and accounts."""
    return sorted({ACCOUNTS, *(doctype for manifest in manifests for doctype in manifest.doctypes)})


def holdings(store: DocumentStore, doctypes: Iterable[str]) -> list[Holding]:
    """The doctypes holding at least one document, with their count and date range."""
    found = []
    for doctype in doctypes:
        count, first, last = 0, None, None
        for doc in store.id_range(doctype):
            count += 1
            when = document_date(doc)
            if when is not None:
                first, last = min(first or when, when), max(last or when, when)
        if count:
            found.append(Holding(doctype, count, first, last))
    return found


def require_known(doctype: str, known: list[str]) -> None:
    """Refuse a doctype no installed konnector writes, naming the closest and the known ones.

    Callers ask only when the store holds none of it: data written by a konnector no longer
    installed stays exportable.
    """
    if doctype not in known:
        close = difflib.get_close_matches(doctype, known, n=1, cutoff=0.6)
        hint = f" (did you mean '{close[0]}'?)" if close else ""
        raise ConfigurationError(f"unknown doctype '{doctype}'{hint}; known: {', '.join(known)}")
