"""``konnector report``: one self-contained HTML page with charts of what the konnectors stored."""

from __future__ import annotations

from collections import defaultdict
from datetime import date, datetime
from html import escape
from pathlib import Path

import click

from framework import runner
from framework.cli import open_store
from framework.registry import Registry
from framework.store import DocumentStore

from . import charts, status

ELECTRICITY = ("com.grandlyon.enedis", "org.greenbutton.electricity")
GAS = ("com.grandlyon.grdf", "org.greenbutton.gas")
STYLE = """body{font-family:system-ui,sans-serif;margin:2em auto;max-width:960px;color:#222}
figure{margin:2em 0}figcaption{font-weight:600;margin-bottom:.5em}svg{width:100%;height:auto;background:#fafafa}
.legend{font-size:13px;color:#555}.empty{color:#999}"""


def _with_data(store: DocumentStore, prefixes: tuple[str, ...], level: str) -> str | None:
    for prefix in prefixes:
        doctype = f"{prefix}.{level}"
        if next(store.id_range(doctype), None) is not None:
            return doctype
    return None


def _by_date(store: DocumentStore, doctype: str | None, field: str = "load", length: int = 10) -> dict[str, float]:
    """Values summed over meters, by date (``length`` 10) or month (7)."""
    totals: dict[str, float] = defaultdict(float)
    for doc in store.id_range(doctype) if doctype else ():
        if isinstance(doc.get(field), (int, float)):
            key = date(doc["year"], doc["month"] or 1, doc["day"] or 1).isoformat()[:length]
            totals[key] += doc[field]
    return dict(totals)


def _last(values: dict[str, float], count: int) -> list[tuple[str, float]]:
    return sorted(values.items())[-count:]


def render(store: DocumentStore) -> str:
    """The report page for everything in ``store``."""
    electricity_day = _by_date(store, _with_data(store, ELECTRICITY, "day"))
    sections = [
        charts.bars("Electricity per day, last 90 days", {"electricity": _last(electricity_day, 90)}, "kWh"),
        charts.bars(
            "Electricity and gas per month",
            {
                "electricity": _last(_by_date(store, _with_data(store, ELECTRICITY, "month"), length=7), 24),
                "gas": _last(_by_date(store, _with_data(store, GAS, "month"), length=7), 24),
            },
            "kWh",
            "month",
        ),
        charts.line("Load curve, last 7 days", {"curve": _curve(store)}, "kWh per interval", "local time"),
        _ecowatt(store),
        _temperature(store),
    ]
    sections.insert(0, _konnectors(store))
    stamp = datetime.now().strftime("%Y-%m-%d %H:%M")
    return (
        f'<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Konnectors report</title>'
        f"<style>{STYLE}</style></head><body><h1>Your energy, as collected</h1>"
        f'<p class="legend">Made {escape(stamp)} from the konnectors\' store.</p>{"".join(sections)}</body></html>'
    )


def _curve(store: DocumentStore) -> list[tuple[str, float]]:
    for doctype in ("com.grandlyon.enedis.minute", "org.greenbutton.electricity.hour"):
        ids = [doc["_id"] for doc in store.id_range(doctype)]
        if ids:
            week = sorted(ids, key=lambda i: i.rpartition("/")[2])[-7 * 48 :]
            found = store.get_many(doctype, week)
            return sorted((i.rpartition("/")[2][:16], found[i]["load"]) for i in week if i in found)
    return []


def _temperature(store: DocumentStore) -> str:
    """Hourly temperature (the API keeps 24 hours) beside hourly electricity over the same hours."""
    temperature = {
        d["_id"].rpartition("/")[2]: d["temperature"]
        for d in store.id_range("fr.meteofrance.observation.hour")
        if "temperature" in d
    }
    hourly = _with_data(store, ELECTRICITY, "hour")
    electricity: dict[str, float] = defaultdict(float)
    for doc in store.id_range(hourly) if hourly else ():
        electricity[doc["_id"].rpartition("/")[2]] += doc.get("load", 0.0)
    hours = sorted(temperature)
    overlap = [hour for hour in hours if hour in electricity] or hours
    series = {
        "temperature": [(h, temperature[h]) for h in hours if h in overlap],
        "electricity": [(h, electricity[h]) for h in overlap if h in electricity],
    }
    return charts.line("Temperature beside consumption, by hour", series, "°C / kWh", "hour")


def _ecowatt(store: DocumentStore) -> str:
    days = [(doc["date"], [value["hvalue"] for value in doc["values"]]) for doc in store.id_range("fr.rte.ecowatt.day")]
    notes = [
        f"{p['kind']}: {p['start'][:16].replace('T', ' ')} to {p['end'][11:16]} (level {p['level']})"
        for p in store.id_range("fr.rte.ecowatt.period")
    ]
    return charts.calendar("Ecowatt: grid tension and decarbonised hours", days[-7:], notes[-12:])


def _konnectors(store: DocumentStore) -> str:
    """A line per konnector account: what its last run did, and why nothing when nothing."""
    registry = {manifest.slug: manifest for manifest in Registry.discover()}
    items = []
    for slug, account_id, state in status.accounts(store):
        doctypes = registry[slug].doctypes if slug in registry else frozenset()
        sentence = status.explain(slug, state, store, doctypes)
        items.append(f"<li><b>{escape(slug)}</b> ({escape(account_id)}): {escape(sentence)}</li>")
    body = "".join(items) or '<li class="empty">no konnector has run on this store yet</li>'
    return f'<section class="konnectors"><h2>Konnectors</h2><ul>{body}</ul></section>'


@click.command()
@click.option("--data-dir", type=click.Path(path_type=Path), default=runner.DEFAULT_DATA_DIR, show_default=True)
@click.option("--couchdb", "couchdb_url", help="Read this CouchDB instead of the embedded store.")
@click.option("--output", type=click.Path(path_type=Path), help="Default: report.html in the data directory.")
def report(data_dir: Path, couchdb_url: str | None, output: Path | None) -> None:
    """Write an HTML page with charts of the stored data (viewable offline)."""
    page = render(open_store(couchdb_url, data_dir))
    target = output or data_dir / "report.html"
    target.write_text(page, encoding="utf-8")
    click.echo(str(target))
