"""``rte-ecowatt`` through the CLI against its sandbox: quota across runs, revisions, DST, errors."""

from __future__ import annotations

import json
from datetime import date

import pytest

from framework.accounts import AccountStore
from framework.crypto import SecretBox
from framework.store import DocumentStore, SqliteBackend
from tests.conftest import write_json

DAYS, PERIODS = "fr.rte.ecowatt.day", "fr.rte.ecowatt.period"


def store(tmp_path) -> DocumentStore:
    return DocumentStore(SqliteBackend(tmp_path / "konnector-data" / "store.sqlite3"))


def pass_quarter_hour(tmp_path, sandbox) -> None:
    """Fifteen minutes go by: for the sandbox's clock, and for the quota saved in the account."""
    sandbox.advance(901)
    box = SecretBox((tmp_path / "konnector-data" / "secret.key").read_text().strip())
    accounts = AccountStore(store(tmp_path), box)
    account = accounts.load("rte-ecowatt-dev")
    account.state["rate_limits"]["signals"]["updated"] -= 901
    accounts.save(account, frozenset())


def test_first_run_stores_days_and_periods_and_second_run_makes_no_call(cli, tmp_path, ecowatt):
    first = cli("run", "rte-ecowatt", "--config", "dev.json")
    assert first.status == 0, first.output
    days = list(store(tmp_path).id_range(DAYS))
    assert [d["_id"] for d in days] == ["2024-01-15", "2024-01-16", "2024-01-17", "2024-01-18"]
    assert all(len(d["values"]) == 24 for d in days)
    periods = list(store(tmp_path).id_range(PERIODS))
    assert {p["kind"] for p in periods} >= {"decarbonised"}
    second = cli("run", "rte-ecowatt", "--config", "dev.json")
    assert second.status == 0 and "keeping the stored signals" in second.stderr
    assert len(ecowatt.requests_to("/signals")) == 1


def test_revised_forecast_replaces_the_day_and_its_periods_exactly(cli, tmp_path, ecowatt):
    assert cli("run", "rte-ecowatt", "--config", "dev.json").status == 0
    before = {p["_id"] for p in store(tmp_path).with_prefix(PERIODS, "2024-01-16/")}
    ecowatt.revise(date(2024, 1, 16), {0: 1, 1: 1, 2: 1, 3: 1, 4: 1, 8: 3, 9: 3, 10: 2})
    pass_quarter_hour(tmp_path, ecowatt)
    result = cli("run", "rte-ecowatt", "--config", "dev.json")
    assert result.status == 0, result.output
    after = {p["_id"]: p for p in store(tmp_path).with_prefix(PERIODS, "2024-01-16/")}
    assert "2024-01-16/decarbonised/00:00+0100" in before and not any("decarbonised/00:00" in i for i in after)
    tension = after["2024-01-16/tension/08:00+0100"]
    assert (tension["level"], tension["hours"], tension["end"]) == (3, 3, "2024-01-16T11:00:00+01:00")
    day = store(tmp_path).get(DAYS, "2024-01-16")
    assert day["dvalue"] == 3 and day["values"][8]["hvalue"] == 3
    assert len(ecowatt.requests_to("/signals")) == 2


def test_dst_day_has_23_hours(cli, tmp_path, ecowatt):
    ecowatt.today = date(2024, 3, 29)
    assert cli("run", "rte-ecowatt", "--config", "dev.json").status == 0
    dst = store(tmp_path).get(DAYS, "2024-03-31")
    assert len(dst["values"]) == 23 and dst["values"][2]["start"] == "2024-03-31T03:00:00+02:00"
    assert len(store(tmp_path).get(DAYS, "2024-03-30")["values"]) == 24


@pytest.mark.parametrize("retry_after_header", [True, False])
def test_quota_used_elsewhere_is_reported_not_hammered(cli, tmp_path, ecowatt, retry_after_header):
    ecowatt.retry_after_header = retry_after_header
    ecowatt._last_call["ecowatt-sandbox-client"] = ecowatt.now()
    result = cli("run", "rte-ecowatt", "--config", "dev.json")
    assert result.status == 0 and "quota is already used" in result.stderr
    assert len(ecowatt.requests_to("/signals")) == 1
    again = cli("run", "rte-ecowatt", "--config", "dev.json")
    assert again.status == 0 and len(ecowatt.requests_to("/signals")) == 1


def test_unsubscribed_application_is_login_failed(cli, tmp_path, ecowatt):
    ecowatt.subscribed.clear()
    result = cli("run", "rte-ecowatt", "--config", "dev.json", "--log-format", "json")
    assert result.status == 1 and result.lines[-1]["message"] == "LOGIN_FAILED"
    assert "subscribed to the Ecowatt API" in result.lines[-2]["message"]


def test_wrong_secret_is_login_failed_and_never_printed(cli, tmp_path, ecowatt):
    config = ecowatt.dev_config()
    config["fields"]["client_secret"] = "a-wrong-secret-value"
    write_json(tmp_path / "dev.json", config)
    result = cli("run", "rte-ecowatt", "--config", "dev.json", "--log-format", "json", "--debug")
    assert result.status == 1 and result.lines[-1]["message"] == "LOGIN_FAILED"
    assert "a-wrong-secret-value" not in result.output


def test_schema_change_is_vendor_down_and_stores_nothing(cli, tmp_path, ecowatt):
    ecowatt.inject(200, json.dumps({"signaux": []}), headers={"Content-Type": "application/json"}, path="signals")
    result = cli("run", "rte-ecowatt", "--config", "dev.json", "--log-format", "json")
    assert result.status == 1 and result.lines[-1]["message"] == "VENDOR_DOWN"
    assert list(store(tmp_path).id_range(DAYS)) == []
