"""COZY_PAYLOAD (webhook body) and the job variables cozy-stack passes, read as ``worker/exec`` gives them."""

from __future__ import annotations

import json

import pytest

from framework.accounts import Account, AccountStore
from framework.crypto import SecretBox, new_key
from framework.errors import ConfigurationError
from framework.runner import spec_from_environment
from framework.stack.payload import MAX_INLINE_BYTES, read_payload
from framework.store import CouchBackend, DocumentStore


def test_inline_payload_is_decoded():
    assert read_payload('{"items": [{"key": "a", "value": 1}]}') == {"items": [{"key": "a", "value": 1}]}
    assert read_payload("") is None and read_payload(None) is None


def test_file_payload_is_read_from_the_work_directory(tmp_path):
    body = {"items": [{"key": str(n), "value": "x" * 100} for n in range(1500)]}
    (tmp_path / "cozy_payload.json").write_text(json.dumps(body))
    assert len(json.dumps(body)) > MAX_INLINE_BYTES
    assert read_payload("@cozy_payload.json", tmp_path) == body


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("{not json", "COZY_PAYLOAD is not valid JSON"),
        ("@../outside.json", "not a file of the work directory"),
        ("@missing.json", "cannot be read"),
    ],
)
def test_bad_payloads_are_one_clear_configuration_error(tmp_path, value, message):
    (tmp_path.parent / "outside.json").write_text("{}")
    with pytest.raises(ConfigurationError, match=message):
        read_payload(value, tmp_path)


def test_platform_spec_carries_payload_locale_job_and_trigger():
    env = {
        "COZY_FIELDS": json.dumps({"account": "acc-1", "konnector": "echo"}),
        "COUCHDB_URL": "http://127.0.0.1:1",
        "COZY_PAYLOAD": '{"payloads": [{"items": []}]}',
        "COZY_LOCALE": "fr",
        "COZY_JOB_ID": "job-9",
        "COZY_TRIGGER_ID": "trigger-3",
    }
    spec = spec_from_environment(env, None)
    assert spec.payload == {"payloads": [{"items": []}]}
    assert (spec.locale, spec.job_id, spec.trigger_id) == ("fr", "job-9", "trigger-3")
    assert spec.stack_url is None


def test_webhook_payload_reaches_the_konnector(stack_cli, couchdb_url, db_prefix):
    """A platform run (on CouchDB here) hands the decoded payload to the konnector as ``ctx.payload``."""
    key = new_key()
    store = DocumentStore(CouchBackend(couchdb_url, db_prefix))
    AccountStore(store, SecretBox(key)).save(
        Account("acc-1", "echo", auth={"login": "alice", "password": "pw"}), frozenset({"password"})
    )
    env = {
        "COZY_FIELDS": json.dumps({"account": "acc-1", "konnector": "echo"}),
        "COZY_PAYLOAD": json.dumps({"items": [{"key": "k1", "value": 4}, {"key": "k2", "value": 5}]}),
        "COZY_LOCALE": "fr",
        "COZY_JOB_ID": "job-1",
        "COZY_TRIGGER_ID": "trig-1",
        "COUCHDB_URL": couchdb_url,
        "KONNECTOR_DB_PREFIX": db_prefix,
        "KONNECTOR_SECRET_KEY": key,
    }
    result = stack_cli("run", env=env)
    assert result.status == 0, result.output
    hooks = sorted((d["key"], d["value"]) for d in store.id_range("io.example.echo.hook"))
    assert hooks == [("k1", 4), ("k2", 5)]
    messages = [line["message"] for line in result.lines]
    assert any("locale fr" in m for m in messages)
    assert "job job-1, trigger trig-1" in messages


def test_under_the_stack_the_time_limit_loses_the_stacks_5_second_gap():
    env = {
        "COZY_FIELDS": json.dumps({"account": "acc-1", "konnector": "echo"}),
        "COZY_URL": "http://127.0.0.1:1/",
        "COZY_CREDENTIALS": "token",
        "COZY_TIME_LIMIT": "305",
        "COZY_PARAMETERS": "null",
    }
    spec = spec_from_environment(env, None)
    assert spec.time_limit == 300 and spec.parameters == {} and spec.stack_url == "http://127.0.0.1:1/"
    assert spec_from_environment({**env, "COUCHDB_URL": "http://x", "COZY_URL": ""}, None).time_limit == 305
