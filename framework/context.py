"""What a konnector's hooks receive: fields, state, store, logger, clock, deadline."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from .accounts import Account
from .errors import PartialSync
from .handles import AccountsHandle, StoreHandle
from .http import Limiter, ProviderSession, RateLimiter, hook_from_environment, shared_limiter
from .manifest import Manifest
from .redact import Redactor, SecretDict

FENCE_HOOK_ENV = "KONNECTOR_FENCE_HOOK"


@dataclass
class Context:
    manifest: Manifest
    account: Account
    fields: dict[str, Any]
    """The account's fields, validated against the manifest."""
    parameters: dict[str, Any]
    store: StoreHandle
    """Scoped to the doctypes the manifest grants; reaches nothing else (see framework/handles.py)."""
    accounts: AccountsHandle
    """This job's own account only."""
    log: logging.Logger
    redactor: Redactor
    manual: bool = False
    deadline: float | None = None
    """``time.monotonic()`` value by which the job must have stopped, if any."""
    data_dir: Path | None = None
    clock: Callable[[], datetime] = field(default=lambda: datetime.now(UTC))
    written: dict[str, int] = field(default_factory=dict)
    """Documents written per doctype during this job."""
    progress: Callable[[dict[str, int]], None] | None = None
    """Told the running counts after each store (a terminal progress line)."""
    limiters: dict[str, Limiter] = field(default_factory=dict)
    """Rate limiters whose state is saved with the account state."""
    payload: Any = None
    """What a ``@webhook`` trigger received (``COZY_PAYLOAD``, decoded), or None."""
    locale: str | None = None
    """The person's locale under a platform (``COZY_LOCALE``), e.g. ``fr``."""
    fence: Callable[[], None] | None = None
    """Called before every state write; raises if this job may no longer write (a platform that runs
    one job per account at a time names it with ``KONNECTOR_FENCE_HOOK``: see framework/fleet)."""

    def __post_init__(self) -> None:
        self.account.secrets = SecretDict(self.redactor, self.account.secrets)
        if self.fence is None:
            self.fence = hook_from_environment(FENCE_HOOK_ENV)

    @property
    def slug(self) -> str:
        return self.manifest.slug

    @property
    def state(self) -> dict[str, Any]:
        """Persisted konnector state, in clear (bookmarks, ids)."""
        return self.account.state

    @property
    def secrets(self) -> dict[str, Any]:
        """Persisted konnector state, encrypted at rest and masked in logs (tokens)."""
        return self.account.secrets

    @property
    def platform_refresh(self) -> Callable[[], dict[str, Any]] | None:
        """Under cozy-stack, a call that has the stack refresh the account's OAuth tokens (it holds the
        application's secret and serialises refreshes) and returns ``oauth``; None elsewhere.
        Give it to :class:`~framework.oauth.OAuthClient` as ``platform_refresh``."""
        if not self.accounts.refreshes_oauth:
            return None
        return lambda: self.accounts.refresh_oauth(self.account)

    def now(self) -> datetime:
        return self.clock()

    def http(self, provider: str | None = None, **options: Any) -> ProviderSession:
        """An HTTP session for the provider, logging through this job's logger and redactor."""
        name = provider or self.slug
        options.setdefault("application", self.application)
        options.setdefault("deadline", self.deadline)
        return ProviderSession(name, redact=self.redactor, log=self.log.getChild("http"), **options)

    @property
    def application(self) -> str | None:
        """The provider application this account uses (its client id): the unit a provider's quota counts."""
        return self.fields.get("client_id") or self.fields.get("clientId")

    def rate_limit(self, name: str, count: int, seconds: float) -> Limiter:
        """A limiter of ``count`` calls per ``seconds`` that holds across runs (saved in the state)."""
        if name not in self.limiters:
            limiter = RateLimiter.per(count, seconds)
            limiter.restore(self.state.get("rate_limits", {}).get(name))
            self.limiters[name] = shared_limiter(f"{self.slug}.{name}", self.application, limiter)
        return self.limiters[name]

    def save_state(self) -> None:
        """Persist ``state`` and ``secrets`` in the account now."""
        if self.fence:
            self.fence()
        if self.limiters:
            self.state["rate_limits"] = {name: lim.snapshot() for name, lim in self.limiters.items()}
        self.accounts.save(self.account, self.manifest.secret_fields())

    def time_left(self) -> float | None:
        return None if self.deadline is None else self.deadline - time.monotonic()

    def check_deadline(self) -> None:
        """Stop the job if its time is up; progress saved so far is kept."""
        left = self.time_left()
        if left is not None and left <= 0:
            raise PartialSync(
                "stopped before the platform's time limit with data still to fetch; "
                "progress is saved and the next run resumes from it"
            )

    def count(self, written: dict[str, int]) -> None:
        for doctype, n in written.items():
            self.written[doctype] = self.written.get(doctype, 0) + n
        if self.progress:
            self.progress(self.written)
