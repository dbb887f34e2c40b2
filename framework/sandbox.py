"""Base of the sandboxes: loopback HTTP(S) servers that imitate a provider.

A sandbox subclass declares its endpoints with :func:`route` and implements
the provider's documented behaviour. The base gives every sandbox the same
tools: a free loopback port, HTTPS with a throwaway CA (``trustme``) and, if
asked, client-certificate checks (mutual TLS); bearer tokens it issues, can
expire and revoke; fault injection (latency, statuses such as 429 or 5xx with
headers, malformed bodies) on chosen paths; and a record of every request
received, for tests to assert on.

A request goes through :meth:`Sandbox.admit` as it arrives, before the latency:
that is where a provider's gateway counts quotas (a call counts when it comes
in, not when the backend behind the gateway has answered it).
"""

from __future__ import annotations

import base64
import json
import re
import secrets
import ssl
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar
from urllib.parse import parse_qs, urlsplit

MAX_BODY = 16 * 1024 * 1024


@dataclass
class Request:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: bytes
    params: dict[str, str] = field(default_factory=dict)
    """Values captured by the route pattern's ``{name}`` parts."""
    client_cert: dict[str, Any] | None = None

    def json(self) -> Any:
        return json.loads(self.body or b"null")

    def form(self) -> dict[str, str]:
        return {k: v[-1] for k, v in parse_qs(self.body.decode(), keep_blank_values=True).items()}

    def header(self, name: str) -> str | None:
        return self.headers.get(name.lower())

    def basic_auth(self) -> tuple[str, str] | None:
        value = self.header("Authorization") or ""
        if not value.startswith("Basic "):
            return None
        user, _, password = base64.b64decode(value[6:]).decode().partition(":")
        return user, password

    def bearer(self) -> str | None:
        value = self.header("Authorization") or ""
        return value[7:] if value.startswith("Bearer ") else None


@dataclass
class Response:
    status: int = 200
    body: bytes | str | Any = b""
    headers: dict[str, str] = field(default_factory=dict)

    def encoded(self) -> bytes:
        if isinstance(self.body, bytes):
            return self.body
        if isinstance(self.body, str):
            return self.body.encode()
        self.headers.setdefault("Content-Type", "application/json")
        return json.dumps(self.body).encode()


def json_response(payload: Any, status: int = 200, **headers: str) -> Response:
    return Response(status, payload, {"Content-Type": "application/json", **headers})


def route(method: str, pattern: str) -> Callable:
    """Declare a handler: ``@route("GET", "/v4/points/{point_id}")``."""

    def mark(handler: Callable) -> Callable:
        handler.route = (method.upper(), pattern)  # type: ignore[attr-defined]
        return handler

    return mark


def _compile(pattern: str) -> re.Pattern[str]:
    return re.compile("^" + re.sub(r"\{(\w+)\}", r"(?P<\1>[^/]+)", pattern) + "$")


@dataclass
class Fault:
    """An injected answer: for the next ``times`` requests whose path matches ``path``."""

    status: int = 200
    body: bytes | str | Any = b""
    headers: dict[str, str] = field(default_factory=dict)
    times: int = 1
    path: str = ""
    delay: float = 0.0


class Sandbox:
    """A fake provider on 127.0.0.1. Use as a context manager, or ``start()``/``stop()``."""

    name: ClassVar[str] = "sandbox"

    def __init__(self, *, seed: int = 0, tls: bool = False, client_certs: bool = False, port: int = 0) -> None:
        self.seed = seed
        self.tls = tls or client_certs
        self.client_certs = client_certs
        self.port = port
        self.latency = 0.0
        self.on_request: Callable[[Request], None] | None = None
        """Called with each request before it is answered (tests use it to crash the client)."""
        self.requests: list[Request] = []
        self._faults: list[Fault] = []
        self._tokens: dict[str, dict[str, Any]] = {}
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self._files = tempfile.TemporaryDirectory(prefix=f"{self.name}-")
        self._routes = [
            (method, _compile(pattern), getattr(self, attr))
            for attr in dir(type(self))
            if (method_pattern := getattr(getattr(type(self), attr), "route", None))
            for method, pattern in [method_pattern]
        ]
        if self.tls:
            self._make_certificates()

    # lifecycle

    @property
    def url(self) -> str:
        scheme = "https" if self.tls else "http"
        return f"{scheme}://127.0.0.1:{self.port}"

    def start(self) -> Sandbox:
        sandbox = self

        class Handler(_Handler):
            owner = sandbox

        self._server = _Server(("127.0.0.1", self.port), Handler)
        self._server.daemon_threads = True
        if self.tls:
            self._server.socket = self._server_context().wrap_socket(self._server.socket, server_side=True)
        self.port = self._server.server_address[1]
        threading.Thread(target=self._server.serve_forever, name=self.name, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def close(self) -> None:
        self.stop()
        self._files.cleanup()

    def __enter__(self) -> Sandbox:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def dev_config(self) -> dict[str, Any]:
        """A dev-config (``fields``, ``parameters``) that points a konnector at this sandbox."""
        return {"fields": {}, "parameters": {}}

    @property
    def workdir(self) -> Path:
        """A scratch directory that lives as long as the sandbox (certificates, keys)."""
        return Path(self._files.name)

    # TLS

    def _make_certificates(self) -> None:
        import trustme

        self._ca = trustme.CA()
        self._server_cert = self._ca.issue_cert("127.0.0.1", "localhost")
        self.ca_path = str(self.workdir / "ca.pem")
        self._ca.cert_pem.write_to_path(self.ca_path)

    def issue_client_cert(self, name: str = "client") -> tuple[str, str]:
        """A client certificate signed by this sandbox's CA: ``(cert path, key path)``."""
        cert = self._ca.issue_cert(f"{name}.example")
        cert_path, key_path = (str(self.workdir / f"{name}.{ext}") for ext in ("crt", "key"))
        cert.cert_chain_pems[0].write_to_path(cert_path)
        cert.private_key_pem.write_to_path(key_path)
        return cert_path, key_path

    def _server_context(self) -> ssl.SSLContext:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        self._server_cert.configure_cert(context)
        if self.client_certs:
            self._ca.configure_trust(context)
            context.verify_mode = ssl.CERT_REQUIRED
        return context

    # tokens

    def issue_token(self, lifetime: float = 3600, **claims: Any) -> str:
        token = secrets.token_urlsafe(24)
        with self._lock:
            self._tokens[token] = {"expires_at": time.time() + lifetime, **claims}
        return token

    def token_claims(self, request: Request) -> dict[str, Any] | None:
        """The claims of the request's bearer token, or None if absent, unknown or expired."""
        with self._lock:
            claims = self._tokens.get(request.bearer() or "")
        if claims is None or claims["expires_at"] <= time.time():
            return None
        return claims

    def expire_tokens(self) -> None:
        """Make every token issued so far expired, as if the run had lasted past their lifetime."""
        with self._lock:
            for claims in self._tokens.values():
                claims["expires_at"] = 0.0

    # faults

    def inject(self, status: int = 200, body: Any = b"", *, times: int = 1, path: str = "", **options: Any) -> None:
        """Answer the next ``times`` requests matching ``path`` (a regex) with this instead."""
        headers = options.pop("headers", {})
        self._faults.append(Fault(status, body, headers, times, path, options.pop("delay", 0.0)))

    def _take_fault(self, path: str) -> Fault | None:
        with self._lock:
            for fault in self._faults:
                if fault.times > 0 and re.search(fault.path, path):
                    fault.times -= 1
                    return fault
        return None

    def requests_to(self, path_pattern: str) -> list[Request]:
        return [r for r in self.requests if re.search(path_pattern, r.path)]

    # dispatch

    def admit(self, request: Request) -> Response | None:
        """The gateway's answer to a request as it arrives (a 429 over quota), or None to serve it.

        Called before the latency, as an API gateway counts a call when it comes in; its refusals
        come back at once, without the backend's latency. None here: no quota.
        """
        return None

    def handle(self, request: Request) -> Response:
        with self._lock:
            self.requests.append(request)
        if self.on_request:
            self.on_request(request)
        refused = self.admit(request)
        if refused is not None:
            return refused
        time.sleep(self.latency)
        fault = self._take_fault(request.path)
        if fault:
            time.sleep(fault.delay)
            return Response(fault.status, fault.body, dict(fault.headers))
        for method, pattern, handler in self._routes:
            if method == request.method and (match := pattern.match(request.path)):
                request.params = match.groupdict()
                return handler(request)
        return json_response({"error": "not_found", "path": request.path}, 404)


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client that went away mid-answer (tests kill clients on purpose) is not an error here."""
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


class _Handler(BaseHTTPRequestHandler):
    owner: ClassVar[Sandbox]
    protocol_version = "HTTP/1.1"

    def _serve(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        if length > MAX_BODY:
            self._reply(Response(413, b"request body too large"))
            return
        parts = urlsplit(self.path)
        cert = self.connection.getpeercert() if hasattr(self.connection, "getpeercert") else None
        request = Request(
            method=self.command,
            path=parts.path,
            query={k: v[-1] for k, v in parse_qs(parts.query, keep_blank_values=True).items()},
            headers={k.lower(): v for k, v in self.headers.items()},
            body=self.rfile.read(length) if length else b"",
            client_cert=cert or None,
        )
        self._reply(self.owner.handle(request))

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _serve

    def _reply(self, response: Response) -> None:
        body = response.encoded()
        self.send_response(response.status)
        for name, value in response.headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass
