"""``enedis-dataconnect`` through the CLI against its sandbox, v5 and v4."""

from __future__ import annotations

import math
from collections import Counter
from datetime import date

import pytest

from framework.store import DocumentStore, SqliteBackend
from konnectors.enedis_dataconnect.sandbox import CLIENT_ID, CLIENT_SECRET, EnedisSandbox
from tests.conftest import write_json

P = "com.grandlyon.enedis"
NORMAL, NO_CONSENT, CURVE_REFUSED, TEN_MINUTES, RECENT_METER = (f"2251691471427{n}" for n in range(5))


@pytest.fixture
def enedis():
    with EnedisSandbox(seed=7) as sandbox:
        yield sandbox


def run(cli, tmp_path, sandbox, today: date, usage_point=NORMAL, curve_days=21, version="v5", **extra):
    sandbox.today = today
    config = sandbox.dev_config()
    config["fields"]["api_version"] = version
    if usage_point:
        config["fields"]["usage_point_id"] = usage_point
    else:
        del config["fields"]["usage_point_id"]
    config["parameters"] = {"curve_history_days": curve_days}
    config.update(extra)
    write_json(tmp_path / "dev.json", config)
    env = {"KONNECTOR_NOW": f"{today.isoformat()}T12:00:00+01:00"}
    return cli("run", "enedis-dataconnect", "--config", "dev.json", "--log-format", "json", env=env)


def store(tmp_path) -> DocumentStore:
    return DocumentStore(SqliteBackend(tmp_path / "konnector-data" / "store.sqlite3"))


def test_v5_backfill_is_complete_exact_and_dst_aware_then_incremental(cli, tmp_path, enedis):
    result = run(cli, tmp_path, enedis, date(2024, 11, 5))
    assert result.status == 0, result.output
    days = {d["_id"]: d["load"] for d in store(tmp_path).id_range(f"{P}.day")}
    assert len(days) == 3 * 365 and min(days) == "2021-11-06" and max(days) == "2024-11-04"
    customer = enedis.customers[NORMAL]
    assert days["2024-10-27"] == enedis.day_wh(customer, date(2024, 10, 27)) / 1000
    hours = Counter(h["_id"][:10] for h in store(tmp_path).id_range(f"{P}.hour"))
    assert hours["2024-10-27"] == 25 and hours["2024-10-28"] == 24 and len(hours) == 21
    minutes = [m for m in store(tmp_path).id_range(f"{P}.minute") if m["_id"].startswith("2024-10-27")]
    assert len(minutes) == 50 and math.fsum(m["load"] for m in minutes) == pytest.approx(days["2024-10-27"], abs=1e-3)
    months = {m["_id"]: m for m in store(tmp_path).id_range(f"{P}.month")}
    october = [v for k, v in days.items() if k.startswith("2024-10")]
    assert months["2024-10"]["load"] == round(math.fsum(october), 9) and "partial" not in months["2024-10"]
    assert months["2024-11"]["partial"] is True
    assert len(list(store(tmp_path).id_range(f"{P}.maxpower"))) == 3 * 365
    calls = len(enedis.requests)
    again = run(cli, tmp_path, enedis, date(2024, 11, 5))
    assert again.status == 0 and "nothing new to write" in again.lines[-1]["message"]
    assert len(enedis.requests) - calls == 3  # one window per stream, from the bookmark minus the look-back


def test_the_three_streams_share_one_queue_from_the_first_call(cli, tmp_path, enedis):
    result = run(cli, tmp_path, enedis, date(2024, 6, 10), curve_days=21)
    assert result.status == 0, result.output
    data = [r.path.rsplit("/", 1)[-1] for r in enedis.requests_to("consumption")]
    assert Counter(data) == {"daily_consumption": 3, "daily_consumption_max_power": 3, "consumption_load_curve": 3}
    # One at a time, a stream's last answers were awaited before the next stream's first call.
    first_curve = data.index("consumption_load_curve")
    last_daily = len(data) - 1 - data[::-1].index("daily_consumption")
    last_power = len(data) - 1 - data[::-1].index("daily_consumption_max_power")
    assert first_curve < last_daily and first_curve < last_power
    assert len(list(store(tmp_path).id_range(f"{P}.day"))) == 3 * 365
    assert len(list(store(tmp_path).id_range(f"{P}.minute"))) == 21 * 48


def test_spring_dst_day_has_23_hours(cli, tmp_path, enedis):
    assert run(cli, tmp_path, enedis, date(2024, 4, 8), curve_days=10).status == 0
    hours = Counter(h["_id"][:10] for h in store(tmp_path).id_range(f"{P}.hour"))
    assert hours["2024-03-31"] == 23 and hours["2024-04-01"] == 24


def test_ten_minute_curve(cli, tmp_path, enedis):
    assert run(cli, tmp_path, enedis, date(2024, 6, 10), usage_point=TEN_MINUTES, curve_days=3).status == 0
    minutes = [m for m in store(tmp_path).id_range(f"{P}.minute") if m["_id"].startswith("2024-06-08")]
    assert len(minutes) == 144 and {m["interval"] for m in minutes} == {10}
    day = store(tmp_path).get(f"{P}.day", "2024-06-08")["load"]
    assert math.fsum(m["load"] for m in minutes) == pytest.approx(day, abs=1e-3)


def test_token_expiry_mid_run_is_renewed_once(cli, tmp_path, enedis):
    enedis.inject(401, {"error": "invalid_token"}, path="consumption_load_curve", times=1)
    result = run(cli, tmp_path, enedis, date(2024, 6, 10), curve_days=14)
    assert result.status == 0, result.output
    assert len(enedis.requests_to("/oauth2/v3/token")) == 2
    assert len(list(store(tmp_path).id_range(f"{P}.minute"))) == 14 * 48


def test_429_storm_is_waited_out(cli, tmp_path, enedis):
    enedis.inject(429, {"error": "Quota Q3", "error_description": "Quota Q3/Q4 reached"}, path="daily", times=4)
    result = run(cli, tmp_path, enedis, date(2024, 6, 10), curve_days=7)
    assert result.status == 0, result.output
    assert len(list(store(tmp_path).id_range(f"{P}.day"))) == 3 * 365


def test_revoked_consent_is_oauth_outdated(cli, tmp_path, enedis):
    result = run(cli, tmp_path, enedis, date(2024, 6, 10), usage_point=NO_CONSENT)
    assert result.status == 1 and result.error_code == "USER_ACTION_NEEDED.OAUTH_OUTDATED"
    assert "ADAM-DC-0008" in result.lines[-2]["message"]


def test_refused_curve_still_imports_daily_data(cli, tmp_path, enedis):
    result = run(cli, tmp_path, enedis, date(2024, 6, 10), usage_point=CURVE_REFUSED)
    assert result.status == 1 and result.error_code == "USER_ACTION_NEEDED"
    assert "ADAM-ERR0075" in result.lines[-2]["message"]
    assert len(list(store(tmp_path).id_range(f"{P}.day"))) == 3 * 365
    assert list(store(tmp_path).id_range(f"{P}.minute")) == []


def test_meter_activated_recently_is_clamped_once(cli, tmp_path, enedis):
    result = run(cli, tmp_path, enedis, date(2024, 6, 10), usage_point=RECENT_METER, curve_days=7)
    assert result.status == 0, result.output
    days = sorted(d["_id"] for d in store(tmp_path).id_range(f"{P}.day"))
    assert days[0] == "2024-03-02" and len(days) == 100
    calls = len(enedis.requests)
    assert run(cli, tmp_path, enedis, date(2024, 6, 10), usage_point=RECENT_METER, curve_days=7).status == 0
    assert len(enedis.requests) - calls == 3


def test_v4_refreshes_the_platform_tokens_and_reads_the_usage_point_from_the_callback(cli, tmp_path, enedis):
    refresh = enedis.refresh_token_for(NORMAL)
    oauth = {"access_token": "expired-access-token", "refresh_token": refresh, "token_type": "Bearer"}
    config = {"oauth": oauth, "oauth_callback_results": {"usage_point_id": NORMAL}}
    result = run(cli, tmp_path, enedis, date(2024, 6, 10), usage_point=None, curve_days=7, version="v4", **config)
    assert result.status == 0, result.output
    assert {r.path for r in enedis.requests_to("/v4/")} == {
        "/v4/metering_data/daily_consumption",
        "/v4/metering_data/consumption_load_curve",
    }
    assert len(list(store(tmp_path).id_range(f"{P}.minute"))) == 7 * 48
    assert refresh not in result.output and CLIENT_SECRET not in result.output


def test_v4_with_a_revoked_refresh_token_is_oauth_outdated(cli, tmp_path, enedis):
    refresh = enedis.refresh_token_for(NORMAL)
    enedis.revoke(NORMAL)
    oauth = {"access_token": "expired-access-token", "refresh_token": refresh}
    config = {"oauth": oauth, "oauth_callback_results": {"usage_point_id": NORMAL}}
    result = run(cli, tmp_path, enedis, date(2024, 6, 10), usage_point=None, version="v4", **config)
    assert result.status == 1 and result.error_code == "USER_ACTION_NEEDED.OAUTH_OUTDATED"


def test_authorize_picks_the_customer_from_the_state_digit(enedis):
    import requests

    answer = requests.get(
        enedis.url + "/dataconnect/v1/oauth2/authorize",
        params={"client_id": CLIENT_ID, "response_type": "code", "state": "abc3", "duration": "P1Y"},
        allow_redirects=False,
        timeout=5,
    )
    assert answer.status_code == 302 and "usage_point_id=22516914714273" in answer.headers["Location"]
