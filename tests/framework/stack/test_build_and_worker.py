"""``konnector build`` output installed on the stack double and run by its worker through our ``konnectors.cmd``.

The worker (``framework/testing/stack_exec.py``) starts jobs as cozy-stack's ``worker/exec`` does:
only the COZY_* variables, a fresh work dir, SIGKILL at the limit, stdout parsed, retry and skip rules.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from framework.errors import ConfigurationError
from framework.registry import Registry
from framework.stack.build import build, write_runner
from framework.stack.manifest import validate
from framework.testing.runner import run_cli
from framework.testing.stack_exec import KonnectorWorker

HERE = Path(__file__).parent
PROBES = HERE.parents[1] / "fixtures" / "path_konnectors"
COZY_VARIABLES = {
    "COZY_URL",
    "COZY_CREDENTIALS",
    "COZY_FIELDS",
    "COZY_PARAMETERS",
    "COZY_PAYLOAD",
    "COZY_LANGUAGE",
    "COZY_LOCALE",
    "COZY_TIME_LIMIT",
    "COZY_JOB_ID",
    "COZY_JOB_MANUAL_EXECUTION",
}


def built(slug: str, konnectors: Path, out: Path) -> Path:
    result = run_cli("build", slug, "--out", str(out), env={"KONNECTOR_PATH": str(konnectors)})
    assert result.status == 0, result.output
    assert f"cozy-stack konnectors install {slug} file://{out.resolve()}" in result.stdout
    return out


@pytest.fixture
def worker(stack_double, tmp_path):
    cmd = tmp_path / "konnector-run.sh"
    result = run_cli("stack-runner", str(cmd))
    assert result.status == 0 and "konnectors:\n    cmd: " in result.stdout, result.output
    return KonnectorWorker(stack_double, cmd, locale="fr")


def test_build_writes_a_manifest_the_stack_takes_and_the_entry(tmp_path):
    out = built("echo", HERE / "konnectors", tmp_path / "echo-build")
    manifest = json.loads((out / "manifest.konnector").read_text())
    validate(manifest)
    assert manifest["language"] == "python" and manifest["on_delete_account"] == "index.py"
    assert manifest["frequency"] == "daily" and set(manifest["fields"]) == {"login", "password"}
    assert {"type": "io.cozy.accounts"}.items() <= manifest["permissions"]["accounts"].items()
    assert "entrypoint" not in manifest
    assert sorted(p.name for p in (out / "konnector").iterdir()) == ["echo.json", "echo_konnector.py"]
    assert (out / "index.py").read_text().count("main([\"run\", 'echo'])") == 1
    again = run_cli("build", "echo", "--out", str(out), env={"KONNECTOR_PATH": str(HERE / "konnectors")})
    assert again.status != 0 and "is not empty" in again.stderr and "Traceback" not in again.stderr


def test_every_builtin_manifest_builds_for_the_stack(tmp_path):
    builtins = [m for m in Registry.discover([]) if m.search_path is None]
    assert len(builtins) >= 8
    for manifest in builtins:
        out = build(manifest, tmp_path / manifest.slug)
        stack = json.loads((out / "manifest.konnector").read_text())
        assert stack["slug"] == manifest.slug and not (out / "konnector").exists()
        validate(stack)


def test_what_the_stack_would_refuse_is_refused_naming_the_rule():
    bad = {"name": "x", "slug": "x", "version": "1", "frequency": "daily", "on_delete_account": "index.py"}
    bad["permissions"] = {"all": {"type": "io.*"}, "verbs": {"type": "io.x.y", "verbs": ["READ"]}}
    with pytest.raises(ConfigurationError) as refused:
        validate(bad)
    assert "wildcard io.* is too wide" in refused.value.message and "verbs ['READ']" in refused.value.message


def test_a_job_runs_in_its_work_dir_with_only_the_stacks_variables(worker, stack_double, tmp_path):
    worker.install(built("echo", HERE / "konnectors", tmp_path / "echo"))
    stack_double.create_account({"_id": "acc-1", "account_type": "echo", "auth": {"login": "al", "password": "pw"}})
    items = [{"key": f"k{n}", "value": "v" * 80} for n in range(1500)]
    job = worker.run({"konnector": "echo", "account": "acc-1", "folder_to_save": "d1"}, payload={"items": items})
    execution = job.last
    assert job.error is None and execution.status == 0, (execution.lines, execution.unparsed, execution.stderr)
    assert set(execution.env) == COZY_VARIABLES and "PATH" not in execution.env
    assert execution.env["COZY_PAYLOAD"] == "@cozy_payload.json" and execution.env["COZY_PARAMETERS"] == "null"
    assert execution.unparsed == [] and any(
        line["message"] == "locale fr, password of 2 characters" for line in execution.lines
    )
    assert len(list(stack_double.all_docs("io.example.echo.hook"))) == 1500
    assert sorted(d["_id"] for d in stack_double.all_docs("io.example.echo.day")) == ["2024-01-01", "2024-01-02"]
    assert not Path(execution.argument).exists(), "the work dir is removed after the job"
    xml = worker.run({"konnector": "echo", "account": "acc-1"}, payload=b"<BatchList/>")
    assert xml.error is None and xml.last.env["COZY_PAYLOAD"] == "", "the stack passes only JSON objects"


def test_a_deletion_runs_on_delete_account_and_the_soft_deleted_copy_goes(worker, stack_double, tmp_path):
    worker.install(built("echo", HERE / "konnectors", tmp_path / "echo"))
    stack_double.create_account({"_id": "acc-1", "account_type": "echo", "auth": {"login": "al", "password": "pw"}})
    assert worker.run({"konnector": "echo", "account": "acc-1"}).error is None
    rev = stack_double.delete_account("acc-1")
    job = worker.run({"konnector": "echo", "account": "acc-1", "account_rev": rev, "account_deleted": True})
    assert job.error is None and job.last.argument.endswith("/index.py")
    assert any(line["message"] == "revoking consent of al (bookmark 2024-01-03)" for line in job.last.lines)
    assert stack_double.stored("io.cozy.accounts.soft_deleted", "acc-1") is None


def test_retry_once_unless_no_retry_and_login_failures_stop_automatic_runs(worker, stack_double, tmp_path):
    worker.install(built("probe", PROBES, tmp_path / "probe"))
    auth = {"login": "alice", "password": "pw", "mode": "crash"}
    stack_double.create_account({"_id": "acc-p", "account_type": "probe", "auth": auth})
    crash = worker.run({"konnector": "probe", "account": "acc-p"}, trigger_id="t-1")
    assert crash.error == "UNKNOWN_ERROR" and len(crash.executions) == 2
    stored = stack_double.stored("io.cozy.accounts", "acc-p")
    stack_double.replace_account({**stored, "auth": {**auth, "mode": "fail"}})
    failed = worker.run({"konnector": "probe", "account": "acc-p"}, trigger_id="t-1")
    assert failed.error == "LOGIN_FAILED" and len(failed.executions) == 1 and failed.last.no_retry
    assert worker.run({"konnector": "probe", "account": "acc-p"}, trigger_id="t-1").skipped
    manual = worker.run({"konnector": "probe", "account": "acc-p"}, trigger_id="t-1", manual=True)
    assert not manual.skipped and manual.error == "LOGIN_FAILED"


def test_a_job_still_running_at_the_limit_is_killed(worker, stack_double, tmp_path):
    slow = tmp_path / "slow"
    slow.mkdir()
    (slow / "manifest.konnector").write_text(json.dumps({"slug": "slow", "language": "node", "permissions": {}}))
    (slow / "index.js").write_text(
        "console.log(JSON.stringify({type: 'info', message: 'started'}));\nsetInterval(() => {}, 1000);\n"
    )
    worker.install(slow)
    job = worker.run({"konnector": "slow"}, timeout=2)
    assert job.last.env["COZY_TIME_LIMIT"] == "7"
    assert job.last.status is None and job.error == "context deadline exceeded"
    assert job.last.lines == [{"type": "info", "message": "started"}]


def test_the_runner_hands_other_languages_to_node(stack_double, tmp_path):
    hello = tmp_path / "hello"
    hello.mkdir()
    manifest = {"slug": "hello", "language": "node", "permissions": {}, "parameters": {"who": "node"}}
    (hello / "manifest.konnector").write_text(json.dumps(manifest))
    (hello / "index.js").write_text(
        "const p = JSON.parse(process.env.COZY_PARAMETERS);\n"
        "console.log(JSON.stringify({type: 'info', message: 'hello from ' + p.who + ' in ' + process.cwd()}));\n"
    )
    worker = KonnectorWorker(stack_double, write_runner(tmp_path / "run.sh"))
    worker.install(hello)
    job = worker.run({"konnector": "hello"})
    assert job.error is None, job.last.stderr
    [line] = job.last.lines
    assert line["message"].startswith("hello from node in ") and "konnector-hello" in line["message"]
    assert os.access(tmp_path / "run.sh", os.X_OK)
