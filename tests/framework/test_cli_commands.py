"""The commands users of Airbyte, Singer and Cozy expect, as subprocesses on real stores:
check, info --json, declared parameters, state show/reset, --since/--full-refresh, --dry-run/--dump,
doctypes, and the clear failures (no --config, unknown doctype, a wrong-type field)."""

from __future__ import annotations

import json
import re
from datetime import date

import jsonschema
import pytest

from framework.store import DocumentStore, SqliteBackend
from konnectors.enedis_sge.sandbox import SgeSandbox
from konnectors.energyid_webhook.sandbox import EnergyIdSandbox
from konnectors.greenbutton.pge_sandbox import PgeSandbox
from konnectors.rte_ecowatt.sandbox import EcowattSandbox
from tests.conftest import write_json
from tests.konnectors.greenbutton.test_synthetic import SAMPLE

FIELDS = {"login": "alice", "password": "S3cr3t-pa55word"}
DAY = "io.example.probe.day"


def stored(tmp_path, doctype=DAY, data="konnector-data"):
    path = tmp_path / data / "store.sqlite3"
    if not path.exists():
        return []
    return [d["_id"] for d in DocumentStore(SqliteBackend(path)).id_range(doctype)]


def probe_config(tmp_path, fields=None, **parameters):
    return str(write_json(tmp_path / "dev.json", {"fields": fields or FIELDS, "parameters": parameters}))


def state_of(cli, *args):
    shown = cli("state", "show", "probe", *args)
    assert shown.status == 0, shown.output
    return json.loads(shown.stdout)["state"]


def test_check_signs_in_without_collecting(cli, tmp_path):
    result = cli("check", "probe", "--config", probe_config(tmp_path))
    assert result.status == 0, result.output
    assert "check passed: signed in and received data" in result.stderr
    assert stored(tmp_path) == []
    assert "bookmark" not in state_of(cli)


def test_check_fails_with_the_code_run_gives(cli, tmp_path):
    config = probe_config(tmp_path, {**FIELDS, "mode": "fail"})
    checked = cli("check", "probe", "--config", config, "--log-format", "json")
    ran = cli("run", "probe", "--config", config, "--log-format", "json")
    assert checked.status == ran.status == 1
    assert checked.error_code == ran.error_code == "LOGIN_FAILED"


def test_check_a_builtin_against_its_sandbox(cli, tmp_path):
    with EcowattSandbox() as sandbox:
        good = write_json(tmp_path / "good.json", sandbox.dev_config())
        result = cli("check", "rte-ecowatt", "--config", str(good))
        assert result.status == 0, result.output
        bad_config = sandbox.dev_config()
        bad_config["fields"]["client_secret"] = "wrong"
        bad = write_json(tmp_path / "bad.json", bad_config)
        refused = cli("check", "rte-ecowatt", "--config", str(bad), "--account", "other", "--log-format", "json")
    assert refused.status == 1 and refused.error_code == "LOGIN_FAILED"
    assert stored(tmp_path, "fr.rte.ecowatt.day") == []


CHECKED = {
    "pge-smd": (PgeSandbox, None),
    "energyid-webhook": (EnergyIdSandbox, "USER_ACTION_NEEDED"),
    "enedis-sge": (SgeSandbox, None),
}


@pytest.mark.parametrize("slug", list(CHECKED))
def test_check_builtins_that_run_their_own_job_or_speak_soap(cli, tmp_path, slug):
    sandbox_class, code = CHECKED[slug]
    with sandbox_class() as sandbox:
        config = write_json(tmp_path / "dev.json", sandbox.dev_config())
        checked = cli("check", slug, "--config", str(config), "--log-format", "json")
        assert checked.status == (1 if code else 0), checked.output
        assert checked.error_code == code
        if code:
            ran = cli("run", slug, "--config", str(config), "--account", "other", "--log-format", "json")
            assert ran.error_code == code
    assert any(line["message"].startswith("check passed") for line in checked.lines) == (code is None)
    listed = cli("doctypes")
    assert [line.split()[0] for line in listed.stdout.splitlines()[1:]] == ["io.cozy.accounts"], listed.output


def test_info_json_describes_fields_and_parameters_as_json_schema(cli):
    result = cli("info", "probe", "--json")
    assert result.status == 0, result.output
    about = json.loads(result.stdout)
    fields, parameters = about["fields"], about["parameters"]
    assert fields["required"] == ["login", "password"] and fields["properties"]["password"]["writeOnly"] is True
    assert parameters["properties"]["days"] == {
        "type": "integer",
        "minimum": 0,
        "default": 3,
        "description": "Daily points to collect",
    }
    assert about["doctypes"] == [DAY, "io.example.probe.month", "io.example.probe.year"]
    jsonschema.Draft202012Validator.check_schema(fields)
    jsonschema.validate(FIELDS, fields)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({"days": "three"}, parameters)
    builtin = json.loads(cli("info", "rte-ecowatt", "--json").stdout)
    assert builtin["fields"]["properties"]["client_secret"]["writeOnly"] is True and builtin["sandbox"] is True


def test_parameters_are_validated_and_unknown_keys_name_the_closest(cli, tmp_path):
    bad = cli("run", "probe", "--config", probe_config(tmp_path, days="three"), "--log-format", "json")
    assert bad.status == 1 and bad.error_code == "UNKNOWN_ERROR"
    assert "parameter 'days' is malformed: got 'three'" in bad.lines[-2]["message"]
    assert stored(tmp_path) == []

    config = write_json(
        tmp_path / "typo.json",
        {"fields": {**FIELDS, "pasword": "x"}, "parameters": {"dayz": 9, "days": 1}, "parameter": {}},
    )
    typo = cli("run", "probe", "--config", str(config))
    assert typo.status == 0, typo.output
    assert "unknown key 'parameter' ignored; did you mean 'parameters'?" in typo.stderr
    assert "unknown field 'pasword' ignored; did you mean 'password'?" in typo.stderr
    assert "unknown parameter 'dayz' ignored; did you mean 'days'?" in typo.stderr
    assert stored(tmp_path) == ["2024-01-01"]


def test_state_show_reset_since_and_full_refresh_keep_the_store_deduplicated(cli, tmp_path):
    assert cli("run", "probe", "--config", probe_config(tmp_path, days=3)).status == 0
    assert state_of(cli)["bookmark"] == "2024-01-04"
    assert stored(tmp_path) == ["2024-01-01", "2024-01-02", "2024-01-03"]

    again = cli("run", "probe", "--config", probe_config(tmp_path, days=2), "--since", "2024-01-02")
    assert again.status == 0, again.output
    assert "re-collecting since 2024-01-02" in again.stderr and "nothing new to write" in again.stderr
    assert state_of(cli)["bookmark"] == "2024-01-04"

    full = cli("run", "probe", "--config", probe_config(tmp_path, days=1), "--full-refresh")
    assert full.status == 0 and "full refresh: bookmark cleared" in full.stderr
    assert state_of(cli)["bookmark"] == "2024-01-02"

    reset = cli("state", "reset", "probe")
    assert reset.status == 0 and "forgot: bookmark" in reset.stdout
    assert "bookmark" not in state_of(cli)
    assert cli("run", "probe", "--config", probe_config(tmp_path, days=4)).status == 0
    assert stored(tmp_path) == ["2024-01-01", "2024-01-02", "2024-01-03", "2024-01-04"]
    assert json.loads(cli("state", "show", "probe").stdout)["secrets"] == ["token"]

    missing = cli("state", "show", "probe", "--account", "nobody")
    assert missing.status == 1 and "no account 'nobody'" in missing.stderr


def test_dry_run_writes_nothing_and_dumps_imported_data(cli, tmp_path):
    config = probe_config(tmp_path, days=3)
    dry = cli("run", "probe", "--config", config, "--dry-run", "--dump", "imported.json")
    assert dry.status == 0, dry.output
    assert "would store 3 io.example.probe.day (2024-01-01..2024-01-03)" in dry.stdout
    dumped = json.loads((tmp_path / "imported.json").read_text())
    assert list(dumped) == [DAY] and [d["_id"] for d in dumped[DAY]] == ["2024-01-01", "2024-01-02", "2024-01-03"]
    assert stored(tmp_path) == [] and stored(tmp_path, "io.cozy.accounts") == []

    assert cli("run", "probe", "--config", config).status == 0
    before = state_of(cli)
    dry_again = cli("run", "probe", "--config", config, "--dry-run")
    assert "would store 3 io.example.probe.day (2024-01-04..2024-01-06)" in dry_again.stdout
    assert state_of(cli) == before and stored(tmp_path)[-1] == "2024-01-03"
    assert cli("run", "probe", "--config", config, "--dump", "x.json").status == 2


def test_doctypes_lists_counts_and_dates_and_export_refuses_unknown(cli, tmp_path):
    assert cli("run", "probe", "--config", probe_config(tmp_path, days=3)).status == 0
    listed = cli("doctypes")
    assert listed.status == 0, listed.output
    rows = {line.split()[0]: line.split()[1:] for line in listed.stdout.splitlines()[1:]}
    assert rows[DAY] == ["3", "2024-01-01", "2024-01-03"]
    assert rows["io.example.probe.year"] == ["1", "2024-01-01", "2024-01-01"]
    assert rows["io.cozy.accounts"][0] == "1"

    typo = cli("export", "io.example.probe.dya")
    assert typo.status == 1 and "Traceback" not in typo.output
    assert "unknown doctype 'io.example.probe.dya' (did you mean 'io.example.probe.day'?)" in typo.stderr
    assert "known: " in typo.stderr and "fr.rte.ecowatt.day" in typo.stderr


def test_run_without_config_fails_clearly_and_creates_nothing(cli, tmp_path):
    result = cli("run", "probe")
    assert result.status == 1
    assert "no account 'probe-dev' to use" in result.stderr and "give --config FILE" in result.stderr
    assert "Traceback" not in result.output
    assert not (tmp_path / "konnector-data").exists()


def test_wrong_type_field_is_reported_once(cli, tmp_path):
    result = cli("run", "probe", "--config", probe_config(tmp_path, {**FIELDS, "login": 5}), "--log-format", "json")
    assert result.status == 1 and result.error_code == "LOGIN_FAILED"
    assert result.stdout.count("field 'login' is malformed") == 1


def test_deletion_without_revocation_does_not_claim_one(cli, tmp_path):
    with EcowattSandbox() as sandbox:
        config = write_json(tmp_path / "dev.json", sandbox.dev_config())
        assert cli("run", "rte-ecowatt", "--config", str(config)).status == 0
        result = cli("delete-account", "rte-ecowatt")
    assert result.status == 0, result.output
    assert "nothing to revoke" in result.stderr and "account deleted" in result.stderr
    assert "revoked" not in result.stderr.partition("nothing to revoke")[2]


def test_platform_mode_prints_progress_as_json_lines(cli, tmp_path):
    config = probe_config(tmp_path, days=2)
    result = cli("run", "probe", "--config", config, "--log-format", "json")
    assert result.status == 0
    progress = [line for line in result.lines if line["namespace"] == "konnector.probe.progress"]
    assert progress and json.loads(progress[-1]["message"]) == {
        "written": {DAY: 2, "io.example.probe.month": 1, "io.example.probe.year": 1}
    }
    quiet = cli("run", "probe", "--config", config)
    assert "documents written" not in quiet.stderr


def test_dry_run_refuses_a_konnector_that_runs_its_own_job(cli, tmp_path):
    with PgeSandbox() as sandbox:
        config = write_json(tmp_path / "dev.json", sandbox.dev_config())
        result = cli("run", "pge-smd", "--config", str(config), "--dry-run", "--log-format", "json")
        assert sandbox.requests == []
    assert result.status == 1 and "a dry run cannot promise it writes nothing" in result.lines[-2]["message"]
    assert [line.split()[0] for line in cli("doctypes").stdout.splitlines()[1:]] == []


def test_builtin_parameters_are_declared_and_a_misspelt_one_is_named(cli, tmp_path):
    about = json.loads(cli("info", "enedis-dataconnect", "--json").stdout)
    assert {"daily_history_days", "curve_history_days", "max_power_history_days"} <= set(
        about["parameters"]["properties"]
    )
    config = {"fields": {"path": str(SAMPLE), "timezone": "Europe/Paris"}, "parameters": {"max_file_mbb": 1}}
    result = cli("run", "greenbutton-file", "--config", str(write_json(tmp_path / "gb.json", config)), "--dry-run")
    assert result.status == 0, result.output
    assert "unknown parameter 'max_file_mbb' ignored; did you mean 'max_file_mb'?" in result.stderr
    bad = {**config, "parameters": {"max_file_mb": "big"}}
    refused = cli("run", "greenbutton-file", "--config", str(write_json(tmp_path / "bad.json", bad)))
    assert refused.status == 1 and "parameter 'max_file_mb' is malformed: got 'big'" in refused.stderr


def test_since_rewinds_a_builtin_bookmark_per_stream_and_stays_deduplicated(cli, tmp_path):
    from konnectors.enedis_dataconnect.sandbox import EnedisSandbox

    now = {"KONNECTOR_NOW": "2024-11-05T12:00:00+01:00"}
    parameters = {"daily_history_days": 30, "max_power_history_days": 30, "curve_history_days": 7}
    with EnedisSandbox(seed=3) as sandbox:
        sandbox.today = date(2024, 11, 5)
        config = write_json(tmp_path / "dev.json", {**sandbox.dev_config(), "parameters": parameters})
        assert cli("run", "enedis-dataconnect", "--config", str(config), env=now).status == 0
        before = {doctype: stored(tmp_path, doctype) for doctype in ENEDIS}
        bookmark = json.loads(cli("state", "show", "enedis-dataconnect").stdout)["state"]["bookmark"]
        calls = len(sandbox.requests)
        again = cli("run", "enedis-dataconnect", "--config", str(config), "--since", "2024-10-28", env=now)
        assert again.status == 0, again.output
        assert len(sandbox.requests) > calls
    assert re.search(r"re-collecting since 2024-10-28: [1-9]\d* bookmark date\(s\) moved back", again.stderr)
    assert "nothing new to write" in again.stderr
    assert {doctype: stored(tmp_path, doctype) for doctype in ENEDIS} == before
    assert json.loads(cli("state", "show", "enedis-dataconnect").stdout)["state"]["bookmark"] == bookmark


ENEDIS = [f"com.grandlyon.enedis.{level}" for level in ("day", "minute", "maxpower", "month", "year")]


def test_rewind_moves_only_later_dates_and_keeps_their_form():
    from framework.bookmarks import rewind

    bookmark = {"daily": "2024-11-04", "curve": "2024-11-05T10:30:00+01:00", "old": "2024-01-01", "n": 4, "id": "x"}
    moved, count = rewind(bookmark, date(2024, 10, 28))
    assert count == 2
    assert moved == {**bookmark, "daily": "2024-10-28", "curve": "2024-10-28T00:00:00+01:00"}
