"""``run --dry-run``: fetch and process as a run would, write nothing, say what would be stored.

The konnector's ``store`` hook is replaced by a :class:`Recorder`, its store handle
is read-only (a direct write fails instead of happening) and state is not saved.
Documents are spilled to per-doctype NDJSON files, so memory stays bounded however
long the period; ``--dump`` assembles them into Cozy's ``importedData.json`` shape
(``{doctype: [documents]}``), as a standalone cozy-konnector-libs run wrote it.
"""

from __future__ import annotations

import json
import tempfile
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import IO, Any

from .errors import ConfigurationError
from .export import document_date
from .konnector import Documents, Konnector

READ_ONLY = frozenset({"GET"})


@dataclass
class Seen:
    count: int = 0
    first: date | None = None
    last: date | None = None

    def add(self, doc: dict[str, Any]) -> None:
        self.count += 1
        when = document_date(doc)
        if when is not None:
            self.first = min(self.first or when, when)
            self.last = max(self.last or when, when)


@dataclass
class Recorder:
    """Stands in for a konnector's ``store``: records documents instead of writing them."""

    seen: dict[str, Seen] = field(default_factory=dict)
    _folder: tempfile.TemporaryDirectory = field(default_factory=lambda: tempfile.TemporaryDirectory(prefix="dry-"))
    _files: dict[str, IO[str]] = field(default_factory=dict)

    def store(self, ctx: Any, documents: Documents) -> None:
        for doctype, docs in documents.items():
            out = self._files.get(doctype)
            if out is None:
                out = self._files[doctype] = open(  # noqa: SIM115 - kept open across stores, closed in close()
                    Path(self._folder.name) / f"{len(self._files)}.ndjson", "w+", encoding="utf-8"
                )
            seen = self.seen.setdefault(doctype, Seen())
            for doc in docs:
                seen.add(doc)
                out.write(json.dumps(doc, ensure_ascii=False, default=str) + "\n")

    def lines(self) -> list[str]:
        """One line per doctype: how many documents, which dates."""
        if not self.seen:
            return ["dry run: nothing would be stored"]
        lines = []
        for doctype, seen in sorted(self.seen.items()):
            period = f" ({seen.first}..{seen.last})" if seen.first else ""
            lines.append(f"would store {seen.count} {doctype}{period}")
        return lines

    def dump(self, path: Path) -> None:
        """``{doctype: [documents]}`` (Cozy's ``importedData.json``), streamed from the spill files."""
        with path.open("w", encoding="utf-8") as out:
            out.write("{")
            for index, (doctype, spill) in enumerate(sorted(self._files.items())):
                spill.flush()
                spill.seek(0)
                out.write(("," if index else "") + f"\n {json.dumps(doctype)}: [")
                for number, line in enumerate(spill):
                    out.write(("," if number else "") + "\n  " + line.rstrip("\n"))
                out.write("\n ]")
            out.write("\n}\n")

    def close(self) -> None:
        for spill in self._files.values():
            spill.close()
        self._folder.cleanup()


def attach(ctx: Any, konnector: Konnector) -> Recorder:
    """Make this job a dry run: documents recorded, store read-only, state never saved."""
    if type(konnector).start is not Konnector.start:
        raise ConfigurationError(
            f"konnector '{ctx.slug}' runs its own job (it overrides start): a dry run cannot promise it writes nothing"
        )
    recorder = Recorder()
    konnector.store = recorder.store  # type: ignore[method-assign]
    ctx.store = ctx.store.scoped({doctype: READ_ONLY for doctype in ctx.manifest.doctypes}, ctx.store.writer)
    ctx.save_state = lambda: None  # type: ignore[method-assign]
    return recorder
