"""``meteofrance-obs`` through the CLI against its sandbox: both auth modes, station lookup,
24-hour retention, gaps, quota and errors."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

import pytest

from framework.accounts import AccountStore
from framework.crypto import SecretBox
from framework.store import DocumentStore, SqliteBackend
from konnectors.meteofrance_obs import observations
from konnectors.meteofrance_obs.sandbox import CLIENT_ID, CLIENT_SECRET, MeteoFranceSandbox
from tests.conftest import write_json

HOURS, DAYS = "fr.meteofrance.observation.hour", "fr.meteofrance.observation.day"


@pytest.fixture
def meteo(tmp_path):
    with MeteoFranceSandbox(seed=4) as sandbox:
        write_json(tmp_path / "dev.json", sandbox.dev_config())
        yield sandbox


def store(tmp_path) -> DocumentStore:
    return DocumentStore(SqliteBackend(tmp_path / "konnector-data" / "store.sqlite3"))


def last_hour() -> datetime:
    return datetime.now(UTC).replace(minute=0, second=0, microsecond=0)


def test_nearest_station_then_every_kept_hour_converted_exactly(cli, tmp_path, meteo):
    result = cli("run", "meteofrance-obs", "--config", "dev.json")
    assert result.status == 0, result.output
    assert "LYON-BRON (69029001)" in result.stderr
    hours = list(store(tmp_path).id_range(HOURS))
    assert len(hours) == 24 and {h["station"] for h in hours} == {"69029001"}
    for hour in hours:
        published = meteo.observation("69029001", datetime.fromisoformat(hour["validity_time"].replace("Z", "+00:00")))
        assert hour["t"] == published["t"] and hour["temperature"] == round(published["t"] - 273.15, 2)
        assert hour["pressure"] == published["pres"] / 100
    days = {d["_id"]: d for d in store(tmp_path).id_range(DAYS)}
    for day_id, day in days.items():
        temps = [h["temperature"] for h in hours if h["_id"].startswith(day_id + "T")]
        assert day["temperature_min"] == min(temps) and day["temperature_max"] == max(temps)
        assert day["temperature"] == pytest.approx(math.fsum(temps) / len(temps), abs=1e-8)
    assert len(meteo.requests_to("liste-stations")) == 1


def test_second_run_asks_only_for_new_hours_and_not_the_station_list(cli, tmp_path, meteo):
    assert cli("run", "meteofrance-obs", "--config", "dev.json").status == 0
    calls = len(meteo.requests)
    assert cli("run", "meteofrance-obs", "--config", "dev.json").status == 0
    assert len(meteo.requests) - calls <= 1
    assert len(meteo.requests_to("liste-stations")) == 1


def test_missing_hours_are_reported_and_later_hours_still_stored(cli, tmp_path, meteo):
    gap = last_hour() - timedelta(hours=5)
    meteo.missing.add(gap)
    result = cli("run", "meteofrance-obs", "--config", "dev.json")
    assert result.status == 0
    assert f"no observation published for {gap:%Y-%m-%d %H:00} UTC" in result.stderr
    assert len(list(store(tmp_path).id_range(HOURS))) == 23


def rewind_bookmark(tmp_path, hours: int) -> None:
    """Move the account's bookmark back, as if the last run had been ``hours`` ago."""
    accounts = AccountStore(store(tmp_path), SecretBox((tmp_path / "konnector-data" / "secret.key").read_text()))
    account = accounts.load("meteofrance-obs-dev")
    account.state["bookmark"] = (last_hour() - timedelta(hours=hours)).isoformat()
    accounts.save(account, frozenset())


def test_hours_older_than_the_retention_are_reported_missing(cli, tmp_path, meteo):
    assert cli("run", "meteofrance-obs", "--config", "dev.json").status == 0
    rewind_bookmark(tmp_path, 30)
    result = cli("run", "meteofrance-obs", "--config", "dev.json")
    assert result.status == 0 and "no longer kept by Météo-France (24 h): they are missing" in result.stderr


def test_oauth_mode_renews_an_invalidated_token_once(cli, tmp_path, meteo):
    fields = {
        "clientId": CLIENT_ID,
        "clientSecret": CLIENT_SECRET,
        "stationId": "75114001",
        "base_url": meteo.url + "/public/DPObs/v1",
        "token_url": meteo.url + "/token",
    }
    write_json(tmp_path / "dev.json", {"fields": fields})
    assert cli("run", "meteofrance-obs", "--config", "dev.json").status == 0
    assert len(meteo.requests_to("^/token$")) == 1
    meteo._current_token[CLIENT_ID] = meteo.issue_token(client=CLIENT_ID)  # another client asked for a new token
    rewind_bookmark(tmp_path, 3)
    second = cli("run", "meteofrance-obs", "--config", "dev.json", "--debug")
    assert second.status == 0, second.output
    assert len(meteo.requests_to("^/token$")) == 2
    current = meteo._current_token[CLIENT_ID]
    with_old_token = [r for r in meteo.requests_to("horaire") if r.bearer() != current]
    assert len(with_old_token) == 24 + 1  # the first run's calls, then the one refused before renewal
    assert CLIENT_SECRET not in second.output


def test_quota_429_is_waited_and_retried(cli, tmp_path, meteo):
    meteo.inject(429, "<am:fault/>", headers={"Retry-After": "1"}, path="horaire", times=2)
    result = cli("run", "meteofrance-obs", "--config", "dev.json")
    assert result.status == 0 and "429 Too Many Requests" in result.stderr
    assert len(list(store(tmp_path).id_range(HOURS))) == 24


def test_unsubscribed_is_login_failed_with_the_fault_text(cli, tmp_path, meteo):
    meteo.subscribed.clear()
    result = cli("run", "meteofrance-obs", "--config", "dev.json", "--log-format", "json")
    assert result.status == 1 and result.error_code == "LOGIN_FAILED"
    assert "not subscribed to the DPObs API: 900908 - Resource forbidden" in result.lines[-2]["message"]


def test_bad_request_fault_is_vendor_down_with_its_description(cli, tmp_path, meteo):
    write_json(tmp_path / "dev.json", {"fields": {**meteo.dev_config()["fields"], "stationId": "75114001"}})
    meteo.inject(
        400,
        "<am:fault xmlns:am='http://wso2.org/apimanager'><am:code>900400</am:code>"
        "<am:message>Bad request</am:message><am:description>date invalide</am:description></am:fault>",
        headers={"Content-Type": "application/xml"},
        path="horaire",
    )
    result = cli("run", "meteofrance-obs", "--config", "dev.json", "--log-format", "json")
    assert result.status == 1 and result.error_code == "VENDOR_DOWN"
    assert "900400 - Bad request - date invalide" in result.lines[-2]["message"]


def test_neither_credential_is_a_clear_login_error(cli, tmp_path, meteo):
    write_json(tmp_path / "dev.json", {"fields": {"stationId": "75114001"}})
    result = cli("run", "meteofrance-obs", "--config", "dev.json", "--log-format", "json")
    assert result.error_code == "LOGIN_FAILED" and "'apiKey'" in result.lines[-2]["message"]
    assert meteo.requests == []


def test_series_rules_are_the_documented_ones():
    day_rule = observations.SERIES.rollup_from("hour").rules
    assert day_rule["rain"] == ("sum", "rain") and day_rule["temperature_min"] == ("min", "temperature")
