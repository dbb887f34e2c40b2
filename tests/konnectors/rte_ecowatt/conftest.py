"""The Ecowatt sandbox on a fixed day, with its dev-config written, for every Ecowatt test."""

from __future__ import annotations

from datetime import date

import pytest

from konnectors.rte_ecowatt.sandbox import EcowattSandbox
from tests.conftest import write_json


@pytest.fixture
def ecowatt(tmp_path):
    with EcowattSandbox() as sandbox:
        sandbox.today = date(2024, 1, 15)
        write_json(tmp_path / "dev.json", sandbox.dev_config())
        yield sandbox
