"""``energyid-webhook`` through the CLI against its sandbox, and the sandbox against EnergyID's own client."""

from __future__ import annotations

import asyncio
import json
import time
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
import requests
from energyid_webhooks import WebhookClient

from framework.store import DocumentStore, SqliteBackend, Writer
from framework.store.timeseries import point, write_points
from konnectors.enedis_dataconnect.metering import SERIES as ENEDIS
from konnectors.energyid_webhook import metrics
from konnectors.energyid_webhook.sandbox import KEY, SECRET, EnergyIdSandbox
from konnectors.grdf_adict.consumption import SERIES as GRDF
from konnectors.greenbutton.placement import SERIES as GREENBUTTON
from konnectors.meteofrance_obs.observations import SERIES as METEO
from tests.conftest import write_json

PARIS = ZoneInfo("Europe/Paris")
GB_ELECTRICITY, GB_GAS, GB_EXPORT = GREENBUTTON[0], GREENBUTTON[1], GREENBUTTON[2]


@pytest.fixture
def energyid(tmp_path):
    with EnergyIdSandbox() as sandbox:
        sandbox.upload_interval = 0
        configure(tmp_path, sandbox)
        yield sandbox


def configure(tmp_path, sandbox, parameters: dict | None = None, **fields) -> None:
    config = {"fields": {**sandbox.dev_config()["fields"], "el_start_index": "1000", **fields}}
    write_json(tmp_path / "dev.json", {**config, "parameters": parameters or {}})


def stored(tmp_path) -> DocumentStore:
    (tmp_path / "konnector-data").mkdir(exist_ok=True)
    return DocumentStore(SqliteBackend(tmp_path / "konnector-data" / "store.sqlite3"), Writer("test"))


def collected(tmp_path, first: date, days: int, gas: bool = False) -> None:
    """What the Enedis (and GRDF) konnectors would have stored, in the sink's data directory."""
    store = stored(tmp_path)
    dates = [first + timedelta(n) for n in range(days)]
    write_points(store, ENEDIS, "day", [point("day", d, load=10.0 + d.day / 10) for d in dates])
    if gas:
        write_points(store, GRDF, "day", [point("day", d, meter="GI1", load=50.0, volume=4.5) for d in dates])


def run(cli, *extra: str):
    return cli("run", "energyid-webhook", "--config", "dev.json", "--log-format", "json", *extra)


def claim(cli, energyid) -> None:
    pending = run(cli)
    code = pending.lines[-2]["message"].split("enter the code ")[1][:6]
    assert energyid.claim(code)


def midnight_after(day: date, zone) -> int:
    following = day + timedelta(1)
    return int(datetime(following.year, following.month, following.day, tzinfo=zone).timestamp())


def test_unclaimed_device_asks_the_user_to_claim_it(cli, tmp_path, energyid):
    result = run(cli)
    assert result.status == 1 and result.error_code == "USER_ACTION_NEEDED"
    message = result.lines[-2]["message"]
    assert f"open {energyid.url}/claim and enter the code" in message and "valid until" in message
    assert energyid.points == []


def test_one_object_per_instant_with_metrics_bundled_then_only_new_ones(cli, tmp_path, energyid):
    collected(tmp_path, date(2024, 1, 1), 250, gas=True)
    claim(cli, energyid)
    result = run(cli)
    assert result.status == 0, result.output
    assert len(energyid.points) == 250 and all(set(p) == {"ts", "el", "gas"} for p in energyid.points)
    loads = [10.0 + (date(2024, 1, 1) + timedelta(n)).day / 10 for n in range(250)]
    assert energyid.points[0] == {"ts": midnight_after(date(2024, 1, 1), PARIS), "el": 1000 + loads[0], "gas": 4.5}
    assert energyid.points[-1]["el"] == pytest.approx(1000 + sum(loads))
    assert [p["gas"] for p in energyid.points][:2] == [4.5, 9.0]
    bodies = [r.json() for r in energyid.requests_to("/webhook/")]
    assert all(isinstance(body, dict) for body in bodies) and len(bodies) == 250
    collected(tmp_path, date(2024, 9, 7), 3)
    again = run(cli)
    assert again.status == 0 and len(energyid.points) == 253 and set(energyid.points[-1]) == {"ts", "el"}


def test_outage_mid_run_then_every_reading_exactly_once(cli, tmp_path, energyid):
    collected(tmp_path, date(2024, 1, 1), 30)
    claim(cli, energyid)
    energyid.outage_after = 10
    failed = run(cli)
    assert failed.error_code == "VENDOR_DOWN" and len(energyid.points) == 10
    energyid.outage_after = None
    assert run(cli).status == 0
    stamps = [p["ts"] for p in energyid.points]
    assert len(stamps) == 30 and len(set(stamps)) == 30 and stamps == sorted(stamps)


def test_expired_token_mid_run_provisions_again(cli, tmp_path, energyid):
    collected(tmp_path, date(2024, 1, 1), 5)
    claim(cli, energyid)
    assert run(cli).status == 0
    energyid.expire_token()
    collected(tmp_path, date(2024, 1, 6), 2)
    result = run(cli)
    assert result.status == 0 and any("provisioning again" in line["message"] for line in result.lines)
    assert len(energyid.points) == 7


def test_disabled_webhook_asks_the_user(cli, tmp_path, energyid):
    collected(tmp_path, date(2024, 1, 1), 3)
    claim(cli, energyid)
    energyid.disabled = True
    result = run(cli)
    assert result.error_code == "USER_ACTION_NEEDED" and "disabled" in result.lines[-2]["message"]


def test_the_upload_interval_is_a_rate_kept_across_runs(cli, tmp_path, energyid):
    collected(tmp_path, date(2024, 1, 1), 3)
    claim(cli, energyid)
    energyid.upload_interval = 3600
    first = run(cli)
    assert first.status == 0, first.output
    assert len(energyid.points) == 1 and energyid.too_soon == 0
    assert any("2 reading time(s) left for the next runs" in line["message"] for line in first.lines)
    second = run(cli)
    assert second.status == 0 and len(energyid.points) == 1 and energyid.too_soon == 0


def test_a_short_upload_interval_spaces_the_posts(cli, tmp_path, energyid):
    collected(tmp_path, date(2024, 1, 1), 3)
    claim(cli, energyid)
    energyid.upload_interval = 1
    started = time.monotonic()
    assert run(cli).status == 0
    assert len(energyid.points) == 3 and energyid.too_soon == 0 and time.monotonic() - started >= 2


def test_policy_styles():
    assert metrics.upload_interval({"allowedInterval": "PT15M"}) == 900
    assert metrics.upload_interval({"uploadInterval": 86400}) == 86400
    assert metrics.upload_interval({}) == 3600


def official_send(energyid, device: str, points: dict, ts: int) -> None:
    async def scenario() -> None:
        client = WebhookClient(KEY, SECRET, device, "Official client", hello_url=energyid.url + "/hello")
        try:
            if not await client.authenticate():
                assert energyid.claim(client.claim_code)
                assert await client.authenticate() is True
            if points:
                await client.send_data(points, ts)
        finally:
            await client.close()

    asyncio.run(scenario())


def test_official_client_and_konnector_send_the_same_shape(cli, tmp_path, energyid):
    official_send(energyid, "official-1", {"el": 1234.5, "gas": 4.5}, 1_704_236_400)
    [official] = energyid.requests_to("/webhook/")
    collected(tmp_path, date(2024, 1, 1), 1, gas=True)
    claim(cli, energyid)
    assert run(cli).status == 0
    [ours] = energyid.requests_to("/webhook/")[1:]
    assert official.header("Content-Type").split(";")[0] == ours.header("Content-Type").split(";")[0]
    assert {k: type(v) for k, v in official.json().items()} == {k: type(v) for k, v in ours.json().items()}
    assert energyid.points == [official.json(), ours.json()] and set(ours.json()) == {"ts", "el", "gas"}
    twin_url = energyid.requests_to("/webhook/")[1].path
    headers = {k: v for k, v in ours.headers.items() if k in ("authorization", "x-twin-id")}
    refused = requests.post(energyid.url + twin_url, json=[ours.json()], headers=headers, timeout=5)
    assert refused.status_code == 400 and "one JSON object" in refused.json()["message"]


def test_a_claimed_device_is_reused_from_its_id(cli, tmp_path, energyid):
    official_send(energyid, "claimed-elsewhere", {}, 0)  # provisioned and claimed by another client
    collected(tmp_path, date(2024, 1, 1), 2)
    configure(tmp_path, energyid, device_id="claimed-elsewhere")
    result = run(cli)
    assert result.status == 0, result.output
    assert len(energyid.points) == 2 and len(energyid.devices) == 1
    hellos = [json.loads(r.body) for r in energyid.requests_to("/hello")]
    assert {h["deviceId"] for h in hellos} == {"claimed-elsewhere"}


def test_every_stored_series_has_a_metric_in_its_own_zone(cli, tmp_path, energyid):
    store = stored(tmp_path)
    pacific = ZoneInfo("America/Los_Angeles")
    day = date(2024, 1, 10)
    hours = [datetime(2024, 1, 10, h, tzinfo=pacific) for h in range(24)] + [datetime(2024, 1, 11, 0, tzinfo=pacific)]
    write_points(store, GB_ELECTRICITY, "hour", [point("hour", h, meter="up1", load=1.0, unit="kWh") for h in hours])
    write_points(store, GB_EXPORT, "hour", [point("hour", h, meter="up1", load=0.5, unit="kWh") for h in hours[:24]])
    write_points(store, GB_GAS, "day", [point("day", day, meter="up1", load=29.3071, unit="kWh")])
    write_points(store, METEO, "day", [point("day", day, meter="69029001", temperature=4.25, station="69029001")])
    claim(cli, energyid)
    result = run(cli)
    assert result.status == 0, result.output
    by_ts = {p["ts"]: p for p in energyid.points}
    pacific_end = midnight_after(day, pacific)
    assert by_ts[pacific_end]["el"] == pytest.approx(1024.0) and by_ts[pacific_end]["el-i"] == 12.0
    assert by_ts[pacific_end]["gas"] == pytest.approx(29.3071 / metrics.GAS_KWH_PER_M3, abs=1e-6)
    assert by_ts[midnight_after(day, PARIS)] == {"ts": midnight_after(day, PARIS), "temperature.69029001": 4.25}


def test_the_mapping_is_overridden_in_parameters(cli, tmp_path, energyid):
    store = stored(tmp_path)
    write_points(store, GB_EXPORT, "day", [point("day", date(2024, 1, 10), meter="up1", load=3.0, unit="kWh")])
    collected(tmp_path, date(2024, 1, 10), 1)
    mapping = {"pv": {"series": "org.greenbutton.electricity.export"}, "el-i": None, "el": None}
    configure(tmp_path, energyid, {"metrics": mapping}, timezone="Europe/Paris")
    claim(cli, energyid)
    assert run(cli).status == 0
    assert energyid.points == [{"ts": midnight_after(date(2024, 1, 10), PARIS), "pv": 3.0}]


def test_hourly_level_sends_hours_where_stored_and_days_otherwise(cli, tmp_path, energyid):
    collected(tmp_path, date(2024, 1, 1), 3, gas=True)
    hours = [point("minute", datetime(2024, 1, 1, h, tzinfo=PARIS), load=0.5) for h in range(6)]
    write_points(stored(tmp_path), ENEDIS, "minute", hours)
    configure(tmp_path, energyid, {"level": "hour"})
    claim(cli, energyid)
    result = run(cli)
    assert result.status == 0, result.output
    assert len([p for p in energyid.points if "el" in p]) == 6 and len([p for p in energyid.points if "gas" in p]) == 3


def test_sandbox_refuses_malformed_points(energyid):
    assert energyid._fault({"ts": "now", "el": 1}) == "ts must be an integer (Unix seconds)"
    assert energyid._fault({"ts": 1, "elec": 1}) == "unknown metric 'elec'"
    assert energyid._fault({"ts": 1, "el": "1"}) == "el must be a number"
    assert requests.post(energyid.url + "/hello", json={}, timeout=5).status_code == 401
