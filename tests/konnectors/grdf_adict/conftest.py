"""The GRDF sandbox on the tests' fixed day, for every GRDF test."""

from __future__ import annotations

import pytest

from konnectors.grdf_adict.sandbox import GrdfSandbox
from tests.konnectors.grdf_adict.test_konnector import TODAY


@pytest.fixture
def grdf():
    with GrdfSandbox() as sandbox:
        sandbox.today = TODAY
        yield sandbox
