"""Run one job: resolve the konnector, prepare its account, call its hook, report.

A job is described by a :class:`JobSpec`, built either from the platform's
environment (``COZY_FIELDS``…) or from a standalone dev-config file. Whatever
happens, the job ends with exit status 0, or 1 after one ``critical`` log line
whose message is the error code.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import signal
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Any

from . import bookmarks, dryrun
from .accounts import ENCRYPTED, Account, AccountStore
from .context import Context
from .crypto import SecretBox, SecretsUnreadable, load_key
from .errors import CODES, ConfigurationError, KonnectorError, PartialSync, StoreError
from .handles import accounts_handle, store_handle
from .logs import get_logger
from .manifest import Manifest, read_json
from .receiver import Receiver, ServeOptions
from .redact import Redactor, url_password
from .registry import load_class
from .stack import open_stack
from .stack.payload import read_payload
from .store import DEFAULT_DATA_DIR, DocumentStore, Writer, open_backend
from .store.ids import id_problem

STACK_TIME_GAP = 5.0
"""cozy-stack's COZY_TIME_LIMIT is the seconds left plus 5 (``ctxToTimeLimit``, worker/exec/common.go)."""
DEADLINE_MARGIN = 30.0
"""Seconds kept before the platform's time limit to save progress and report."""


@dataclass
class JobSpec:
    slug: str
    account_id: str
    parameters: dict[str, Any] = field(default_factory=dict)
    fields: dict[str, Any] | None = None
    """Standalone: fields from the dev-config, written into the account first."""
    manual: bool = True
    time_limit: float | None = None
    delete: bool = False
    account_rev: str | None = None
    """Platform deletion: the revision of the deleted account to read."""
    couchdb_url: str | None = None
    prefix: str = ""
    data_dir: Path | None = DEFAULT_DATA_DIR
    oauth: dict[str, Any] | None = None
    """Standalone: tokens a platform would have obtained (Cozy dev-config ``oauth``)."""
    oauth_callback_results: dict[str, Any] | None = None
    now: datetime | None = None
    """A fixed "now" for the job's clock (``KONNECTOR_NOW``): replays and tests of date logic."""
    payload: Any = None
    """The body that fired a ``@webhook`` trigger (``COZY_PAYLOAD``), if any."""
    locale: str | None = None
    job_id: str | None = None
    trigger_id: str | None = None
    stack_url: str | None = None
    """cozy-stack mode (``COZY_URL`` + ``COZY_CREDENTIALS``): every store operation goes through its API."""
    stack_credentials: str | None = None
    check: bool = False
    """``konnector check``: sign in and reach the provider, collect nothing."""
    dry_run: bool = False
    """Fetch and process, write nothing (documents, state, account)."""
    since: date | None = None
    """Re-collect from this date: the bookmark's dates are moved back to it."""
    full_refresh: bool = False
    """Re-collect everything: the bookmark is cleared."""


def _json_env(env: dict[str, str], name: str) -> Any:
    try:
        value = json.loads(env.get(name) or "{}")
    except json.JSONDecodeError as exc:
        raise ConfigurationError(f"{name} is not valid JSON: {exc.msg}") from exc
    return {} if value is None else value  # cozy-stack sends "null" for a manifest without parameters


def fixed_now(env: dict[str, str]) -> datetime | None:
    """``KONNECTOR_NOW`` (ISO 8601 with an offset) as the job's clock, if set."""
    value = env.get("KONNECTOR_NOW")
    if not value:
        return None
    try:
        now = datetime.fromisoformat(value)
    except ValueError:
        raise ConfigurationError(f"KONNECTOR_NOW is not an ISO 8601 date-time: {value!r}") from None
    if now.utcoffset() is None:
        raise ConfigurationError("KONNECTOR_NOW needs a UTC offset, e.g. 2024-03-31T12:00:00+02:00")
    return now


def spec_from_environment(env: dict[str, str], slug: str | None) -> JobSpec:
    """A platform job: ``COZY_FIELDS`` names the account; the store is cozy-stack's data API
    (``COZY_URL`` + ``COZY_CREDENTIALS``) or, self-hosted, ``COUCHDB_URL``."""
    cozy_fields = _json_env(env, "COZY_FIELDS")
    account_id = cozy_fields.get("account")
    slug = slug or cozy_fields.get("konnector")
    if not account_id or not slug:
        raise ConfigurationError("COZY_FIELDS must give 'account' (and 'konnector' when no SLUG is given)")
    stack = bool(env.get("COZY_URL") and env.get("COZY_CREDENTIALS"))
    if not stack and not env.get("COUCHDB_URL"):
        raise ConfigurationError("a platform job needs a store: set COZY_URL + COZY_CREDENTIALS, or COUCHDB_URL")
    limit = env.get("COZY_TIME_LIMIT")
    try:
        time_limit = float(limit) if limit else None
    except ValueError:
        raise ConfigurationError(f"COZY_TIME_LIMIT is not a number of seconds: {limit!r}") from None
    if stack and time_limit is not None:
        time_limit = max(time_limit - STACK_TIME_GAP, 0.0)
    return JobSpec(
        slug=slug,
        account_id=account_id,
        parameters=_json_env(env, "COZY_PARAMETERS"),
        manual=env.get("COZY_JOB_MANUAL_EXECUTION") == "true",
        time_limit=time_limit,
        delete=bool(cozy_fields.get("account_deleted")),
        account_rev=cozy_fields.get("account_rev"),
        couchdb_url=None if stack else env["COUCHDB_URL"],
        prefix=env.get("KONNECTOR_DB_PREFIX", ""),
        data_dir=None,
        now=fixed_now(env),
        payload=read_payload(env.get("COZY_PAYLOAD")),
        locale=env.get("COZY_LOCALE") or None,
        job_id=env.get("COZY_JOB_ID") or None,
        trigger_id=env.get("COZY_TRIGGER_ID") or None,
        stack_url=env["COZY_URL"] if stack else None,
        stack_credentials=env["COZY_CREDENTIALS"] if stack else None,
    )


def read_dev_config(path: Path) -> dict[str, Any]:
    """Cozy's ``konnector-dev-config.json`` shape: ``{"fields": {...}, "parameters"?: {...}}``."""
    config = read_json(path)
    if not isinstance(config, dict) or not isinstance(config.get("fields", {}), dict):
        raise ConfigurationError(f"config {path} must be an object with a 'fields' object")
    return config


@dataclass
class JobResult:
    """How a job ended: documents written per doctype, and the error if it failed."""

    written: dict[str, int] = field(default_factory=dict)
    error: KonnectorError | None = None
    dry_run: dryrun.Recorder | None = None
    """In a dry run, what would have been stored (the caller prints, dumps and closes it)."""

    @property
    def status(self) -> int:
        return 0 if self.error is None else 1


def run(
    spec: JobSpec,
    manifest: Manifest,
    redactor: Redactor,
    progress: Callable[[dict[str, int]], None] | None = None,
) -> JobResult:
    """Run the job; a failure is logged (one ``critical`` line with its code) and returned."""
    log = get_logger(spec.slug)
    started = time.monotonic()
    result = JobResult()
    ctx: Context | None = None
    try:
        ctx, konnector = prepare(spec, manifest, redactor, log, started)
        ctx.progress = progress
        result.written = ctx.written
        kind = "manual" if spec.manual else "scheduled"
        log.info(f"{kind} {'deletion' if spec.delete else 'run'} for account {spec.account_id}")
        if spec.job_id:
            log.info(f"job {spec.job_id}, trigger {spec.trigger_id or 'none'}")
        if spec.delete:
            konnector.on_delete_account(ctx)
            if spec.account_rev is None:
                ctx.accounts.delete(ctx.account)
            log.info("account deleted")
        elif spec.check:
            log.info(f"check passed: {konnector.check(ctx)}")
            ctx.save_state()
        else:
            if spec.dry_run:
                result.dry_run = dryrun.attach(ctx, konnector)
            konnector.start(ctx)
            ctx.state[LAST_RUN] = _last_run(ctx, konnector)
            ctx.save_state()
            done = _summary(ctx.written, time.monotonic() - started)
            log.info(f"dry run {done.partition(':')[0]}: nothing written" if spec.dry_run else done)
    except KonnectorError as error:
        result.error = error
    except Interrupted as stop:
        result.error = stop.error()
    except OSError as error:
        result.error = ConfigurationError(f"{error.strerror or type(error).__name__}: {error.filename or error}")
    except Exception as error:
        log.error(f"unexpected {type(error).__name__}: {error}", exc_info=bool(os.environ.get(DEBUG_ENV)))
        result.error = KonnectorError()
    if result.error is not None:
        with ignoring_signals():
            report_failure(log, result.error)
            _remember_failure(ctx, result.error, spec)
    return result


DEBUG_ENV = "KONNECTOR_DEBUG"
"""Set, an unexpected error's traceback is logged too; otherwise never (one line per failure)."""


class Interrupted(BaseException):
    """SIGINT or SIGTERM reached the job. A BaseException, like KeyboardInterrupt, so that no
    konnector's ``except Exception`` swallows it; the runner turns it into one PartialSync report."""

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum

    def error(self) -> PartialSync:
        name = signal.Signals(self.signum).name
        return PartialSync(f"stopped by {name}: what was stored is kept and the next run resumes from it")


def stop_on_signals() -> None:
    """From now on, SIGINT and SIGTERM (what a platform sends first) stop the job with :class:`Interrupted`."""

    def interrupt(signum: int, _frame: Any) -> None:
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # one stop, one report: a second signal is ignored
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        raise Interrupted(signum)

    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGINT, interrupt)
        signal.signal(signal.SIGTERM, interrupt)


@contextlib.contextmanager
def ignoring_signals() -> Iterator[None]:
    """No signal interrupts the final report (exactly one ``critical`` line)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    saved = signal.signal(signal.SIGINT, signal.SIG_IGN), signal.signal(signal.SIGTERM, signal.SIG_IGN)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, saved[0])
        signal.signal(signal.SIGTERM, saved[1])


LAST_RUN = "last_run"
"""Account state key: when the last run ended and how (a report says why a run wrote nothing)."""


def _last_run(ctx: Context, konnector: Any) -> dict[str, Any]:
    return {
        "at": ctx.now().isoformat(timespec="seconds"),
        "written": sum(ctx.written.values()),
        "offered": sum(getattr(konnector, "offered", {}).values()),
    }


def _remember_failure(ctx: Context | None, error: KonnectorError, spec: JobSpec) -> None:
    """Best effort: the failed run's code in the state (a store failure cannot be remembered in the store)."""
    if ctx is None or spec.dry_run or spec.check or spec.delete or isinstance(error, StoreError):
        return
    ctx.state[LAST_RUN] = {"at": ctx.now().isoformat(timespec="seconds"), "error": error.code}
    try:
        ctx.save_state()
    except Exception as failure:
        ctx.log.debug(f"could not remember the failure in the account state: {failure}")


def serve(spec: JobSpec, manifest: Manifest, redactor: Redactor, options: ServeOptions) -> int:
    """Run the konnector's notification receiver until stopped (``konnector serve``)."""
    log = get_logger(spec.slug)
    try:
        ctx, konnector = prepare(spec, manifest, redactor, log, time.monotonic())
        receiver = Receiver(konnector, ctx, options)
    except KonnectorError as error:
        return report_failure(log, error)
    except OSError as error:
        return report_failure(log, ConfigurationError(f"cannot listen on {options.host}:{options.port}: {error}"))
    try:
        receiver.serve_forever()
    except KeyboardInterrupt:
        log.info("stopped")
    finally:
        receiver.stop()
    return 0


def report_failure(log: logging.Logger, error: KonnectorError) -> int:
    """Log the error's message, then the one ``critical`` line holding its code; return 1."""
    code = error.code if error.code in CODES else "UNKNOWN_ERROR"
    if error.message != code:
        log.error(error.message)
    log.critical(code, extra={"no_retry": error.no_retry})
    return 1


def _summary(written: dict[str, int], seconds: float) -> str:
    if not written:
        return f"done in {seconds:.1f} s: nothing new to write"
    parts = ", ".join(f"{n} {doctype}" for doctype, n in sorted(written.items()))
    return f"done in {seconds:.1f} s: wrote {parts}"


def prepare(
    spec: JobSpec, manifest: Manifest, redactor: Redactor, log: logging.Logger, started: float
) -> tuple[Context, Any]:
    """The job's context and konnector instance, fields validated, nothing run yet."""
    redactor.add([url_password(spec.couchdb_url or ""), spec.stack_credentials or ""])
    if problem := id_problem(spec.account_id):
        raise ConfigurationError(f"account id {spec.account_id[:80]!r} is refused: {problem}")
    stack = open_stack(spec.stack_url, spec.stack_credentials or "") if spec.stack_url else None
    if stack:
        redactor.add([stack.credentials.token])
    try:
        backend = stack.backend if stack else open_backend(spec.couchdb_url, spec.data_dir, spec.prefix)
    except OSError as error:
        raise ConfigurationError(
            f"cannot use the data directory {spec.data_dir}: {error.strerror or error}; "
            "give a writable one with --data-dir"
        ) from None
    writer = Writer(app=manifest.slug, version=manifest.version, source_account=spec.account_id)
    root = DocumentStore(backend, writer)
    accounts = stack.accounts(root) if stack else AccountStore(root, SecretBox(load_key(spec.data_dir, sealed(root))))
    account = _account(spec, manifest, accounts)
    secret_fields = manifest.secret_fields()
    redactor.add(account.secret_values(secret_fields))
    for warning in manifest.unknown_keys(account.auth, spec.parameters):
        log.warning(warning)
    fields = manifest.validate_fields(account.auth)
    parameters = manifest.validate_parameters(spec.parameters)
    konnector_class = load_class(manifest)
    ctx = Context(
        manifest=manifest,
        account=account,
        fields=fields,
        parameters=parameters,
        store=store_handle(root.scoped(permissions_of(manifest), writer)),
        accounts=accounts_handle(accounts, account.id),
        log=log,
        redactor=redactor,
        manual=spec.manual,
        deadline=stack.deadline(_deadline(spec.time_limit, started)) if stack else _deadline(spec.time_limit, started),
        data_dir=spec.data_dir,
        payload=spec.payload,
        locale=spec.locale,
    )
    if spec.now is not None:
        ctx.clock = _fixed_clock(spec.now)
    if done := bookmarks.apply(ctx.state, spec.since, spec.full_refresh, manifest.slug):
        log.info(done)
    return ctx, konnector_class()


def _fixed_clock(now: datetime) -> Callable[[], datetime]:
    """A clock that closes over the time alone (a closure over the spec would hand a konnector its store URL)."""
    return lambda: now


def sealed(root: DocumentStore) -> Callable[[], bool]:
    """Whether the store holds any account with sealed secrets (then a lost key is not re-created)."""
    return lambda: bool(root.find("io.cozy.accounts", {ENCRYPTED: {"$exists": True}}, limit=1))


def _account(spec: JobSpec, manifest: Manifest, accounts: AccountStore) -> Account:
    if spec.fields is None:
        return accounts.load(spec.account_id, spec.account_rev)
    try:
        found = accounts.find(spec.account_id)
    except SecretsUnreadable:
        get_logger(spec.slug).warning(
            "the account's stored secrets cannot be read with this key: they are replaced by the credentials "
            "given in the config (cached tokens are dropped)"
        )
        found = accounts.find_without_secrets(spec.account_id)
    account = found or Account(spec.account_id, manifest.slug)
    account.auth = dict(spec.fields)
    if spec.oauth and not account.oauth:
        account.oauth = dict(spec.oauth)
    if spec.oauth_callback_results:
        account.extra["oauth_callback_results"] = dict(spec.oauth_callback_results)
    if not spec.dry_run:
        accounts.save(account, manifest.secret_fields())
    return account


def permissions_of(manifest: Manifest) -> dict[str, frozenset[str]]:
    granted: dict[str, frozenset[str]] = {}
    for permission in manifest.data["permissions"].values():
        verbs = frozenset(permission.get("verbs", ["ALL"]))
        granted[permission["type"]] = granted.get(permission["type"], frozenset()) | verbs
    return granted


def _deadline(time_limit: float | None, started: float) -> float | None:
    """When the job must stop: the platform's limit counts from the process start (interpreter
    and imports included), so that is where ours counts from too, less a margin to save and report."""
    if time_limit is None:
        return None
    return min(started, process_started()) + time_limit - min(DEADLINE_MARGIN, time_limit * 0.1)


def process_started() -> float:
    """``time.monotonic()`` at this process's start (Linux ``/proc``; elsewhere: now)."""
    try:
        fields = Path("/proc/self/stat").read_text().rpartition(")")[2].split()
        uptime = float(Path("/proc/uptime").read_text().split()[0])
        age = uptime - int(fields[19]) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return time.monotonic()
    return time.monotonic() - max(0.0, age)
