"""The newcomer's path: ``konnector demo`` twice, ``export`` in every format, and the report in a real browser."""

from __future__ import annotations

import csv
import io
import json
import os
import re
import shutil
import subprocess

import pytest

from framework.testing.runner import run_cli
from tests.conftest import write_json
from tests.konnectors.greenbutton.test_synthetic import SAMPLE

SLUGS = (
    "greenbutton-file",
    "enedis-dataconnect",
    "grdf-adict",
    "pge-smd",
    "rte-ecowatt",
    "meteofrance-obs",
    "energyid-webhook",
)
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    """One demo run, then a second one, in the same data directory."""
    work = tmp_path_factory.mktemp("demo")
    first = run_cli("demo", "--data-dir", "data", cwd=work, timeout=180)
    second = run_cli("demo", "--data-dir", "data", cwd=work, timeout=180)
    return work, first, second


def test_first_demo_runs_every_konnector_and_writes_the_report(demo):
    work, first, _ = demo
    assert first.status == 0, first.output
    for slug in SLUGS:
        row = next(line for line in first.stdout.splitlines() if line.startswith(slug + " "))
        assert row.split()[1] == "ok", row
        assert "nothing new" not in row, row
    assert (work / "data" / "report.html").is_file() and "report: data/report.html" in first.stdout
    sge = next(line for line in first.stdout.splitlines() if line.startswith("enedis-sge "))
    assert sge.split()[1] == "ok" and "nothing new" in sge
    explained = r"\n  enedis-sge: nothing new: the [\d,]+ documents fetched were already stored, written first by"
    assert re.search(explained + " enedis-dataconnect\n", first.stdout), first.stdout


def test_second_demo_is_incremental_and_says_so(demo):
    _, _, second = demo
    assert second.status == 0, second.output
    assert "nothing re-written: every konnector resumed from its bookmark" in second.stdout
    rows = [line.split() for line in second.stdout.splitlines() if line.split()[:1] in ([s] for s in SLUGS)]
    assert rows and all(row[1] == "ok" for row in rows), second.stdout
    why = second.stdout.partition("why nothing new:\n")[2].splitlines()
    reasons = dict(line.strip().split(": ", 1) for line in why if line.startswith("  "))
    assert set(reasons) == {*SLUGS, "enedis-sge"}
    assert reasons["rte-ecowatt"].startswith("nothing new: the provider's quota is used up")
    assert reasons["greenbutton-file"].startswith("nothing new: already up to date")


@pytest.mark.parametrize("fmt", ["json", "ndjson", "csv", "cozy"])
def test_export_formats(demo, fmt):
    work, _, _ = demo
    result = run_cli("export", "com.grandlyon.enedis.month", "--data-dir", "data", "--format", fmt, cwd=work)
    assert result.status == 0, result.output
    if fmt == "json":
        docs = json.loads(result.stdout)
    elif fmt == "ndjson":
        docs = [json.loads(line) for line in result.stdout.splitlines()]
    elif fmt == "csv":
        docs = list(csv.DictReader(io.StringIO(result.stdout)))
    else:
        docs = json.loads(result.stdout)["com.grandlyon.enedis.month"]
        assert all("cozyMetadata" in d and "_rev" not in d for d in docs)
    assert len(docs) == 37 and all("_rev" not in d for d in docs)
    assert "37 com.grandlyon.enedis.month documents exported" in result.stderr


def test_export_date_range_and_file_output(demo):
    work, _, _ = demo
    result = run_cli(
        "export",
        "com.grandlyon.enedis.day",
        "--data-dir",
        "data",
        "--from",
        "2025-01-01",
        "--to",
        "2025-01-31",
        "--output",
        "january.json",
        cwd=work,
    )
    assert result.status == 0
    days = json.loads((work / "january.json").read_text())
    assert [d["day"] for d in days] == list(range(1, 32)) and {d["month"] for d in days} == {1}


def test_export_never_shows_secrets(demo):
    work, _, _ = demo
    result = run_cli("export", "io.cozy.accounts", "--data-dir", "data", cwd=work)
    for secret in (
        "enedis-sandbox-secret",
        "grdf-sandbox-secret",
        "energyid-sandbox-secret",
        "meteofrance-sandbox-key",
    ):
        assert secret not in result.stdout
    assert "secrets_encrypted" in result.stdout


def test_export_from_couchdb(couchdb_url, db_prefix, tmp_path):
    config = write_json(
        tmp_path / "dev.json",
        {
            "fields": {
                "path": str(SAMPLE),
                "timezone": "Europe/Paris",
            }
        },
    )
    env = {"KONNECTOR_DB_PREFIX": db_prefix}
    assert (
        run_cli(
            "run", "greenbutton-file", "--config", str(config), "--couchdb", couchdb_url, env=env, cwd=tmp_path
        ).status
        == 0
    )
    result = run_cli(
        "export",
        "org.greenbutton.electricity.month",
        "--couchdb",
        couchdb_url,
        "--format",
        "ndjson",
        env=env,
        cwd=tmp_path,
    )
    assert [json.loads(line)["month"] for line in result.stdout.splitlines()] == [2, 3]


def test_export_without_a_store_is_a_clear_error(tmp_path):
    result = run_cli("export", "com.grandlyon.enedis.day", "--data-dir", "nowhere", cwd=tmp_path)
    assert result.status != 0 and "no store in nowhere" in result.stderr and "Traceback" not in result.output


@pytest.mark.skipif(CHROMIUM is None and not os.environ.get("CI"), reason="Chromium is not installed")
def test_report_renders_every_chart_with_data_in_chromium(demo, tmp_path):
    work, _, _ = demo
    report = work / "data" / "report.html"
    html = report.read_text()
    points = [int(n) for n in re.findall(r'data-points="(\d+)"', html)]
    assert len(points) == 5 and all(n > 0 for n in points), points
    assert "no data yet" not in html and "energy (kWh)" in html
    assert "http://" not in html and "https://" not in html and "<script" not in html
    screenshot = tmp_path / "report.png"
    browser = subprocess.run(
        [
            CHROMIUM or "chromium",
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            f"--user-data-dir={tmp_path / 'profile'}",
            "--enable-logging=stderr",
            "--v=0",
            "--window-size=1100,2000",
            f"--screenshot={screenshot}",
            report.as_uri(),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert screenshot.is_file() and screenshot.stat().st_size > 50_000, browser.stderr[-2000:]
    console = [line for line in browser.stderr.splitlines() if "CONSOLE" in line]
    assert console == []
