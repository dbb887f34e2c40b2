"""cozy-stack's retry rules for fleet jobs (framework/fleet/jobs.py), on the codes themselves."""

from __future__ import annotations

import pytest

from framework.errors import StoreUnreachable, VendorDown
from framework.fleet.jobs import MAX_ATTEMPTS, blocks_automatic_runs, retry_delay


@pytest.mark.parametrize("code", [VendorDown.code, StoreUnreachable.code])
def test_transient_codes_are_retried_with_a_doubling_then_bounded_wait(code):
    delays = [retry_delay(code, attempt, 60) for attempt in range(1, MAX_ATTEMPTS + 1)]
    assert delays[:-1] == [60 * 2**n for n in range(MAX_ATTEMPTS - 1)]
    assert delays[-1] is None  # the last attempt is final


@pytest.mark.parametrize(
    "code", ["LOGIN_FAILED", "LOGIN_FAILED.TOO_MANY_ATTEMPTS", "USER_ACTION_NEEDED", "UNKNOWN_ERROR", None]
)
def test_other_codes_are_never_retried(code):
    assert retry_delay(code, 1, 60) is None


def test_only_a_person_unblocks_login_and_user_action_codes_but_cgu_form():
    assert blocks_automatic_runs("LOGIN_FAILED") and blocks_automatic_runs("USER_ACTION_NEEDED.OAUTH_OUTDATED")
    assert not blocks_automatic_runs("USER_ACTION_NEEDED.CGU_FORM")
    assert not blocks_automatic_runs(StoreUnreachable.code) and not blocks_automatic_runs(None)
