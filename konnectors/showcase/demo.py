"""``konnector demo``: every built-in konnector against its sandbox, offline, into the embedded store.

Starts each sandbox on loopback, runs each konnector once (the EnergyID sink last, after
claiming its sandbox device), prints what was written and covered, writes the report, and
stops every server it started, also on Ctrl-C. Run it again: it resumes from each bookmark.
"""

from __future__ import annotations

import contextlib
import json
import logging
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import click
import trustme

from framework import logs, runner
from framework.accounts import DOCTYPE as ACCOUNTS
from framework.accounts import AccountStore
from framework.crypto import SecretBox, load_key
from framework.redact import Redactor
from framework.registry import Registry
from framework.sandbox import Sandbox
from framework.store import DocumentStore, SqliteBackend
from konnectors.enedis_dataconnect.sandbox import EnedisSandbox
from konnectors.enedis_sge.sandbox import SgeSandbox
from konnectors.energyid_webhook.sandbox import EnergyIdSandbox
from konnectors.grdf_adict.sandbox import GrdfSandbox
from konnectors.greenbutton.pge_sandbox import PgeSandbox
from konnectors.meteofrance_obs.sandbox import MeteoFranceSandbox
from konnectors.rte_ecowatt.sandbox import EcowattSandbox

from . import status
from .report import render

SAMPLE = Path(__file__).resolve().parents[1] / "greenbutton" / "samples" / "household-2025-02-01-59d.xml"


@dataclass
class Step:
    slug: str
    sandbox: type[Sandbox] | None
    parameters: dict[str, Any] = field(default_factory=dict)
    series: str = ""
    """Series prefix whose days and years the summary shows."""
    meter: str | None = None


STEPS = [
    Step("greenbutton-file", None, series="org.greenbutton.electricity", meter="01"),
    Step("enedis-dataconnect", EnedisSandbox, {"curve_history_days": 60}, "com.grandlyon.enedis"),
    Step(
        "enedis-sge",
        SgeSandbox,
        {"curve_history_days": 14, "daily_history_days": 365, "max_power_history_days": 365},
        "com.grandlyon.enedis",
    ),
    Step(
        "grdf-adict",
        GrdfSandbox,
        {"informative_history_days": 365, "published_history_days": 365},
        "com.grandlyon.grdf",
    ),
    Step("pge-smd", PgeSandbox, series="org.greenbutton.electricity", meter="5391320451"),
    Step("rte-ecowatt", EcowattSandbox),
    Step("meteofrance-obs", MeteoFranceSandbox, series="fr.meteofrance.observation"),
    Step("energyid-webhook", EnergyIdSandbox),
]


@dataclass
class Outcome:
    step: Step
    result: runner.JobResult
    seconds: float


@click.command()
@click.option("--data-dir", type=click.Path(path_type=Path), default=runner.DEFAULT_DATA_DIR, show_default=True)
def demo(data_dir: Path) -> None:
    """Run every built-in konnector against its local sandbox: no network, no credentials."""
    data_dir.mkdir(parents=True, exist_ok=True)
    log_file = data_dir / "demo.log"
    registry = Registry.discover()
    outcomes: list[Outcome] = []
    with log_file.open("a", encoding="utf-8") as stream, contextlib.ExitStack() as servers:
        logs.configure("json", Redactor(), logging.INFO, stream)
        for step in _shown(servers, STEPS):
            outcomes.append(_run(step, registry, data_dir, servers))
    store = DocumentStore(SqliteBackend(data_dir / "store.sqlite3"))
    _summary(outcomes, store, registry)
    report = data_dir / "report.html"
    report.write_text(render(store), encoding="utf-8")
    click.echo(f"\nreport: {report}\nlogs:   {log_file}")


def _shown(stack: contextlib.ExitStack, steps: list[Step]) -> Iterator[Step]:
    """A progress bar on a terminal; nothing otherwise (a pipe or a log file gets only the table)."""
    if not sys.stdout.isatty():
        return iter(steps)
    bar = click.progressbar(steps, label="konnectors", item_show_func=lambda step: step.slug if step else "")
    return stack.enter_context(bar)


def _run(step: Step, registry: Registry, data_dir: Path, servers: contextlib.ExitStack) -> Outcome:
    started = time.monotonic()
    config: dict[str, Any] = {"fields": {"path": str(SAMPLE), "timezone": "Europe/Paris"}}
    sandbox = None
    if step.sandbox is not None:
        sandbox = servers.enter_context(step.sandbox())
        config = sandbox.dev_config()
        _remembered_consents(sandbox, data_dir)
    spec = runner.JobSpec(
        slug=step.slug,
        account_id=f"{step.slug}-demo",
        fields=config["fields"],
        parameters=step.parameters,
        oauth=config.get("oauth"),
        data_dir=data_dir,
    )
    manifest = registry.get(step.slug)
    with _receiver(spec, manifest, sandbox, servers) as handled:
        result = runner.run(spec, manifest, Redactor())
        if isinstance(sandbox, EnergyIdSandbox) and result.error is not None:
            sandbox.claim(_claim_code(spec, data_dir))
            result = runner.run(spec, manifest, Redactor())
    _keep_consents(sandbox, data_dir)
    for doctype, count in handled.items():
        result.written[doctype] = result.written.get(doctype, 0) + count
    return Outcome(step, result, time.monotonic() - started)


@contextlib.contextmanager
def _receiver(spec: runner.JobSpec, manifest, sandbox, servers) -> Iterator[dict[str, int]]:
    """For PG&E: a notification receiver over TLS; waits until the notification is handled.

    Yields the receiver's counts of documents written, complete once the block is left.
    """
    if not isinstance(sandbox, PgeSandbox):
        yield {}
        return
    ca = trustme.CA()
    certificate = ca.issue_cert("127.0.0.1")
    folder = sandbox.workdir
    paths = [str(folder / name) for name in ("operator-ca.pem", "operator.pem", "operator.key")]
    ca.cert_pem.write_to_path(paths[0])
    certificate.cert_chain_pems[0].write_to_path(paths[1])
    certificate.private_key_pem.write_to_path(paths[2])
    ctx, konnector = runner.prepare(spec, manifest, Redactor(), logs.get_logger(spec.slug), time.monotonic())
    options = runner.ServeOptions(
        port=0, certfile=paths[1], keyfile=paths[2], client_ca=sandbox.ca_path, client_subject=("pge-notifier.example",)
    )
    receiver = runner.Receiver(konnector, ctx, options)
    servers.callback(receiver.stop)
    threading.Thread(target=receiver.serve_forever, daemon=True).start()
    sandbox.notification_url, sandbox.notification_ca = receiver.url, paths[0]
    yield ctx.written
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if sandbox.notifications and not ctx.store.find("org.greenbutton.notification", {"status": "pending"}, limit=1):
            return
        time.sleep(0.1)


def _remembered_consents(sandbox: Sandbox, data_dir: Path) -> None:
    """The SGE operator's back-office outlives a demo: its consents are kept in the data directory.

    Each demo starts fresh sandboxes, but the konnector's state names the consent it recorded
    last time; a real back-office would still hold it, so the demo's does too.
    """
    if not isinstance(sandbox, SgeSandbox):
        return
    saved = data_dir / "sge-backoffice.json"
    if saved.exists():
        sandbox.consents.update(json.loads(saved.read_text(encoding="utf-8")))


def _keep_consents(sandbox: Sandbox | None, data_dir: Path) -> None:
    if isinstance(sandbox, SgeSandbox):
        (data_dir / "sge-backoffice.json").write_text(json.dumps(sandbox.consents), encoding="utf-8")


def _claim_code(spec: runner.JobSpec, data_dir: Path) -> str:
    """The code the EnergyID sink saved in its state, as a person would read it in a platform UI."""
    store = DocumentStore(SqliteBackend(data_dir / "store.sqlite3"))
    account = AccountStore(store, SecretBox(load_key(data_dir))).load(spec.account_id)
    return account.state["claim"]["code"]


def _summary(outcomes: list[Outcome], store: DocumentStore, registry: Registry) -> None:
    rows = [("KONNECTOR", "STATUS", "WRITTEN", "PERIOD", "TOTALS", "TIME")]
    for outcome in outcomes:
        result = outcome.result
        status = "ok" if result.error is None else result.error.code
        written = ", ".join(f"{n} {d.rpartition('.')[2]}" for d, n in sorted(result.written.items())) or "nothing new"
        period, totals = _coverage(outcome.step, store)
        rows.append((outcome.step.slug, status, written, period, totals, f"{outcome.seconds:.1f} s"))
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    click.echo()
    for row in rows:
        click.echo("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip())
    if all(not outcome.result.written for outcome in outcomes):
        click.echo("\nnothing re-written: every konnector resumed from its bookmark")
    notes = [_why(outcome.step.slug, store, registry) for outcome in outcomes if not outcome.result.written]
    if notes:
        click.echo("\nwhy nothing new:")
        for slug, sentence in notes:
            click.echo(f"  {slug}: {sentence}")


def _why(slug: str, store: DocumentStore, registry: Registry) -> tuple[str, str]:
    account = store.get(ACCOUNTS, f"{slug}-demo") or {}
    return slug, status.explain(slug, account.get("data") or {}, store, registry.get(slug).doctypes)


def _coverage(step: Step, store: DocumentStore) -> tuple[str, str]:
    if step.slug == "rte-ecowatt":
        days = [d["date"] for d in store.id_range("fr.rte.ecowatt.day")]
        periods = [p["kind"] for p in store.id_range("fr.rte.ecowatt.period")]
        summary = f"{periods.count('tension')} tension, {periods.count('decarbonised')} decarbonised periods"
        return (f"{days[0]}..{days[-1]}" if days else "-"), summary
    if not step.series:
        return "-", "-"
    prefix = f"{step.meter}/" if step.meter else ""
    days = [d["_id"].rpartition("/")[2] for d in store.with_prefix(f"{step.series}.day", prefix)]
    if step.slug == "meteofrance-obs":
        temps = [d["temperature"] for d in store.id_range(f"{step.series}.day") if "temperature" in d]
        return (f"{days[0]}..{days[-1]}" if days else "-"), (f"mean {sum(temps) / len(temps):.1f} °C" if temps else "-")
    years = [
        (d["year"], d.get("load", 0.0), d.get("unit", "kWh")) for d in store.with_prefix(f"{step.series}.year", prefix)
    ]
    totals = "; ".join(f"{year}: {load:,.0f} {unit}" for year, load, unit in years[-3:]) or "-"
    return (f"{days[0]}..{days[-1]}" if days else "-"), totals
