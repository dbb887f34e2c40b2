"""No double consent: the back-office consent is created once per account whatever happens.

``konnector run`` is a real subprocess, killed with SIGKILL when the sandbox receives each request
of the consent flow (the reliability suite's kill-point harness and ``on_request`` hook), then run
again; an SGE technical fault (SGT500) at each SOAP step of the flow; two first runs at once.
Each ends with exactly one consent at the sandbox's back-office, bound to the one collection, and
``delete-account`` closes it.
"""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from konnectors.enedis_sge.sandbox import SgeSandbox
from tests.conftest import write_json
from tests.konnectors.enedis_sge.test_konnector import TODAY, etree_name
from tests.reliability.conftest import kill_after_requests, konnector

TINY = {"curve_history_days": 1, "daily_history_days": 2, "max_power_history_days": 2}
ENV = {"KONNECTOR_NOW": f"{TODAY.isoformat()}T12:00:00+01:00"}
FLOW = [  # the first run's requests, in order, up to its first measure
    "rechercherPoint",
    "consulterDonneesTechniquesContractuelles",
    "GET consent",
    "POST consent",
    "rechercherServicesSouscritsMesures",
    "commanderCollectePublicationMesures",
    "PUT consent",
    "consulterMesuresDetailleesV3",
]


@pytest.fixture
def sge():
    with SgeSandbox(seed=4) as sandbox:
        sandbox.today = TODAY
        yield sandbox


def start(work: Path, sandbox: SgeSandbox, command: str = "run"):
    write_json(work / "dev.json", {**sandbox.dev_config(), "parameters": TINY})
    return konnector(command, "enedis-sge", "--config", "dev.json", cwd=work, env=ENV)


def finish(process, timeout: float = 60) -> int:
    status = process.wait(timeout)
    process.stderr.close()
    return status


def assert_one_consent_bound_to_the_collection(sandbox: SgeSandbox) -> None:
    [consent] = sandbox.consents.values()
    [collection] = [s for s in sandbox.services if s.code == "CDC" and s.state == "ACTIF"]
    assert consent["status"] == "open" and consent["serviceId"] == collection.id


def test_the_flow_is_the_one_killed_below(tmp_path, sge):
    assert finish(start(tmp_path, sge)) == 0
    names = []
    for request in sge.requests[: len(FLOW)]:
        if request.path.startswith("/backoffice"):
            names.append(f"{request.method} consent")
        else:
            names.append(etree_name(request.body))
    assert names == FLOW


@pytest.mark.parametrize("kill_at", range(1, len(FLOW) + 1), ids=FLOW)
def test_a_kill_at_any_request_of_the_consent_flow_then_a_rerun_leaves_one_consent(tmp_path, sge, kill_at):
    process = start(tmp_path, sge)
    kill_after_requests(sge, process, kill_at)
    assert finish(process) != 0
    sge.on_request = None
    assert finish(start(tmp_path, sge)) == 0
    assert_one_consent_bound_to_the_collection(sge)
    if FLOW[kill_at - 1] == "POST consent":  # the consent was made, its answer never read
        assert finish(start(tmp_path, sge, "delete-account")) == 0
        assert [c["status"] for c in sge.consents.values()] == ["closed"]


def test_delete_account_after_a_crash_closes_the_consent_the_state_never_saw(tmp_path, sge):
    process = start(tmp_path, sge)
    kill_after_requests(sge, process, FLOW.index("rechercherServicesSouscritsMesures") + 1)
    assert finish(process) != 0
    sge.on_request = None
    assert len(sge.consents) == 1
    assert finish(start(tmp_path, sge, "delete-account")) == 0
    assert [c["status"] for c in sge.consents.values()] == ["closed"]


@pytest.mark.parametrize(
    "operation",
    [
        "rechercherServicesSouscritsMesures",
        "commanderCollectePublicationMesures",
    ],
)
def test_an_sgt500_in_the_flow_then_a_rerun_leaves_one_consent(tmp_path, sge, operation):
    sge.fail(operation, "SGT500", "Erreur technique")
    assert finish(start(tmp_path, sge)) != 0
    assert finish(start(tmp_path, sge)) == 0
    assert_one_consent_bound_to_the_collection(sge)


def test_two_concurrent_first_runs_leave_one_consent(tmp_path, sge):
    """Both runs look the consent up before either creates it (a barrier in the sandbox holds the
    first lookup until the second arrives): both POST, the back-office keeps one, the other run
    finds it."""
    both_looked, held = threading.Barrier(2), []

    def hold_lookups(request) -> None:
        if request.method == "GET" and request.path.endswith("/consent") and len(held) < 2:
            held.append(request)
            both_looked.wait(timeout=30)

    sge.on_request = hold_lookups
    first, second = start(tmp_path, sge), start(tmp_path, sge)
    statuses = [finish(first), finish(second)]
    sge.on_request = None
    assert 0 in statuses
    if statuses != [0, 0]:  # the one that lost a race on the account re-runs cleanly
        assert finish(start(tmp_path, sge)) == 0
    assert len([r for r in sge.requests if r.path.endswith("/consent") and r.method == "POST"]) == 2
    assert_one_consent_bound_to_the_collection(sge)
    assert finish(start(tmp_path, sge, "delete-account")) == 0
    assert [c["status"] for c in sge.consents.values()] == ["closed"]
