"""Capacity on paper: calls per account per run × accounts against each application's daily quota.

A provider's quota is per application (``client_id``), shared by all its
accounts; it is the real ceiling of a fleet, whatever the number of workers.
A manifest states its provider's quota and what one run costs::

    "quota": {"calls": 5, "seconds": 1, "calls_per_run": 4}

(optionally ``"per": "application"``, the default). ``konnector schedule --plan``
prints, for each konnector and application, the calls a day its accounts need
and the calls a day the quota allows, and warns when they do not fit.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass

from ..manifest import Manifest
from ..store import Doc
from .schedule import DEFAULT_FREQUENCY

RUNS_PER_DAY = {"hourly": 24.0, "daily": 1.0, "weekly": 1 / 7, "monthly": 12 / 365}
DAY = 86400


@dataclass(frozen=True)
class Line:
    slug: str
    application: str
    accounts: int
    runs_per_day: float
    calls_per_run: float | None
    quota_per_day: float | None

    @property
    def needed_per_day(self) -> float | None:
        return None if self.calls_per_run is None else self.accounts * self.runs_per_day * self.calls_per_run

    @property
    def fits(self) -> bool | None:
        if self.needed_per_day is None or self.quota_per_day is None:
            return None
        return self.needed_per_day <= self.quota_per_day

    @property
    def max_accounts(self) -> int | None:
        if not (self.calls_per_run and self.quota_per_day):
            return None
        return int(self.quota_per_day // (self.runs_per_day * self.calls_per_run))


def application_of(account: Doc) -> str:
    auth = account.get("auth") or {}
    return str(auth.get("client_id") or auth.get("clientId") or "-")


def plan(accounts: Iterable[Doc], manifests: dict[str, Manifest]) -> list[Line]:
    """One line per konnector and application that has accounts."""
    counts = Counter(
        (account.get("account_type", ""), application_of(account))
        for account in accounts
        if account.get("account_type") in manifests
    )
    lines = []
    for (slug, application), count in sorted(counts.items()):
        manifest = manifests[slug]
        quota = manifest.data.get("quota") or {}
        frequency = manifest.data.get("frequency") or DEFAULT_FREQUENCY
        per_day = quota["calls"] * DAY / quota["seconds"] if quota.get("calls") and quota.get("seconds") else None
        lines.append(Line(slug, application, count, RUNS_PER_DAY[frequency], quota.get("calls_per_run"), per_day))
    return lines


def render(lines: list[Line]) -> list[str]:
    """The plan as text lines; a warning line under each application whose accounts do not fit."""
    out = [
        f"{'konnector':20} {'application':24} {'accounts':>9} {'runs/day':>9} {'calls/run':>9} "
        f"{'calls/day':>12} {'quota/day':>12} {'use':>7}"
    ]
    for line in lines:
        needed, quota = line.needed_per_day, line.quota_per_day
        use = f"{needed / quota:.0%}" if needed is not None and quota else "?"
        out.append(
            f"{line.slug:20} {line.application[:24]:24} {line.accounts:>9} {line.runs_per_day:>9.2f} "
            f"{_num(line.calls_per_run):>9} {_num(needed):>12} {_num(quota):>12} {use:>7}"
        )
        if line.fits is False:
            out.append(
                f"WARNING {line.slug} / {line.application}: {line.accounts} accounts need {needed:,.0f} calls a day, "
                f"the quota allows {quota:,.0f}: at most {line.max_accounts:,} accounts fit this application; "
                "add applications or lower the frequency"
            )
        elif line.fits is None:
            out.append(f"note {line.slug}: its manifest states no quota; nothing to check")
    return out


def _num(value: float | None) -> str:
    if value is None:
        return "?"
    return f"{value:,.0f}" if value >= 10 else f"{value:g}"
