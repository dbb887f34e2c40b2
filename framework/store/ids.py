"""Which document ids the store accepts: never one CouchDB gives a special meaning.

CouchDB reserves ids starting with ``_``: ``_design/…`` is a design document (its
views and validation functions run on the server), ``_local/…`` a non-replicated
document, and other leading-underscore ids are refused or special. An account id
or a meter id taken from a provider could otherwise become one of them. Control
characters (and the C1 range) would break logs, URLs and CSV exports. Every id a
:class:`~framework.store.documents.DocumentStore` reads or writes passes here, on
every backend, so the embedded store refuses what CouchDB would misread.
"""

from __future__ import annotations

import itertools
import re

from ..errors import StoreError

MAX_ID_LENGTH = 1024
_FORBIDDEN = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def id_problem(doc_id: object) -> str | None:
    """Why ``doc_id`` may not be a document id, or None when it may."""
    if not isinstance(doc_id, str) or not doc_id:
        return "an id must be a non-empty string"
    if doc_id.startswith("_"):
        return "ids starting with '_' are reserved by CouchDB (_design/, _local/…)"
    if _FORBIDDEN.search(doc_id):
        return "ids may not contain control characters"
    if len(doc_id) > MAX_ID_LENGTH:
        return f"ids are at most {MAX_ID_LENGTH} characters"
    return None


def check_ids(doctype: str, ids: list[str]) -> None:
    """:func:`check_id` of every id, in a few passes over the whole list rather than one call per
    id (this runs on every document of a backfill); the first refused id is named as by check_id."""
    try:
        fine = (
            min(map(len, ids), default=1) > 0
            and max(map(len, ids), default=0) <= MAX_ID_LENGTH
            and not any(map(str.startswith, ids, itertools.repeat("_")))
            and not _FORBIDDEN.search("".join(ids))
        )
    except TypeError:  # a non-string id
        fine = False
    if not fine:
        for doc_id in ids:
            check_id(doctype, doc_id)


def check_id(doctype: str, doc_id: object) -> str:
    """``doc_id`` if it is a safe document id, else a :class:`StoreError` saying why."""
    problem = id_problem(doc_id)
    if problem:
        raise StoreError(f"{doctype}: document id {str(doc_id)[:80]!r} is refused: {problem}")
    return doc_id  # type: ignore[return-value]
