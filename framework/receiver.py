"""``konnector serve``: an HTTPS endpoint for providers' notifications, and its worker.

A provider POSTs a notification (PG&E's BatchList). The receiver reads at most
``max_bytes``, hands the body to the konnector's ``accept_notification``, which
checks it and stores it, and only then answers 200; a refused notification gets
400 and a log line, and nothing is stored. A worker thread then calls
``handle_notifications`` (fetch what was announced, store it); it also runs at
start, so notifications acknowledged before a crash are handled after a restart.
"""

from __future__ import annotations

import ssl
import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from .context import Context
from .errors import KonnectorError

WORKER_PERIOD = 30.0
DRAIN_LIMIT = 64 * 1024 * 1024
"""Refused bodies up to this size are read and dropped before answering; larger ones are cut off."""


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


class Receiver:
    def __init__(self, konnector: Any, ctx: Context, options: ServeOptions) -> None:
        self.konnector, self.ctx, self.options = konnector, ctx, options
        self.lock = threading.Lock()
        """One thread at a time touches the job's context and store."""
        self.wake = threading.Event()
        self.stopping = threading.Event()
        self.server = ThreadingHTTPServer((options.host, options.port), self._handler())
        self.server.daemon_threads = True
        if options.certfile:
            self.server.socket = self._tls().wrap_socket(self.server.socket, server_side=True)

    @property
    def url(self) -> str:
        scheme = "https" if self.options.certfile else "http"
        host, port = self.server.server_address[:2]
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
        self.ctx.log.info(f"listening for notifications on {self.url}")
        self.server.serve_forever()

    def stop(self) -> None:
        self.stopping.set()
        self.wake.set()
        self.server.shutdown()
        self.server.server_close()

    def accept(self, body: bytes) -> tuple[int, str]:
        with self.lock:
            try:
                notification = self.konnector.accept_notification(self.ctx, body)
            except KonnectorError as error:
                self.ctx.log.warning(f"notification refused: {error.message}")
                return 400, error.message
        self.ctx.log.info(f"notification {notification} stored")
        self.wake.set()
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

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                if self.path.split("?")[0] != receiver.options.path:
                    self._answer(404, "not found")
                    return
                length = int(self.headers.get("Content-Length") or 0)
                if length > receiver.options.max_bytes:
                    receiver.ctx.log.warning(f"notification refused: {length} bytes is over the limit")
                    self._discard(length)
                    self._answer(413, "too large")
                    return
                self._answer(*receiver.accept(self.rfile.read(length)))

            def _discard(self, length: int) -> None:
                """Read (and drop) a refused body, so the sender sees the answer instead of a cut connection."""
                if length > DRAIN_LIMIT:
                    self.close_connection = True
                    return
                while length > 0:
                    chunk = self.rfile.read(min(length, 64 * 1024))
                    if not chunk:
                        return
                    length -= len(chunk)

            def _answer(self, status: int, text: str) -> None:
                body = text.encode()
                self.send_response(status)
                self.send_header("Content-Type", "text/plain; charset=utf-8")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        return Handler
