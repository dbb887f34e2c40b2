"""``konnector report`` on small stores: "no data" panels, axis titles with units, and a line per
konnector saying what its last run did and why it wrote nothing (up to date, quota, consent)."""

from __future__ import annotations

import re
from html import unescape

from konnectors.grdf_adict.sandbox import GrdfSandbox
from konnectors.rte_ecowatt.sandbox import EcowattSandbox
from tests.conftest import write_json

FIELDS = {"login": "alice", "password": "S3cr3t-pa55word"}


def report(cli, tmp_path) -> str:
    result = cli("report", "--output", "report.html")
    assert result.status == 0, result.output
    return (tmp_path / "report.html").read_text()


def konnector_lines(html: str) -> dict[str, str]:
    section = html.partition('<section class="konnectors">')[2].partition("</section>")[0]
    return {slug: unescape(text) for slug, text in re.findall(r"<li><b>([^<]+)</b> \([^)]+\): ([^<]+)</li>", section)}


def test_empty_charts_say_no_data_and_probe_runs_are_explained(cli, tmp_path):
    config = write_json(tmp_path / "dev.json", {"fields": FIELDS, "parameters": {"days": 2}})
    assert cli("run", "probe", "--config", str(config)).status == 0
    first = report(cli, tmp_path)
    points = [int(n) for n in re.findall(r'data-points="(\d+)"', first)]
    assert points == [0] * 5
    assert first.count("no data yet: run the konnector that collects it") == 5
    assert konnector_lines(first) == {"probe": konnector_lines(first)["probe"]}
    assert konnector_lines(first)["probe"].startswith("wrote 4 documents")

    zero = write_json(tmp_path / "zero.json", {"fields": FIELDS, "parameters": {"days": 0}})
    assert cli("run", "probe", "--config", str(zero)).status == 0
    assert konnector_lines(report(cli, tmp_path))["probe"] == (
        "nothing new: already up to date (the provider had nothing after the bookmark)"
    )
    again = cli("run", "probe", "--config", str(config), "--since", "2024-01-01")
    assert again.status == 0
    assert konnector_lines(report(cli, tmp_path))["probe"] == (
        "nothing new: the 2 documents fetched were already stored"
    )


def test_quota_and_pending_consent_are_explained_and_axes_have_units(cli, tmp_path):
    with EcowattSandbox() as sandbox:
        config = write_json(tmp_path / "rte.json", sandbox.dev_config())
        assert cli("run", "rte-ecowatt", "--config", str(config)).status == 0
        assert cli("run", "rte-ecowatt", "--config", str(config)).status == 0
    with GrdfSandbox() as sandbox:
        unconsented = {"fields": sandbox.dev_config()["fields"]}
        config = write_json(tmp_path / "grdf.json", unconsented)
        failed = cli("run", "grdf-adict", "--config", str(config), "--log-format", "json")
    assert failed.error_code.startswith("USER_ACTION_NEEDED"), failed.output
    html = report(cli, tmp_path)
    lines = konnector_lines(html)
    assert lines["rte-ecowatt"].startswith("nothing new: the provider's quota is used up")
    assert lines["grdf-adict"].startswith("consent pending: the account holder must act at the provider")
    ecowatt = html.partition("Ecowatt: grid tension")[2].partition("</figure>")[0]
    assert "hour of day, 0 to 23 (local time)" in ecowatt and "no data yet" not in ecowatt
    assert html.count('class="x-label"') >= 1
