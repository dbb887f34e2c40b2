"""``grdf-adict`` through the CLI against its sandbox: scope escalation, id_token PCEs, Tiers
Direct, corrections, revocation."""

from __future__ import annotations

import math
from datetime import date, timedelta

import jwt
from cryptography.hazmat.primitives.asymmetric import rsa

from framework.store import DocumentStore, SqliteBackend
from konnectors.grdf_adict.sandbox import PCE
from tests.conftest import write_json

TODAY = date(2024, 2, 20)
DAY, MONTH, YEAR = "com.grandlyon.grdf.day", "com.grandlyon.grdf.month", "com.grandlyon.grdf.year"
SMALL = {"informative_history_days": 40, "published_history_days": 70}


def configure(tmp_path, config: dict) -> None:
    write_json(tmp_path / "dev.json", {**config, "parameters": SMALL})


def run(cli, *args):
    env = {"KONNECTOR_NOW": f"{TODAY.isoformat()}T12:00:00+01:00"}
    return cli(*args, "--config", "dev.json", "--log-format", "json", env=env)


def store(tmp_path) -> DocumentStore:
    return DocumentStore(SqliteBackend(tmp_path / "konnector-data" / "store.sqlite3"))


def test_first_run_escalates_scope_then_later_runs_only_renew(cli, tmp_path, grdf):
    configure(tmp_path, grdf.dev_config())
    result = run(cli, "run", "grdf-adict")
    assert result.status == 0, result.output
    assert any("PCE from the consent: " + PCE in line["message"] for line in result.lines)
    first_data = grdf.requests_to("/adict/v2/")[0]
    assert first_data.bearer() and grdf.token_claims(first_data)["scope"] == "openid"
    assert len(grdf.requests_to("/token")) == 1
    days = list(store(tmp_path).id_range(DAY))
    assert len(days) == 40 and days[0]["_id"] == f"{PCE}/2024-01-11"
    assert len(run(cli, "run", "grdf-adict").lines) > 0
    assert len(grdf.requests_to("/token")) == 1 and len(grdf.requests_to("/keys")) == 1


def test_every_pce_of_the_id_token_is_collected(cli, tmp_path, grdf):
    config = grdf.dev_config()
    config["oauth"] = grdf.consent([PCE, "GI100000000002"])
    configure(tmp_path, config)
    assert run(cli, "run", "grdf-adict").status == 0
    meters = {d["meter"] for d in store(tmp_path).id_range(DAY)}
    assert meters == {PCE, "GI100000000002"}


def test_forged_id_token_is_refused_when_a_jwks_is_configured(cli, tmp_path, grdf):
    config = grdf.dev_config()
    impostor = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    config["oauth"]["id_token"] = jwt.encode(
        {"pce": "GI999999999999", "aud": "grdf-sandbox-client"}, impostor, "RS256", headers={"kid": "grdf-sandbox-key"}
    )
    configure(tmp_path, config)
    result = run(cli, "run", "grdf-adict")
    assert result.status == 1 and result.error_code == "LOGIN_FAILED"


def test_corrections_update_days_and_aggregates_exactly_once(cli, tmp_path, grdf):
    configure(tmp_path, grdf.dev_config())
    assert run(cli, "run", "grdf-adict").status == 0
    corrected = TODAY - timedelta(10)
    before = store(tmp_path).get(DAY, f"{PCE}/{corrected}")
    assert before["status"] == "Provisoire"
    grdf.finalize(PCE, corrected, before["load"] + 30)
    assert run(cli, "run", "grdf-adict").status == 0
    after = store(tmp_path).get(DAY, f"{PCE}/{corrected}")
    assert (after["load"], after["status"]) == (before["load"] + 30, "Définitive")
    days = [d["load"] for d in store(tmp_path).id_range(DAY) if d["month"] == 2]
    assert store(tmp_path).get(MONTH, f"{PCE}/2024-02")["load"] == round(math.fsum(days), 9)
    every_day = math.fsum(d["load"] for d in store(tmp_path).id_range(DAY))
    assert store(tmp_path).get(YEAR, f"{PCE}/2024")["load"] == round(every_day, 9)


def test_tiers_direct_declares_then_waits_for_the_holder(cli, tmp_path, grdf):
    fields = {
        **grdf.dev_config()["fields"],
        "mode": "tiers_direct",
        "pce": "GI100000000003",
        "lastname": "Martin",
        "email": "martin@example.org",
        "postal_code": "69003",
    }
    configure(tmp_path, {"fields": fields})
    first = run(cli, "run", "grdf-adict")
    assert first.status == 1 and first.error_code == "USER_ACTION_NEEDED"
    assert "awaiting the holder's approval" in first.lines[-2]["message"]
    assert run(cli, "run", "grdf-adict").error_code == "USER_ACTION_NEEDED"
    assert len(grdf.requests_to("/droit_acces$")) == 1
    grdf.accept("GI100000000003")
    assert run(cli, "run", "grdf-adict").status == 0
    assert len(list(store(tmp_path).id_range(DAY))) == 40


def test_revoked_right_asks_the_user_to_consent_again(cli, tmp_path, grdf):
    configure(tmp_path, grdf.dev_config())
    assert run(cli, "run", "grdf-adict").status == 0
    for right in grdf.rights.values():
        right["etat_droit_acces"] = "Révoquée"
    result = run(cli, "run", "grdf-adict")
    assert result.error_code == "USER_ACTION_NEEDED" and "is Révoquée" in result.lines[-2]["message"]


def test_delete_account_revokes_and_is_idempotent(cli, tmp_path, grdf):
    configure(tmp_path, grdf.dev_config())
    assert run(cli, "run", "grdf-adict").status == 0
    deleted = run(cli, "delete-account", "grdf-adict")
    assert deleted.status == 0, deleted.output
    assert {r["etat_droit_acces"] for r in grdf.rights.values()} == {"Révoquée"}
    assert len(grdf.requests_to("/droit_acces/")) == 1
    assert run(cli, "run", "grdf-adict").error_code == "USER_ACTION_NEEDED"  # revoked; the account is re-created
    again = run(cli, "delete-account", "grdf-adict")
    assert again.status == 0 and any("nothing to revoke" in line["message"] for line in again.lines)
    assert len(grdf.requests_to("/droit_acces/")) == 1


def test_pretty_printed_answers_and_missing_days(cli, tmp_path, grdf):
    grdf.pretty = True
    grdf.missing.add((PCE, TODAY - timedelta(5)))
    configure(tmp_path, grdf.dev_config())
    result = run(cli, "run", "grdf-adict")
    assert result.status == 0, result.output
    assert any("no data for 1 gas day(s)" in line["message"] for line in result.lines)
    assert len(list(store(tmp_path).id_range(DAY))) == 39
