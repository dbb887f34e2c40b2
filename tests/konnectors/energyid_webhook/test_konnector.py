"""``energyid-webhook`` through the CLI against its sandbox, and the sandbox against EnergyID's own client."""

from __future__ import annotations

import asyncio
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from energyid_webhooks import WebhookClient

from framework.store import DocumentStore, SqliteBackend, Writer
from framework.store.timeseries import point, write_points
from konnectors.enedis_dataconnect.metering import SERIES as ENEDIS
from konnectors.energyid_webhook import metrics
from konnectors.energyid_webhook.sandbox import KEY, SECRET, EnergyIdSandbox
from konnectors.grdf_adict.consumption import SERIES as GRDF
from tests.conftest import write_json


@pytest.fixture
def energyid(tmp_path):
    with EnergyIdSandbox() as sandbox:
        sandbox.upload_interval = 86400
        fields = {**sandbox.dev_config()["fields"], "batch_size": "100", "el_start_index": "1000"}
        write_json(tmp_path / "dev.json", {"fields": fields})
        yield sandbox


def collected(tmp_path, first: date, days: int, gas: bool = False) -> None:
    """What the Enedis (and GRDF) konnectors would have stored, in the sink's data directory."""
    (tmp_path / "konnector-data").mkdir(exist_ok=True)
    store = DocumentStore(SqliteBackend(tmp_path / "konnector-data" / "store.sqlite3"), Writer("test"))
    dates = [first + timedelta(n) for n in range(days)]
    write_points(store, ENEDIS, "day", [point("day", d, load=10.0 + d.day / 10) for d in dates])
    if gas:
        write_points(store, GRDF, "day", [point("day", d, meter="GI1", load=50.0, volume=4.5) for d in dates])


def claim(cli, energyid) -> None:
    pending = cli("run", "energyid-webhook", "--config", "dev.json", "--log-format", "json")
    code = pending.lines[-2]["message"].split("enter the code ")[1][:6]
    assert energyid.claim(code)


def test_unclaimed_device_asks_the_user_to_claim_it(cli, tmp_path, energyid):
    result = cli("run", "energyid-webhook", "--config", "dev.json", "--log-format", "json")
    assert result.status == 1 and result.error_code == "USER_ACTION_NEEDED"
    message = result.lines[-2]["message"]
    assert f"open {energyid.url}/claim and enter the code" in message and "valid until" in message
    assert energyid.points == []


def test_backfill_in_batches_then_only_new_readings(cli, tmp_path, energyid):
    collected(tmp_path, date(2024, 1, 1), 250, gas=True)
    claim(cli, energyid)
    result = cli("run", "energyid-webhook", "--config", "dev.json")
    assert result.status == 0, result.output
    electricity = [p for p in energyid.points if "el" in p]
    assert len(electricity) == 250 and energyid.batches == 3 + 3
    loads = [10.0 + (date(2024, 1, 1) + timedelta(n)).day / 10 for n in range(250)]
    assert electricity[-1]["el"] == pytest.approx(1000 + sum(loads))
    end_of_first_day = datetime(2024, 1, 2, tzinfo=ZoneInfo("Europe/Paris"))
    assert electricity[0] == {"ts": int(end_of_first_day.timestamp()), "el": 1000 + loads[0]}
    assert [p["gas"] for p in energyid.points if "gas" in p][:2] == [4.5, 9.0]
    collected(tmp_path, date(2024, 9, 7), 3)
    again = cli("run", "energyid-webhook", "--config", "dev.json")
    assert again.status == 0
    assert len([p for p in energyid.points if "el" in p]) == 253 and energyid.batches == 7


def test_outage_between_batches_then_every_reading_exactly_once(cli, tmp_path, energyid):
    collected(tmp_path, date(2024, 1, 1), 250)
    claim(cli, energyid)
    energyid.outage_after = 1
    failed = cli("run", "energyid-webhook", "--config", "dev.json", "--log-format", "json")
    assert failed.error_code == "VENDOR_DOWN" and len(energyid.points) == 100
    energyid.outage_after = None
    assert cli("run", "energyid-webhook", "--config", "dev.json").status == 0
    stamps = [p["ts"] for p in energyid.points]
    assert len(stamps) == 250 and len(set(stamps)) == 250


def test_expired_token_mid_run_provisions_again(cli, tmp_path, energyid):
    collected(tmp_path, date(2024, 1, 1), 30)
    claim(cli, energyid)
    assert cli("run", "energyid-webhook", "--config", "dev.json").status == 0
    energyid.expire_token()
    collected(tmp_path, date(2024, 1, 31), 2)
    result = cli("run", "energyid-webhook", "--config", "dev.json")
    assert result.status == 0 and "provisioning again" in result.stderr
    assert len(energyid.points) == 32


def test_429_is_waited(cli, tmp_path, energyid):
    collected(tmp_path, date(2024, 1, 1), 10)
    claim(cli, energyid)
    energyid.inject(429, {"message": "slow down"}, headers={"Retry-After": "1"}, path="/webhook")
    result = cli("run", "energyid-webhook", "--config", "dev.json")
    assert result.status == 0 and len(energyid.points) == 10


def test_disabled_webhook_asks_the_user(cli, tmp_path, energyid):
    collected(tmp_path, date(2024, 1, 1), 10)
    claim(cli, energyid)
    energyid.disabled = True
    result = cli("run", "energyid-webhook", "--config", "dev.json", "--log-format", "json")
    assert result.error_code == "USER_ACTION_NEEDED" and "disabled" in result.lines[-2]["message"]


def test_old_policy_style_and_hourly_data():
    assert metrics.upload_interval({"allowedInterval": "PT15M"}) == 900
    assert metrics.upload_interval({"uploadInterval": 86400}) == 86400
    assert metrics.upload_interval({}) == 3600


def test_the_official_client_provisions_claims_and_sends(energyid):
    async def scenario() -> None:
        client = WebhookClient(KEY, SECRET, "official-1", "Official client", hello_url=energyid.url + "/hello")
        try:
            assert await client.authenticate() is False
            assert energyid.claim(client.claim_code)
            assert await client.authenticate() is True
            await client.send_data({"el": 1234.5, "pv.t1": 12.0}, 1_700_000_000)
        finally:
            await client.close()

    asyncio.run(scenario())
    assert energyid.points == [{"el": 1234.5, "pv.t1": 12.0, "ts": 1_700_000_000}]


def test_sandbox_refuses_malformed_points(energyid):
    import requests

    assert energyid._fault({"ts": "now", "el": 1}) == "ts must be an integer (Unix seconds)"
    assert energyid._fault({"ts": 1, "elec": 1}) == "unknown metric 'elec'"
    assert energyid._fault({"ts": 1, "el": "1"}) == "el must be a number"
    assert requests.post(energyid.url + "/hello", json={}, timeout=5).status_code == 401


def test_hourly_policy_sends_hours_where_stored_and_days_otherwise(cli, tmp_path, energyid):
    energyid.upload_interval = 900
    collected(tmp_path, date(2024, 1, 1), 3, gas=True)
    store = DocumentStore(SqliteBackend(tmp_path / "konnector-data" / "store.sqlite3"), Writer("test"))
    hours = [point("minute", datetime(2024, 1, 1, h, tzinfo=ZoneInfo("Europe/Paris")), load=0.5) for h in range(6)]
    write_points(store, ENEDIS, "minute", hours)
    claim(cli, energyid)
    result = cli("run", "energyid-webhook", "--config", "dev.json")
    assert result.status == 0, result.output
    assert len([p for p in energyid.points if "el" in p]) == 6 and len([p for p in energyid.points if "gas" in p]) == 3
