"""HTTP for konnectors: one session per provider with timeouts, retries, limits and redaction.

Every request has a connect and read timeout. Connection errors, timeouts and
5xx answers are retried with exponential backoff and jitter, within a bounded
number of attempts and a bounded total time; a 429 waits what ``Retry-After``
says (seconds or an HTTP date), or backs off, and pauses every call of the
session's limiter as long (the quota is the application's). A token bucket, taken
when a request is sent (not before it is prepared), keeps requests
within the provider's quota; a limiter hook (``KONNECTOR_LIMITER_HOOK``) may
replace it by one shared with other processes (fleet mode: Redis). TLS verification cannot be turned off (a CA
bundle may be given, for sandboxes), plain HTTP is allowed only to loopback,
and the debug log of each exchange goes through the job's redactor.

Hard limits: a body is read in pieces of at most one socket read each, so that
a try never outlives its own time budget (``RetryPolicy.per_try``: connect,
headers and body together, whatever the pace of the body) nor the job's
deadline (then the run stops with ``PartialSync``); and it never grows past the
session's ``max_body`` (``VendorDown`` as soon as the size, announced or read,
is over it; ``KONNECTOR_MAX_BODY_MB`` overrides the default). A transport fault
at any point (reset, truncated or undecodable body, a TLS fault once the answer is
coming, DNS) is
retried like a timeout, then ends in ``VendorDown`` with one line.
"""

from __future__ import annotations

import contextlib
import email.utils
import importlib
import ipaddress
import logging
import os
import random
import re
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Protocol
from urllib.parse import urljoin, urlsplit

import requests
import requests.adapters
import urllib3.connection
import urllib3.exceptions

from .errors import ConfigurationError, KonnectorError, LoginFailed, PartialSync, VendorDown
from .logs import get_logger


@dataclass(frozen=True)
class RetryPolicy:
    attempts: int = 5
    """Tries in all, the first included."""
    backoff: float = 0.5
    """First wait in seconds; doubled at each retry, with jitter."""
    max_wait: float = 30.0
    total: float = 120.0
    """No retry starts once this many seconds have passed since the first try."""
    on_429: bool = True
    """Wait and retry a 429; False returns it to the caller (a quota counted in minutes)."""
    per_try: float = 300.0
    """Seconds one try may take in all: connect, headers and the whole body (a trickled body included)."""

    def wait(self, retry: int) -> float:
        return min(self.max_wait, self.backoff * 2**retry) * random.uniform(0.5, 1.0)


class RateLimiter:
    """A token bucket: ``rate`` requests per second on average, bursts up to ``capacity``.

    Its state can be saved in the account state and restored, so a quota such
    as "one call per 15 minutes" holds across runs (wall-clock time is used).

    Threads are served first come, first served, and a token is taken when its
    thread actually goes (a session takes it as it sends): with ``capacity=1``
    the next call waits a full ``1 / rate`` after the previous one went, however
    late that one was, so lateness never bunches calls together. In first-come
    order, calls queued in order go out in order (:class:`Prefetch`'s answers are
    consumed in that order: a call that kept losing the race would hold them up).
    """

    def __init__(
        self,
        rate: float,
        capacity: float = 1.0,
        *,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.rate, self.capacity = rate, capacity
        self.clock, self.sleep = clock, sleep
        self.tokens, self.updated = capacity, clock()
        self._lock = threading.Lock()
        self._waiting: list[object] = []
        self._sending: int | None = None
        """The thread whose request took a token and is not out yet (:meth:`sending`)."""

    @classmethod
    def per(cls, count: int, seconds: float, **kwargs: Any) -> RateLimiter:
        """``count`` requests per ``seconds`` (e.g. ``per(50, 60)`` for 50 a minute)."""
        return cls(count / seconds, capacity=count, **kwargs)

    def _refill(self) -> None:
        now = self.clock()
        self.tokens = min(self.capacity, self.tokens + (now - self.updated) * self.rate)
        self.updated = now

    def wait_time(self) -> float:
        """Seconds before a request may be sent (more if other threads are waiting already)."""
        with self._lock:
            self._refill()
            return max(0.0, (1 + len(self._waiting) - self.tokens) / self.rate)

    def acquire(self) -> float:
        """Take a token, after the threads that came first, sleeping until there is one; return the seconds slept."""
        me = object()
        waited = 0.0
        with self._lock:
            self._waiting.append(me)
        try:
            while True:
                with self._lock:
                    self._refill()
                    ahead = self._waiting.index(me)
                    sending = self._sending not in (None, threading.get_ident())
                    if not sending and self.tokens - ahead >= 1:  # a token for me and one for each before me
                        self.tokens -= 1
                        return waited
                    delay = max((1 + ahead - self.tokens) / self.rate, 0.001 if sending else 0.0)
                self.sleep(delay)
                waited += delay
        finally:
            with self._lock:
                self._waiting.remove(me)

    @contextlib.contextmanager
    def sending(self) -> Iterator[Callable[[], None]]:
        """Take a token for a request about to be sent; call what is yielded once its bytes are out.

        The spacing then counts from that moment, not from the take: a thread held up between
        the two (a busy interpreter, a loaded machine) would otherwise send right behind the
        next call, and a provider counts arrivals. Until then no other thread takes a token.
        """
        self.acquire()
        with self._lock:
            self._sending, taken = threading.get_ident(), self.tokens

        def written() -> None:
            with self._lock:
                if self._sending == threading.get_ident():
                    self._sending = None
                    self._refill()
                    self.tokens = min(self.tokens, taken)

        try:
            yield written
        finally:
            written()

    def hold(self, seconds: float) -> None:
        """Allow no request for ``seconds`` (the provider said so, e.g. with ``Retry-After``)."""
        with self._lock:
            self._refill()
            self.tokens = min(self.tokens, 1 - seconds * self.rate)

    def snapshot(self) -> dict[str, float]:
        with self._lock:
            self._refill()
            return {"tokens": self.tokens, "updated": self.updated}

    def restore(self, saved: dict[str, float] | None) -> None:
        if saved:
            with self._lock:
                self.tokens, self.updated = float(saved["tokens"]), float(saved["updated"])
                self._refill()


class Limiter(Protocol):
    """What a session needs of a limiter: :class:`RateLimiter`, or one shared by a fleet of workers."""

    def acquire(self) -> float: ...
    def wait_time(self) -> float: ...
    def hold(self, seconds: float) -> None: ...
    def snapshot(self) -> dict[str, float]: ...
    def restore(self, saved: dict[str, float] | None) -> None: ...


LimiterHook = Callable[[str, "str | None", RateLimiter], Limiter]
"""``(provider, application, local limiter) -> limiter``: lets many processes share one quota."""

LIMITER_HOOK_ENV = "KONNECTOR_LIMITER_HOOK"
_limiter_hook: LimiterHook | None = None


def set_limiter_hook(hook: LimiterHook | None) -> None:
    """Install (or, with None, remove) the hook every limiter goes through."""
    global _limiter_hook
    _limiter_hook = hook


def shared_limiter(provider: str, application: str | None, limiter: RateLimiter) -> Limiter:
    """The limiter a session uses: ``limiter`` itself, or what the installed hook makes of it.

    The quota of a provider is per application (``client_id``), shared by every
    account; a process alone keeps it with its own bucket, a fleet of workers
    needs one bucket for all. The hook is installed with :func:`set_limiter_hook`
    or named by ``KONNECTOR_LIMITER_HOOK`` (``module:function``), which is how a
    platform turns it on in the job processes it starts.
    """
    global _limiter_hook
    if _limiter_hook is None:
        _limiter_hook = hook_from_environment(LIMITER_HOOK_ENV)
    return limiter if _limiter_hook is None else _limiter_hook(provider, application, limiter)


def hook_from_environment(variable: str) -> Callable[..., Any] | None:
    """The function named ``module:function`` by the environment ``variable``, if it is set."""
    if not (name := os.environ.get(variable)):
        return None
    module, _, attribute = name.partition(":")
    try:
        return getattr(importlib.import_module(module), attribute)
    except (ImportError, AttributeError) as exc:
        raise ConfigurationError(f"{variable}={name!r} names no function ({exc})") from None


def retry_after(response: requests.Response, now: float | None = None) -> float | None:
    """Seconds a 429/503 asks to wait, from ``Retry-After`` (seconds or HTTP date)."""
    value = response.headers.get("Retry-After", "").strip()
    if not value:
        return None
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


DEFAULT_MAX_BODY = 64 * 1024 * 1024
MAX_BODY_ENV = "KONNECTOR_MAX_BODY_MB"
PIECE = 64 * 1024
TRANSPORT_FAULTS = (
    requests.ConnectionError,
    requests.Timeout,
    requests.exceptions.ChunkedEncodingError,
    requests.exceptions.ContentDecodingError,
    urllib3.exceptions.HTTPError,
    OSError,
)
"""What a broken connection raises, while connecting or while the body is read."""


class _TryTimeout(requests.Timeout):
    """A try used up its time budget while the body was still coming."""


def max_body_default() -> int:
    """The body size cap of a session that names none: ``KONNECTOR_MAX_BODY_MB`` or 64 MiB."""
    value = os.environ.get(MAX_BODY_ENV)
    if not value:
        return DEFAULT_MAX_BODY
    try:
        return int(float(value) * 1024 * 1024)
    except ValueError:
        raise ConfigurationError(f"{MAX_BODY_ENV} is not a number of MiB: {value!r}") from None


def server_error(response: requests.Response) -> bool:
    return response.status_code >= 500


def _tls_error(provider: str, exc: requests.exceptions.SSLError) -> KonnectorError:
    """TLS failures while connecting are not retried: an untrusted server, or a refused client
    certificate. (A TLS fault once the answer is coming is a transport fault, retried.)"""
    reason = str(exc.args[0] if exc.args else exc)
    if "CERTIFICATE_VERIFY_FAILED" in reason:
        return VendorDown(f"{provider}: the server's certificate is not trusted; nothing was sent ({reason[-160:]})")
    return LoginFailed(f"{provider}: the TLS handshake failed; check the client certificate and key ({reason[-160:]})")


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


_written = threading.local()
"""What a request of this thread calls once its bytes are written: its limiter's ``written``."""


class _CallsWritten:
    """A connection that tells the request's limiter when the request is out (headers and body)."""

    def request(self, *args: Any, **kwargs: Any) -> None:
        super().request(*args, **kwargs)  # type: ignore[misc]
        hook, _written.hook = getattr(_written, "hook", None), None
        if hook is not None:
            hook()


class _HTTPConnection(_CallsWritten, urllib3.connection.HTTPConnection):
    pass


class _HTTPSConnection(_CallsWritten, urllib3.connection.HTTPSConnection):
    pass


class _HTTPPool(urllib3.HTTPConnectionPool):
    ConnectionCls = _HTTPConnection


class _HTTPSPool(urllib3.HTTPSConnectionPool):
    ConnectionCls = _HTTPSConnection


class _Adapter(requests.adapters.HTTPAdapter):
    """requests' adapter on connections that report when a request is written."""

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = {"http": _HTTPPool, "https": _HTTPSPool}


class ProviderSession(requests.Session):
    """A ``requests.Session`` that a konnector (or zeep) uses to talk to one provider."""

    def __init__(
        self,
        provider: str,
        *,
        base_url: str | None = None,
        timeout: tuple[float, float] = (10, 60),
        retry: RetryPolicy | None = None,
        limiter: RateLimiter | None = None,
        application: str | None = None,
        cert: tuple[str, str] | None = None,
        ca_bundle: str | None = None,
        redact: Callable[[str], str] = str,
        log: logging.Logger | None = None,
        sleep: Callable[[float], None] = time.sleep,
        deadline: float | None = None,
        max_body: int | None = None,
    ) -> None:
        super().__init__()
        self.mount("https://", _Adapter())
        self.mount("http://", _Adapter())
        self.provider = provider
        self.base_url = base_url
        self.timeout = timeout
        self.retry = retry or RetryPolicy()
        self.limiter = None if limiter is None else shared_limiter(provider, application, limiter)
        """The quota of ``application`` (its client id) at this provider; see :func:`shared_limiter`."""
        self.cert = cert
        self.verify = ca_bundle or True
        self.redact = redact
        self.log = log or get_logger(f"http.{provider}")
        self.sleep = sleep
        self.transient: Callable[[requests.Response], bool] = server_error
        """Which answers are outages worth retrying (a SOAP client narrows it: faults are answers)."""
        self.deadline = deadline
        """``time.monotonic()`` by which the job must stop (``ctx.deadline``): no read goes past it."""
        self.max_body = max_body or max_body_default()
        """Largest body accepted, in bytes, decoded (a compressed bomb counts at its real size)."""

    def request(self, method: str, url: str, *args: Any, **kwargs: Any) -> requests.Response:  # type: ignore[override]
        """Send with retries; return the response, or raise :class:`VendorDown` when retries run out.

        Pass ``idempotent=False`` for a request with side effects (ordering a
        service): it is then retried only when the connection was never made.
        """
        method = method.upper()
        url = urljoin(self.base_url, url) if self.base_url else url
        self._check_url(url)
        if kwargs.get("verify") is False:
            raise ConfigurationError("TLS verification cannot be turned off; give a CA bundle instead")
        kwargs.setdefault("timeout", self.timeout)
        kwargs.setdefault("verify", self.verify)  # so that REQUESTS_CA_BUNDLE cannot replace ours
        idempotent = kwargs.pop("idempotent", True)
        kwargs.pop("stream", None)  # bodies are always read here, within the limits
        timeout = kwargs.pop("timeout")
        started = time.monotonic()
        tried: list[str] = []
        for attempt in range(self.retry.attempts):
            self._before_try(method, url, tried)
            end = self._try_end()
            try:
                response = super().request(
                    method, url, *args, stream=True, timeout=self._timeouts(timeout, end), **kwargs
                )
                self._read_body(response, method, url, end, timeout)
            except requests.exceptions.SSLError as exc:
                raise _tls_error(self.provider, exc) from None
            except requests.ConnectTimeout as exc:
                outcome, wait, response = f"connect timeout ({exc.__class__.__name__})", None, None
            except TRANSPORT_FAULTS as exc:
                outcome, wait, response = self._transport_fault(exc, idempotent, method, url)
            else:
                self._debug(method, url, response, time.monotonic() - started)
                if response.status_code == 429 and self.retry.on_429:
                    outcome, wait = "429 Too Many Requests", retry_after(response)
                    wait = self.retry.wait(attempt) if wait is None else wait
                    if self.limiter and wait:
                        # The quota is the application's: every call pauses, not only this one's retry
                        # (others sent meanwhile would be refused too, and may count against the quota).
                        # Shared limiter: every worker of this application pauses.
                        self.limiter.hold(wait)
                elif idempotent and self.transient(response):
                    outcome, wait = f"{response.status_code} {response.reason}", retry_after(response)
                else:
                    return response
            tried.append(outcome)
            wait = self.retry.wait(attempt) if wait is None else wait
            last = attempt == self.retry.attempts - 1
            if last or time.monotonic() - started + wait > self.retry.total:
                break
            if self.deadline is not None and time.monotonic() + wait >= self.deadline:
                raise self._out_of_time(method, url, tried)
            self.log.info(f"{self.provider}: {outcome} on {method} {self._path(url)}; retrying in {wait:.1f} s")
            self.sleep(wait)
        raise self._down(method, url, tried, time.monotonic() - started)

    def send(self, request: requests.PreparedRequest, **kwargs: Any) -> requests.Response:  # type: ignore[override]
        """Send one prepared request, a redirect's included; the quota's token is taken here.

        As late as possible before the bytes go out, and the spacing counted from when they are
        (:meth:`RateLimiter.sending`): a provider counts a call when it arrives, so a token taken
        earlier (before preparing the request, under a busy interpreter) leaves a gap of the
        client's own making between the spacing kept and the spacing seen.
        """
        sending = getattr(self.limiter, "sending", None)
        if sending is None:  # no limiter, or a hook's without sending()
            if self.limiter:
                self.limiter.acquire()
            return super().send(request, **kwargs)
        with sending() as written:
            _written.hook = written
            try:
                return super().send(request, **kwargs)
            finally:
                _written.hook = None

    def _transport_fault(self, exc: BaseException, idempotent: bool, method: str, url: str) -> tuple[str, None, None]:
        """The outcome of a try that a transport fault broke; raised at once when it may not be retried."""
        if isinstance(exc, PartialSync | VendorDown):
            raise exc
        name = _fault_name(exc)
        if not idempotent and not isinstance(exc, requests.ConnectTimeout):
            raise self._down(method, url, [f"{name} (not retried: not idempotent)"]) from None
        return name, None, None

    def _before_try(self, method: str, url: str, tried: list[str]) -> None:
        """Stop the job rather than start a try (or wait for the quota) that the deadline would cut."""
        if self.deadline is None:
            return
        wait = self.limiter.wait_time() if self.limiter else 0.0
        if time.monotonic() + wait >= self.deadline:
            raise self._out_of_time(method, url, tried)

    def _try_end(self) -> float:
        end = time.monotonic() + self.retry.per_try
        return end if self.deadline is None else min(end, self.deadline)

    @staticmethod
    def _timeouts(timeout: Any, end: float) -> tuple[float, float]:
        """The (connect, read) timeouts of a try, never beyond its end."""
        connect, read = timeout if isinstance(timeout, tuple) else (timeout, timeout)
        left = max(0.01, end - time.monotonic())
        return (min(connect or left, left), min(read or left, left))

    def _read_body(self, response: requests.Response, method: str, url: str, end: float, timeout: Any) -> None:
        """Read the whole body now, one socket read at a time, within the size cap and the try's end."""
        announced = response.headers.get("Content-Length", "")
        if announced.isdigit() and int(announced) > self.max_body:
            response.close()
            raise self._too_large(method, url, int(announced))
        read_timeout = timeout[1] if isinstance(timeout, tuple) else timeout
        pieces: list[bytes] = []
        size = 0
        try:
            while True:
                left = end - time.monotonic()
                if left <= 0:
                    if self.deadline is not None and end >= self.deadline:
                        raise self._out_of_time(method, url, [])
                    raise _TryTimeout(f"the body took more than {self.retry.per_try:.0f} s")
                _set_socket_timeout(response.raw, min(read_timeout or left, left))
                piece = response.raw.read1(PIECE, decode_content=True)
                if not piece:
                    break
                size += len(piece)
                if size > self.max_body:
                    raise self._too_large(method, url, size)
                pieces.append(piece)
        except BaseException:
            response.close()
            raise
        response._content = b"".join(pieces)
        response._content_consumed = True
        response.close()

    def _too_large(self, method: str, url: str, size: int) -> VendorDown:
        mib = self.max_body / 1024 / 1024
        return VendorDown(
            f"{self.provider} answered {method} {self._path(url)} with more than {mib:.0f} MiB "
            f"({size} bytes seen); refused before reading it into memory"
        )

    def _out_of_time(self, method: str, url: str, tried: list[str]) -> PartialSync:
        during = f" ({'; '.join(tried)})" if tried else ""
        return PartialSync(
            f"{self.provider}: {method} {self._path(url)} stopped at the job's time limit{during}; "
            "progress is saved and the next run resumes from it"
        )

    def _check_url(self, url: str) -> None:
        parts = urlsplit(url)
        if parts.scheme == "https" or (parts.scheme == "http" and _is_loopback(parts.hostname or "")):
            return
        raise ConfigurationError(f"{self.provider}: refusing {parts.scheme}:// to {parts.hostname}: use https")

    def _path(self, url: str) -> str:
        return self.redact(urlsplit(url).path)

    def _down(self, method: str, url: str, tried: list[str], seconds: float = 0.0) -> VendorDown:
        attempts = "; ".join(f"{n + 1}: {outcome}" for n, outcome in enumerate(tried))
        return VendorDown(
            f"{self.provider} did not answer {method} {self._path(url)} properly after "
            f"{len(tried)} attempt(s) in {seconds:.1f} s ({attempts}); try again later"
        )

    def _debug(self, method: str, url: str, response: requests.Response, seconds: float) -> None:
        if self.log.isEnabledFor(logging.DEBUG):
            sent = dict(response.request.headers)
            body = response.text[:500] if response.content else ""
            if body and _exchanges_credentials(response.request):
                body = f"({len(response.content)} bytes not logged: the answer to a credentials exchange)"
            self.log.debug(
                self.redact(f"{method} {url} -> {response.status_code} in {seconds:.2f} s; sent {sent}; got {body}")
            )


_CREDENTIAL_FORM = re.compile(rb"(^|&)(grant_type|client_secret|password|refresh_token|code)=")


def _exchanges_credentials(request: requests.PreparedRequest) -> bool:
    """Whether a request sends credentials (Basic auth, an OAuth or password form): its answer is
    then a token in whatever form (JSON, XML, a bare string) and is never written to a log, since
    it is printed before the konnector has read the token and registered it for redaction."""
    if str(request.headers.get("Authorization", "")).lower().startswith("basic "):
        return True
    body = request.body if isinstance(request.body, bytes) else str(request.body or "").encode()
    return bool(_CREDENTIAL_FORM.search(body[:4096]))


def _fault_name(exc: BaseException) -> str:
    """A transport fault in a few words: its class, and the root cause's class when it says more."""
    name = exc.__class__.__name__
    cause = exc.__context__ or exc.__cause__
    while cause is not None and (cause.__context__ or cause.__cause__) is not None:
        cause = cause.__context__ or cause.__cause__
    if cause is not None and cause.__class__.__name__ != name:
        return f"{name} ({cause.__class__.__name__})"
    return name


def _set_socket_timeout(raw: Any, seconds: float) -> None:
    """Bound the next socket read of a streamed response (urllib3 keeps the connection on it)."""
    sock = getattr(getattr(raw, "_connection", None), "sock", None)
    if sock is not None:
        sock.settimeout(max(0.01, seconds))


def prefetch(
    function: Callable[[Any], Any], items: Iterable[Any], workers: int = 4, ahead: int = 16
) -> Iterator[tuple[Any, Any]]:
    """``(item, function(item))`` in the items' order, with up to ``workers`` calls under way.

    For providers whose latency, not their quota, would bound a backfill: the
    session's rate limiter still spaces the calls. Up to ``ahead`` items are
    queued, so calls go on while the consumer pauses (to store a batch) instead
    of stalling after ``workers`` answers. Closing the iterator cancels the calls
    not yet started; an exception comes out at its item's turn. Several streams
    of calls sharing one quota: :class:`Prefetch`.
    """
    with Prefetch(function, workers=workers, ahead=ahead) as calls:
        calls.plan(None, items)
        for _, item, result in calls:
            yield item, result


class Prefetch:
    """Calls of several lanes (a konnector's streams) through one pool and one look-ahead queue.

    A backfill of several streams that runs them one after the other lets the
    quota idle at each change of stream: the last answers of one are awaited
    before the first call of the next is sent. Here the lanes' items are taken
    in turn (one of each lane, then again) into a single queue of ``ahead``
    calls, ``workers`` at a time, so calls go on from the first to the last
    whatever the lane, and while the consumer stores. Answers come out in the
    order the calls were queued: each lane's in its own order (a bookmark per
    lane can follow them). :meth:`plan` replaces a lane's items at any time
    (a window refused as too long, a start to move): its queued calls are
    cancelled, or their answers dropped if already under way.
    Use as a context manager: leaving it cancels what was not started.

    An exception comes out at its item's turn and ends the iteration, unless it
    is one of ``lane_errors`` (e.g. ``VendorDown``: one API of the provider
    failing): that one ends its lane only, the other lanes go on to their end
    (their answers are stored), and it is raised then.
    """

    def __init__(
        self,
        function: Callable[[Any], Any],
        *,
        workers: int = 4,
        ahead: int = 16,
        lane_errors: tuple[type[Exception], ...] = (),
    ) -> None:
        self.function = function
        self.ahead = max(workers, ahead)
        self.lane_errors = lane_errors
        self._pool = ThreadPoolExecutor(workers)
        self._lanes: dict[Any, Iterator[Any]] = {}
        self._queued: deque[tuple[Any, Any, Future]] = deque()

    def plan(self, lane: Any, items: Iterable[Any]) -> None:
        """From now on, ``lane`` is ``items``: what was queued for it before is dropped."""
        for entry in [entry for entry in self._queued if entry[0] == lane]:
            entry[2].cancel()
            self._queued.remove(entry)
        self._lanes.pop(lane, None)
        self._lanes[lane] = iter(items)

    def __iter__(self) -> Iterator[tuple[Any, Any, Any]]:
        """``(lane, item, function(item))`` as they are consumed; an exception at its item's turn.

        Calls are queued from here on (so that lanes planned one after the other take turns from
        the first call), and again as each answer is taken, before the consumer handles it.
        """
        failed: Exception | None = None
        while True:
            self._fill()
            if not self._queued:
                break
            lane, item, future = self._queued.popleft()
            try:
                result = future.result()
            except self.lane_errors as exc:
                failed = failed or exc
                self.plan(lane, ())
                continue
            self._fill()
            yield lane, item, result
        if failed is not None:
            raise failed

    def _fill(self) -> None:
        """Queue calls, the lanes taking turns, until ``ahead`` are queued or every lane is done."""
        while len(self._queued) < self.ahead and self._lanes:
            lane = next(iter(self._lanes))
            items = self._lanes.pop(lane)
            item = next(items, _NOTHING)
            if item is not _NOTHING:
                self._lanes[lane] = items  # to the back: the lanes take turns
                self._queued.append((lane, item, self._pool.submit(self.function, item)))

    def close(self) -> None:
        """Cancel the calls not started; wait for those under way (their own timeouts bound them)."""
        self._lanes.clear()
        self._queued.clear()
        self._pool.shutdown(wait=True, cancel_futures=True)

    def __enter__(self) -> Prefetch:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


_NOTHING = object()
