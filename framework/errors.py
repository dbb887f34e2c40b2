"""Typed job errors and the Cozy error codes they end a job with.

A konnector raises one of these; the runner turns it into the final ``critical``
log line (whose message is the code) and exit status 1. Konnectors never print a
code themselves. The codes are Cozy's, so a platform that knows Cozy's codes can
show the right message and action to the user.
"""

from __future__ import annotations


class KonnectorError(Exception):
    """Base of every error that ends a job with a known code.

    ``message`` is for the person reading the logs: say what went wrong and what
    to do about it. ``no_retry`` tells the platform not to reschedule the job
    before the user acts.
    """

    code = "UNKNOWN_ERROR"
    no_retry = False

    def __init__(self, message: str = "", *, code: str | None = None) -> None:
        super().__init__(message or self.code)
        if code is not None:
            self.code = code

    @property
    def message(self) -> str:
        return str(self.args[0])


class LoginFailed(KonnectorError):
    """The credentials or identity given in the account fields are refused."""

    code = "LOGIN_FAILED"
    no_retry = True


class InvalidFields(LoginFailed):
    """An account field is missing or malformed; found before any network call."""


class UserActionNeeded(KonnectorError):
    """The user must do something at the provider (consent, terms, settings)."""

    code = "USER_ACTION_NEEDED"
    no_retry = True


class OAuthOutdated(UserActionNeeded):
    """The user's OAuth consent expired or was revoked: they must consent again."""

    code = "USER_ACTION_NEEDED.OAUTH_OUTDATED"


class ChallengeAsked(KonnectorError):
    code = "CHALLENGE_ASKED"
    no_retry = True


class VendorDown(KonnectorError):
    """The provider did not answer properly, even after retries."""

    code = "VENDOR_DOWN"


class Maintenance(KonnectorError):
    code = "MAINTENANCE"


class PartialSync(KonnectorError):
    """The job stopped before all data was collected (deadline); progress is saved."""

    code = "UNKNOWN_ERROR.PARTIAL_SYNC"


class ConfigurationError(KonnectorError):
    """The job cannot start: bad manifest, unknown konnector, missing setting."""

    code = "UNKNOWN_ERROR"
    no_retry = True


class StoreError(KonnectorError):
    """The document store refused or failed an operation."""

    code = "UNKNOWN_ERROR"


class StoreUnreachable(StoreError):
    """The store (CouchDB, cozy-stack) could not be reached, even after retries: the platform's side
    failed, not the provider's.

    Cozy has no code for this (``VENDOR_DOWN`` would tell the user their provider is down;
    ``SAVE_FILE_FAILED`` is about files), so it is a sub-code of ``UNKNOWN_ERROR`` in Cozy's
    ``TYPE.DETAIL`` form, as ``UNKNOWN_ERROR.PARTIAL_SYNC`` is: a platform that does not know it
    reads its first segment (cozy-harvest's ``KonnectorJobError`` does) and shows an unknown
    error, retried as one; logs and job documents still say the store was unreachable.
    """

    code = "UNKNOWN_ERROR.STORE_UNREACHABLE"


class PermissionDenied(StoreError):
    """A konnector touched a doctype its manifest does not grant."""

    no_retry = True


CODES = (
    "LOGIN_FAILED",
    "LOGIN_FAILED.NEEDS_SECRET",
    "LOGIN_FAILED.TOO_MANY_ATTEMPTS",
    "USER_ACTION_NEEDED",
    "USER_ACTION_NEEDED.OAUTH_OUTDATED",
    "USER_ACTION_NEEDED.ACCOUNT_REMOVED",
    "USER_ACTION_NEEDED.CHANGE_PASSWORD",
    "USER_ACTION_NEEDED.PERMISSIONS_CHANGED",
    "USER_ACTION_NEEDED.CGU_FORM",
    "USER_ACTION_NEEDED.SCA_REQUIRED",
    "USER_ACTION_NEEDED.TWOFA_EXPIRED",
    "USER_ACTION_NEEDED.WRONG_TWOFA_CODE",
    "CHALLENGE_ASKED",
    "VENDOR_DOWN",
    "MAINTENANCE",
    "NOT_EXISTING_DIRECTORY",
    "FILE_DOWNLOAD_FAILED",
    "SAVE_FILE_FAILED",
    "DISK_QUOTA_EXCEEDED",
    "TERMS_VERSION_MISMATCH",
    "UNKNOWN_ERROR",
    "UNKNOWN_ERROR.PARTIAL_SYNC",
    "UNKNOWN_ERROR.STORE_UNREACHABLE",
)
"""Every code a job may end with (Cozy's list, and :class:`StoreUnreachable`'s sub-code of its
``UNKNOWN_ERROR``); the runner refuses any other."""
