"""``konnector export``: a doctype's documents as JSON, NDJSON, CSV, or Cozy's import shape.

Bookkeeping (``_rev``, ``cozyMetadata``) is left out except in the Cozy shape,
which keeps documents as Cozy would import them (``{doctype: [documents]}``, the
``importedData.json`` of a standalone konnector run, without revisions).
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterable, Iterator
from datetime import date
from typing import TYPE_CHECKING, Any, TextIO

if TYPE_CHECKING:
    from .store import Doc, DocumentStore

FORMATS = ("json", "ndjson", "csv", "cozy")


def document_date(doc: Doc) -> date | None:
    """The date a document is about: Ecolyo fields, else a ``date`` or ``start`` field."""
    if isinstance(doc.get("year"), int):
        return date(doc["year"], max(1, doc.get("month") or 1), max(1, doc.get("day") or 1))
    for field in ("date", "start"):
        value = doc.get(field)
        if isinstance(value, str) and len(value) >= 10:
            try:
                return date.fromisoformat(value[:10])
            except ValueError:
                continue
    return None


def selected(docs: Iterable[Doc], start: date | None, end: date | None) -> Iterator[Doc]:
    """Documents whose date is within ``[start, end]``; all of them when no bound is given."""
    for doc in docs:
        if start is None and end is None:
            yield doc
            continue
        when = document_date(doc)
        if when is not None and (start is None or when >= start) and (end is None or when <= end):
            yield doc


def _plain(doc: Doc) -> Doc:
    return {k: v for k, v in doc.items() if k not in ("_rev", "cozyMetadata")}


def export(
    store: DocumentStore, doctype: str, fmt: str, out: TextIO, start: date | None = None, end: date | None = None
) -> int:
    """Write the documents to ``out``; return how many were written."""
    docs = selected(store.id_range(doctype), start, end)
    if fmt == "cozy":
        kept = [{k: v for k, v in doc.items() if k != "_rev"} for doc in docs]
        json.dump({doctype: kept}, out, ensure_ascii=False, indent=1)
        return len(kept)
    plain = [_plain(doc) for doc in docs]
    if fmt == "json":
        json.dump(plain, out, ensure_ascii=False, indent=1)
    elif fmt == "ndjson":
        for doc in plain:
            out.write(json.dumps(doc, ensure_ascii=False) + "\n")
    elif fmt == "csv":
        _csv(plain, out)
    else:
        raise ValueError(f"unknown format {fmt!r}")
    return len(plain)


FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")
"""What makes a spreadsheet read a CSV cell as a formula (OWASP "CSV injection")."""


def _csv(docs: list[Doc], out: TextIO) -> None:
    columns: dict[str, None] = {}
    for doc in docs:
        columns.update(dict.fromkeys(doc))
    writer = csv.writer(out)
    writer.writerow([_cell(name) for name in columns])
    for doc in docs:
        writer.writerow([_cell(doc[name]) if name in doc else "" for name in columns])


def _cell(value: Any) -> Any:
    """A CSV cell: JSON for structures; text that a spreadsheet would run as a formula is quoted
    with a leading ``'`` (numbers stay numbers, so a negative reading is not touched)."""
    if isinstance(value, (dict, list)):
        value = json.dumps(value, ensure_ascii=False)
    if isinstance(value, str) and value.startswith(FORMULA_PREFIXES):
        return "'" + value
    return value
