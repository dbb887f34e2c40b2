"""Every built-in konnector, at debug level, with known secrets: none appears in any log line,
error, stored document (outside the encrypted field) or export."""

from __future__ import annotations

import json
import re
from datetime import date
from pathlib import Path

import pytest

from framework.manifest import load_file
from framework.testing.reliability import secret_leaks
from framework.testing.runner import run_cli
from konnectors.enedis_dataconnect.sandbox import EnedisSandbox
from konnectors.enedis_sge.sandbox import SgeSandbox
from konnectors.energyid_webhook.sandbox import EnergyIdSandbox
from konnectors.grdf_adict.sandbox import GrdfSandbox
from konnectors.greenbutton.pge_sandbox import PgeSandbox
from konnectors.meteofrance_obs.sandbox import MeteoFranceSandbox
from konnectors.rte_ecowatt.sandbox import EcowattSandbox
from tests.conftest import write_json

REPO_MANIFESTS = Path(__file__).resolve().parents[2] / "konnectors" / "manifests"
SANDBOXES = {
    "enedis-dataconnect": (EnedisSandbox, {"curve_history_days": 7, "daily_history_days": 30}),
    "enedis-sge": (SgeSandbox, {"curve_history_days": 7, "daily_history_days": 30, "max_power_history_days": 30}),
    "grdf-adict": (GrdfSandbox, {"informative_history_days": 30, "published_history_days": 30}),
    "pge-smd": (PgeSandbox, {}),
    "rte-ecowatt": (EcowattSandbox, {}),
    "meteofrance-obs": (MeteoFranceSandbox, {}),
    "energyid-webhook": (EnergyIdSandbox, {}),
}


@pytest.mark.parametrize("slug", list(SANDBOXES))
def test_no_secret_leaks_anywhere(tmp_path, reliability, slug):
    sandbox_class, parameters = SANDBOXES[slug]
    manifest = load_file(REPO_MANIFESTS / f"{slug}.json")
    with sandbox_class() as sandbox:
        if hasattr(sandbox, "today"):
            sandbox.today = date(2024, 11, 5)
        config = {**sandbox.dev_config(), "parameters": parameters}
        write_json(tmp_path / "dev.json", config)
        secrets = [v for k, v in config["fields"].items() if k in manifest.secret_fields() and isinstance(v, str)]
        secrets += [v for k, v in (config.get("oauth") or {}).items() if k != "token_type"]
        assert secrets
        now = {"KONNECTOR_NOW": "2024-11-05T12:00:00+01:00"}
        if slug == "energyid-webhook":
            _claim_the_device(sandbox, tmp_path, now)
        leaks, result = secret_leaks(slug, manifest, secrets, tmp_path, env=now)
        obtained = _bearer_tokens(sandbox.requests)
    assert result.status == 0, result.output[-2000:]
    assert any(json.loads(line)["type"] == "debug" for line in result.stdout.splitlines())
    assert leaks == [], f"{slug}: {leaks}"
    stored = (tmp_path / "konnector-data" / "store.sqlite3").read_bytes()
    for number, token in enumerate(obtained):
        assert token not in result.output, f"{slug}: token #{number} obtained mid-run is in the logs"
        assert token.encode() not in stored, f"{slug}: token #{number} obtained mid-run is stored in clear"
    reliability.record(
        "secrets",
        f"{slug} at debug level, run to success",
        f"{len(secrets)} known secret values, {len(obtained)} token(s) obtained mid-run",
        "in no log line, stored document or export",
    )


def _claim_the_device(sandbox, work: Path, env: dict) -> None:
    """EnergyID sends data only once the user claimed the device with the code of a first run."""
    first = run_cli("run", "energyid-webhook", "--config", "dev.json", cwd=work, env=env)
    code = re.search(r"enter the code (\w+)", first.output)
    assert code, first.output
    assert sandbox.claim(code.group(1))


def _bearer_tokens(requests) -> set[str]:
    """The tokens a konnector obtained during its run and then sent (``Authorization: Bearer``)."""
    found = set()
    for request in requests:
        header = {k.lower(): v for k, v in request.headers.items()}.get("authorization", "")
        if header.lower().startswith("bearer ") and len(header) > 11:
            found.add(header[7:].strip())
    return found
