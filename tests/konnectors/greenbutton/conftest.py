"""Fixtures of the pge-smd tests: the operator's endpoint certificate and a running PG&E sandbox."""

from __future__ import annotations

import pytest
import trustme

from konnectors.greenbutton.pge_sandbox import PgeSandbox
from tests.conftest import write_json


@pytest.fixture
def operator(tmp_path):
    """The operator's TLS certificate for the notification endpoint, from its own CA."""
    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1")
    paths = {name: str(tmp_path / f"operator-{name}.pem") for name in ("ca", "cert", "key")}
    ca.cert_pem.write_to_path(paths["ca"])
    cert.cert_chain_pems[0].write_to_path(paths["cert"])
    cert.private_key_pem.write_to_path(paths["key"])
    return paths


@pytest.fixture
def pge(tmp_path, operator):
    with PgeSandbox() as sandbox:
        sandbox.notification_ca = operator["ca"]
        write_json(tmp_path / "dev.json", sandbox.dev_config())
        yield sandbox
