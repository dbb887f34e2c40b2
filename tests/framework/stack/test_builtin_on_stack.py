"""Every built-in konnector through the cozy-stack double writes what it writes on CouchDB.

Each konnector runs against a fresh copy of its sandbox twice, with the same clock: once on
CouchDB (self-hosted mode), once with its account in the stack double and every store
operation through the stack's data API (the manifest installed as ``konnector build`` writes
it). The documents must be equal, bookkeeping aside. pge-smd's run is the one a ``@webhook``
trigger starts: PG&E's notification relayed as a JSON payload (``ctx.payload``). Then the account
is deleted as the stack deletes it and ``on_delete_account`` runs reading the deleted revision.
"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from framework import runner
from framework.redact import Redactor
from framework.registry import Registry
from framework.stack.manifest import stack_manifest
from framework.store import CouchBackend
from framework.store.backend import HIGH_KEY
from konnectors.energyid_webhook.sandbox import EnergyIdSandbox
from konnectors.greenbutton.pge_sandbox import BULK_ID, TEST_ESPI
from konnectors.showcase.demo import SAMPLE, STEPS

BOOKKEEPING = {"_rev", "cozyMetadata", "received_at"}
SHORTER = {
    "enedis-dataconnect": {"daily_history_days": 60, "max_power_history_days": 60, "curve_history_days": 3},
    "enedis-sge": {"daily_history_days": 60, "max_power_history_days": 60, "curve_history_days": 3},
    "grdf-adict": {"informative_history_days": 60, "published_history_days": 60},
}
"""Histories shortened to keep the test quick: the question is where documents go, not how many."""
NOW = datetime.now(UTC).replace(microsecond=0)


NOTIFICATIONS = "org.greenbutton.notification"
"""Hold the sandbox's URL (a port of its own each run): compared by status, not content."""


def webhook_payload(slug: str, config: dict) -> dict | None:
    """pge-smd: PG&E's notification relayed to a cozy-stack ``@webhook`` trigger as JSON (docs/cozy-stack.md)."""
    if slug != "pge-smd":
        return None
    uri = f"{config['sandbox'].url}{TEST_ESPI}/Batch/Bulk/{BULK_ID}/Data/0?correlationID=hook"
    return {"resources": [uri]}


def comparable(docs) -> dict[str, dict]:
    return {d["_id"]: {k: v for k, v in d.items() if k not in BOOKKEEPING} for d in docs}


def config_of(step, servers) -> dict:
    if step.sandbox is None:
        return {"fields": {"path": str(SAMPLE), "timezone": "Europe/Paris"}}
    sandbox = step.sandbox().__enter__()
    servers.append(sandbox)
    return {**sandbox.dev_config(), "sandbox": sandbox}


def run_with_claim(spec, manifest, sandbox, state_of):
    """Run; the EnergyID sink first asks for a claim, which the person makes in EnergyID."""
    result = runner.run(spec, manifest, Redactor())
    if isinstance(sandbox, EnergyIdSandbox) and result.error is not None:
        assert sandbox.claim(state_of()["claim"]["code"])
        result = runner.run(spec, manifest, Redactor())
    return result


@pytest.mark.parametrize("step", STEPS, ids=lambda s: s.slug)
def test_builtin_konnector_writes_the_same_documents_through_the_stack(
    step, stack_double, couchdb_url, db_prefix, tmp_path
):
    manifest = Registry.discover([]).get(step.slug)
    parameters = {**step.parameters, **SHORTER.get(step.slug, {})}
    stack_double.install(stack_manifest(manifest.data))
    couch_prefix = "c" + db_prefix
    servers: list = []
    try:
        config = config_of(step, servers)
        on_couch = runner.JobSpec(
            slug=step.slug,
            account_id="acc-1",
            fields=config["fields"],
            parameters=parameters,
            oauth=config.get("oauth"),
            couchdb_url=couchdb_url,
            prefix=couch_prefix,
            data_dir=tmp_path,
            now=NOW,
            payload=webhook_payload(step.slug, config),
        )
        couch = CouchBackend(couchdb_url, couch_prefix)
        couch_state = lambda: couch.get("io.cozy.accounts", "acc-1")["data"]  # noqa: E731
        result = run_with_claim(on_couch, manifest, config.get("sandbox"), couch_state)
        assert result.error is None, result.error

        config = config_of(step, servers)
        account = {"_id": "acc-1", "account_type": step.slug, "auth": config["fields"]}
        if config.get("oauth"):
            account["oauth"] = config["oauth"]
        stack_double.create_account(account)
        on_stack = runner.JobSpec(
            slug=step.slug,
            account_id="acc-1",
            parameters=parameters,
            stack_url=stack_double.url,
            stack_credentials=stack_double.token(step.slug),
            data_dir=None,
            now=NOW,
            payload=webhook_payload(step.slug, config),
        )
        stack_state = lambda: stack_double.stored("io.cozy.accounts", "acc-1")["data"]  # noqa: E731
        result = run_with_claim(on_stack, manifest, config.get("sandbox"), stack_state)
        assert result.error is None, result.error

        written = 0
        for doctype in sorted(manifest.doctypes):
            if doctype == NOTIFICATIONS:
                statuses = [d["status"] for d in stack_double.all_docs(doctype)]
                assert statuses == [d["status"] for d in couch.id_range(doctype, "", HIGH_KEY)] == ["done"]
                continue
            expected = comparable(couch.id_range(doctype, "", HIGH_KEY))
            assert comparable(stack_double.all_docs(doctype)) == expected, doctype
            written += len(expected)
        assert written > 0 or step.slug == "energyid-webhook"  # a sink: it reads and pushes
        bookmark = couch_state().get("bookmark")
        assert stack_state().get("bookmark") == bookmark

        rev = stack_double.delete_account("acc-1")
        deletion = runner.JobSpec(
            slug=step.slug,
            account_id="acc-1",
            delete=True,
            account_rev=rev,
            stack_url=stack_double.url,
            stack_credentials=stack_double.token(step.slug),
            data_dir=None,
            now=NOW,
        )
        result = runner.run(deletion, manifest, Redactor())
        assert result.error is None, result.error
        reads = [c for c in stack_double.calls if c.path == "/data/io.cozy.accounts/acc-1" and c.method == "GET"]
        assert reads[-1].status == 200 and reads[-1].query == f"rev={rev}", "the deleted revision was read"
    finally:
        for sandbox in servers:
            sandbox.__exit__(None, None, None)
