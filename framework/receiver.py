"""``konnector serve``: an HTTPS endpoint for providers' notifications, and its worker.

A provider POSTs a notification (PG&E's BatchList). The endpoint is a Starlette (ASGI) app
served by uvicorn's HTTP/1.1 protocol (h11) on an asyncio server, so that a slow, idle or
hostile client costs a coroutine, never the whole endpoint:

- the TLS handshake must finish within ``handshake_timeout``; the request headers within
  ``read_timeout`` of the connection (else it is closed), the body within ``read_timeout`` (408);
- the body is capped at ``max_bytes`` by counting what arrives, whatever ``Content-Length``
  says (h11 answers 400 to a negative or malformed one; chunked bodies are counted too); a
  refused body up to 64 MiB is read and dropped so the sender gets the 413 answer;
- plain HTTP is served only on a loopback address; with ``client_ca``, a client must present
  a certificate signed by that CA *and* named as ``client_subject`` says (a SAN DNS name, IP
  or URI, or the subject's common name), else 403: a CA signs many certificates.

The body goes to the konnector's ``accept_notification``, which checks and stores it before
the 200 (a refused one gets 400 and a log line; nothing is stored). Konnector code runs in
worker threads, one at a time (it shares the job's context and store). A worker thread then
calls ``handle_notifications`` (fetch what was announced, store it); it also runs at start, so
notifications acknowledged before a crash are handled after a restart. A notification that
fails is the konnector's to park with its error and retry time, so it never blocks the others.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import signal
import socket
import ssl
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .context import Context
from .errors import ConfigurationError, KonnectorError
from .http import hook_from_environment

if TYPE_CHECKING:
    from starlette.requests import Request
    from starlette.responses import PlainTextResponse

WORKER_PERIOD = 30.0
DRAIN_LIMIT = 64 * 1024 * 1024
"""Refused bodies up to this size are read and dropped before answering; larger ones are cut off."""
HEADER_LIMIT = 16 * 1024
"""Request line and headers larger than this are refused by h11 (431/400)."""
STORED_HOOK_ENV = "KONNECTOR_NOTIFIED_HOOK"
"""``module:function`` called with the job's context after a notification is stored (fleet mode:
``framework.fleet.notify:enqueue`` queues a job for the account, handled by any worker)."""


@dataclass(frozen=True)
class ServeOptions:
    host: str = "127.0.0.1"
    port: int = 8443
    path: str = "/notify"
    certfile: str | None = None
    keyfile: str | None = None
    client_ca: str | None = None
    """If set, only clients with a certificate signed by this CA may post (the provider's)."""
    max_bytes: int = 1024 * 1024
    worker: bool = True
    client_subject: tuple[str, ...] = ()
    """Names accepted in the client certificate (SAN or CN); required with ``client_ca``."""
    handshake_timeout: float = 10.0
    read_timeout: float = 10.0


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def certificate_names(certificate: dict[str, Any] | None) -> set[str]:
    """The names a peer certificate (``SSLSocket.getpeercert()`` form) carries: SANs and CN."""
    if not certificate:
        return set()
    names = {value for _, value in certificate.get("subjectAltName", ())}
    for rdn in certificate.get("subject", ()):
        names.update(value for key, value in rdn if key == "commonName")
    return names


def _protocol_class(read_timeout: float) -> type:
    """uvicorn's h11 protocol, plus the peer certificate in the scope's state and a header deadline.

    Imported here, not at module level: the CLI starts without loading the web stack.
    """
    from uvicorn.protocols.http.h11_impl import H11Protocol

    class Protocol(H11Protocol):
        def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
            super().connection_made(transport)
            self.app_state = {**self.app_state, "peercert": transport.get_extra_info("peercert")}
            self._deadline = self.loop.call_later(read_timeout, self._drop_if_no_request)

        def _drop_if_no_request(self) -> None:
            if self.cycle is None and not self.transport.is_closing():
                self.transport.close()

        def connection_lost(self, exc: Exception | None) -> None:
            self._deadline.cancel()
            super().connection_lost(exc)

    return Protocol


class Receiver:
    def __init__(self, konnector: Any, ctx: Context, options: ServeOptions) -> None:
        self.konnector, self.ctx, self.options = konnector, ctx, options
        self._check_options()
        self.lock = threading.Lock()
        """One thread at a time touches the job's context and store."""
        self.on_stored = hook_from_environment(STORED_HOOK_ENV)
        self.wake = threading.Event()
        self.stopping = threading.Event()
        self.tls = self._tls() if options.certfile else None
        family = socket.AF_INET6 if ":" in options.host else socket.AF_INET
        self.socket = socket.socket(family, socket.SOCK_STREAM)
        self.socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            self.socket.bind((options.host, options.port))
            self.socket.listen(128)
            self.address = self.socket.getsockname()[:2]
        except OSError:
            self.socket.close()
            raise
        from uvicorn import Config

        self.config = Config(
            self._app(),
            lifespan="off",
            log_config=None,
            access_log=False,
            log_level="warning",
            timeout_keep_alive=5,
            h11_max_incomplete_event_size=HEADER_LIMIT,
        )
        self.config.load()
        self.loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None

    def _check_options(self) -> None:
        options = self.options
        if not options.certfile and not is_loopback(options.host):
            raise ConfigurationError(
                f"refusing to serve plain HTTP on {options.host}: notifications are accepted only over HTTPS "
                "(give --cert and --key), or over plain HTTP on a loopback address behind a TLS proxy"
            )
        if options.client_ca and not options.client_subject:
            raise ConfigurationError(
                "--client-ca needs --client-subject: a CA signs many certificates; name the provider's "
                "(a SAN DNS name or the subject's common name)"
            )

    @property
    def url(self) -> str:
        scheme = "https" if self.options.certfile else "http"
        host, port = self.address
        host = f"[{host}]" if ":" in host else host
        return f"{scheme}://{host}:{port}{self.options.path}"

    def _tls(self) -> ssl.SSLContext:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        context.load_cert_chain(self.options.certfile, self.options.keyfile)
        if self.options.client_ca:
            context.load_verify_locations(self.options.client_ca)
            context.verify_mode = ssl.CERT_REQUIRED
        return context

    def serve_forever(self) -> None:
        if self.options.worker:
            threading.Thread(target=self._work, name="notifications", daemon=True).start()
        if self.stopping.is_set():
            return
        asyncio.run(self._serve())

    async def _serve(self) -> None:
        self.loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        from uvicorn.server import ServerState

        state = ServerState()
        protocol = _protocol_class(self.options.read_timeout)
        server = await self.loop.create_server(
            lambda: protocol(self.config, state, {}),
            sock=self.socket,
            ssl=self.tls,
            ssl_handshake_timeout=self.options.handshake_timeout if self.tls else None,
        )
        if threading.current_thread() is threading.main_thread():
            for number in (signal.SIGTERM, signal.SIGINT):  # stop cleanly, not by an exception mid-await
                self.loop.add_signal_handler(number, self._stop.set)
        self.ctx.log.info(f"listening for notifications on {self.url}")
        if not self.tls:
            self.ctx.log.warning("plain HTTP on loopback: use it only behind a TLS-terminating proxy")
        if self.stopping.is_set():
            self._stop.set()
        await self._stop.wait()
        self.stopping.set()
        self.ctx.log.info("stopping")
        server.close()
        for connection in list(state.connections):
            connection.shutdown()
        await asyncio.sleep(0.1)

    def stop(self) -> None:
        self.stopping.set()
        self.wake.set()
        if self.loop is not None and self._stop is not None and not self.loop.is_closed():
            with contextlib.suppress(RuntimeError):  # the loop has just closed
                self.loop.call_soon_threadsafe(self._stop.set)
        else:
            self.socket.close()

    def accept(self, body: bytes) -> tuple[int, str]:
        with self.lock:
            try:
                notification = self.konnector.accept_notification(self.ctx, body)
            except KonnectorError as error:
                self.ctx.log.warning(f"notification refused: {error.message}")
                return 400, error.message
            except Exception as error:
                self.ctx.log.error(f"notification refused: {type(error).__name__}: {error}", exc_info=True)
                return 500, "internal error"
        self.ctx.log.info(f"notification {notification} stored")
        self.wake.set()
        if self.on_stored:
            try:
                self.on_stored(self.ctx)
            except KonnectorError as error:  # stored all the same: the account's next run handles it
                self.ctx.log.warning(f"notification {notification} stored, not handed on: {error.message}")
        return 200, "stored"

    def _work(self) -> None:
        while not self.stopping.is_set():
            with self.lock:
                try:
                    self.konnector.handle_notifications(self.ctx)
                except KonnectorError as error:
                    self.ctx.log.error(f"notifications not handled yet ({error.code}): {error.message}")
                except Exception as error:
                    self.ctx.log.error(f"notifications not handled yet: {type(error).__name__}: {error}", exc_info=True)
            self.wake.wait(WORKER_PERIOD)
            self.wake.clear()

    def _app(self) -> Any:
        from starlette.applications import Starlette
        from starlette.routing import Route

        return Starlette(routes=[Route(self.options.path, self._notify, methods=["POST"])])

    async def _notify(self, request: Request) -> PlainTextResponse:
        from starlette.concurrency import run_in_threadpool
        from starlette.requests import ClientDisconnect
        from starlette.responses import PlainTextResponse

        refused = self._client_refused(request)
        if refused is not None:
            self.ctx.log.warning(f"notification refused: {refused}")
            return PlainTextResponse(refused, 403)
        try:
            async with asyncio.timeout(self.options.read_timeout):
                body, size = await self._read(request)
        except TimeoutError:
            self.ctx.log.warning(f"notification refused: body not received within {self.options.read_timeout:g} s")
            return PlainTextResponse("request timeout", 408, headers={"Connection": "close"})
        except ClientDisconnect:
            return PlainTextResponse("", 400)
        if body is None:
            self.ctx.log.warning(f"notification refused: {size} bytes is over the {self.options.max_bytes}-byte limit")
            return PlainTextResponse("too large", 413, headers={"Connection": "close"})
        status, text = await run_in_threadpool(self.accept, body)
        return PlainTextResponse(text, status)

    def _client_refused(self, request: Request) -> str | None:
        if not self.options.client_subject:
            return None
        names = certificate_names(request.scope.get("state", {}).get("peercert"))
        if names & set(self.options.client_subject):
            return None
        shown = ", ".join(sorted(names)) or "none"
        return f"client certificate names ({shown}) are not the expected {', '.join(self.options.client_subject)}"

    async def _read(self, request: Request) -> tuple[bytes | None, int]:
        """The body, or None (and its size so far) if it is over the cap; counted, never trusted from headers."""
        parts: list[bytes] = []
        size = 0
        async for chunk in request.stream():
            size += len(chunk)
            if size > self.options.max_bytes:
                parts = []
                if size > DRAIN_LIMIT:
                    break
                continue
            parts.append(chunk)
        return (b"".join(parts) if size <= self.options.max_bytes else None), size


def subject_names(values: Iterable[str]) -> tuple[str, ...]:
    """Operator-given subject names, split on commas and trimmed."""
    return tuple(name.strip() for value in values for name in value.split(",") if name.strip())
