"""``konnector run`` launched as cozy-stack launches it: COZY_URL + COZY_CREDENTIALS, data through the stack double."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from framework.stack.manifest import stack_manifest

ECHO = json.loads((Path(__file__).parent / "konnectors" / "echo.json").read_text())


@pytest.fixture
def echo(stack_double):
    """The echo konnector installed on the double, one account, and the environment ``worker/exec`` sets."""
    stack_double.install(stack_manifest(ECHO))
    stack_double.create_account(
        {"_id": "acc-1", "account_type": "echo", "auth": {"login": "alice", "password": "pw-secret"}}
    )

    def environment(token: str | None = None, **fields) -> dict[str, str]:
        return {
            "COZY_URL": stack_double.url,
            "COZY_CREDENTIALS": token or stack_double.token("echo"),
            "COZY_FIELDS": json.dumps({"account": "acc-1", "konnector": "echo", "folder_to_save": "dir-1", **fields}),
            "COZY_PARAMETERS": json.dumps({"days": 2}),
            "COZY_LANGUAGE": "python",
            "COZY_LOCALE": "fr",
            "COZY_JOB_ID": "job-1",
            "COZY_TIME_LIMIT": "305",
            "COZY_JOB_MANUAL_EXECUTION": "false",
        }

    return environment


def test_a_job_stores_through_the_stack_and_resumes(stack_cli, stack_double, echo):
    env = echo()
    first = stack_cli("run", "--debug", env=env)
    assert first.status == 0, first.output
    days = sorted(d["_id"] for d in stack_double.all_docs("io.example.echo.day"))
    assert days == ["2024-01-01", "2024-01-02"]
    assert [d["load"] for d in stack_double.all_docs("io.example.echo.month")] == [3.0]
    stored = stack_double.stored("io.cozy.accounts", "acc-1")
    assert stored["data"]["bookmark"] == "2024-01-03" and "secret_encrypted" in stored["data"]["auth"]
    assert "pw-secret" not in first.output and "tok-" not in first.output
    assert env["COZY_CREDENTIALS"].split(".")[2] not in first.output
    second = stack_cli("run", env=echo())
    assert second.status == 0, second.output
    assert len(list(stack_double.all_docs("io.example.echo.day"))) == 4
    writes = {c.path for c in stack_double.calls if c.method == "POST" and c.path.endswith("_bulk_docs")}
    assert "/data/io.example.echo.day/_bulk_docs" in writes


def test_on_delete_account_reads_the_deleted_revision(stack_cli, stack_double, echo):
    assert stack_cli("run", env=echo()).status == 0
    rev = stack_double.delete_account("acc-1")
    result = stack_cli("run", env=echo(account_deleted=True, account_rev=rev))
    assert result.status == 0, result.output
    assert any("revoking consent of alice (bookmark 2024-01-03)" in line["message"] for line in result.lines)


def test_a_token_about_to_expire_stops_the_job_with_a_partial_sync_before_it(stack_cli, stack_double, echo):
    # valid 66 s more: the job keeps 60 s to store and save, so it fetches for about 5 s
    token = stack_double.token("echo", issued_at=time.time() - 30 * 60 + 66)
    env = {**echo(token), "COZY_PARAMETERS": json.dumps({"days": 30, "pause": 0.5})}
    result = stack_cli("run", env=env)
    assert result.status == 1 and result.error_code == "UNKNOWN_ERROR.PARTIAL_SYNC", result.output
    saved = stack_double.stored("io.cozy.accounts", "acc-1").get("data", {}).get("bookmark")
    days = sorted(d["_id"] for d in stack_double.all_docs("io.example.echo.day"))
    assert 2 <= len(days) < 30 and saved == f"2024-01-{len(days) + 1:02d}", result.output
    refused = [c for c in stack_double.calls if c.status == 400]
    assert refused == [], "the job stopped while its token still worked"


def test_a_doctype_the_installed_manifest_lacks_is_refused_and_reported(stack_cli, stack_double, echo):
    older = stack_manifest(ECHO)
    del older["permissions"]["hooks"]
    stack_double.install(older)
    env = {**echo(), "COZY_PAYLOAD": json.dumps({"items": [{"key": "k", "value": 1}]})}
    result = stack_cli("run", env=env)
    assert result.status == 1
    critical = result.lines[-1]
    assert critical["type"] == "critical" and critical["no_retry"] is True
    errors = [line["message"] for line in result.lines if line["type"] == "error"]
    assert any(
        "cozy-stack refused to let konnector 'echo' GET doctype 'io.example.echo.hook'" in m
        and "manifest installed on the stack does not grant it" in m
        for m in errors
    ), errors
    assert [c.status for c in stack_double.calls if "io.example.echo.hook" in c.path] == [403]
