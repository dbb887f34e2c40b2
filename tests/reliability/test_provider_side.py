"""Crash consistency on the provider's side: what a provider keeps from our calls.

The store checks in ``test_crash.py`` cannot see a device provisioned twice at EnergyID, a
reading lost or sent twice, or a second access-right declaration at GRDF. Here a real
``konnector run`` subprocess is killed with SIGKILL when the sandbox receives a chosen request
(before it answers: the provider acts on the request, the konnector never reads the answer —
for a post, "acknowledged by the provider, not saved by us"), or at a moment of a clean run's
duration; then it runs again to success, and the test reads the sandbox's record of what it
received: EnergyID's devices, accepted objects (``points``) and kept readings (``series``),
GRDF's declarations and rights. (SGE consents: ``tests/konnectors/enedis_sge/test_consent.py``.)
"""

from __future__ import annotations

import json
import time
from collections import Counter
from datetime import date
from pathlib import Path

import pytest

from framework.testing.reliability import kill_after_seconds
from framework.testing.runner import run_cli
from konnectors.energyid_webhook.sandbox import EnergyIdSandbox
from konnectors.grdf_adict.sandbox import GrdfSandbox
from tests.conftest import write_json
from tests.konnectors.energyid_webhook.test_konnector import collected, configure
from tests.reliability.conftest import kill_after_requests, konnector

DAYS = 30
FIRST_DAY = date(2024, 1, 1)


def energyid_run(work: Path):
    return konnector("run", "energyid-webhook", "--config", "dev.json", "--log-format", "json", cwd=work)


def finish(process, timeout: float = 120) -> int:
    status = process.wait(timeout)
    process.stderr.close()
    return status


def claim_code(work: Path) -> str:
    """The claim code a run asked the person to enter (its USER_ACTION_NEEDED line)."""
    result = run_cli("run", "energyid-webhook", "--config", "dev.json", "--log-format", "json", cwd=work)
    assert result.error_code == "USER_ACTION_NEEDED", result.output
    return result.lines[-2]["message"].split("enter the code ")[1][:6]


def energyid_work(tmp_path: Path, name: str, sandbox: EnergyIdSandbox) -> Path:
    """A data directory holding what Enedis stored (30 days), configured for ``sandbox``."""
    work = tmp_path / name
    work.mkdir()
    collected(work, FIRST_DAY, DAYS)
    configure(work, sandbox)
    return work


def energyid_sandbox() -> EnergyIdSandbox:
    sandbox = EnergyIdSandbox()
    sandbox.upload_interval = 0  # every reading in one run: the kill points are requests, not hours
    return sandbox


@pytest.fixture(scope="module")
def clean_series(tmp_path_factory) -> dict[str, dict[int, float]]:
    """What EnergyID holds after one clean claim-then-push: the reference every crashed run must reach."""
    with energyid_sandbox() as sandbox:
        work = energyid_work(tmp_path_factory.mktemp("energyid"), "clean", sandbox)
        assert sandbox.claim(claim_code(work))
        assert finish(energyid_run(work)) == 0
        assert len(sandbox.points) == DAYS and len(sandbox.series["el"]) == DAYS
        return sandbox.series


def duplicates(sandbox: EnergyIdSandbox) -> list[dict]:
    """Objects EnergyID accepted more than once (same time, same values)."""
    counts = Counter(json.dumps(point, sort_keys=True) for point in sandbox.points)
    return [json.loads(point) for point, n in counts.items() if n > 1 for _ in range(n - 1)]


def assert_provider_holds_a_clean_run(sandbox: EnergyIdSandbox, clean: dict) -> None:
    assert len(sandbox.devices) == 1, f"{len(sandbox.devices)} devices provisioned at EnergyID"
    assert sandbox.series == clean, "EnergyID's readings differ from a clean run's"
    stamps = [point["ts"] for point in sandbox.points]
    assert set(stamps) == set(clean["el"]), "a reading never reached EnergyID"


@pytest.mark.parametrize("kill_at", [1, 2], ids=["hello before the claim", "hello after the claim"])
def test_energyid_killed_during_the_claim_flow_provisions_one_device(tmp_path, reliability, clean_series, kill_at):
    """Request 1 is the first hello (EnergyID registers the device and issues its claim code); request
    2 is the hello of the run after the claim (EnergyID issues the webhook token)."""
    with energyid_sandbox() as sandbox:
        work = energyid_work(tmp_path, "work", sandbox)
        if kill_at == 2:
            assert sandbox.claim(claim_code(work))
        process = energyid_run(work)
        kill_after_requests(sandbox, process, 1)
        assert finish(process) < 0, "the run was not killed"
        sandbox.on_request = None
        if kill_at == 1:
            assert sandbox.claim(claim_code(work)), "the code shown after the crash is not the device's"
        assert finish(energyid_run(work)) == 0
        assert_provider_holds_a_clean_run(sandbox, clean_series)
        assert duplicates(sandbox) == []
    reliability.record(
        "crash consistency (provider side)",
        f"energyid-webhook: SIGKILL at the {'first hello' if kill_at == 1 else 'hello after the claim'}, then re-run",
        "EnergyID's record of devices and readings",
        "one device, one claim; readings equal a clean run's, none twice",
    )


PUSH_KILLS = [2, 3, DAYS // 2 + 1, DAYS + 1]
"""The run after the claim: request 1 is its hello, request n + 1 the post of the n-th reading time."""


def test_energyid_killed_after_a_post_was_acknowledged_resends_exactly_that_one(tmp_path, reliability, clean_series):
    resent = []
    for kill_at in PUSH_KILLS:
        with energyid_sandbox() as sandbox:
            work = energyid_work(tmp_path, f"kill{kill_at}", sandbox)
            assert sandbox.claim(claim_code(work))
            process = energyid_run(work)
            kill_after_requests(sandbox, process, kill_at)
            assert finish(process) < 0, "the run was not killed"
            sandbox.on_request = None
            time.sleep(0.2)  # the killed request is handled by the sandbox's thread: EnergyID accepts it
            acknowledged = sandbox.points[-1]
            assert len(sandbox.points) == kill_at - 1
            assert finish(energyid_run(work)) == 0
            assert_provider_holds_a_clean_run(sandbox, clean_series)
            assert duplicates(sandbox) == [acknowledged], "more than the one unsaved reading was sent again"
            assert len(sandbox.points) == DAYS + 1
            resent.append(acknowledged["ts"])
    assert len(set(resent)) == len(PUSH_KILLS)
    reliability.record(
        "crash consistency (provider side)",
        "energyid-webhook: SIGKILL after EnergyID accepted a reading, before the cursor was saved",
        f"{len(PUSH_KILLS)} kill points (first, second, middle, last post)",
        "exactly that one reading sent again; EnergyID's series equals a clean run's",
    )


def test_energyid_killed_at_any_moment_loses_nothing_and_resends_at_most_one(tmp_path, reliability, clean_series):
    with energyid_sandbox() as sandbox:
        work = energyid_work(tmp_path, "timing", sandbox)
        assert sandbox.claim(claim_code(work))
        started = time.monotonic()
        assert finish(energyid_run(work)) == 0
        duration = time.monotonic() - started
    fractions = [0.3, 0.45, 0.6, 0.75, 0.9]
    killed = 0
    for number, fraction in enumerate(fractions):
        with energyid_sandbox() as sandbox:
            work = energyid_work(tmp_path, f"moment{number}", sandbox)
            assert sandbox.claim(claim_code(work))
            process = energyid_run(work)
            kill_after_seconds(process, fraction * duration)
            killed += finish(process) != 0
            assert finish(energyid_run(work)) == 0
            assert_provider_holds_a_clean_run(sandbox, clean_series)
            assert len(duplicates(sandbox)) <= 1 and len(sandbox.points) <= DAYS + 1
    assert killed >= len(fractions) // 2
    reliability.record(
        "crash consistency (provider side)",
        "energyid-webhook: SIGKILL at any moment of the push, then re-run",
        f"{len(fractions)} moments ({killed} killed mid-run)",
        "no reading lost, at most one sent twice; EnergyID's series equals a clean run's",
    )


GRDF_TODAY = date(2024, 2, 20)
GRDF_ENV = {"KONNECTOR_NOW": f"{GRDF_TODAY.isoformat()}T12:00:00+01:00"}
TIERS_PCE = "GI100000000003"


def grdf_work(tmp_path: Path, name: str, sandbox: GrdfSandbox) -> Path:
    work = tmp_path / name
    work.mkdir()
    fields = {
        **sandbox.dev_config()["fields"],
        "mode": "tiers_direct",
        "pce": TIERS_PCE,
        "lastname": "Martin",
        "email": "martin@example.org",
        "postal_code": "69003",
    }
    parameters = {"informative_history_days": 40, "published_history_days": 70}
    write_json(work / "dev.json", {"fields": fields, "parameters": parameters})
    return work


def grdf(command: str, work: Path):
    return konnector(command, "grdf-adict", "--config", "dev.json", "--log-format", "json", cwd=work, env=GRDF_ENV)


def grdf_sandbox() -> GrdfSandbox:
    sandbox = GrdfSandbox()
    sandbox.today = GRDF_TODAY
    return sandbox


def declaration_flow(tmp_path: Path) -> list[str]:
    """The requests of a first Tiers Direct run, up to and including the declaration."""
    with grdf_sandbox() as sandbox:
        assert finish(grdf("run", grdf_work(tmp_path, "flow", sandbox))) == 1
        names = [f"{r.method} {r.path.rpartition('/')[2]}" for r in sandbox.requests]
    assert names[-1] == "PUT droit_acces", names
    return names


def test_grdf_killed_during_the_access_right_declaration_declares_once(tmp_path, reliability):
    flow = declaration_flow(tmp_path)
    for kill_at in range(1, len(flow) + 1):
        with grdf_sandbox() as sandbox:
            work = grdf_work(tmp_path, f"kill{kill_at}", sandbox)
            process = grdf("run", work)
            kill_after_requests(sandbox, process, kill_at)
            assert finish(process) < 0, f"the run was not killed at {flow[kill_at - 1]}"
            sandbox.on_request = None
            assert finish(grdf("run", work)) == 1  # waiting for the holder's approval
            assert len(sandbox.declarations) == 1, f"declared {len(sandbox.declarations)} times ({flow[kill_at - 1]})"
            assert len([r for r in sandbox.rights.values() if r["id_pce"] == TIERS_PCE]) == 1
            sandbox.accept(TIERS_PCE)
            assert finish(grdf("run", work)) == 0
            assert finish(grdf("delete-account", work)) == 0
            assert {r["etat_droit_acces"] for r in sandbox.rights.values() if r["id_pce"] == TIERS_PCE} == {"Révoquée"}
    reliability.record(
        "crash consistency (provider side)",
        "grdf-adict (Tiers Direct): SIGKILL at each request up to the access-right declaration, then re-run",
        f"{len(flow)} kill points ({', '.join(flow)})",
        "one declaration, one right at GRDF; collected once approved; delete-account revokes it",
    )
